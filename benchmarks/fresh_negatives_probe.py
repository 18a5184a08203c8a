"""`negatives: fresh` against `fixed` (docs/benchmarks.md, "Negatives drawn afresh each step"): gathers two runs of
`benchmarks/transfer.py --cold-only` over the same directions and models, one trained with
`--config benchmarks/configs/train_fresh_negatives.yaml`, and per (pair, model) the validation AUC the trainer chose
the epoch on (run.json `result.best_score`, mean over seeds) with the chosen epochs, and per direction the cold users'
test AUC and NDCG@10 of each.

    python benchmarks/fresh_negatives_probe.py --json benchmarks/results/fresh_negatives_probe.json \
        --fresh benchmarks/work/s32_fresh_cold.json --fixed benchmarks/work/s32_fixed_cold.json \
        --fresh-work benchmarks/work/s32-fresh --fixed-work benchmarks/work/s31-cold
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json


def _validation(work: Path, pair: str, model: str) -> dict[str, Any]:
    runs = sorted((work / f"amazon-{pair}-cold-last" / "runs" / model).glob("seed-*/run.json"))
    results = [json.loads(r.read_text())["result"] for r in runs]
    return {"seeds": len(results), "valid_auc_mean": float(np.mean([r["best_score"] for r in results])),
            "valid_auc": [r["best_score"] for r in results], "best_epoch": [r["best_epoch"] for r in results]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ("--json", "--fresh", "--fixed", "--fresh-work", "--fixed-work"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    docs = {"fresh": json.loads(Path(args.fresh).read_text()), "fixed": json.loads(Path(args.fixed).read_text())}
    works = {"fresh": Path(args.fresh_work), "fixed": Path(args.fixed_work)}
    cold = {how: {(r["dataset"], r["target"], r["model"]): r for r in doc["rows"]
                  if r["protocol"] == "cold-user" and r["group"] == "0"} for how, doc in docs.items()}
    keys = sorted(set(cold["fresh"]) & set(cold["fixed"]))
    test = [{"dataset": d, "target": t, "model": m,
             **{f"{metric}_{how}": cold[how][(d, t, m)][metric] for how in ("fixed", "fresh")
                for metric in ("auc", "ndcg@10")}} for d, t, m in keys]
    pairs = sorted({d.removeprefix("amazon-") for d, _, _ in keys})
    models = sorted({m for _, _, m in keys} - {"popularity", "most_popular"})
    validation = [{"pair": p, "model": m, **{how: _validation(works[how], p, m) for how in ("fixed", "fresh")}}
                  for p in pairs for m in models]
    write_json(Path(args.json), {"context": context(), "inputs": vars(args), "validation": validation, "test": test})


if __name__ == "__main__":
    main()
