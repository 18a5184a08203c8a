"""The benchmark's paired tests between two models trained in different work directories on the same rows: mist's
default runs of one job against a baseline trained another way (e.g. `negatives: fresh`) in another.

    python benchmarks/cross_paired.py --json OUT.json --a mist=benchmarks/work/s31-cold/amazon-sport_phone-cold-last \
        --b shared_bottom=benchmarks/work/s32-fresh/amazon-sport_phone-cold-last --b star=... [--group 0]

Each side is MODEL=JOB (a benchmarks/transfer.py job directory: runs/MODEL/seed-N/ with eval.json and the saved
predictions and per-query rankings). For every target scenario, model a against each model b on the seeds both have,
in the activity group asked for: AUC by mistrec.eval.benchmark.compare_in_group's bootstrap over users, NDCG@10 on the
full catalogue likewise, exactly as `mistrec benchmark` tests two models of one directory. The two jobs must hold the
same test rows (same users and labels in the same order: compare_in_group leaves a comparison out otherwise, and this
script says so); a prepared dataset's fingerprint includes its path, so the rows are what is checked.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json

from mistrec.eval.benchmark import compare_in_group, load_per_query_files, load_prediction_files
from mistrec.eval.results import Evaluation, RunResult


def load_runs(model: str, job: Path) -> list[RunResult]:
    """Every evaluated seed of `model` in a job directory, as RunResults."""
    runs = []
    for path in sorted((job / "runs" / model).glob("seed-*/eval.json")):
        run = Evaluation.from_json(json.loads(path.read_text())).run
        runs.append(dataclasses.replace(run, run_dir=str(path.parent)))  # where the files are now
    if not runs:
        raise SystemExit(f"{job / 'runs' / model}: no evaluated seed (seed-N/eval.json)")
    return runs


def side(text: str) -> tuple[str, Path]:
    model, _, job = text.partition("=")
    if not job:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MODEL=JOB_DIRECTORY")
    return model, Path(job)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--a", type=side, required=True, help="MODEL=JOB: the model tested against the others")
    ap.add_argument("--b", type=side, action="append", required=True, help="MODEL=JOB (repeatable)")
    ap.add_argument("--group", default="0", help="activity group ('0', '1-2', ...), or 'all'")
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    a_model, a_job = args.a
    names = [a_model] + [m for m, _ in args.b]
    if len(set(names)) < len(names):  # runs are told apart by (model, seed)
        raise SystemExit(f"models {names}: each side must be a different model")
    runs = load_runs(a_model, a_job)
    for b_model, b_job in args.b:
        runs += load_runs(b_model, b_job)
    predictions, per_query = load_prediction_files(runs), load_per_query_files(runs)
    scenarios = runs[0].scenario_names or []
    group = None if args.group == "all" else args.group
    out: list[dict[str, Any]] = []
    for scenario in scenarios:
        for b_model, b_job in args.b:
            test = compare_in_group(runs, predictions, per_query, a_model, b_model, scenario, group, "ndcg@10",
                                    n_boot=args.bootstrap)
            row: dict[str, Any] = {"target": scenario, "group": args.group, "a": f"{a_model} ({a_job})",
                                   "b": f"{b_model} ({b_job})", "seeds": test["seeds"]}
            for metric in ("auc", "ndcg@10"):
                if metric in test:
                    row[metric] = {"diff": test[metric]["diff"], "p_value": test[metric]["p_value"]}
                else:
                    row[metric] = None
                    print(f"WARNING: {scenario} {a_model} vs {b_model}: no paired {metric} (different rows or queries,"
                          " or one class only)", flush=True)
            out.append(row)
            print(f"{scenario} group {args.group}: {a_model} - {b_model} ({b_job.name}), seeds {test['seeds']}: "
                  + ", ".join(f"{m} {row[m]['diff']:+.4f} (p {row[m]['p_value']:.3f})"
                              for m in ("auc", "ndcg@10") if row[m]), flush=True)
    write_json(args.json, {"tests": out, "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
