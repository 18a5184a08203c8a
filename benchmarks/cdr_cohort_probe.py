"""How much of a cold user's target-domain choices a cohort signal predicts on the Amazon cross-domain pairs
(docs/benchmarks.md, transfer results): a measurement of the data, not of a mistrec model.

    python benchmarks/cdr_cohort_probe.py --json benchmarks/results/cdr_cohort_probe.json

DisenCDR's files number users and items in an order that is not random: a user's index and the indices of the
items they review correlate (0.18-0.25 in electronic_phone). So users of a period review items of that period,
in both domains: a cohort that a user embedding trained on one domain and shared with the other (STAR's, EMCDR's)
can carry, and that attention over the other domain's events can carry only if the two domains' item vectors
learn it alike. Per direction (target domain, source domain), with 20% of the users made cold in the target
(seeded), every cold user's target reviews against as many uniformly drawn target items:

- popularity: the item's reviews by the other (warm) users in the target;
- cohort: minus |the user's cohort - the item's cohort|, the user's cohort being the mean, over their source
  reviews, of each source item's reviewers' mean index, and the item's the mean index of its warm reviewers
  (the user's own target reviews are never read);
- both: a logistic regression on the two, fitted on one half of the cold users and scored on the other, both
  ways (2-fold over users).

AUC of each. JSON: {"directions": [{"target", "source", "cold_users", "rows", "auc_popularity", "auc_cohort",
"auc_both", "index_correlation"}], "seed"}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, context, write_json

PAIRS = ("sport_phone", "sport_cloth", "electronic_phone", "electronic_cloth")


def _read(path: Path) -> np.ndarray:
    return np.loadtxt(path, dtype=np.int64, usecols=(0, 1))


def direction(root: Path, target: str, source: str, seed: int, cold_share: float = 0.2) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    tgt, src = _read(root / f"{target}_{source}" / "train.txt"), _read(root / f"{source}_{target}" / "train.txt")
    rng = np.random.default_rng(seed)
    n_users = int(max(tgt[:, 0].max(), src[:, 0].max())) + 1
    cold = rng.random(n_users) < cold_share
    warm = tgt[~cold[tgt[:, 0]]]
    n_items, n_src = int(tgt[:, 1].max()) + 1, int(src[:, 1].max()) + 1
    count = np.bincount(warm[:, 1], minlength=n_items)
    item_cohort = np.where(count > 0, np.bincount(warm[:, 1], weights=warm[:, 0], minlength=n_items)
                           / np.maximum(count, 1), n_users / 2)
    src_cohort = np.bincount(src[:, 1], weights=src[:, 0], minlength=n_src) / np.maximum(
        np.bincount(src[:, 1], minlength=n_src), 1)
    reviews = np.maximum(np.bincount(src[:, 0], minlength=n_users), 1)
    user_cohort = np.bincount(src[:, 0], weights=src_cohort[src[:, 1]], minlength=n_users) / reviews
    pos = tgt[cold[tgt[:, 0]]]
    neg = np.stack([pos[:, 0], rng.integers(0, n_items, len(pos))], axis=1)
    rows = np.concatenate([pos, neg])
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    x = np.stack([np.log1p(count[rows[:, 1]]),
                  -np.abs(user_cohort[rows[:, 0]] - item_cohort[rows[:, 1]]) / n_users], axis=1)
    half = rng.random(n_users) < 0.5
    fold = half[rows[:, 0]]
    both = np.empty(len(y))
    for part in (fold, ~fold):
        fit = LogisticRegression().fit(x[~part], y[~part])
        both[part] = fit.decision_function(x[part])
    return {"target": target, "source": source, "cold_users": int(cold.sum()), "rows": len(y),
            "auc_popularity": round(float(roc_auc_score(y, x[:, 0])), 4),
            "auc_cohort": round(float(roc_auc_score(y, x[:, 1])), 4),
            "auc_both": round(float(roc_auc_score(y, both)), 4),
            "index_correlation": round(float(np.corrcoef(tgt[:, 0], tgt[:, 1])[0, 1]), 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seed", type=int, default=2022)
    args = ap.parse_args()
    root = SHARED_DATA / "amazon-cdr-disencdr"
    out = []
    for pair in PAIRS:
        a, _, b = pair.partition("_")
        for target, source in ((a, b), (b, a)):
            out.append(direction(root, target, source, args.seed))
            print(out[-1], flush=True)
    write_json(args.json, {"directions": out, "seed": args.seed, "cold_share": 0.2, "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
