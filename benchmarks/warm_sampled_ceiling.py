"""How far above the item count can item-to-item signals lift warm users' NDCG@10 on the sampled 1 + 999 lists of the
Amazon pairs? A measurement of the data, no model trained, on lists built as `benchmarks/transfer.py`'s
warm-sampled-999 protocol builds them (docs/benchmarks.md, "How far the warm sampled lists go").

    python benchmarks/warm_sampled_ceiling.py --json benchmarks/results/warm_sampled_ceiling_electronic_cloth.json \
        --target cloth benchmarks/work/s39-warm/amazon-electronic_cloth-warm/prepared

The prepared directory is a warm job of transfer.py (recipe cdr-pair, leave-one-out per user and domain: each
user's last event of a domain tests, the one before validates). Per target domain t, for a seeded sample of at most
`--max-queries` users with a positive in the split (as `mistrec evaluate --max-queries` draws them), each user's
held-out item is ranked among 999 items of t's catalogue drawn at random from those the user has not taken (in
training, and in validation for the test lists), ties counted against it, as mistrec.eval.ranking does. The lists
are this script's own draws (the benchmark's draws are made inside its ranking and not saved), so the count's
figure here is close to, not equal to, the benchmark's. Scores, per (user, candidate):
- count: the candidate's training positives in t (`most_popular`; the benchmark's popularity, the smoothed rate
  with sampled negatives counted as their expectation, orders the items as the count does);
- knn_within: the sum over the user's training positives h in t of cos(h, i), the item-item cosine over the users'
  training positives (both domains, binary);
- knn_cross: the same sum over the user's training positives in the other domain;
- stack: log(1 + count) + a * knn_within + b * knn_cross, (a, b) on a grid, chosen by the validation lists'
  NDCG@10 (what a model may do) and, as an optimistic ceiling for this family, by the test lists' own.
Each test figure is compared with the count's by a paired bootstrap over the users (mistrec.metrics.
paired_bootstrap_mean, 1,000 resamples). Nothing here reads mist; its committed figure on the same protocol is in
benchmarks/results/transfer.json.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json

from mistrec.metrics import paired_bootstrap_mean

GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
SAMPLED = 999


def _lists(pos: pl.DataFrame, split: str, target: int, catalogue: np.ndarray, max_queries: int, seed: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """(users (Q,), candidates (Q, 1 + SAMPLED)): each query's held-out item first, then its sampled negatives."""
    scen = pos.filter(pl.col("scenario") == target)
    held = scen.filter(pl.col("split") == split).group_by("user").agg(pl.col("item").first()).sort("user")
    rng = np.random.default_rng([seed, 1])
    if held.height > max_queries:
        held = held[np.sort(rng.choice(held.height, size=max_queries, replace=False))]
    users, items = held["user"].to_numpy(), held["item"].to_numpy()
    seen_splits = ["train"] if split == "valid" else ["train", "valid"]
    seen = scen.filter(pl.col("split").is_in(seen_splits) & pl.col("user").is_in(users))
    seen_by: dict[int, set[int]] = {}
    for u, i in zip(seen["user"].to_numpy(), seen["item"].to_numpy(), strict=True):
        seen_by.setdefault(int(u), set()).add(int(i))
    draw = np.random.default_rng([seed, 2])
    cands = np.empty((len(users), 1 + SAMPLED), dtype=np.int64)
    for q, (u, i) in enumerate(zip(users, items, strict=True)):
        banned = seen_by.get(int(u), set()) | {int(i)}
        picked: list[int] = []
        while len(picked) < SAMPLED:  # rejection: a user has taken a handful of a catalogue of many thousands
            for c in draw.choice(catalogue, size=2 * SAMPLED):
                if int(c) not in banned:
                    banned.add(int(c))
                    picked.append(int(c))
                    if len(picked) == SAMPLED:
                        break
        cands[q, 0], cands[q, 1:] = i, picked
    return users, cands


class Neighbours:
    """Item-to-item cosines over the training positives (both domains, binary), built once for every split and
    target: with `k` 0 every neighbour (sparse products); with `k` > 0 each item's `k` nearest, mist's `co_items`
    table (mistrec.models.mist_cooc.CoItems, fitted here; no learned weight), `shrink` the damping c / (c + shrink)
    its places are chosen and scored by (`co_shrink`). `stats`: what fills the table's places."""

    def __init__(self, train_pos: pl.DataFrame, n_users: int, n_items: int, k: int = 0, shrink: float = 0.0) -> None:
        self.k, self.n_items = k, n_items
        self.stats: dict[str, Any] = {}
        users, items = train_pos["user"].to_numpy(), train_pos["item"].to_numpy()
        self.x = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items))
        self.x.data[:] = 1.0  # binary (a pair taken twice counts once)
        if k == 0:
            deg = np.asarray(self.x.sum(axis=0)).ravel()
            inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1)), 0.0).astype(np.float32)
            self.xn = self.x @ sp.diags(inv)  # columns scaled by deg^-1/2: cos(h, i) = (xn^T xn)[h, i]
            self.xt = self.xn.T.tocsr()
            return
        import torch

        from mistrec.models.mist_cooc import CoItems

        table = CoItems(n_items, 2, k, shrink=shrink)
        table.fit([(users, items)])
        nbr, count = table.dense()
        self.nbr = nbr.numpy()
        with torch.no_grad():  # each place's cosine as mist scores it (no row's own user to leave out: evaluation)
            self.cos = table._cosines(torch.arange(n_items), None).numpy()
        filled = self.nbr > 0
        co_users = count.numpy()[filled]  # the users each kept pair rests on
        self.stats = {"table_places": {"filled": int(filled.sum()), "share_co_users_1": float(np.mean(co_users <= 1)),
                                       "share_co_users_le_2": float(np.mean(co_users <= 2)),
                                       "mean_cosine": float(self.cos[filled].mean())}}

    def scores(self, users: np.ndarray, cands: np.ndarray, domain_of: np.ndarray, target: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """knn_within and knn_cross (Q, 1 + SAMPLED): for each query's candidates, the sum of the cosines from the
        user's training positives in the target domain, and from those in the other domain."""
        out = [np.zeros(cands.shape, np.float32) for _ in range(2)]
        parts = (domain_of == target, (domain_of != target) & (domain_of > 0))
        if self.k == 0:
            for lo in range(0, len(users), 256):
                rows = slice(lo, min(lo + 256, len(users)))
                xu = self.x[users[rows]]  # the raw rows: score(u, i) = sum_h x[u, h] cos(h, i) = (x_u xn^T xn)[i]
                for kind, part in enumerate(parts):
                    scores = (((xu @ sp.diags(part.astype(np.float32))) @ self.xt) @ self.xn).toarray()
                    out[kind][rows] = np.take_along_axis(scores, cands[rows], axis=1)
            return out[0], out[1]
        row = np.zeros(self.n_items, np.float32)
        for q, u in enumerate(users):
            hist = self.x[int(u)].indices
            for kind, part in enumerate(parts):
                h = hist[part[hist]]
                row[:] = 0.0
                np.add.at(row, self.nbr[h].ravel(), self.cos[h].ravel())
                row[0] = 0.0  # the table's empty places point at item 0
                out[kind][q] = row[cands[q]]
        return out[0], out[1]


def _ndcg(scores: np.ndarray) -> np.ndarray:
    """Per query NDCG@10 of column 0 among the row's candidates, ties counted against it."""
    rank = 1 + (scores[:, 1:] >= scores[:, :1]).sum(axis=1)
    return np.where(rank <= 10, 1.0 / np.log2(rank + 1), 0.0)


def _stack(f: dict[str, np.ndarray], a: float, b: float) -> np.ndarray:
    return np.log1p(f["count"]) + a * f["knn_within"] + b * f["knn_cross"]


def _best(f: dict[str, np.ndarray]) -> tuple[tuple[float, float], dict[str, float]]:
    figures = {f"{a},{b}": float(_ndcg(_stack(f, a, b)).mean()) for a, b in itertools.product(GRID, GRID)}
    best = max(figures, key=lambda k: (figures[k], k == "0.0,0.0"))
    a, b = (float(v) for v in best.split(","))
    return (a, b), figures


def measure(prepared: Path, targets: list[str], max_queries: int, seed: int, n_boot: int, k: int = 0,
            shrink: float = 0.0) -> list[dict[str, Any]]:
    inter = pl.read_parquet(prepared / "interactions.parquet")
    names = pl.read_parquet(prepared / "vocab" / "scenario.parquet")
    pos = inter.filter(pl.col("label") > 0).select("user", "item", "scenario", "split")
    n_users, n_items = int(inter["user"].max()) + 1, int(inter["item"].max()) + 1
    domain_of = np.zeros(n_items, np.int64)
    domain_of[pos["item"].to_numpy()] = pos["scenario"].to_numpy()
    train = pos.filter(pl.col("split") == "train")
    neighbours = Neighbours(train, n_users, n_items, k, shrink)  # once: every target and split reads it
    return [_target(pos, train, neighbours, domain_of, int(names.filter(pl.col("value") == name)["index"][0]), name,
                    max_queries, seed, n_boot, shrink) for name in targets]


def _target(pos: pl.DataFrame, train: pl.DataFrame, neighbours: Neighbours, domain_of: np.ndarray, target: int,
            target_name: str, max_queries: int, seed: int, n_boot: int, shrink: float) -> dict[str, Any]:
    catalogue = np.unique(pos.filter(pl.col("scenario") == target)["item"].to_numpy())
    count = np.bincount(train.filter(pl.col("scenario") == target)["item"].to_numpy(), minlength=len(domain_of))
    feats: dict[str, dict[str, np.ndarray]] = {}
    users_of: dict[str, np.ndarray] = {}
    for split in ("valid", "test"):
        users, cands = _lists(pos, split, target, catalogue, max_queries, seed)
        within, cross = neighbours.scores(users, cands, domain_of, target)
        feats[split] = {"count": count[cands].astype(np.float64), "knn_within": within.astype(np.float64),
                        "knn_cross": cross.astype(np.float64)}
        users_of[split] = users
    chosen, valid_grid = _best(feats["valid"])
    in_sample, test_grid = _best(feats["test"])
    test = feats["test"]
    base = _ndcg(np.log1p(test["count"]))
    arms = {"count": (0.0, 0.0), "stack_valid": chosen, "stack_test_in_sample": in_sample,
            "within_only_valid": _best({**feats["valid"], "knn_cross": 0 * feats["valid"]["knn_cross"]})[0],
            "cross_only_valid": _best({**feats["valid"], "knn_within": 0 * feats["valid"]["knn_within"]})[0]}
    # how often the test lists' held-out items and the catalogue's items were taken in training
    taken = {"held_out": test["count"][:, 0], "catalogue": count[catalogue].astype(np.float64)}
    out: dict[str, Any] = {
        "target": target_name, "neighbours": neighbours.k or "all", "shrink": shrink,
        "queries": {s: len(u) for s, u in users_of.items()}, "catalogue": int(catalogue.size),
        "training_positives": {name: {"median": float(np.median(c)), "share_le_2": float(np.mean(c <= 2))}
                               for name, c in taken.items()},
        **neighbours.stats, "grid": list(GRID), "arms": {}}
    for name, (a, b) in arms.items():
        values = _ndcg(_stack(test, a, b))
        arm = {"a_within": a, "b_cross": b, "test_ndcg@10": float(values.mean()),
               "valid_ndcg@10": valid_grid[f"{a},{b}"]}
        if name != "count":
            arm["vs_count"] = paired_bootstrap_mean(values, base, users_of["test"], n_boot=n_boot)
        out["arms"][name] = arm
    out["valid_grid"], out["test_grid"] = valid_grid, test_grid
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prepared")
    ap.add_argument("--json", required=True)
    ap.add_argument("--target", required=True, action="append", help="target domain (repeatable)")
    ap.add_argument("--max-queries", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--shrink", type=float, default=0.0, help="with --k: the damping's lambda (co_shrink)")
    ap.add_argument("--k", type=int, default=0, help="each item's nearest neighbours kept, as mist's co_items table "
                    "(0: every neighbour)")
    args = ap.parse_args()
    doc = {"context": context(), "prepared": args.prepared, "sampled": SAMPLED,
           "targets": measure(Path(args.prepared), args.target, args.max_queries, args.seed, args.bootstrap, args.k,
                              args.shrink)}
    write_json(args.json, doc)
    for t in doc["targets"]:
        for name, arm in t["arms"].items():
            vs = arm.get("vs_count", {})
            print(t["target"], name, arm["a_within"], arm["b_cross"], round(arm["test_ndcg@10"], 4),
                  round(vs.get("diff", 0.0), 4), vs.get("p_value", ""))


if __name__ == "__main__":
    main()
