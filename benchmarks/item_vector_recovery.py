"""How much of the transfer platform's planted item vectors a trained mist run's item vectors hold, per scenario's
pool: is mist's under-reading of the sparse scenarios' events (leave-source-out, docs/benchmarks.md) a matter of
what their items' vectors could learn from few events, or of how the history is read?

    python benchmarks/item_vector_recovery.py --json OUT --draw 0 \
        benchmarks/work/s40-own-syn/synthetic-transfer-4000u

For each saved mist run (DIR/runs/mist/seed-S) the vector mist gives each item as a candidate and as a history event
(`FeatureEmbedding.items`: the id embedding plus the side features' when `side_features` is on) is regressed onto the
generator's own item vector (the draw regenerated from its seed, checked against the prepared data), by ridge
regression with 5-fold cross-validation over the items of one scenario's pool that training has seen; the figure is
the cross-validated R^2 averaged over the planted vector's dimensions, with the items' training events (all users,
all labels) beside it. A control regresses onto the vectors of items shuffled within the pool (its R^2 must be near 0
or below). Evaluation only, no model is trained.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json


def cv_r2(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, alpha: float = 1.0) -> float:
    """Cross-validated R^2 (5 folds, ridge with intercept) of y (N, D) from x (N, E), averaged over y's columns."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold, cross_val_predict

    folds = KFold(5, shuffle=True, random_state=int(rng.integers(1 << 30)))
    pred = cross_val_predict(Ridge(alpha=alpha), x, y, cv=folds)
    resid = ((y - pred) ** 2).sum(0)
    total = ((y - y.mean(0)) ** 2).sum(0)
    return float(np.mean(1.0 - resid / total))


def one_run(run: Path, names: list[str], pools: list[np.ndarray], vectors: np.ndarray, dataset_item: np.ndarray,
            events: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    """The run's per-scenario recovery. `dataset_item[g]`: the dataset index of generator item g (-1: not in the
    data); `events[g]`: its training events."""
    import torch

    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(run)
    out: dict[str, Any] = {"run": str(run)}
    for s, name in enumerate(names):
        pool = pools[s]
        keep = pool[(dataset_item[pool] >= 0)]
        keep = keep[enc.item_map_[dataset_item[keep]] > 0]  # seen in training: a learned vector
        with torch.no_grad():
            b = enc.item_batch(dataset_item[keep])
            learned = model.embed.items(b, model.cfg.side_features).numpy()
        truth = vectors[keep]
        out[name] = {"items": len(keep), "pool": len(pool), "mean_training_events": float(events[keep].mean()),
                     "median_training_events": float(np.median(events[keep])),
                     "r2": cv_r2(learned, truth, rng),
                     "r2_shuffled": cv_r2(learned, truth[rng.permutation(len(keep))], rng)}
        print(f"{run.name} {name}: {len(keep)} of {len(pool)} items seen, median "
              f"{out[name]['median_training_events']:.0f} training events, R^2 {out[name]['r2']:.3f} (shuffled "
              f"{out[name]['r2_shuffled']:.3f})", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--draw", type=int, required=True, help="the platform's data seed (0: the benchmarks' draw)")
    ap.add_argument("--users", type=int, default=4000)
    ap.add_argument("--seeds", default="2022,2023,2024")
    ap.add_argument("dir", help="a benchmarks/transfer.py work directory of the transfer platform")
    args = ap.parse_args()

    import polars as pl
    import torch
    from lso_reference import pools_of

    from mistrec.data.synthetic import generate, transfer_platform

    torch.set_num_threads(1)
    root = Path(args.dir)
    cfg = transfer_platform(strength=1.0, n_users=args.users, seed=args.draw)
    data = generate(cfg)
    names, vectors, pools = list(data.scenario_names), data.item_vectors, pools_of(cfg)
    inter = pl.read_parquet(root / "prepared" / "interactions.parquet")
    if inter.height != data.interactions.height:
        raise SystemExit(f"{root}/prepared holds {inter.height} interactions, draw {args.draw} with {args.users} users "
                         f"{data.interactions.height}: give the --draw and --users it was made with.")
    vocab = pl.read_parquet(root / "prepared" / "vocab" / "item_id.parquet")  # index, item_id, train_count
    index_of = dict(zip(vocab["item_id"].to_list(), vocab["index"].to_list(), strict=True))
    count_of = dict(zip(vocab["item_id"].to_list(), vocab["train_count"].to_list(), strict=True))
    generated = data.items["item_id"].to_list()
    dataset_item = np.array([index_of.get(i, -1) for i in generated])
    events = np.array([count_of.get(i, 0) for i in generated])
    rng = np.random.default_rng(args.draw)
    runs = [one_run(root / "runs" / "mist" / f"seed-{s}", names, pools, vectors, dataset_item, events, rng)
            for s in map(int, args.seeds.split(","))]
    summary = {n: {k: float(np.mean([r[n][k] for r in runs])) for k in ("r2", "r2_shuffled", "mean_training_events")}
               for n in names}
    for n, v in summary.items():
        print(f"{n}: R^2 {v['r2']:.3f} (shuffled {v['r2_shuffled']:.3f}), {v['mean_training_events']:.1f} training "
              "events an item", flush=True)
    write_json(args.json, {"dir": str(root), "draw": args.draw, "dimensions": int(vectors.shape[1]), "runs": runs,
                           "mean": summary, "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
