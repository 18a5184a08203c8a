"""Typed results write exactly the JSON they read: today's files, older ones, NaN as null, unknown keys kept."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mistrec.eval.results import BenchmarkResult, Evaluation, Metrics, RunResult, ScenarioMetrics, nan_to_none

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def _documents() -> list[Path]:
    """The recorded evaluate and benchmark documents (other results files have their own schemas)."""
    return sorted(p for p in RESULTS.glob("*.json") if {"mistrec_version", "runs"} <= set(json.loads(p.read_text())))


@pytest.mark.parametrize("path", _documents(), ids=lambda p: p.name)
def test_every_recorded_benchmark_reads_and_writes_back_unchanged(path: Path) -> None:
    doc = json.loads(path.read_text())
    typed = BenchmarkResult.from_json(doc) if "summary" in doc else Evaluation.from_json(doc)
    back = nan_to_none(typed.to_json())
    assert back == doc
    assert json.dumps(back) == json.dumps(doc)  # the same keys in the same order


def test_the_recorded_files_are_read_at_all() -> None:
    assert len(_documents()) >= 5  # the parametrized test above must not pass by finding nothing


def test_a_document_with_nan_absent_fields_unknown_keys_and_a_failed_run_round_trips() -> None:
    doc = {
        "mistrec_version": "0.1.0", "dataset": {"name": "d", "fingerprint": "f"}, "protocol": "temporal",
        "protocol_detail": {"name": "temporal"}, "models": ["mist", "star"], "seeds": [1],
        "threads": 1, "load_average_before": None, "load_average_after": [0.1, 0.2, 0.3], "train_config": {},
        "model_configs": {},
        "runs": [
            {"model": "mist", "seed": 1, "run_dir": "/r", "train_seconds": 1.5, "train_samples_per_second": None,
             "peak_rss_mb": 10.0, "best_epoch": None, "curve": [], "eval_seconds": {"pointwise": 0.1},
             "split": "test", "scenario_names": ["a", "b"],
             "metrics": {"overall": {"auc": 0.7, "logloss": 0.6, "n": 10, "positives": 5, "mean_scenario_auc": 0.7,
                                     "ndcg@10": 0.1, "ranking_candidates": "full catalogue"},
                         "by_scenario": {"a": {"auc": None, "n": 3, "positives": 0, "undefined": {
                             "auc": "needs both labels among the rows: 0 of 3 rows positive"}}, "b": {"hr@10": 0.5}},
                         "by_activity": {"groups": ["0", "1-2"], "by_scenario": {"a": {"0": {
                             "auc": None, "n": 3, "undefined": {
                                 "auc": "needs both labels among the rows: 0 of 3 rows positive"}}}},
                                         "overall": {"0": {"users": 2}}},
                         "a_new_block": {"x": 1}},
             "a_new_field": [1, 2]},
            {"model": "star", "seed": 1, "error": "exit 1: boom", "run_dir": "/s"},
        ],
        "summary": {"by_model": {}}, "data_summary": {"scenarios": ["a", "b"]}, "context": {"load": 1},
    }
    typed = BenchmarkResult.from_json(doc)
    assert json.dumps(nan_to_none(typed.to_json())) == json.dumps(doc)
    run, failed = typed.runs
    assert run.ok and not failed.ok and failed.error == "exit 1: boom"
    assert run.metrics is not None and math.isnan(run.metrics.by_scenario["a"].auc or 0.0)
    assert run.metrics.overall.get("ndcg@10") == 0.1 and run.metrics.overall.get("hr@10") is None
    assert run.metrics.by_scenario["b"].auc is None  # not computed: absent, not NaN
    assert run.extra == {"a_new_field": [1, 2]} and run.metrics.extra == {"a_new_block": {"x": 1}}
    assert typed.ok_runs == [run]


def test_a_metric_without_a_value_is_null_with_its_reason_even_from_an_older_file() -> None:
    older = {"auc": None, "gauc": None, "gauc_users": 0, "gauc_users_excluded_one_class": 4, "n": 7,
             "positives": 7, "ndcg@10": 0.25}
    doc = nan_to_none(ScenarioMetrics.from_json(older).to_json())
    assert doc["auc"] is None and doc["gauc"] is None and doc["ndcg@10"] == 0.25
    assert doc["undefined"] == {"auc": "needs both labels among the rows: 7 of 7 rows positive",
                                "gauc": "needs a user with both labels among the rows: none of 4 users has both"}
    assert "undefined" not in ScenarioMetrics(auc=0.5, n=2, positives=1).to_json()  # nothing to explain


def test_a_fresh_result_writes_every_field() -> None:
    run = RunResult(model="mist", seed=1, run_dir="/r", metrics=Metrics(overall=ScenarioMetrics(auc=0.5, n=2),
                                                                       by_scenario={}))
    doc = Evaluation(mistrec_version="0", dataset={}, protocol="temporal", runs=(run,)).to_json()
    assert list(doc) == ["mistrec_version", "dataset", "protocol", "protocol_detail", "runs"]
    written = doc["runs"][0]
    assert written["best_epoch"] is None and "transfer_matrix" not in written  # only models that have one
    assert written["metrics"] == {"overall": {"auc": 0.5, "n": 2}, "by_scenario": {}}
    with pytest.raises(ValueError, match="2 runs"):
        _ = Evaluation(mistrec_version="0", dataset={}, protocol="t", runs=(run, run)).run


def test_a_benchmark_whose_every_run_failed_prints_the_failures(capsys: pytest.CaptureFixture[str]) -> None:
    """`mistrec benchmark` prints its table after the runs: with every run failed there is no model to size the
    table by, and it says what failed instead of stopping with an internal error (it did, 2026-12-05)."""
    from mistrec.cli.printing import print_benchmark
    from mistrec.eval.benchmark import summarise

    runs = (RunResult(model="mist", seed=1, error="exit 2: not the prepared dataset the run was trained on",
                      run_dir="/r"),)
    doc = BenchmarkResult(mistrec_version="0.1.0", dataset={"name": "d", "fingerprint": "f"}, protocol="temporal",
                          protocol_detail={"name": "temporal"}, models=["mist"], seeds=[1], threads=1,
                          load_average_before=None, load_average_after=None, train_config={}, model_configs={},
                          runs=runs, summary=summarise(list(runs), 10), data_summary={"scenarios": ["a", "b"]})
    print_benchmark(doc)
    out = capsys.readouterr().out
    assert "FAILED mist seed 1: exit 2: not the prepared dataset the run was trained on" in out
