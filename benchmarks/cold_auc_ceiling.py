"""How far above the item's rate can the other domain's history lift cold users' AUC on the Amazon pairs? A
measurement of the data, no mist involved, on the very test rows `benchmarks/transfer.py`'s cold-user protocol
scores.

    python benchmarks/cold_auc_ceiling.py --json benchmarks/results/cold_auc_ceiling.json \
        benchmarks/work/s31-cold/amazon-sport_phone-cold-last ...

Each directory is a cold-user job of transfer.py (prepared data and runs, popularity's and mist's among them). Per
target domain t, on the test rows of its cold users (no training row in t: every test row of the job), each row's
features:
- rate: popularity's score (the item's smoothed positive rate in t's training rows, negatives counted as their
  expectation), as its run saved it;
- item-to-item scores from the user's training positives in the other domain s (all the user has): for the
  candidate item i, the sum over the user's items h of cos(h, i) (item-item cosine over users' training positives
  across the two domains), that sum over the number of the user's items, whether any is non-zero, and the sum of
  the raw co-counts;
- user-kNN from the other domain: the target items of the user's 50 most similar users (cosine over their items in
  s, users and items normalised), weighted by the similarity: its log and whether it is non-zero;
- the rate times log(1 + the user's items in s) (whether heavier users lean less on the rate).
A logistic regression on the standardised features is fitted (a) on the test rows themselves (in-sample: an
optimistic ceiling for this family of scorers, the weights told by the test labels), and (b) cross-fitted, two
folds of users (each half scored by the weights fitted on the other half: out of sample). Each AUC is pooled over
the rows, as the benchmark's; the paired bootstrap over users (mistrec.metrics.paired_bootstrap, the benchmark's own,
1,000 resamples) compares each with the rate alone, and mist (the job's runs: each resample's mean of the per-seed
differences) with the rate. Each family of features is also fitted alone with the
rate (cross-fitted): which signal carries what. `--split valid` measures the same on the validation split's cold
users (the other half of them; popularity and mist scored again from the saved runs), where nothing was looked at
before. On the test split the family is also fitted on the validation split's cold users and scored on the test
rows (what a model may do: the validation users are there to choose on), alone and with each seed's mist logit as a
feature (how much of the family's signal mist leaves unused).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json

from mistrec.metrics import auc, paired_bootstrap

K_USERS = 50  # user-kNN's neighbours
# the rate with each family of features alone (columns of `features`), cross-fitted
FAMILIES = {"rate+item_knn": [0, 1, 2, 3, 4], "rate+user_knn": [0, 5, 6], "rate+rate_x_activity": [0, 7]}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def features(rows: pl.DataFrame, train: pl.DataFrame, target: int, rate: np.ndarray) -> np.ndarray:
    """(rows, 8) features of the target's test rows (the module's list); the other domain's training positives are
    the user's history."""
    pos = train.filter(pl.col("label") > 0)
    n_users = int(max(pos["user"].max(), rows["user"].max())) + 1
    n_items = int(max(pos["item"].max(), rows["item"].max())) + 1

    def matrix(frame: pl.DataFrame) -> sp.csr_matrix:
        m = sp.csr_matrix((np.ones(frame.height), (frame["user"].to_numpy(), frame["item"].to_numpy())),
                          shape=(n_users, n_items))
        m.data[:] = 1.0  # a repeated (user, item) counts once
        return m

    a_t = matrix(pos.filter(pl.col("scenario") == target))
    a_s = matrix(pos.filter(pl.col("scenario") != target))
    co = (a_s.T @ a_t).tocsc()  # (items, items): source item x target item co-counts
    deg_s = np.asarray(a_s.sum(0)).ravel()
    deg_t = np.asarray(a_t.sum(0)).ravel()
    inv_s = sp.diags(1.0 / np.sqrt(np.maximum(deg_s, 1)))
    inv_t = sp.diags(1.0 / np.sqrt(np.maximum(deg_t, 1)))
    cos = (inv_s @ co @ inv_t).tocsc()
    user, item = rows["user"].to_numpy(), rows["item"].to_numpy()
    hist = a_s[user]  # (rows, items): each row's user's source items
    cos_sum = np.asarray(hist.multiply(cos[:, item].T.tocsr()).sum(1)).ravel()
    co_sum = np.asarray(hist.multiply(co[:, item].T.tocsr()).sum(1)).ravel()
    n_hist = np.asarray(hist.sum(1)).ravel()
    # user-kNN: each cold user's K most similar users by their source items (cosine), their target items summed
    # with the similarity as weight
    deg_u = np.asarray(a_s.sum(1)).ravel()
    a_s_norm = sp.diags(1.0 / np.sqrt(np.maximum(deg_u, 1))) @ a_s @ inv_s  # users and items both normalised
    cold = np.unique(user)
    sim = (a_s_norm[cold] @ a_s_norm.T).toarray()  # (cold users, users)
    sim[np.arange(len(cold)), cold] = 0.0
    if sim.shape[1] > K_USERS:
        cut = np.partition(sim, -K_USERS, axis=1)[:, -K_USERS][:, None]
        sim = np.where(sim >= cut, sim, 0.0)
    ucf = sp.csr_matrix(sim) @ a_t  # (cold users, items)
    where = np.searchsorted(cold, user)
    ucf_score = np.asarray(ucf[where, item]).ravel()
    rate_logit = _logit(rate)
    return np.column_stack([rate_logit, np.log1p(cos_sum), cos_sum / np.maximum(n_hist, 1), cos_sum > 0,
                            np.log1p(co_sum), np.log1p(ucf_score), ucf_score > 0,
                            rate_logit * np.log1p(n_hist)]).astype(np.float64)


def _fit_score(x_fit: np.ndarray, y_fit: np.ndarray, x: np.ndarray) -> np.ndarray:
    scale = StandardScaler().fit(x_fit)
    model = LogisticRegression(C=1.0, max_iter=2000).fit(scale.transform(x_fit), y_fit)
    return model.decision_function(scale.transform(x))


def _scores(run: Path, split: str, frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """A run's saved test predictions, or on the validation split its scores made again (the run loaded)."""
    if split == "test":
        return dict(np.load(run / "predictions_test.npz"))
    from mistrec.data import PreparedDataset
    from mistrec.train import load_run, predict

    model, enc, _ = load_run(run)
    ds = PreparedDataset.load(run.parents[2] / "prepared")
    rows = enc.rows(ds, split)
    assert np.array_equal(rows.item, frame["item"].to_numpy())
    return {"prob": predict(model, enc, rows)}


def _cold_rows(directory: Path, split: str) -> list[dict[str, Any]]:
    """Per target domain, its cold users' rows of the split: features, labels, users, mist's logits per seed."""
    prepared = directory / "prepared"
    names = json.loads((prepared / "manifest.json").read_text())["scenarios"]
    frame = pl.read_parquet(prepared / "interactions.parquet")
    train = frame.filter(pl.col("split") == "train")
    rows_all = frame.filter(pl.col("split") == split)
    runs = directory / "runs"
    pop = _scores(runs / "popularity" / "seed-2022", split, rows_all)
    mist = [_scores(p.parent, split, rows_all) for p in sorted((runs / "mist").glob("seed-*/run.json"))]
    out = []
    for code, name in enumerate(names, start=1):
        trained = train.filter(pl.col("scenario") == code)["user"].unique().to_numpy()
        # the target's rows of users with no training row there (on the test split: every row of the job)
        here = (rows_all["scenario"].to_numpy() == code) & ~np.isin(rows_all["user"].to_numpy(), trained)
        rows = rows_all.filter(pl.Series(here))
        out.append({"name": name, "x": features(rows, train, code, pop["prob"][here]),
                    "y": rows["label"].to_numpy() > 0, "users": rows["user"].to_numpy(),
                    "mist": [_logit(m["prob"][here]) for m in mist]})
    return out


def job(directory: Path, n_boot: int, split: str = "test") -> list[dict[str, Any]]:
    parts = _cold_rows(directory, split)
    fitting = _cold_rows(directory, "valid") if split == "test" else None
    out = []
    for k, part in enumerate(parts):
        x, y, users, mist_scores = part["x"], part["y"], part["users"], part["mist"]
        rate = x[:, 0]
        in_sample = _fit_score(x, y, x)
        crossed = np.zeros(len(y))
        fold = (np.unique(users, return_inverse=True)[1] * 2654435761 % 2**32) % 2 == 0  # users, hashed in half
        for half in (fold, ~fold):
            crossed[half] = _fit_score(x[~half], y[~half], x[half])
        by_features = {}
        for label, keep in FAMILIES.items():
            alone = np.zeros(len(y))
            for half in (fold, ~fold):
                alone[half] = _fit_score(x[~half][:, keep], y[~half], x[half][:, keep])
            by_features[label] = float(auc(y, alone))
        record: dict[str, Any] = {
            "direction": f"{directory.name.removeprefix('amazon-').removesuffix('-cold-last')} {part['name']}",
            "rows": len(y), "users": len(np.unique(users)),
            "rows_with_cosine_evidence": float((x[:, 3] > 0).mean()),
            "auc_rate": float(auc(y, rate)),
            "auc_in_sample": float(auc(y, in_sample)),
            "auc_cross_fitted": float(auc(y, crossed)),
            "auc_cross_fitted_by_features": by_features,
            "auc_mist_per_seed": [float(auc(y, s)) for s in mist_scores],
            "in_sample_vs_rate": paired_bootstrap(y, in_sample, rate, users, n_boot, seed=1),
            "cross_fitted_vs_rate": paired_bootstrap(y, crossed, rate, users, n_boot, seed=2),
            # over the seeds as the benchmark's paired tests: each resample's mean of the per-seed differences
            "mist_vs_rate": paired_bootstrap(y, np.stack(mist_scores), np.stack([rate] * len(mist_scores)), users,
                                             n_boot, seed=3),
        }
        record["auc_mist"] = float(np.mean(record["auc_mist_per_seed"]))
        if fitting is not None:  # the weights fitted on the validation split's cold users, the test rows scored
            v = fitting[k]
            assert v["name"] == part["name"]
            valid_fitted = _fit_score(v["x"], v["y"], x)
            with_mist = [_fit_score(np.column_stack([v["x"], vm]), v["y"], np.column_stack([x, tm]))
                         for vm, tm in zip(v["mist"], mist_scores, strict=True)]
            record["auc_valid_fitted"] = float(auc(y, valid_fitted))
            record["valid_fitted_vs_rate"] = paired_bootstrap(y, valid_fitted, rate, users, n_boot, seed=10)
            record["auc_valid_fitted_with_mist_per_seed"] = [float(auc(y, s)) for s in with_mist]
            record["valid_fitted_with_mist_vs_mist"] = paired_bootstrap(y, np.stack(with_mist), np.stack(mist_scores),
                                                                        users, n_boot, seed=11)
        out.append(record)
        print(f"{record['direction']}: rate {record['auc_rate']:.4f}, cross-fitted {record['auc_cross_fitted']:.4f} "
              f"(p {record['cross_fitted_vs_rate']['p_value']:.3f}), in-sample {record['auc_in_sample']:.4f}, "
              f"mist {record['auc_mist']:.4f}"
              + (f", valid-fitted {record['auc_valid_fitted']:.4f}, with mist "
                 f"{np.mean(record['auc_valid_fitted_with_mist_per_seed']):.4f}" if fitting is not None else ""),
              flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--split", choices=("test", "valid"), default="test",
                    help="valid: the validation split's cold users (half of the cold users), scored again")
    ap.add_argument("jobs", nargs="+", help="transfer.py cold-user job directories")
    args = ap.parse_args()
    results = [r for d in args.jobs for r in job(Path(d), args.bootstrap, args.split)]
    write_json(Path(args.json), {"context": context(), "split": args.split, "jobs": args.jobs, "results": results})


if __name__ == "__main__":
    main()
