"""Prepared data + model name -> a trained, evaluated, saved run: what `mistrec train` does."""

from __future__ import annotations

import json
import resource
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mistrec.data.prepared import PreparedDataset
from mistrec.features import FeatureEncoder
from mistrec.models import build_model, model_config
from mistrec.train.artifact import save_run
from mistrec.train.loop import TrainConfig, evaluate_rows, predict, seed_everything, train

__all__ = ["fit_run"]


def fit_run(
    data: str | Path, name: str, out: str | Path, *, model_values: dict[str, Any] | None = None,
    train_cfg: TrainConfig | None = None, quiet: bool = False,
) -> dict[str, Any]:
    """Fits the encoder on the training split, trains model `name`, evaluates valid and test, saves the run.

    Returns the metrics written to OUT/metrics.json.
    """
    train_cfg = train_cfg or TrainConfig()
    cfg = model_config(name, model_values)  # fails on a bad name or key before any data is read
    ds = PreparedDataset.load(data)
    enc = FeatureEncoder().fit(ds)
    seed_everything(train_cfg.seed)
    model = build_model(name, enc.spec_, cfg)
    rows = {split: enc.rows(ds, split) for split in ("train", "valid", "test")}
    t0 = time.perf_counter()
    result = train(model, enc, rows["train"], rows["valid"], train_cfg, quiet=quiet)
    names = enc.spec_.scenario_names
    evaluated = {split: evaluate_rows(predict(model, enc, r), r, names) for split, r in rows.items()
                 if split != "train" and len(r)}
    summary = {
        "model": name, "seed": train_cfg.seed, "dataset": {"name": ds.manifest["name"],
                                                           "fingerprint": ds.manifest["fingerprint"]},
        "protocol": ds.manifest["protocol"]["name"], "train": result.to_dict(),
        "wall_seconds": round(time.perf_counter() - t0, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": torch.get_num_threads(), **evaluated,
    }
    out = Path(out)
    save_run(out, name, model, cfg, train_cfg, enc, {"data": str(Path(data).resolve()), "result": result.to_dict()})
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=_json) + "\n")
    return summary


def _json(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if hasattr(x, "__dataclass_fields__"):
        return asdict(x)
    return str(x)
