"""What the sampled negatives of a prepared implicit dataset say about items that first appear after training, and
how the runs trained on it score those items (docs/benchmarks.md, "Negatives drawn by split").

Per prepared directory: the share of the training split's sampled negatives whose item has no training positive
in its scenario (0 by construction since negatives are drawn by split; 10-12% on the Amazon pairs before), and the
share of such items among the test positives and test negatives of the cold users (activity group 0). Per run in
`DIR/runs/MODEL/seed-S` with saved test predictions: the cold users' test AUC, its mean logit on items without and
with a training positive, and the AUC of the pairs (positive without, negative with) and (positive with, negative
without): where a model puts the items the training data never showed as positives.

    python benchmarks/negative_pool_probe.py --json OUT DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import auc_or_nan, context, write_json


def probe(work: Path) -> dict[str, Any]:
    import polars as pl

    from mistrec.data.prepared import PreparedDataset

    df = PreparedDataset.load(work / "prepared").interactions
    known = df.filter((pl.col("split") == "train") & ~pl.col("sampled")).select("scenario", "item").unique()
    known = known.with_columns(pl.lit(True).alias("known"))
    train_neg = df.filter((pl.col("split") == "train") & pl.col("sampled")).join(known, on=["scenario", "item"],
                                                                                   how="left")
    out: dict[str, Any] = {"dir": str(work), "train_negatives": train_neg.height,
                           "train_negatives_without_a_training_positive": float(train_neg["known"].is_null().mean())}
    keys = set(zip(known["scenario"].to_list(), known["item"].to_list(), strict=True))
    runs = []
    for pred in sorted(work.glob("runs/*/seed-*/predictions_test.npz")):
        p = np.load(pred)
        for s in np.unique(p["scenario"]):
            sel = (p["scenario"] == s) & (p["group"] == 0)
            y = p["label"][sel]
            z = np.log(np.clip(p["prob"][sel], 1e-7, 1 - 1e-7)) - np.log1p(-np.clip(p["prob"][sel], 1e-7, 1 - 1e-7))
            seen = np.array([(int(s), int(i)) in keys for i in p["item"][sel]])

            def pairs(a: np.ndarray, b: np.ndarray, z: np.ndarray = z) -> float:
                return auc_or_nan(np.r_[np.ones(a.sum()), np.zeros(b.sum())], np.r_[z[a], z[b]])

            runs.append({"model": pred.parts[-3], "seed": pred.parts[-2], "scenario": int(s), "rows": int(sel.sum()),
                         "auc": auc_or_nan(y, z),
                         "unseen_share_positives": float((~seen[y > 0]).mean()),
                         "unseen_share_negatives": float((~seen[y == 0]).mean()),
                         "mean_logit_unseen": float(z[~seen].mean()), "mean_logit_seen": float(z[seen].mean()),
                         "auc_pos_unseen_vs_neg_seen": pairs((y > 0) & ~seen, (y == 0) & seen),
                         "auc_pos_seen_vs_neg_unseen": pairs((y > 0) & seen, (y == 0) & ~seen)})
            r = runs[-1]
            print(work.name, r["model"], r["seed"], s, f"auc {r['auc']:.4f} logit unseen {r['mean_logit_unseen']:+.2f} "
                  f"seen {r['mean_logit_seen']:+.2f} pos-unseen/neg-seen {r['auc_pos_unseen_vs_neg_seen']:.3f}",
                  flush=True)
    out["runs"] = runs
    print(work.name, f"training negatives without a training positive: "
          f"{out['train_negatives_without_a_training_positive']:.4f}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("dirs", nargs="+", help="benchmark work directories (prepared/ and runs/)")
    args = ap.parse_args()
    write_json(args.json, {"dirs": [probe(Path(d)) for d in args.dirs], "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
