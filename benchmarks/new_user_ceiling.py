"""How far can users new in a scenario be served from their other scenarios on the transfer benchmark's synthetic
platforms? Ceilings on the very test rows `benchmarks/transfer.py` scores, no mist involved.

    python benchmarks/new_user_ceiling.py --json benchmarks/results/new_user_ceiling.json \
        --transfer benchmarks/work/transfer-synth-s19/synthetic-transfer-4000u/prepared \
        --identity benchmarks/work/transfer-synth-s19/synthetic-identity-4000u/prepared

Each prepared directory is transfer.py's (the transfer platform at strength 1 and its identity control, 4,000
users, data seed 0, or --seed's draw as transfer.py's --synthetic-seed made it); the generator is run again with
the same settings to learn what no model is told: the item vectors v, the planted T and each user's interests
b[u, s]. Per target scenario t, on its test rows of users with
0 and with 1-2 training events in t (the activity groups of docs/evaluation.md), the AUC of:

- items_only: a logistic regression on the item alone (one indicator per item), fitted on t's training rows: what
  a model that knows nothing of the user can reach (isolated_dnn's case for a user new in t);
- history_oracle: the same plus, per source scenario s != t, the candidate's dot product with the mean vector of
  the items the user chose in s, and with that of the items they clicked there (their training events; the true
  item vectors): what the user's other scenarios' history reveals to a model that knows the item vectors exactly.
  It is fitted on t's training rows, whose source means hold all of the user's training events, later ones too:
  if anything optimistic;
- interest_oracle: the item indicators plus (sum_{s != t} T[t, s] b[u, s]) . v[i], the other scenarios' part of
  the planted logit with their interests known exactly. Not a bound on history_oracle: the platform's items are
  chosen by the transferred interest, so the items a user chose in s also reveal part of b[u, t] (through
  T[s, t]), which this scorer does not use;
- true_logit: the generator's own c[u, t] . v[i], the user's own interest in t included.

history_oracle is the reference for a learned model's gain over items_only for new users: what their other
scenarios' events say when the item vectors are known (a learned model must learn them from the clicks). It is one
estimator, not the Bayes limit; a better one could score a little higher.

Leave-source-out for the same oracle, as transfer.py measures it for mist: per target, the oracle refitted with every
scenario's history features (the target's own too) on the target's training rows, and on all of its test rows the
AUC lost when one source's features are zeroed (its events out of every history); the Spearman correlation of that
matrix with the planted T over the off-diagonal entries (mistrec.eval.evaluate.offdiagonal_spearman): how high
the issue's leave-source-out figure can be on this platform when the item vectors are known.
Writes {"platforms": {name: {"planted_offdiag": {t: share}, "targets": {t: {group: {"rows", "items_only",
"history_oracle", "interest_oracle", "true_logit"}}}, "leave_source_out": {"scenarios", "auc_drop", "planted",
"spearman"}}}, "context"}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json

GROUPS = {0: "0", 1: "1-2"}


def platform(prepared: Path, strength: float, users: int, seed: int = 0) -> dict[str, Any]:
    import numpy as np
    import polars as pl
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    from mistrec.data.synthetic import generate, planted_offdiag, transfer_platform
    from mistrec.eval.activity import ActivityCounts, group_index
    from mistrec.metrics import auc

    data = generate(transfer_platform(strength=strength, n_users=users, seed=seed))
    t_mat, vectors, interest = data.transfer, data.item_vectors, data.user_interest
    names = list(data.scenario_names)
    n_s, n_items, d = len(names), len(vectors), vectors.shape[1]

    def vocab(name: str, key: str) -> dict[int, str]:
        v = pl.read_parquet(prepared / "vocab" / f"{name}.parquet")
        return dict(zip(v["index"].to_list(), v[key].to_list(), strict=True))

    user_name, item_name, scen_name = vocab("user_id", "value"), vocab("item_id", "item_id"), vocab("scenario", "value")
    item_of = {n: i for i, n in enumerate(data.items["item_id"].to_list())}
    inter = pl.read_parquet(prepared / "interactions.parquet")
    if inter.height != data.interactions.height:  # another draw's (or size's) prepared data: the truth would not fit
        raise SystemExit(f"{prepared} holds {inter.height} interactions, the draw regenerated here (seed {seed}, "
                         f"{users} users) {data.interactions.height}: give the --seed and --users it was made with.")
    counts = ActivityCounts.from_interactions(inter, max(scen_name) + 1)

    def rows(split: str) -> tuple[np.ndarray, ...]:
        df = inter.filter(pl.col("split") == split)
        u = np.array([int(user_name[x][1:]) for x in df["user"].to_list()])  # "u00042" -> 42, the generator's
        i = np.array([item_of[item_name[x]] for x in df["item"].to_list()])
        s = np.array([names.index(scen_name[x]) for x in df["scenario"].to_list()])
        g = group_index(counts.of(df["user"].to_numpy(), df["scenario"].to_numpy()))
        return u, i, s, df["label"].to_numpy(), g

    tr_u, tr_i, tr_s, tr_y, _ = rows("train")
    te_u, te_i, te_s, te_y, te_g = rows("test")
    chosen_sum, chosen_n = np.zeros((users, n_s, d)), np.zeros((users, n_s))  # the users' training events per scenario
    np.add.at(chosen_sum, (tr_u, tr_s), vectors[tr_i])
    np.add.at(chosen_n, (tr_u, tr_s), 1)
    pos = tr_y > 0
    clicked_sum, clicked_n = np.zeros((users, n_s, d)), np.zeros((users, n_s))
    np.add.at(clicked_sum, (tr_u[pos], tr_s[pos]), vectors[tr_i[pos]])
    np.add.at(clicked_n, (tr_u[pos], tr_s[pos]), 1)
    chosen = chosen_sum / np.maximum(chosen_n, 1)[..., None]
    clicked = clicked_sum / np.maximum(clicked_n, 1)[..., None]
    transferred = np.einsum("ts,usd->utd", t_mat, interest) / np.linalg.norm(t_mat, axis=1)[None, :, None]

    def onehot(i: np.ndarray) -> sparse.csr_matrix:
        return sparse.csr_matrix((np.ones(len(i)), (np.arange(len(i)), i)), shape=(len(i), n_items))

    def with_items(cols: list[np.ndarray], i: np.ndarray) -> sparse.csr_matrix:
        return sparse.hstack([sparse.csr_matrix(np.stack(cols, 1)), onehot(i)]).tocsr()

    out: dict[str, Any] = {"planted_offdiag": dict(zip(names, map(float, planted_offdiag(t_mat)), strict=True)),
                           "targets": {}}
    for t in range(n_s):
        sources = [s for s in range(n_s) if s != t]
        off = t_mat[t].copy()
        off[t] = 0.0

        def history(u: np.ndarray, i: np.ndarray, sources: list[int] = sources) -> sparse.csr_matrix:
            return with_items([np.einsum("nd,nd->n", m[u, s], vectors[i]) for m in (chosen, clicked)
                               for s in sources], i)

        def others(u: np.ndarray, i: np.ndarray, off: np.ndarray = off) -> sparse.csr_matrix:
            return with_items([np.einsum("nd,nd->n", np.einsum("s,nsd->nd", off, interest[u]), vectors[i])], i)

        fit = tr_s == t
        if len(np.unique(tr_y[fit])) < 2:
            continue
        features = {"items_only": lambda u, i: onehot(i), "history_oracle": history, "interest_oracle": others}
        models = {k: LogisticRegression(C=1.0, max_iter=5000).fit(f(tr_u[fit], tr_i[fit]), tr_y[fit])
                  for k, f in features.items()}
        per: dict[str, Any] = {}
        for g, group in GROUPS.items():
            m = (te_s == t) & (te_g == g)
            if m.sum() < 100 or len(np.unique(te_y[m])) < 2:
                continue
            u, i, y = te_u[m], te_i[m], te_y[m]
            per[group] = {"rows": int(m.sum()), **{
                k: auc(y, models[k].decision_function(f(u, i))) for k, f in features.items()},
                "true_logit": auc(y, np.einsum("nd,nd->n", transferred[u, t], vectors[i]))}
            print(f"{prepared.parent.name} {names[t]} group {group}: " + ", ".join(
                f"{k} {v:.4f}" for k, v in per[group].items() if k != "rows"), flush=True)
        out["targets"][names[t]] = per
    out["leave_source_out"] = _leave_source_out(names, t_mat, chosen, clicked, vectors, onehot,
                                                (tr_u, tr_i, tr_s, tr_y), (te_u, te_i, te_s, te_y))
    print(f"{prepared.parent.name} history oracle's leave-source-out Spearman "
          f"{out['leave_source_out']['spearman']:.3f}", flush=True)
    return out


def _leave_source_out(names: list[str], t_mat: Any, chosen: Any, clicked: Any, vectors: Any, onehot: Any,
                      train: tuple[Any, ...], test: tuple[Any, ...]) -> dict[str, Any]:
    """The history oracle's leave-source-out matrix (target x source AUC drops) and its Spearman with T."""
    import numpy as np
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    from mistrec.eval.evaluate import offdiagonal_spearman
    from mistrec.metrics import auc

    n_s = len(names)

    def features(u: Any, i: Any, dropped: int | None = None) -> Any:
        cols = [np.zeros(len(u)) if s == dropped else np.einsum("nd,nd->n", m[u, s], vectors[i])
                for m in (chosen, clicked) for s in range(n_s)]
        return sparse.hstack([sparse.csr_matrix(np.stack(cols, 1)), onehot(i)]).tocsr()

    drop = np.zeros((n_s, n_s))
    for t in range(n_s):
        fit, m = train[2] == t, test[2] == t
        if len(np.unique(train[3][fit])) < 2 or len(np.unique(test[3][m])) < 2:
            continue
        model = LogisticRegression(C=1.0, max_iter=5000).fit(features(train[0][fit], train[1][fit]), train[3][fit])
        u, i, y = test[0][m], test[1][m], test[3][m]
        whole = auc(y, model.decision_function(features(u, i)))
        for s in range(n_s):
            drop[t, s] = whole - auc(y, model.decision_function(features(u, i, dropped=s)))
    return {"scenarios": names, "auc_drop": drop.tolist(), "planted": np.asarray(t_mat).tolist(),
            "spearman": offdiagonal_spearman(np.asarray(t_mat), drop)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--transfer", required=True, help="transfer.py's prepared synthetic-transfer directory")
    ap.add_argument("--identity", required=True, help="transfer.py's prepared synthetic-identity directory")
    ap.add_argument("--users", type=int, default=4000, help="as transfer.py's --synthetic-users")
    ap.add_argument("--seed", type=int, default=0, help="as transfer.py's --synthetic-seed (the draw)")
    args = ap.parse_args()
    doc = {"platforms": {"synthetic-transfer": platform(Path(args.transfer), 1.0, args.users, args.seed),
                         "synthetic-identity": platform(Path(args.identity), 0.0, args.users, args.seed)},
           "synthetic_seed": args.seed, "context": context()}
    write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
