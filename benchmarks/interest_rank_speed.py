"""What `interest_scope: auto` costs full-catalogue ranking: one saved mist run scored by the catalogue path
(MistCatalogue) on test queries against its items, with every scenario reading every pool (`own_interest_from` 0)
and with the interest of users with at least K events read from their own scenario's pools in every scenario
(`own_interest_from` K), passes alternating so that a machine that slows down touches both alike. Writes the median
seconds per pass of each, their ratio, how many queries the own pools engage, and the load average before and after.

    python benchmarks/interest_rank_speed.py --json benchmarks/results/interest_rank_speed.json \
        benchmarks/work/s40-own-syn/synthetic-transfer-4000u/runs/mist/seed-2022
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--queries", type=int, default=500, help="test queries (the first N)")
    ap.add_argument("--from-events", type=int, default=6, help="K: own pools for users with at least K events")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("run")
    args = ap.parse_args()

    import torch

    from mistrec.data.prepared import PreparedDataset
    from mistrec.models.mist import Mist
    from mistrec.models.mist_rank import MistCatalogue
    from mistrec.train.artifact import load_run

    torch.set_num_threads(args.threads)
    before = context()
    run = Path(args.run)
    model, enc, _ = load_run(run, {"interest_scope": "auto"})
    assert isinstance(model, Mist) and model.own_interest_from is not None
    model.eval()
    ds = PreparedDataset.load(run.parents[2] / "prepared")
    rows = enc.rows(ds, "test")
    queries = enc.batch(rows, np.arange(min(args.queries, len(rows))))
    items = enc.item_batch(np.arange(1, enc.spec_.n_items))
    seconds: dict[str, list[float]] = {"all": [], "own": []}
    scores: dict[str, Any] = {}
    with torch.no_grad():
        for _ in range(args.repeats):
            for arm, k in (("all", 0), ("own", args.from_events)):
                model.own_interest_from.fill_(k)
                catalogue = MistCatalogue(model, items)
                started = time.perf_counter()
                scores[arm] = catalogue(queries)
                seconds[arm].append(time.perf_counter() - started)
        model.own_interest_from.fill_(args.from_events)
        unread = model._interest_unread(queries)
    engaged = 0 if unread is None else int(unread.any(1).sum())
    median = {arm: statistics.median(v) for arm, v in seconds.items()}
    out = {"run": str(run), "queries": len(queries), "items": len(items), "from_events": args.from_events,
           "threads": args.threads, "queries_engaged": engaged, "seconds": seconds, "median_seconds": median,
           "ratio_own_to_all": median["own"] / median["all"],
           "scores_differ": bool(not torch.equal(scores["own"], scores["all"])),
           "context_before": before, "context_after": context()}
    print(f"{len(queries)} queries x {len(items)} items, {engaged} engaged: all {median['all']:.3f} s, own "
          f"{median['own']:.3f} s, ratio {out['ratio_own_to_all']:.2f}", flush=True)
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
