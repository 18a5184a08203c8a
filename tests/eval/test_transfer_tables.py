"""benchmarks/transfer_tables.py fill: the rows of models a many-seed run left out come from a fewer-seed run, and
a filled model ahead of the paired tests' best other is said, not hidden."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.eval.benchmark_scripts import load

tables = load("transfer_tables")


def _row(model: str, seeds: int, auc: float, target: str = "sport") -> dict[str, Any]:
    return {"dataset": "amazon-x", "target": target, "protocol": "cold-user", "group": "0", "model": model,
            "seeds": seeds, "users": 10, "auc": auc, "ndcg@10": 0.1, "hr@10": 0.2, "planted_offdiag": None}


def test_fill_adds_only_missing_models_and_warns_when_one_is_ahead_of_the_best_other() -> None:
    main = {"rows": [_row("mist", 3, 0.70), _row("star", 3, 0.65)], "models": ["mist", "star"],
            "paired": [{"dataset": "amazon-x", "target": "sport", "protocol": "cold-user", "group": "0",
                        "metric": "auc", "model": "mist", "best_other": "star", "diff": 0.05}]}
    more = {"rows": [_row("mist", 1, 0.71), _row("star", 1, 0.66), _row("emcdr", 1, 0.60),
                     _row("ptupcdr", 1, 0.50, target="phone")]}  # phone: not in main, not added
    doc, warnings = tables.fill(main, more)
    assert [(r["model"], r["seeds"]) for r in doc["rows"]] == [("mist", 3), ("star", 3), ("emcdr", 1)]
    assert warnings == [] and doc["filled_from_fewer_seeds"] == ["emcdr"]
    more["rows"].append(_row("din", 1, 0.67))
    doc, warnings = tables.fill(main, more)
    assert len(warnings) == 1 and "din" in warnings[0] and "star" in warnings[0]
    assert doc["models"] == ["mist", "star", "emcdr", "din"]  # with main's models listed


def test_compare_sets_the_shared_rows_of_one_group_side_by_side() -> None:
    old = {"rows": [_row("mist", 3, 0.70), _row("star", 1, 0.65), _row("din", 3, 0.60),
                    {**_row("star", 1, 0.61), "group": "all"}]}
    new = {"rows": [_row("mist", 3, 0.70), _row("star", 3, 0.6412), {**_row("star", 3, 0.62), "group": "all"}]}
    lines = tables.compare(old, new, "0", "cold-user", None).splitlines()
    assert lines[2:] == ["| x sport | mist | 3 -> 3 | 0.7000 -> 0.7000 | 0.1000 -> 0.1000 | +0.0000 / +0.0000 |",
                         "| x sport | star | 1 -> 3 | 0.6500 -> 0.6412 | 0.1000 -> 0.1000 | -0.0088 / +0.0000 |"]
    assert len(tables.compare(old, new, "0", "cold-user", ["star"]).splitlines()) == 3  # din: in one file only
    assert len(tables.compare(old, new, "0", "warm-full", None).splitlines()) == 2  # no row of that protocol


def _eval(auc0: float, users0: int) -> dict[str, Any]:
    """A one-run eval.json as `mistrec evaluate` writes it (the parts `runs` reads)."""
    return {"runs": [{"metrics": {
        "by_scenario": {"search": {"auc": 0.8, "ndcg@10": 0.3}},
        "by_activity": {"groups": ["0", "1-2"], "by_scenario": {"search": {
            "0": {"auc": auc0, "ndcg@10": 0.2, "users": users0},
            "1-2": {"auc": None, "ndcg@10": 0.1, "users": 3}}}}}}]}


def test_runs_sets_two_runs_groups_side_by_side() -> None:
    lines = tables.compare_runs(_eval(0.70, 12), _eval(0.7123, 12), ["0", "1-2", "all"]).splitlines()
    assert lines[2:] == ["| search | 0 | 12 | 0.7000 -> 0.7123 | 0.2000 -> 0.2000 | +0.0123 / +0.0000 |",
                         "| search | 1-2 | 3 | - -> - | 0.1000 -> 0.1000 | - / +0.0000 |",
                         "| search | all | - | 0.8000 -> 0.8000 | 0.3000 -> 0.3000 | +0.0000 / +0.0000 |"]
    assert len(tables.compare_runs(_eval(0.7, 1), _eval(0.7, 1), ["0"]).splitlines()) == 3


def test_seeds_means_each_models_finished_seeds(tmp_path: Path) -> None:
    for model, seed, auc in (("star", 1, 0.70), ("star", 2, 0.72), ("din", 1, 0.60)):
        run = tmp_path / model / f"seed-{seed}"
        run.mkdir(parents=True)
        (run / "eval.json").write_text(json.dumps(_eval(auc, 5)))
    (tmp_path / "din" / "seed-2").mkdir()  # trained, not evaluated: not counted
    lines = tables.seed_means(tmp_path, ["0"], None).splitlines()
    assert lines[2:] == ["| din | search | 0 | 1 | 0.6000 | 0.2000 |", "| star | search | 0 | 2 | 0.7100 | 0.2000 |"]
    assert len(tables.seed_means(tmp_path, ["0"], ["star"]).splitlines()) == 3
    sampled = _eval(0.7, 5)
    sampled["runs"][0]["metrics"]["sampled"] = {"by_scenario": {"search": {"ndcg@10": 0.05}}}
    (tmp_path / "star" / "seed-2" / "eval.json").write_text(json.dumps(sampled))
    assert tables.seed_means(tmp_path, ["sampled"], ["star"]).splitlines()[2:] == [
        "| star | search | sampled | 1 | - | 0.0500 |"]  # only the run that has sampled lists
