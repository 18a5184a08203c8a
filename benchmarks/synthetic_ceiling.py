"""What could any model recover of the synthetic platform's planted transfer matrix? A ceiling, no training.

    python benchmarks/synthetic_ceiling.py --json benchmarks/results/synthetic_ceiling.json --seeds 3

Per seed (the synthetic platform, 2,000 users, the seeds of benchmarks/explain_faithfulness.py), each user's
last event is the test case and every earlier event their history. Two scorers that are told what no model is
told:
- true_logit: the generator's own score, c[u, t] . v[i] (the transferred interest and the item's vector);
- choice_oracle: the item vectors and T are known; each source scenario's interest b[u, s] is estimated by the
  mean vector of the items the user chose there (the only way the history reveals it), and
  c[u, t] ~ sum_s T[t, s] b_hat[u, s].

For choice_oracle the leave-source-out matrix (AUC of the target minus its AUC with one source's estimate
dropped) is computed as benchmarks/explain_faithfulness.py computes mist's, and its Spearman correlation with
the planted T over the off-diagonal entries is reported: how high that figure can be on this data when the
item vectors are known exactly. A learned model must first learn the vectors from clicks.

The drop a source can cause depends on how well the history reveals it, not only on T: with the default
activity mix (50 / 27 / 15 / 8% of events in home_feed / search / game_lobby / vr_showroom) vr_showroom's few
events say little, so a large T[target, vr_showroom] gives a small drop even to the oracle. `--balanced`
gives every scenario a quarter of each user's events (the same T, the same pools).

Writes {"seeds", "per_seed": [{"seed", "scenarios", "auc_true_logit", "auc_choice_oracle",
"leave_source_out", "spearman_leave_source_out"}], "spearman_leave_source_out" (mean), "context"}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json

BALANCED = {"scenario_share": (0.25, 0.25, 0.25, 0.25)}  # every scenario a quarter of a user's events


def one_seed(seed: int, users: int, balanced: bool = False) -> dict[str, Any]:
    import numpy as np
    import polars as pl
    from scipy.stats import spearmanr

    from mistrec import metrics
    from mistrec.data import SyntheticConfig, generate

    data = generate(SyntheticConfig(n_users=users, seed=seed, **BALANCED) if balanced else
                    SyntheticConfig(n_users=users, seed=seed))
    names = list(data.scenario_names)
    n_s = len(names)
    inter = data.interactions.sort("user_id", "timestamp")
    item_index = {name: i for i, name in enumerate(data.items["item_id"].to_list())}
    user = inter["user_id"].str.slice(1).cast(pl.Int64).to_numpy()
    item = np.array([item_index[i] for i in inter["item_id"].to_list()])
    scen = np.array([names.index(s) for s in inter["scenario"].to_list()])
    label = inter["label"].to_numpy()
    last = np.r_[user[1:] != user[:-1], True]  # each user's last event: the test case
    vectors = data.item_vectors
    b_hat = np.zeros((users, n_s, vectors.shape[1]))
    count = np.zeros((users, n_s))
    np.add.at(b_hat, (user[~last], scen[~last]), vectors[item[~last]])
    np.add.at(count, (user[~last], scen[~last]), 1)
    b_hat /= np.maximum(count, 1)[..., None]
    t = data.transfer
    true_c = np.einsum("ts,usd->utd", t, data.user_interest)
    u, i, s_, y = user[last], item[last], scen[last], label[last]
    auc_true, auc_oracle, drop = [], [], np.zeros((n_s, n_s))
    for target in range(n_s):
        m = s_ == target
        auc_true.append(metrics.auc(y[m], np.einsum("nd,nd->n", true_c[u[m], target], vectors[i[m]])))

        def oracle(weights: np.ndarray, m: np.ndarray = m) -> float:
            c = np.einsum("s,nsd->nd", weights, b_hat[u[m]])
            return metrics.auc(y[m], np.einsum("nd,nd->n", c, vectors[i[m]]))

        full = oracle(t[target])
        auc_oracle.append(full)
        for source in range(n_s):
            w = t[target].copy()
            w[source] = 0.0
            drop[target, source] = full - oracle(w)
    off = ~np.eye(n_s, dtype=bool)
    return {"seed": seed, "scenarios": names, "test_cases": int(last.sum()), "auc_true_logit": auc_true,
            "auc_choice_oracle": auc_oracle, "leave_source_out": drop.tolist(), "planted": t.tolist(),
            "spearman_leave_source_out": float(spearmanr(t[off], drop[off]).statistic)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--balanced", action="store_true", help="every scenario a quarter of each user's events")
    args = ap.parse_args()
    import numpy as np

    per_seed = [one_seed(seed, args.users, args.balanced) for seed in range(args.seeds)]
    doc = {"seeds": args.seeds, "users": args.users, "balanced": args.balanced,
           "spearman_leave_source_out": float(np.mean([r["spearman_leave_source_out"] for r in per_seed])),
           "per_seed": per_seed, "context": context()}
    write_json(args.json, doc)
    print(json.dumps({"spearman_leave_source_out": doc["spearman_leave_source_out"],
                      "auc_choice_oracle": [np.round(r["auc_choice_oracle"], 4).tolist() for r in per_seed],
                      "auc_true_logit": [np.round(r["auc_true_logit"], 4).tolist() for r in per_seed]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
