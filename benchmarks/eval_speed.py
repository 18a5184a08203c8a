"""Full-catalogue ranking speed: every test user of MovieLens-1M (age groups, random 8:1:1, seed 2022, L = 50)
against every item of their scenario's catalogue, scored by mist, with HR@K, NDCG@K, Recall@K, MRR, coverage,
diversity and novelty, 2 torch threads. Median of 3 timed passes in one process (after the data is loaded).

    python benchmarks/eval_speed.py --json benchmarks/results/eval_speed.json

The mist run comes from --run, or is trained here for one epoch (the weights do not change the work done).
Writes {"full_ranking_seconds_median": float, "users": int, "items": int, ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, THREADS, context, prepared_ml1m, write_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--run", help="a mist run on the prepared ML-1M age data (default: train one, 1 epoch)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work"))
    ap.add_argument("--data", default=str(SHARED_DATA / "ml-1m"))
    args = ap.parse_args()

    import torch

    from mistrec.data import PreparedDataset
    from mistrec.eval import rank_full_catalogue
    from mistrec.eval.fit import fit_run
    from mistrec.train import TrainConfig, load_run

    torch.set_num_threads(int(THREADS))
    prepared = prepared_ml1m(Path(args.work), "age", Path(args.data))
    work = prepared.parent
    run = Path(args.run) if args.run else work / "eval-speed-mist"
    if not (run / "run.json").is_file():
        fit_run(prepared, "mist", run, train_cfg=TrainConfig(epochs=1, seed=2022), quiet=True)
    model, enc, _ = load_run(run)
    ds = PreparedDataset.load(prepared)
    load_before = os.getloadavg()
    seconds, result = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = rank_full_catalogue(model, enc, ds, split="test", ks=(10, 20))
        seconds.append(time.perf_counter() - start)
    assert result is not None
    overall = result.metrics["overall"]
    doc = {"full_ranking_seconds_median": round(statistics.median(seconds), 2),
           "runs_seconds": [round(s, 2) for s in seconds], "users": overall["n_queries"],
           "items": overall["catalogue"], "relevant_items": overall["n_relevant"],
           "scored_pairs": int(sum(v["n_queries"] * v["catalogue"] for v in result.metrics["by_scenario"].values())),
           "model": "mist", "run": str(run), "ndcg@10": overall["ndcg@10"], "load_average_before": load_before,
           "context": context()}
    write_json(args.json, doc)
    print(json.dumps({k: doc[k] for k in ("full_ranking_seconds_median", "runs_seconds", "users", "items")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
