"""Training: one trainer for every neural model, and the run directory (artifact)."""

from mistrec.train.artifact import load_run, save_run
from mistrec.train.loop import TrainConfig, TrainResult, evaluate_rows, predict, train
from mistrec.train.run import fit_run

__all__ = ["TrainConfig", "TrainResult", "evaluate_rows", "fit_run", "load_run", "predict", "save_run", "train"]
