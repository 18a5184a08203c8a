"""mist trained one way against mist trained another, on the same prepared data and seeds: two `mistrec benchmark`
JSONs (benchmarks/transfer.py's benchmark.json of two work directories whose prepared data are the same) read run
against run. Nothing is trained or scored again: the runs' saved test predictions and per-query rankings are read.

    python benchmarks/arm_compare.py --json OUT.json --label softmax_scope=pool \
        benchmarks/work/CANDIDATE/amazon-sport_phone-cold-last/benchmark.json \
        benchmarks/work/s25-amazon/amazon-sport_phone-cold-last/benchmark.json

The check it was built with: `--baseline-model popularity` with the same benchmark.json twice (sport_phone's warm
runs) gives benchmarks/transfer.py's paired tests of mist against popularity to the digit.

Per scenario and activity group ("all" and every group with test rows), on the seeds both arms have: each arm's
AUC and NDCG@10 (means over seeds; NDCG@10 on the full catalogue and, where the runs ranked them, on the sampled
lists), and paired bootstraps over users of candidate - baseline (AUC on the same rows, the per-query NDCG@10;
1,000 resamples, the per-seed differences averaged: mistrec.eval.benchmark.compare_in_group, as the benchmark's
own tests). `--model` names the model of both arms (default mist); `--baseline-model` another for the baseline
arm (mist against popularity in one work directory reproduces benchmarks/transfer.py's paired tests).
`runs`: per arm, every run's training seconds and peak memory as its benchmark recorded them (read them with the
load they were trained beside: the benchmark.json's load averages), its weights.pt's size and its after-training
choices (run.json's `chosen`, `form` and `kept` values), so that an option's cost and what validation chose with it
are read from the same file as its figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, run_choices, write_json
from transfer import nan_mean, run_metric

ARMS = ("candidate", "baseline")


def arm_runs(path: Path, model: str, arm: str) -> list[Any]:
    """The benchmark's evaluated runs of `model`, renamed to the arm."""
    from mistrec.eval.results import BenchmarkResult

    runs = [r for r in BenchmarkResult.from_json(json.loads(path.read_text())).ok_runs if r.model == model]
    if not runs:
        raise SystemExit(f"{path} has no evaluated {model} run.")
    return [dataclasses.replace(r, model=arm) for r in runs]


def compare(candidate: Path, baseline: Path, model: str, baseline_model: str, n_boot: int) -> list[dict[str, Any]]:
    from mistrec.eval.benchmark import compare_in_group, load_per_query_files, load_prediction_files

    runs = arm_runs(candidate, model, "candidate") + arm_runs(baseline, baseline_model, "baseline")
    seeds = sorted({r.seed for r in runs if r.model == "candidate"} & {r.seed for r in runs if r.model == "baseline"})
    if not seeds:
        raise SystemExit("The two arms have no seed in common.")
    predictions = load_prediction_files(runs)
    per_query = load_per_query_files(runs)
    first = runs[0]
    names = first.scenario_names or []
    by_activity = first.metrics.to_json().get("by_activity") or {}
    groups = [str(g) for g in by_activity.get("groups", [])]
    sampled_view = next((v for q in per_query.values() for v in q if v != "full catalogue"), None)
    out = []
    for scenario in names:
        for group in ["all", *groups]:
            g = None if group == "all" else group
            rec: dict[str, Any] = {"scenario": scenario, "group": group, "seeds": seeds}
            for arm in ARMS:
                mine = [r.metrics.to_json() for r in runs if r.model == arm and r.seed in seeds]
                rec[arm] = {label: nan_mean([run_metric(m, scenario, g, key, sampled) for m in mine])
                            for label, key, sampled in (("auc", "auc", False), ("ndcg@10", "ndcg@10", False),
                                                        ("sampled ndcg@10", "ndcg@10", True))
                            if sampled_view or not sampled}
            if all(np.isnan(v) for arm in ARMS for v in rec[arm].values()):
                continue  # the group has no test row in this scenario
            paired: dict[str, Any] = {}
            for view, label in (("full catalogue", "ndcg@10"), (sampled_view, "sampled ndcg@10")):
                if view is None:
                    continue
                # the AUC's bootstrap once, with the full catalogue's: no predictions for the sampled lists' call
                test = compare_in_group(runs, predictions if label == "ndcg@10" else {}, per_query, "candidate",
                                        "baseline", scenario, g, "ndcg@10", n_boot, view=view)
                paired.update({name: {k: test[key][k] for k in ("diff", "ci_low", "ci_high", "p_value")}
                               for name, key in (("auc", "auc"), (label, "ndcg@10")) if key in test})
            rec["paired"] = paired
            print(f"{scenario} {group}: " + ", ".join(
                f"{k} {rec['candidate'][k]:.4f} vs {rec['baseline'][k]:.4f}"
                + (f" ({paired[k]['diff']:+.4f}, p {paired[k]['p_value']:.3f})" if k in paired else "")
                for k in rec["candidate"]), flush=True)
            out.append(rec)
    return out


def arm_costs(candidate: Path, baseline: Path, model: str, baseline_model: str) -> dict[str, list[dict[str, Any]]]:
    """Per arm, each run's cost and choices: training seconds and peak memory (as the benchmark recorded them),
    the saved weights' size, and the after-training choices of its run.json (`run_choices`)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for arm, path, name in (("candidate", candidate, model), ("baseline", baseline, baseline_model)):
        out[arm] = []
        for r in arm_runs(path, name, arm):
            weights = Path(r.run_dir) / "weights.pt" if r.run_dir else None
            out[arm].append({"seed": r.seed, "train_seconds": r.train_seconds, "peak_rss_mb": r.peak_rss_mb,
                             "weights_mb": round(weights.stat().st_size / 2**20, 1) if weights and weights.is_file()
                             else None,
                             "choices": run_choices(r.run_dir) if r.run_dir and (Path(r.run_dir) / "run.json").is_file()
                             else None})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--label", required=True, help="what the candidate arm was trained with (recorded)")
    ap.add_argument("--model", default="mist")
    ap.add_argument("--baseline-model", help="the baseline arm's model (default: --model's)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("candidate", help="the candidate arm's benchmark.json")
    ap.add_argument("baseline", help="the baseline arm's benchmark.json")
    args = ap.parse_args()
    doc = {"candidate": args.label, "candidate_json": args.candidate, "baseline_json": args.baseline,
           "model": args.model, "baseline_model": args.baseline_model or args.model,
           "results": compare(Path(args.candidate), Path(args.baseline), args.model, args.baseline_model or args.model,
                              args.bootstrap),
           "runs": arm_costs(Path(args.candidate), Path(args.baseline), args.model, args.baseline_model or args.model),
           "context": context()}
    write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
