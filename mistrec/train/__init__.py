"""Training: one trainer for every neural model, and the run directory (artifact)."""

from mistrec.train.artifact import load_run, save_run
from mistrec.train.loop import (
    TrainConfig,
    TrainResult,
    conversion_metrics,
    evaluate_rows,
    predict,
    predict_tasks,
    train,
)
from mistrec.train.run import fit_run

__all__ = ["TrainConfig", "TrainResult", "conversion_metrics", "evaluate_rows", "fit_run", "load_run", "predict",
           "predict_tasks", "save_run", "train"]
