"""Optional tracking: a benchmark run logged to MLflow's local store and to TensorBoard, once each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mistrec.eval.results import RunResult
from mistrec.eval.tracking import flat_metrics, log_run

RUN = RunResult.from_json({"model": "mist", "seed": 3, "best_epoch": 2,
       "curve": [{"epoch": 1, "train_loss": 0.6, "valid_mean_scenario_auc": 0.7},
                 {"epoch": 2, "train_loss": 0.5, "valid_mean_scenario_auc": 0.72}],
       "metrics": {"overall": {"auc": 0.8, "ndcg@10": 0.1, "n": 10, "ranking_candidates": "full catalogue"},
                   "by_scenario": {"home feed": {"auc": 0.75, "logloss": float("nan")}}}})


def _run_dir(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"model_config": {"embedding_dim": 8}, "train_config": {"lr": 0.001}}))
    return run_dir


def test_flat_metric_names_are_mlflow_safe() -> None:
    flat = flat_metrics(RUN)
    assert flat["test/overall/ndcg_at_10"] == 0.1 and flat["test/by_scenario/home feed/auc"] == 0.75
    assert "test/by_scenario/home feed/logloss" not in flat  # NaN is not logged


def test_mlflow_logs_params_metrics_and_curve_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)  # MLflow's default local store: ./mlflow.db and ./mlruns for artifacts
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = _run_dir(tmp_path)
    log_run(RUN, run_dir, ("mlflow",), tmp_path, "tiny")
    log_run(RUN, run_dir, ("mlflow",), tmp_path, "tiny")  # a resumed benchmark: not logged twice
    runs = mlflow.search_runs(experiment_names=["mistrec-tiny"], output_format="list")
    assert len(runs) == 1
    data = runs[0].data
    assert data.metrics["test/overall/auc"] == 0.8 and data.params["model.embedding_dim"] == "8"
    history = mlflow.MlflowClient().get_metric_history(runs[0].info.run_id, "curve/valid_mean_scenario_auc")
    assert [(h.step, h.value) for h in history] == [(1, 0.7), (2, 0.72)]


def test_tensorboard_scalars(tmp_path: Path) -> None:
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    log_run(RUN, _run_dir(tmp_path), ("tensorboard",), tmp_path, "tiny")
    acc = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard" / "mist-seed3")).Reload()
    assert [e.value for e in acc.Scalars("curve/train_loss")] == pytest.approx([0.6, 0.5])
    assert acc.Scalars("test/overall/auc")[0].value == pytest.approx(0.8)
