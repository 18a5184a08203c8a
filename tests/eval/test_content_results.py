"""The content benchmarks' summaries: ml1m_text.py merges per-core runs into one file and summarises it over seeds;
cold_start.py's issue keys follow the library's default text path; the committed files agree with both."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.eval.benchmark_scripts import BENCHMARKS, load

ml1m_text = load("ml1m_text")
cold_start = load("cold_start")


def _paired(gain: float, p: float) -> dict[str, Any]:
    return {"gain": gain, "ci95": [gain - 0.01, gain + 0.01], "p_value": p, "users": 10}


def _seed(seed: int, text: float, gain: float, p: float) -> dict[str, Any]:
    view = {"auc_ids": 0.8, "auc_text": text, "paired_text_vs_ids": _paired(gain, p)}
    return {"seed": seed, "shelves": {"action": {"rows": 5, **view}}, "overall": view}


def _doc(*seeds: dict[str, Any], variants: tuple[str, ...] = ("ids", "text")) -> dict[str, Any]:
    return {"recipe": "ml-1m-genre", "protocol": "temporal", "model": "mist", "epochs": 12,
            "variants": list(variants), "prepare_seconds": {}, "seeds": list(seeds), "context": {"threads": 1}}


def test_ml1m_runs_merge_in_seed_order_and_summarise_over_seeds() -> None:
    got = ml1m_text.merged([_doc(_seed(2, 0.79, -0.01, 0.01)),
                            _doc(_seed(0, 0.81, 0.01, 0.2), _seed(1, 0.80, -0.02, 0.0))])
    assert [s["seed"] for s in got["seeds"]] == [0, 1, 2] and len(got["contexts"]) == 2
    overall = got["summary"]["overall"]
    assert overall["auc_text"] == pytest.approx(0.80) and overall["auc_ids"] == pytest.approx(0.8)
    # significant seeds counted by sign: seed 0 is above but not significant, seeds 1 and 2 below and significant
    assert overall["paired_text_vs_ids"] == {"mean_gain": pytest.approx(-0.02 / 3), "seeds_above": 0,
                                             "seeds_below": 2}
    assert got["summary"]["action"] == overall and got["summary"]["seeds"] == [0, 1, 2]


def test_ml1m_merge_refuses_files_that_ran_something_else_or_the_same_seed_twice() -> None:
    with pytest.raises(SystemExit, match="variants"):
        ml1m_text.merged([_doc(_seed(0, 0.8, 0.0, 1.0)), _doc(_seed(1, 0.8, 0.0, 1.0), variants=("ids", "aligned"))])
    with pytest.raises(SystemExit, match="twice"):
        ml1m_text.merged([_doc(_seed(0, 0.8, 0.0, 1.0)), _doc(_seed(0, 0.8, 0.0, 1.0))])


def test_the_committed_ml1m_text_summary_is_the_summary_of_its_seeds() -> None:
    doc = json.loads((BENCHMARKS / "results" / "ml1m_text.json").read_text())
    assert doc["summary"] == ml1m_text.summary(doc) and len(doc["seeds"]) == 3


@pytest.mark.parametrize("name", ["cold_start", "cold_start_words40", "cold_start_mall_minilm"])
def test_cold_start_keys_are_the_default_text_paths(name: str) -> None:
    doc = json.loads((BENCHMARKS / "results" / f"{name}.json").read_text())
    default = cold_start.default_text_variant()
    assert doc["text_variant"] == default == "aligned"  # content.align's default (mistrec/data/config.py)
    assert json.loads(json.dumps(cold_start._summary(json.loads(json.dumps(doc))))) == doc  # nothing stale
    if doc["cold_item"]:
        assert doc["cold_item_auc_text"] == doc["cold_item_auc_by_variant"][default]
    if doc["cross_scene"]:
        gains = [r["auc"][default] - r["auc"]["id"] for r in doc["cross_scene"]]
        assert doc["cross_scene_gain_content"] == pytest.approx(sum(gains) / len(gains))
