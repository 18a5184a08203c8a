"""Full-catalogue ranking speed of mist: every test query against every item of its scenario's catalogue, with
HR@K, NDCG@K, Recall@K, MRR, coverage, diversity and novelty, at --threads torch threads.

    python benchmarks/eval_speed.py --json benchmarks/results/eval_speed.json [--data ml-1m-age]
    python benchmarks/eval_speed.py --json benchmarks/results/eval_speed_sport_phone.json --data amazon-sport_phone

Data: MovieLens-1M by age group (random 8:1:1, seed 2022, L = 50; 5,745 test queries against ~3,700 items), or an
Amazon pair with the cold-user protocol of benchmarks/transfer.py (test users cold in a domain, against the
domain's whole catalogue of 10^4 to 4 x 10^4 items).

Two paths, timed in the same process on the same model: the catalogue path that evaluation uses
(mistrec.models.mist_rank: the candidate side computed once per scenario, the query side once per query), and the
general path it replaced (Mist.score_candidates's per-query attention with the top over every crossed row), as the
baseline. Their passes alternate (--repeats of the first, --baseline-repeats of the second: 3 each by default), so
that a machine that slows down or speeds up during the run touches both alike; the medians, their ratio, the
largest difference between the two paths' metrics (they must agree: the same scores up to floating-point
reassociation), and the load average before and after are written.

The mist run comes from --run, or is trained here for one epoch (the weights do not change the work done).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, THREADS, context, prepared_ml1m, write_json


def prepared_data(args: argparse.Namespace) -> Path:
    work = Path(args.work)
    if args.data == "ml-1m-age":
        return prepared_ml1m(work, "age", SHARED_DATA / "ml-1m")
    pair = args.data.removeprefix("amazon-")
    from transfer import Job, prepare  # the transfer benchmark's own cold-user preparation

    a, _, b = pair.partition("_")
    ns = argparse.Namespace(amazon=str(SHARED_DATA / "amazon-cdr-disencdr"))
    return prepare(Job(f"amazon-{pair}-cold-last", f"amazon-{pair}", (a, b), ("cold-user",), ("all", "0")),
                   work / "eval-speed", ns)


def general_path(model: Any, on: bool) -> None:
    """Makes `model` score through the general path (the baseline: Model.candidate_scorer's blocks over
    Mist._score_crossed), or back through its own (the catalogue path)."""
    from mistrec.models.base import Model

    if on:
        model.score_candidates = model._score_crossed
        model.candidate_scorer = functools.partial(Model.candidate_scorer, model)
    else:
        vars(model).pop("score_candidates", None)
        vars(model).pop("candidate_scorer", None)


def timed_passes(model: Any, enc: Any, ds: Any, repeats: int, baseline_repeats: int
                 ) -> tuple[list[float], dict[str, Any], list[float], dict[str, Any]]:
    """Passes of the catalogue path and of the general path in turn (fast, general, fast, ...), so that both see
    the same machine: the seconds of each and the metrics of each path's last pass."""
    from mistrec.eval import rank_full_catalogue

    seconds: dict[bool, list[float]] = {False: [], True: []}
    metrics: dict[bool, dict[str, Any]] = {}
    for r in range(max(repeats, baseline_repeats)):
        for general, wanted in ((False, repeats), (True, baseline_repeats)):
            if r >= wanted:
                continue
            general_path(model, general)
            start = time.perf_counter()
            metrics[general] = rank_full_catalogue(model, enc, ds, split="test", ks=(10, 20)).metrics
            seconds[general].append(time.perf_counter() - start)
    general_path(model, False)
    return seconds[False], metrics[False], seconds[True], metrics[True]


def max_difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The largest absolute difference between two metrics blocks' numbers, over every scenario and metric."""
    worst = 0.0
    for scen, block in a["by_scenario"].items():
        for key, value in block.items():
            if isinstance(value, int | float) and isinstance(b["by_scenario"][scen].get(key), int | float):
                worst = max(worst, abs(float(value) - float(b["by_scenario"][scen][key])))
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--data", default="ml-1m-age", choices=["ml-1m-age", "amazon-sport_phone", "amazon-sport_cloth",
                                                            "amazon-electronic_cloth", "amazon-electronic_phone"])
    ap.add_argument("--run", help="a mist run on the prepared data (default: train one, 1 epoch)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=int(THREADS))
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work"))
    args = ap.parse_args()

    import torch

    from mistrec.data import PreparedDataset
    from mistrec.eval.fit import fit_run
    from mistrec.train import TrainConfig, load_run

    torch.set_num_threads(args.threads)
    prepared = prepared_data(args)
    run = Path(args.run) if args.run else prepared.parent / "eval-speed-mist"
    if not (run / "run.json").is_file():
        fit_run(prepared, "mist", run, train_cfg=TrainConfig(epochs=1, seed=2022), quiet=True)
    model, enc, _ = load_run(run)
    ds = PreparedDataset.load(prepared)
    load_before = os.getloadavg()
    fast_s, fast, general_s, general = timed_passes(model, enc, ds, args.repeats, args.baseline_repeats)
    overall = fast["overall"]
    fast_median, general_median = statistics.median(fast_s), statistics.median(general_s)
    doc = {"data": args.data, "model": "mist", "run": str(run), "threads": args.threads,
           "full_ranking_seconds_median": round(fast_median, 2), "runs_seconds": [round(s, 2) for s in fast_s],
           "general_path_seconds_median": round(general_median, 2),
           "general_path_runs_seconds": [round(s, 2) for s in general_s],
           "speedup": round(general_median / fast_median, 2),
           "max_abs_metric_difference": max_difference(fast, general),
           "users": overall["n_queries"], "items": overall["catalogue"], "relevant_items": overall["n_relevant"],
           "scored_pairs": int(sum(v["n_queries"] * v["catalogue"] for v in fast["by_scenario"].values())),
           "ndcg@10": overall["ndcg@10"], "load_average_before": load_before, "load_average_after": os.getloadavg(),
           "context": context()}
    write_json(args.json, doc)
    print(json.dumps({k: doc[k] for k in ("full_ranking_seconds_median", "general_path_seconds_median", "speedup",
                                          "max_abs_metric_difference", "users", "items", "scored_pairs")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
