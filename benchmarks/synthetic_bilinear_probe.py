"""A probe, not a registry model: can a plain bilinear history model learn the synthetic platform's transfer?

    python benchmarks/synthetic_bilinear_probe.py --json benchmarks/results/synthetic_bilinear_probe.json \\
        --users 8000 --balanced

The probe scores a candidate i in target scenario t from the history alone (no user id):
    u = sum_k W[t, k] mean_{j in pool k}(ctx(item_j) + ctx_cat(category_j)),   k = (source scenario, liked?)
    logit = u . (emb(i) + cat(category_i)) + bias(i) + bias(t)
that is, the oracle of benchmarks/synthetic_ceiling.py with everything it is told (item vectors, T) learned
from the clicks instead. It is trained like mist (the same prepared data, temporal protocol, train split,
Adam, batch 1024) for --epochs epochs (lr 3e-3, embeddings initialised at N(0, 0.1)), and its leave-source-out
matrix is measured as benchmarks/explain_faithfulness.py measures mist's. It tells apart "the data cannot
teach the transfer" from "mist does not learn it": compare its test AUC and Spearman with mist's on the same
data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, THREADS, context, write_json
from synthetic_ceiling import BALANCED


def run(seed: int, users: int, balanced: bool, epochs: int, work: Path) -> dict[str, Any]:
    import numpy as np
    import torch
    from scipy.stats import spearmanr
    from torch import nn

    from mistrec import metrics
    from mistrec.data import PreparedDataset, SyntheticConfig, generate, load_dataset_config, prepare
    from mistrec.features import FeatureEncoder

    torch.manual_seed(seed)
    cfg = SyntheticConfig(n_users=users, seed=seed, **(BALANCED if balanced else {}))
    data = generate(cfg)
    root = work / f"users-{users}{'-balanced' if balanced else ''}-seed-{seed}"
    if not (root / "prepared" / "manifest.json").is_file():
        prepare(load_dataset_config(data.write(root / "raw")), root / "prepared", history_length=50, quiet=True)
    ds = PreparedDataset.load(root / "prepared")
    enc = FeatureEncoder().fit(ds)
    train, test = enc.rows(ds, "train"), enc.rows(ds, "test")
    n_s, d = enc.spec_.n_scenarios, 16
    category = torch.from_numpy(enc.item_cat_[:, enc.feature_names_["item_cat"].index("category")])
    n_cat = int(category.max()) + 1

    def embedding(n: int, dim: int = d) -> nn.Embedding:
        e = nn.Embedding(n, dim)
        nn.init.normal_(e.weight, std=0.1)
        return e

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.item, self.ctx = embedding(enc.spec_.n_items), embedding(enc.spec_.n_items)
            self.cat, self.ctx_cat = embedding(n_cat), embedding(n_cat)
            self.bias = nn.Embedding(enc.spec_.n_items, 1)
            nn.init.zeros_(self.bias.weight)
            self.scenario_bias = nn.Embedding(n_s, 1)
            self.w = nn.Parameter(torch.zeros(n_s, 2 * n_s))  # W[target, (source, liked)]

        def forward(self, b: Any) -> torch.Tensor:
            pool = b.hist_scenarios * 2 + (b.hist_labels > 0).long()
            onehot = nn.functional.one_hot(pool, 2 * n_s).float() * b.hist_mask.unsqueeze(-1)  # (B, L, K)
            tokens = self.ctx(b.hist_items) + self.ctx_cat(category[b.hist_items])
            means = torch.einsum("blk,bld->bkd", onehot, tokens) / onehot.sum(1).clamp_min(1).unsqueeze(-1)
            u = torch.einsum("bk,bkd->bd", self.w[b.scenario], means)
            q = self.item(b.item) + self.cat(category[b.item])
            return (u * q).sum(-1) + self.bias(b.item).squeeze(-1) + self.scenario_bias(b.scenario).squeeze(-1)

    model = Probe()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        model.train()
        order = rng.permutation(len(train))
        for lo in range(0, len(order), 1024):
            b = enc.batch(train, order[lo:lo + 1024])
            loss = nn.functional.binary_cross_entropy_with_logits(model(b), b.label)
            opt.zero_grad()
            loss.backward()
            opt.step()

    def probabilities(drop: int) -> np.ndarray:
        model.eval()
        out = []
        with torch.no_grad():
            for lo in range(0, len(test), 8192):
                b = enc.batch(test, np.arange(lo, min(lo + 8192, len(test))))
                if drop:
                    b = b.without_events(b.hist_mask & (b.hist_scenarios == drop))
                out.append(torch.sigmoid(model(b)).numpy())
        return np.concatenate(out)

    names = list(enc.spec_.scenario_names)
    full = probabilities(0)
    auc = {n: metrics.auc(test.label[test.scenario == t + 1], full[test.scenario == t + 1]) for t, n in
           enumerate(names)}
    drop = np.zeros((len(names), len(names)))
    for s in range(len(names)):
        p = probabilities(s + 1)
        for t in range(len(names)):
            m = test.scenario == t + 1
            drop[t, s] = metrics.auc(test.label[m], full[m]) - metrics.auc(test.label[m], p[m])
    order_ = [data.scenario_names.index(n) for n in names]
    planted = data.transfer[np.ix_(order_, order_)]
    off = ~np.eye(len(names), dtype=bool)
    return {"seed": seed, "scenarios": names, "test_auc": auc, "leave_source_out": drop.tolist(),
            "spearman_leave_source_out": float(spearmanr(planted[off], drop[off]).statistic)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--balanced", action="store_true")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "bilinear-probe"))
    args = ap.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(int(THREADS))
    per_seed = [run(seed, args.users, args.balanced, args.epochs, Path(args.work)) for seed in range(args.seeds)]
    doc = {"users": args.users, "balanced": args.balanced, "epochs": args.epochs, "seeds": args.seeds,
           "spearman_leave_source_out": float(np.mean([r["spearman_leave_source_out"] for r in per_seed])),
           "per_seed": per_seed, "context": context()}
    write_json(args.json, doc)
    print(json.dumps({"spearman_leave_source_out": doc["spearman_leave_source_out"],
                      "test_auc": [r["test_auc"] for r in per_seed]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
