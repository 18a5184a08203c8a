"""Feedback that transfers: a user the run has never seen clicks items of one planted interest in the home feed;
does the next vr_showroom answer lean to that interest? (docs/serving.md, "Feedback across scenarios")

    python benchmarks/feedback_transfer.py --json benchmarks/results/feedback_transfer.json [--seeds 3]
        [--set cold_rows=0.5 --work benchmarks/work/feedback_transfer_cold_rows]   # a probe of another setting

Per data seed: the transfer platform (mistrec.data.synthetic.transfer_platform, 1,500 users; vr_showroom's row
of the planted T puts 0.45 on the home feed), temporal split, mist with its defaults (at most 20 epochs, the epoch
chosen on validation). Then, for 20 planted interests (random unit directions d of the latent item space): a new
user logs clicks on the 10 home-feed items with the largest v . d (v the planted item vectors), and
`Recommender.recommend(..., logged=...)` (what the service does with logged events) returns vr_showroom's top 10.

Measured against the popular fallback (the same user with no event: the scenario's most popular items) and a
control (10 random home-feed clicks): the top 10's mean alignment v . d, and its share of "items of that
interest" (the quarter of vr_showroom's catalogue with the largest v . d; 0.25 by chance). The rule of the serving
issue: the share above the popular fallback's by a stated margin on every seed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, THREADS, context, write_json

DIRECTIONS, CLICKS, K = 20, 10, 10


def one_seed(seed: int, users: int, work: Path, model_values: dict[str, Any] | None = None) -> dict[str, Any]:
    import polars as pl
    import torch

    from mistrec.data import ProtocolConfig, generate, load_dataset_config, prepare
    from mistrec.data.synthetic import transfer_platform
    from mistrec.eval.explain import Logged, Recommender
    from mistrec.eval.fit import fit_run
    from mistrec.train import TrainConfig

    torch.set_num_threads(int(THREADS))
    root = work / f"seed-{seed}"
    data = generate(transfer_platform(n_users=users, seed=seed))
    if not (root / "run" / "run.json").is_file():
        yaml_path = data.write(root / "raw")
        prepare(load_dataset_config(yaml_path), root / "prepared", protocol=ProtocolConfig(name="temporal"),
                quiet=True, force=True)
        fit_run(root / "prepared", "mist", root / "run", model_values=model_values,
                train_cfg=TrainConfig(epochs=20, seed=seed), quiet=True, force=True)
    rec = Recommender.load(root / "run")
    vec = dict(zip(data.items["item_id"].to_list(), data.item_vectors, strict=True))
    inter = data.interactions
    home = sorted(set(inter.filter(pl.col("scenario") == "home_feed")["item_id"].to_list()))
    vr = sorted(set(inter.filter(pl.col("scenario") == "vr_showroom")["item_id"].to_list()))
    rng = np.random.default_rng(seed)
    popular = [i["item"] for i in rec.recommend("a-new-user", "vr_showroom", k=K)["items"]]
    rows = []
    for _ in range(DIRECTIONS):
        d = rng.normal(size=data.item_vectors.shape[1])
        d /= np.linalg.norm(d)
        align = {i: float(vec[i] @ d) for i in vr}
        top_quarter = set(sorted(vr, key=lambda i: -align[i])[:len(vr) // 4])

        def answer(clicked: list[str]) -> list[str]:
            logged = [Logged(item=i, scenario="home_feed", time=2.0e9 + j, label=1.0) for j, i in enumerate(clicked)]
            return [i["item"] for i in rec.recommend("a-new-user", "vr_showroom", k=K, logged=logged)["items"]]

        planted = answer(sorted(home, key=lambda i: -float(vec[i] @ d))[:CLICKS])
        control = answer(list(rng.choice(home, CLICKS, replace=False)))
        row = {f"{what}_{m}": v for what, items in (("planted", planted), ("control", control), ("popular", popular))
               for m, v in (("alignment", float(np.mean([align[i] for i in items]))),
                            ("share", float(np.mean([i in top_quarter for i in items]))))}
        row["planted_overlap_with_popular"] = float(len(set(planted) & set(popular)))  # of the K: did it move?
        rows.append(row)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    se = {k: float(np.std([r[k] for r in rows], ddof=1) / np.sqrt(len(rows))) for k in rows[0]}
    valid_auc = rec.meta.get("result", {}).get("best_score")
    return {"seed": seed, "users": users, "directions": DIRECTIONS, "mean": mean, "stderr": se,
            "share_gain_over_popular": mean["planted_share"] - mean["popular_share"],
            "share_gain_over_control": mean["planted_share"] - mean["control_share"], "valid_auc": valid_auc}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--users", type=int, default=1500)
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "feedback_transfer"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a mist setting other than its default (a probe: say so where its figures are quoted)")
    args = ap.parse_args()
    import yaml

    values = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    rows = []
    for seed in range(args.seeds):
        row = one_seed(seed, args.users, Path(args.work), values or None)
        print(row, flush=True)
        rows.append(row)
    write_json(args.json, {"rows": rows, "context": context(), "mist_settings": values or "defaults",
                           "note": "top-10 of vr_showroom for a new user after 10 logged home-feed clicks along a "
                                   "planted interest; share = items in the quarter of the catalogue most aligned "
                                   "with it (0.25 by chance); means over 20 interests per seed"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
