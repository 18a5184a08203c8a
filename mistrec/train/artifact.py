"""The run directory: config, weights, fitted encoder and versions saved and loaded as one bundle.

    run.json        model name and config, training config, dataset fingerprint, versions, training result
    weights.pt      the model's state_dict
    encoder.npz     the fitted FeatureEncoder's arrays (id maps, side-feature tables)
    encoder.json    its spec and settings
    metrics.json    validation and test metrics at the end of training

A missing or mismatched piece is an ArtifactError, never a silent fallback.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from mistrec.errors import ArtifactError
from mistrec.features import FeatureEncoder
from mistrec.models import REGISTRY, build_model, model_config
from mistrec.models.base import Model, ModelConfig
from mistrec.train.loop import TrainConfig

__all__ = ["RUN_SCHEMA", "load_run", "save_run"]

RUN_SCHEMA = 1


def save_run(
    out: Path, name: str, model: Model, cfg: ModelConfig, train_cfg: TrainConfig, enc: FeatureEncoder,
    extra: dict[str, Any],
) -> None:
    from mistrec import __version__

    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "weights.pt")
    enc.save(out)
    meta = {"run_schema": RUN_SCHEMA, "mistrec_version": __version__, "torch_version": torch.__version__,
            "model": name, "model_config": asdict(cfg), "train_config": asdict(train_cfg),
            "dataset_fingerprint": enc.dataset_fingerprint_, **extra}
    (out / "run.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")


def load_run(run_dir: str | Path) -> tuple[Model, FeatureEncoder, dict[str, Any]]:
    """Model (in eval mode), encoder and metadata of a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ArtifactError(f"Run directory not found: {run_dir}. Train one with `mistrec train DATA --model NAME "
                            f"--out {run_dir}`.")
    for piece in ("run.json", "weights.pt"):
        if not (run_dir / piece).is_file():
            raise ArtifactError(f"{run_dir} is missing {piece}: the run is incomplete. Train it again.")
    meta = json.loads((run_dir / "run.json").read_text())
    if meta.get("run_schema") != RUN_SCHEMA:
        raise ArtifactError(f"{run_dir} was written with run schema {meta.get('run_schema')} (mistrec "
                            f"{meta.get('mistrec_version', '?')}); this mistrec reads schema {RUN_SCHEMA}.")
    if meta.get("model") not in REGISTRY:
        raise ArtifactError(f"{run_dir} holds model {meta.get('model')!r}, which this mistrec does not know.")
    enc = FeatureEncoder.load(run_dir)
    cfg = model_config(meta["model"], {k: list(v) if isinstance(v, list) else v
                                       for k, v in meta["model_config"].items()})
    model = build_model(meta["model"], enc.spec_, cfg)
    try:
        state = torch.load(run_dir / "weights.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ArtifactError(f"{run_dir}/weights.pt does not match the {meta['model']} model of run.json: "
                            f"{first}") from None
    model.eval()
    return model, enc, meta
