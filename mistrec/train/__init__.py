"""Training: one trainer for every neural model, and the run directory (artifact). A run trained and evaluated
in one call is `mistrec.eval.fit_run`."""

from mistrec.train.artifact import load_run, save_run
from mistrec.train.loop import TrainConfig, TrainResult, predict, predict_tasks, train

__all__ = ["TrainConfig", "TrainResult", "load_run", "predict", "predict_tasks", "save_run", "train"]
