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
import math
import warnings
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mistrec.data.atomic import read_json
from mistrec.errors import ArtifactError
from mistrec.features import FeatureEncoder
from mistrec.models import REGISTRY, build_model, model_config
from mistrec.models.base import Model, ModelConfig
from mistrec.train.loop import TrainConfig

__all__ = ["RUN_SCHEMA", "finite_json", "json_text", "load_run", "save_run"]

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
    (out / "run.json").write_text(json_text(meta))


def json_text(doc: Any) -> str:
    """Strict JSON: a number with no value (NaN, such as a closed-form model's training loss, or +-inf) is null,
    never the `NaN` that Python writes and other JSON readers reject; NumPy scalars as numbers, the rest as text."""
    return json.dumps(finite_json(doc), indent=2, allow_nan=False, default=_other) + "\n"


def finite_json(x: Any) -> Any:
    """A document as strict JSON holds it: NaN and +-inf as None, NumPy scalars as numbers, tuples as lists."""
    if isinstance(x, dict):
        return {k: finite_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [finite_json(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _other(x: Any) -> Any:
    if is_dataclass(x) and not isinstance(x, type):
        return finite_json(asdict(x))
    return str(x)


def load_run(run_dir: str | Path, settings: dict[str, Any] | None = None
             ) -> tuple[Model, FeatureEncoder, dict[str, Any]]:
    """Model (in eval mode), encoder and metadata of a run directory. `settings` replace model settings of the
    run's configuration, for those that do not change the trained weights (an after-training choice's options, as
    mist's `cold_rate`; benchmarks/option_effect.py --settings): the weights load into the model they build."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ArtifactError(f"Run directory not found: {run_dir}. Train one with `mistrec train DATA --model NAME "
                            f"--out {run_dir}`.")
    inside = sorted(p.parent for pattern in ("*/run.json", "*/*/run.json") for p in run_dir.glob(pattern))
    if not (run_dir / "run.json").is_file() and inside:  # a benchmark's work folder, or a model's seeds
        shown = ", ".join(str(p) for p in inside[:3]) + (f" (and {len(inside) - 3} more)" if len(inside) > 3 else "")
        raise ArtifactError(f"{run_dir} is not a run directory but holds runs: {shown}. Give one of them.")
    for piece in ("run.json", "weights.pt"):
        if not (run_dir / piece).is_file():
            raise ArtifactError(f"{run_dir} is missing {piece}: the run is incomplete. Train it again.")
    meta = read_json(run_dir / "run.json", "Train the run again.")
    if meta.get("run_schema") != RUN_SCHEMA:
        raise ArtifactError(f"{run_dir} was written with run schema {meta.get('run_schema')} (mistrec "
                            f"{meta.get('mistrec_version', '?')}); this mistrec reads schema {RUN_SCHEMA}.")
    if meta.get("model") not in REGISTRY:
        raise ArtifactError(f"{run_dir} holds model {meta.get('model')!r}, which this mistrec does not know.")
    enc = FeatureEncoder.load(run_dir)
    saved_without = REGISTRY[meta["model"]].config.saved_without  # keys added since the run was saved, as they were
    cfg = model_config(meta["model"], {**saved_without, **{k: list(v) if isinstance(v, list) else v
                                                           for k, v in meta["model_config"].items()},
                                       **(settings or {})})
    model = build_model(meta["model"], enc.spec_, cfg)
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols: the file is refused or read anyway
            warnings.simplefilter("ignore")
            state = torch.load(run_dir / "weights.pt", map_location="cpu", weights_only=True)
    except Exception:  # the unpickler raises what the bytes lead it to: all mean "damaged"
        raise ArtifactError(f"{run_dir}/weights.pt is damaged: not a PyTorch weights file mistrec wrote (loaded "
                            "with weights_only=True, as any file nobody vouches for should be). Train the run "
                            "again.") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        # torch's message: a header line, then the missing / unexpected keys and the shape mismatches
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [type(exc).__name__]
        detail = " ".join(lines[1:] or lines).rstrip(".")
        if len(detail) > 400:
            detail = detail[:400] + " ..."
        raise ArtifactError(f"{run_dir}/weights.pt does not match the {meta['model']} model of run.json: {detail}. "
                            "A run written by an earlier mistrec whose model has since gained or changed parameters "
                            "does not load; train it again.") from None
    model.eval()
    return model, enc, meta
