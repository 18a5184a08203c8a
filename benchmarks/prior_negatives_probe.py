"""What mist's `prior_negatives` changes in the item prior alone, on implicit data (sampled negatives): a popularity
run's table (the smoothed rate, the counted prior's formula) replaced three ways and ranked as `mistrec evaluate`
ranks (full catalogue and 999 sampled negatives, validation and test):

- rate_realized: each item's negatives as drawn for it (`prior_negatives: counted`, popularity's own table);
- rate_expected: each item's negatives as their expectation, the scenario's negatives over its items with a training
  positive (`prior_negatives: expected`, mistrec.models.mist_parts.ItemCounts.prior);
- count: log(1 + the item's training positives) (`most_popular`).

    mistrec train benchmarks/work/s31-warm/amazon-electronic_cloth-warm/prepared --model popularity --out RUN
    python benchmarks/prior_negatives_probe.py --run RUN --json benchmarks/results/prior_negatives_probe.json

Writes per table and split the NDCG@10 per scenario. Read against docs/benchmarks.md, "The item prior's negatives".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json

from mistrec.eval.evaluate import load_run_and_data
from mistrec.eval.ranking import rank_full_catalogue
from mistrec.models.classic import Popularity


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="a popularity run on implicit data (sampled negatives)")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, enc, _meta, ds = load_run_and_data(args.run)
    if not isinstance(model, Popularity) or not enc.spec_.sampled_negatives:
        raise SystemExit(f"{args.run}: needs a popularity run on data with sampled negatives.")
    r = enc.indexed(enc.rows(ds, "train"))
    clicks, shows = model._counts(r)
    neg = shows - clicks
    pool = clicks > 0
    exp_neg = np.where(pool, neg.sum(1, keepdims=True) / np.maximum(pool.sum(1, keepdims=True), 1), 0.0)
    print("realized negatives per pool item: mean", neg[pool].mean(), "sd", neg[pool].std())
    base = clicks.sum(1, keepdims=True) / np.maximum(shows.sum(1, keepdims=True), 1)
    base = np.where(shows.sum(1, keepdims=True) > 0, base, r.label.mean())
    p = model.cfg.prior
    assert p is not None
    tables = {"rate_realized": (clicks + p * base) / (shows + p),
              "rate_expected": (clicks + p * base) / (clicks + exp_neg + p),
              "count": None}
    out: dict[str, object] = {"negatives_per_pool_item": {"mean": float(neg[pool].mean()),
                                                           "sd": float(neg[pool].std())}}
    for name, t in tables.items():
        if t is None:
            model.table = torch.tensor(np.log1p(clicks), dtype=torch.float32)
            model.score = model._lookup  # type: ignore[method-assign]  # most_popular's score: the table itself
        else:
            model.table = torch.tensor(t, dtype=torch.float32)
        for split in ("valid", "test"):
            m = rank_full_catalogue(model, enc, ds, split=split, ks=(10,), also_sampled=999).metrics
            full = {s: round(v["ndcg@10"], 4) for s, v in m["by_scenario"].items()}
            samp = {s: round(v["ndcg@10"], 4) for s, v in m["sampled"]["by_scenario"].items()}
            out[f"{name} {split}"] = {"full": full, "sampled": samp}
            print(name, split, "full", full, "sampled", samp, flush=True)
    write_json(args.json, {**out, "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
