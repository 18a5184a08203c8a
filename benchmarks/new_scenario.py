"""A scenario with no training data, read through its description: the leave-scenario-out protocol.

    python benchmarks/new_scenario.py --json benchmarks/results/new_scenario_synthetic.json --seeds 3
    python benchmarks/new_scenario.py --json benchmarks/results/new_scenario_synthetic_clone.json --seeds 3 --clone \
        --variants "mist shared,mist text,star"
    python benchmarks/new_scenario.py --json benchmarks/results/new_scenario_ml100k_genre.json --seeds 3 \
        --recipe ml-100k-genre --target family

Synthetic (default): the platform gets a fifth scenario, vr_arcade ("multiplayer games played in virtual reality"),
launched on the game lobby's catalogue (`SyntheticConfig.item_pool`) and planted to behave like it: its row of the
transfer matrix is the game lobby's. Every vr_arcade row is in test, so no model has seen the scenario; its users
and items are known from the other scenarios. The planted link between the description and the behaviour is what
a real platform's descriptions may or may not carry: this checks that the mechanism transfers when they do.
With `--clone` the arcade's items are also chosen by the users' game-lobby interest: the game lobby's clone in
distribution (only its name, description and click bias differ), the case most favourable to the mix.

`--recipe ml-100k-genre --target family` (or ml-1m-genre): MovieLens genre shelves, each described by the genres
it holds (the recipe's genre_shelves.csv), one shelf left out. There a shelf's films are all new too (a film sits
on one shelf): the model has their genres, not their ids.

Runs, on the same split with seeds 0..N-1:
- mist with `new_scenarios` shared (the unknown index's shared path), uniform (equal weights over the trained
  scenarios), text (the default: softmax of description similarity / 0.1) and text at temperature 0.01 (nearly
  the single most similar scenario);
- STAR and DIN (their shared path) and the isolated per-scenario DNN (the mean of the scenario networks).

Reported: the target's test AUC and LogLoss (mean +- std over seeds), paired bootstraps over users on the same
rows, and how the description was resolved.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, THREADS, context, write_json

TARGET = "vr_arcade"
SCENARIOS = ("home_feed", "search", "game_lobby", "vr_showroom", "vr_arcade")
# T[target, source]: vr_arcade's row is the game lobby's (it never is a source: no training rows)
TRANSFER = [[0.70, 0.20, 0.10, 0.00, 0.00],
            [0.30, 0.60, 0.00, 0.10, 0.00],
            [0.10, 0.00, 0.50, 0.40, 0.00],
            [0.45, 0.05, 0.30, 0.20, 0.00],
            [0.10, 0.00, 0.50, 0.40, 0.00]]
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "mist shared": ("mist", {"new_scenarios": "shared"}),
    "mist uniform": ("mist", {"new_scenarios": "uniform"}),
    "mist text": ("mist", {"new_scenarios": "text"}),
    "mist text t=0.01": ("mist", {"new_scenarios": "text", "text_temperature": 0.01}),
    "star": ("star", {}),
    "din": ("din", {}),
    "isolated_dnn": ("isolated_dnn", {}),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--users", type=int, default=8000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    ap.add_argument("--recipe", default="synthetic", help="synthetic, or a genre recipe: ml-100k-genre, ml-1m-genre")
    ap.add_argument("--target", default=TARGET, help="the scenario left out of training")
    ap.add_argument("--clone", action="store_true", help="synthetic: vr_arcade's items are also chosen by the "
                    "game-lobby interest, making it the game lobby's clone in distribution")
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "new-scenario"))
    args = ap.parse_args()

    import torch

    from mistrec import metrics
    from mistrec.data import (
        PreparedDataset,
        ProtocolConfig,
        SyntheticConfig,
        generate,
        load_dataset_config,
        prepare,
    )
    from mistrec.eval.fit import fit_run
    from mistrec.train import TrainConfig, load_run, predict

    torch.set_num_threads(int(THREADS))
    synthetic = args.recipe == "synthetic"
    work = Path(args.work) / (f"synthetic-users{args.users}{'-clone' if args.clone else ''}" if synthetic
                              else f"{args.recipe}-{args.target}")
    prepared = work / "prepared"
    if not (prepared / "manifest.json").is_file() and not synthetic:
        from mistrec.data.recipes import write_recipe

        raw = write_recipe(args.recipe, SHARED_DATA / args.recipe.split("-genre")[0], work / "dataset.yaml")
        prepare(load_dataset_config(raw), prepared, history_length=50, quiet=True,
                protocol=ProtocolConfig(name="leave-scenario-out", target=args.target))
    if not (prepared / "manifest.json").is_file():
        cfg = SyntheticConfig(n_users=args.users, seed=0, scenarios=SCENARIOS, transfer=np.array(TRANSFER),
                              scenario_share=(0.45, 0.25, 0.15, 0.07, 0.08), pool_sizes=(400, 300, 150, 80, 0),
                              item_pool=(0, 1, 2, 3, 2), choice_interest=(0, 1, 2, 3, 2) if args.clone else None,
                              label_noise=(0.3, 0.5, 0.8, 1.0, 0.8),
                              label_bias=(-3.0, -2.8, -2.6, -1.8, -2.6))
        raw = generate(cfg).write(work / "raw")
        prepare(load_dataset_config(raw), prepared, history_length=50, quiet=True,
                protocol=ProtocolConfig(name="leave-scenario-out", target=TARGET))
    ds = PreparedDataset.load(prepared)
    target = ds.scenarios.index(args.target) + 1
    test = ds.split("test")
    rows = test["scenario"].to_numpy() == target
    y, users = test["label"].to_numpy()[rows], test["user"].to_numpy()[rows]

    names = args.variants.split(",")
    scores: dict[str, list[np.ndarray]] = {}
    results: dict[str, Any] = {}
    for name in names:
        model, values = VARIANTS[name]
        per_seed, aucs, losses = [], [], []
        for seed in range(args.seeds):
            run = work / "runs" / name.replace(" ", "_").replace("=", "") / f"seed{seed}"
            print(f"{name} seed {seed}", flush=True)
            summary = fit_run(prepared, model, run, model_values=values, quiet=True,
                              train_cfg=TrainConfig(epochs=args.epochs, seed=seed))
            m, enc, _ = load_run(run)
            p = predict(m, enc, enc.rows(ds, "test"))[rows]
            per_seed.append(p)
            aucs.append(metrics.auc(y, p))
            losses.append(metrics.logloss(y, p))
            by = summary["test"]["by_scenario"]
            assert abs(by[args.target]["auc"] - aucs[-1]) < 1e-9, "the reloaded run scores as it was evaluated"
            results[name] = {"model": model, "config": values,
                             "resolution": enc.scenario_resolution_.get(args.target),
                             "other_scenarios_auc": {s: round(by[s]["auc"], 4) for s in ds.scenarios
                                                     if s != args.target and s in by}}
        scores[name] = per_seed
        results[name].update({"auc": _stat(aucs), "logloss": _stat(losses), "auc_per_seed": aucs,
                              "logloss_per_seed": losses})
    tests = {}
    for a, b in (("mist text", "mist shared"), ("mist text", "mist uniform"), ("mist text t=0.01", "mist shared"),
                 ("mist text", "star")):
        if a in scores and b in scores:
            tests[f"{a} vs {b}"] = metrics.paired_bootstrap(y, np.stack(scores[a]), np.stack(scores[b]), users)
    doc = {"recipe": args.recipe, "clone": args.clone, "target": args.target,
           "users": args.users if synthetic else None, "seeds": args.seeds, "epochs": args.epochs,
           "transfer": TRANSFER if synthetic else None,
           "target_test_rows": int(rows.sum()), "target_positive_rate": float(y.mean()),
           "variants": results, "paired_tests": tests, "context": context()}
    write_json(args.json, doc)
    for name, r in results.items():
        print(f"{name:<18} {args.target} AUC {r['auc']['mean']:.4f} +- {r['auc']['std']:.4f}  "
              f"LogLoss {r['logloss']['mean']:.4f}")
    for k, t in tests.items():
        print(f"{k}: {t['diff']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}] p {t['p_value']:.3f}")
    return 0


def _stat(values: list[float]) -> dict[str, float]:
    """Mean and sample std (ddof 1) over seeds, as `mistrec benchmark`'s summary gives them."""
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}


if __name__ == "__main__":
    raise SystemExit(main())
