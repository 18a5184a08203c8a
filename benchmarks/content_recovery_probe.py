"""How much of the planted item vectors the embedded descriptions carry, independent of any model.

    python benchmarks/content_recovery_probe.py --json benchmarks/results/content_recovery_probe.json

On the cold-item setting of benchmarks/cold_start.py (transfer platform with descriptions; run it first), per seed
and per content variant (prepared-VARIANT with a content matrix): a ridge regression (penalty by leave-one-out,
RidgeCV) from the content vectors to the planted latent vectors, fitted on the items with training rows, scored
by R^2 on the held-out items; then the planted transferred interest c[u, t] of each test row's user dotted with the
held-out item's recovered vector ranks the held-out items' test rows (AUC), next to the same with the planted
vector: what a model that knew every user perfectly could make of the content.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, auc_or_nan, context, write_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "cold-start"))
    args = ap.parse_args()

    from sklearn.linear_model import RidgeCV

    from mistrec.data import generate
    from mistrec.data.prepared import PreparedDataset
    from mistrec.data.synthetic import transfer_platform

    rows: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        base = Path(args.work) / f"cold-item-transfer-seed{seed}"
        data = generate(transfer_platform(n_users=args.users, seed=seed, description_words=10))
        t = data.transfer
        interest = np.einsum("ts,usd->utd", t, data.user_interest) / np.linalg.norm(t, axis=1)[None, :, None]
        planted = dict(zip(data.items["item_id"].to_list(), data.item_vectors, strict=True))
        for prepared in sorted(base.glob("prepared-*")):
            ds = PreparedDataset.load(prepared)
            content = ds.content("items")
            if content is None:
                continue
            vocab = ds.vocab["item_id"]
            idx = vocab["index"].to_numpy()
            y = np.stack([planted[n] for n in vocab["item_id"].to_list()])
            trained = vocab["train_count"].to_numpy() > 0
            ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(content[idx[trained]], y[trained])
            pred = ridge.predict(content[idx[~trained]])
            r2 = 1 - ((pred - y[~trained]) ** 2).sum() / ((y[~trained] - y[trained].mean(0)) ** 2).sum()
            true_v, hat_v = np.zeros((idx.max() + 1, y.shape[1])), np.zeros((idx.max() + 1, y.shape[1]))
            true_v[idx], hat_v[idx] = y, ridge.predict(content[idx])
            test = ds.split("test")
            users = dict(zip(ds.vocab["user_id"]["index"].to_list(), ds.vocab["user_id"]["value"].to_list(),
                             strict=True))
            u = np.array([int(users[i][1:]) for i in test["user"].to_list()])  # "u00042" -> 42
            order = [list(data.scenario_names).index(n) for n in ds.scenarios]
            s = np.asarray(order)[test["scenario"].to_numpy() - 1]
            item, label = test["item"].to_numpy(), test["label"].to_numpy()
            cold = ~np.isin(item, idx[trained])
            c = interest[u[cold], s[cold]]
            rows.append({"seed": seed, "variant": prepared.name.removeprefix("prepared-"),
                         "dims": int(content.shape[1]), "r2_held_out_items": round(float(r2), 4),
                         "cold_rows": int(cold.sum()),
                         "auc_planted_user_recovered_item": round(auc_or_nan(
                             label[cold], np.einsum("nd,nd->n", c, hat_v[item[cold]])), 4),
                         "auc_planted_user_planted_item": round(auc_or_nan(
                             label[cold], np.einsum("nd,nd->n", c, true_v[item[cold]])), 4)})
            print(rows[-1], flush=True)
    write_json(args.json, {"rows": rows, "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
