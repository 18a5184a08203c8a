"""Optional experiment tracking for benchmark runs: MLflow (its default local store, or MLFLOW_TRACKING_URI) and
TensorBoard scalars. Off by default; `mistrec benchmark --mlflow / --tensorboard` turn them on. Both packages
are the `tracking` extra (pip install 'mistrec[tracking]').

A run is logged once per tracker: a marker file in the run directory keeps a resumed benchmark from logging
it twice.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from mistrec.errors import ConfigError
from mistrec.eval.results import RunResult

__all__ = ["flat_metrics", "log_run"]


def flat_metrics(run: RunResult) -> dict[str, float]:
    """Test metrics as flat names: 'test/overall/auc', 'test/by_scenario/<s>/ndcg_at_10' (finite numbers only;
    '@' is not allowed in MLflow names)."""
    out: dict[str, float] = {}
    m = run.metrics
    if m is None:
        return out
    blocks = [("overall", m.overall)] + [(f"by_scenario/{s}", v) for s, v in m.by_scenario.items()]
    for where, block in blocks:
        for key, value in block.to_json().items():
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                out[f"test/{_safe(where)}/{_safe(key)}"] = float(value)
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_\-. /]", "_", name.replace("@", "_at_"))


def log_run(run: RunResult, run_dir: Path, trackers: tuple[str, ...], work: Path, dataset: str) -> None:
    for tracker in trackers:
        marker = run_dir / f".logged-{tracker}"
        if marker.exists():
            continue
        if tracker == "mlflow":
            _mlflow(run, run_dir, dataset)
        elif tracker == "tensorboard":
            _tensorboard(run, work / "tensorboard" / f"{run.model}-seed{run.seed}")
        else:
            raise ConfigError(f"Unknown tracker {tracker!r}: mlflow or tensorboard.")
        marker.write_text("logged\n")


def _mlflow(run: RunResult, run_dir: Path, dataset: str) -> None:
    try:
        import mlflow
    except ImportError:
        raise ConfigError("--mlflow needs MLflow: pip install 'mistrec[tracking]' (or pip install mlflow).") from None
    meta = json.loads((run_dir / "run.json").read_text())
    params = {"model": run.model, "seed": run.seed, "dataset": dataset,
              **{f"model.{k}": v for k, v in meta["model_config"].items()},
              **{f"train.{k}": v for k, v in meta["train_config"].items()}}
    mlflow.set_experiment(f"mistrec-{dataset}")
    with mlflow.start_run(run_name=f"{run.model}-seed{run.seed}"):
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics(flat_metrics(run))
        for point in run.curve or []:
            for key in ("train_loss", "valid_mean_scenario_auc", "valid_auc"):
                v = point.get(key)
                if isinstance(v, float) and math.isfinite(v):
                    mlflow.log_metric(f"curve/{key}", v, step=int(point["epoch"]))
        for name in ("run.json", "metrics.json", "eval.json", "encoder.json"):
            if (run_dir / name).is_file():
                mlflow.log_artifact(str(run_dir / name))


def _tensorboard(run: RunResult, log_dir: Path) -> None:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("--tensorboard needs TensorBoard: pip install 'mistrec[tracking]' (or pip install "
                          "tensorboard).") from None
    writer = SummaryWriter(log_dir=str(log_dir))
    try:
        for point in run.curve or []:
            for key in ("train_loss", "valid_mean_scenario_auc", "valid_auc"):
                v = point.get(key)
                if isinstance(v, float) and math.isfinite(v):
                    writer.add_scalar(f"curve/{key}", v, int(point["epoch"]))
        step = int(run.best_epoch or 0)
        for name, value in flat_metrics(run).items():
            writer.add_scalar(name, value, step)
    finally:
        writer.close()
