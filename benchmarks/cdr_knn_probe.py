"""How much cross-domain signal the Amazon pairs' cold users carry, read without any learning: cross-domain item-KNN.

    python benchmarks/cdr_knn_probe.py --json benchmarks/results/cdr_knn_probe.json [--pairs sport_phone,...]

The split is benchmarks/transfer.py's cold-user one (prepared by its code, under its --work): in each domain 20% of
the users are cold (half validate, half test), their rows there held out; everything else trains. For a cold
user u and a target item j:

    knn(u, j) = sum over u's training positives i (all in the other domain) of cos(i, j)

with cos the cosine of two items' columns in the binary training user x item matrix (both domains; a cold user's
held-out rows are not in it, so nothing of the test reaches the score). Most target items share no user with u's
items, so knn ties at 0 for most of the catalogue; the probe ranks by knn + lam * pop(j) / max pop, pop the item's
training positives in the target domain, with lam chosen on the validation cold users (NDCG@10) among 0, 0.001,
0.01, 0.1, 1, 10. Metrics as `mistrec evaluate` ranks (the target domain's full catalogue: every item in it in any
split; relevant: the user's held-out positives there; each ranked as if the user's other relevant items were not
there, ties counted against it), NDCG@10 and HR@10 per test user; paired bootstrap over test users
(metrics.paired_bootstrap_mean, 1,000 resamples) against popularity alone (pop, ties broken by a fixed random draw).

Also counted: the test positives with a near twin among the user's other-domain items (cosine >= 0.5 over at least
2 common users), which is how one product listed under both domains' categories looks in these files, and the
cross-domain item pairs of cosine >= 0.99 over at least 2 users.

What it is for: mist's cold-user full-catalogue NDCG@10 (benchmarks/results/transfer.json) is within noise of
popularity's; this says whether the data holds transferable signal a model could have used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, context, write_json

from mistrec.metrics import paired_bootstrap_mean, ranking_from_ranks

LAMBDAS = (0.0, 0.001, 0.01, 0.1, 1.0, 10.0)
K = 10


def _per_user(users: np.ndarray, scores: np.ndarray, catalogue: np.ndarray,
              relevant: dict[int, set[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-user NDCG@K and HR@K as `mistrec evaluate` ranks (mistrec/eval/ranking.py): each relevant item's rank is
    1 + the items scored above it + the non-relevant items tied with it, and metrics.ranking_from_ranks."""
    column = {int(i): c for c, i in enumerate(catalogue)}
    ranks, query = [], []
    for r, u in enumerate(users):
        rel = np.array([column[i] for i in relevant[int(u)]])
        row, s_rel = scores[r], scores[r, rel][:, None]
        others = np.ones(catalogue.size, dtype=bool)
        others[rel] = False
        ranks.append(1 + (row > s_rel).sum(1) + ((row == s_rel) & others).sum(1))
        query.append(np.full(rel.size, r))
    at_k = ranking_from_ranks(np.concatenate(ranks), np.concatenate(query), len(users), K)
    return at_k["ndcg"], at_k["hr"]


def probe_pair(pair: str, work: Path, amazon: Path, seed: int = 0) -> dict[str, Any]:
    import polars as pl
    import transfer
    from scipy import sparse

    from mistrec.data.prepared import PreparedDataset

    args = argparse.Namespace(amazon=str(amazon), synthetic_users=4000, max_queries=3000, ml1m=None)
    job = next(j for j in transfer.jobs(args) if j.name == f"amazon-{pair}-cold-last")
    ds = PreparedDataset.load(transfer.prepare(job, work, args))
    train = ds.split("train").filter(pl.col("label") == 1)
    n_users = int(ds.vocab["user_id"]["index"].max()) + 1
    n_items = int(ds.vocab["item_id"]["index"].max()) + 1
    x = sparse.csr_matrix((np.ones(train.height), (train["user"].to_numpy(), train["item"].to_numpy())),
                          shape=(n_users, n_items))
    x.data[:] = 1.0  # a repeated interaction counts once
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
    xn = x.multiply(1 / np.maximum(norms, 1)).tocsc()  # columns scaled: xn[:, i] . xn[:, j] = cos(i, j)
    # item pairs of the two domains that share at least 2 training users, by cosine: twins (>= 0.5) and near copies
    co = (x.T @ x).tocoo()
    scen = np.zeros(n_items, dtype=np.int64)
    scen[train["item"].to_numpy()] = train["scenario"].to_numpy()
    cos = co.data / np.maximum(norms[co.row] * norms[co.col], 1)
    cross = (scen[co.row] != scen[co.col]) & (co.data >= 2)
    twin = sparse.csr_matrix(((cos >= 0.5)[cross].astype(np.int8), (co.row[cross], co.col[cross])),
                             shape=(n_items, n_items))
    twin.eliminate_zeros()
    twins_99 = int(((cos >= 0.99) & cross & (co.row < co.col)).sum())
    everything = pl.concat([ds.split(s) for s in ("train", "valid", "test")])
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"pair": pair}
    for target in job.targets:
        s = ds.scenarios.index(target) + 1
        catalogue = np.unique(everything.filter(pl.col("scenario") == s)["item"].to_numpy())
        pop = np.zeros(n_items)
        np.add.at(pop, train.filter(pl.col("scenario") == s)["item"].to_numpy(), 1.0)
        pop_c = pop[catalogue] / max(pop.max(), 1) + rng.random(catalogue.size) * 1e-9  # fixed random tie-break
        xn_cat = xn[:, catalogue].tocsr()
        got: dict[str, Any] = {}
        for split in ("valid", "test"):
            pos = ds.split(split).filter((pl.col("scenario") == s) & (pl.col("label") == 1))
            users = np.unique(pos["user"].to_numpy())
            relevant: dict[int, set[int]] = {int(u): set() for u in users}
            for u, i in zip(pos["user"].to_numpy(), pos["item"].to_numpy(), strict=True):
                relevant[int(u)].add(int(i))
            knn = np.vstack([np.asarray(((x[users[lo:lo + 256]] @ xn.T) @ xn_cat).todense())
                             for lo in range(0, len(users), 256)])
            got[split] = (users, knn, relevant)
        users, knn, relevant = got["valid"]
        valid = {lam: float(_per_user(users, knn + lam * pop_c, catalogue, relevant)[0].mean()) for lam in LAMBDAS}
        lam = max(LAMBDAS, key=lambda v: valid[v])
        users, knn, relevant = got["test"]
        nd_pop, hr_pop = _per_user(users, np.tile(pop_c, (len(users), 1)), catalogue, relevant)
        nd_knn, hr_knn = _per_user(users, knn + lam * pop_c, catalogue, relevant)
        paired = paired_bootstrap_mean(nd_knn, nd_pop, users, seed=seed)
        reached = (knn > 0).sum(axis=1)
        # how often a held-out item has a near twin among the user's other-domain items (the same product listed
        # in both categories looks like this)
        close = sum(int(twin[x[int(u)].indices][:, j].nnz > 0) for u in users for j in relevant[int(u)])
        out[target] = {
            "test_users": len(users), "catalogue": int(catalogue.size), "valid_ndcg@10_by_lambda": valid,
            "lambda": lam, "ndcg@10_popularity": float(nd_pop.mean()), "hr@10_popularity": float(hr_pop.mean()),
            "ndcg@10_knn": float(nd_knn.mean()), "hr@10_knn": float(hr_knn.mean()),
            "ndcg@10_knn_minus_popularity": paired["diff"], "ci95": [paired["ci_low"], paired["ci_high"]],
            "p_two_sided": paired["p_value"],
            "catalogue_items_reached_per_user_median": float(np.median(reached)),
            "test_positives": int(sum(len(r) for r in relevant.values())),
            "test_positives_with_a_near_twin": close,
        }
        print(f"{pair} -> {target}: knn+pop NDCG@10 {nd_knn.mean():.4f} vs popularity {nd_pop.mean():.4f} "
              f"(lambda {lam}, diff CI {out[target]['ci95'][0]:+.4f}..{out[target]['ci95'][1]:+.4f})", flush=True)
    out["cross_domain_item_pairs_2_users_cosine_0.99"] = twins_99
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--pairs", default="sport_phone,electronic_phone,sport_cloth,electronic_cloth")
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "transfer"))
    ap.add_argument("--amazon", default=str(SHARED_DATA / "amazon-cdr-disencdr"))
    args = ap.parse_args()
    doc: dict[str, Any] = {"context": context(), "pairs": []}
    for pair in args.pairs.split(","):
        doc["pairs"].append(probe_pair(pair, Path(args.work), Path(args.amazon)))
        write_json(args.json, doc)
    doc["context_after"] = context()
    write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
