"""Quality on MovieLens-1M: per-scenario test AUC and LogLoss of mist and the baselines, same features, same
split, same trainer, several seeds.

    python benchmarks/quality_ml1m.py --json benchmarks/results/quality_ml1m_age.json --seeds 3 --recipe age

--recipe age: scenario = age group, protocol random 8:1:1 (seed 2022, the published benchmarks' setting).
--recipe genre: scenario = genre shelf, protocol temporal (the same users act in several scenarios).
Histories hold only training-split events before the sample's time (the prepared data guarantees it).
Runs are kept under --work; a run whose metrics.json exists is not trained again (the script resumes).
The JSON follows DESIGN.md section 5: runs[].model, runs[].seed, runs[].metrics.by_scenario[S].auc.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, THREADS, context

DEFAULT_MODELS = ("mist,star,mmoe,ple,shared_bottom,din,scenario_dnn,isolated_dnn,sarnet,pepnet,popularity,"
                  "itemknn,svd,nmf,bpr_mf,two_tower,lightgcn,gat")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--recipe", choices=("age", "genre"), default="age")
    ap.add_argument("--models", default=DEFAULT_MODELS)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work"), help="prepared data and runs (resumable)")
    ap.add_argument("--data", default=str(SHARED_DATA / "ml-1m"))
    args = ap.parse_args()

    import torch

    from mistrec import __version__
    from mistrec.data import PreparedDataset, ProtocolConfig, load_dataset_config, prepare
    from mistrec.data.recipes import write_recipe
    from mistrec.train import TrainConfig, fit_run

    torch.set_num_threads(int(THREADS))
    work = Path(args.work) / f"ml-1m-{args.recipe}"
    prepared = work / "prepared"
    if not (prepared / "manifest.json").is_file():
        cfg = write_recipe(f"ml-1m-{args.recipe}", Path(args.data), work / "dataset.yaml")
        protocol = ProtocolConfig(name="random", seed=2022) if args.recipe == "age" else ProtocolConfig(
            name="temporal")
        prepare(load_dataset_config(cfg), prepared, protocol=protocol, history_length=50)
    manifest = PreparedDataset.load(prepared).manifest
    runs: list[dict[str, Any]] = []
    for seed in range(2022, 2022 + args.seeds):
        for name in args.models.split(","):
            out = work / "runs" / f"{name}-{seed}"
            if not (out / "metrics.json").is_file():
                print(f"training {name} seed {seed}", flush=True)
                fit_run(prepared, name, out, train_cfg=TrainConfig(seed=seed, epochs=args.epochs), quiet=True)
            m = json.loads((out / "metrics.json").read_text())
            runs.append({"model": name, "seed": seed, "train_seconds": m["train"]["train_seconds"],
                         "train_samples_per_second": m["train"]["train_samples_per_second"],
                         "peak_rss_mb": m["peak_rss_mb"], "best_epoch": m["train"]["best_epoch"],
                         "metrics": m["test"]})
    result = {"mistrec_version": __version__,
              "dataset": {"name": manifest["name"], "fingerprint": manifest["fingerprint"]},
              "protocol": manifest["protocol"]["name"], "runs": runs, "summary": _summary(runs),
              "context": context()}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    for model, row in result["summary"].items():
        print(model.ljust(14), " ".join(f"{s} {v['auc_mean']:.4f}" for s, v in row.items()))
    return 0


def _summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and std of AUC per model and scenario (and overall) over seeds."""
    import numpy as np

    out: dict[str, dict[str, dict[str, float]]] = {}
    for model in dict.fromkeys(r["model"] for r in runs):
        mine = [r["metrics"] for r in runs if r["model"] == model]
        cells = {"overall": [m["overall"]["auc"] for m in mine]}
        for s in mine[0]["by_scenario"]:
            cells[s] = [m["by_scenario"][s]["auc"] for m in mine]
        out[model] = {k: {"auc_mean": float(np.mean(v)), "auc_std": float(np.std(v)), "seeds": len(v)}
                      for k, v in cells.items()}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
