"""benchmarks/run_diff.py: two saved runs compared file for file. It must tell a changed choice from a changed
validation figure, see a single flipped prediction or ranking entry, and refuse to vouch for a copy that was never
scored again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tests.eval.benchmark_scripts import load

run_diff = load("run_diff")


def _run(path: Path, selected: dict, prob: np.ndarray, ranks: np.ndarray, mtime: float = 1000.0) -> Path:
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"result": {"selected": selected}}))
    np.savez(path / "predictions_test.npz", prob=prob, label=np.array([0, 1, 1]))
    np.savez(path / "ranking_test.npz", rank=ranks)
    os.utime(path / "run.json", (mtime, mtime))
    for name in ("predictions_test.npz", "ranking_test.npz"):
        os.utime(path / name, (mtime + 1, mtime + 1))  # scored after the choices
    return path


def test_identical_runs_changed_figures_and_changed_choices_are_told_apart(tmp_path: Path) -> None:
    selected = {"cold_scale": {"a": {"chosen": 0.5, "form": "scale", "valid_auc": {"0.5": 0.70}}},
                "co_scale": {"a": {"new": {"chosen": 1.0, "best": 2.0, "p_value": 0.3, "queries": 100}}}}
    prob, ranks = np.array([0.1, 0.8, 0.6]), np.array([3, 1, 7])
    old = _run(tmp_path / "old", selected, prob, ranks)
    same = run_diff.compare(old, _run(tmp_path / "same", selected, prob, ranks))
    assert same["choices"] == 3 and same["choices_differ"] == {} and same["figures_differ"] == 0
    assert same["predictions_identical"] and same["rankings_identical"] and same["scored_after_choices"]
    assert same["new_co_scale"] == same["old_co_scale"] == selected["co_scale"]
    assert "new_prior_tilt_guard" not in same  # a run without the record: none reported
    guarded = {**selected, "prior_tilt_guard": {"a": {"tilt": 0.2, "valid_ndcg@10_tilted": 0.30,
                                                      "valid_ndcg@10_untilted": 0.31, "kept": False}}}
    tilted = run_diff.compare(old, _run(tmp_path / "guarded", guarded, prob, ranks))
    assert tilted["new_prior_tilt_guard"] == guarded["prior_tilt_guard"] and "old_prior_tilt_guard" not in tilted
    assert tilted["choices_differ"] == {"prior_tilt_guard.a.kept": [None, False]}  # the guard's choice is a choice
    moved = json.loads(json.dumps(selected))
    moved["cold_scale"]["a"]["valid_auc"]["0.5"] = 0.7004  # a figure moves, the choice stays
    moved["co_scale"]["a"]["new"]["chosen"] = 2.0  # a choice moves
    other = run_diff.compare(old, _run(tmp_path / "other", moved, prob + np.array([0, 0, 1e-7]), ranks[::-1]))
    assert other["choices_differ"] == {"co_scale.a.new.chosen": [1.0, 2.0]}
    assert other["figures_differ"] == 1 and abs(other["figures_max_difference"] - 0.0004) < 1e-12
    assert not other["predictions_identical"] and 0 < other["prob_max_difference"] < 1e-6
    assert not other["rankings_identical"]


def test_a_copy_never_scored_again_is_flagged(tmp_path: Path) -> None:
    prob, ranks = np.array([0.1, 0.8, 0.6]), np.array([3, 1, 7])
    old = _run(tmp_path / "old", {}, prob, ranks)
    copy = _run(tmp_path / "copy", {}, prob, ranks)
    os.utime(copy / "run.json", (5000, 5000))  # its choices made again after its test files were written
    assert not run_diff.compare(old, copy)["scored_after_choices"]

