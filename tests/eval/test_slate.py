"""Slot filling: caps, the diversity trade-off, and the figures reported with a slate."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mistrec.errors import ConfigError
from mistrec.eval.slate import fill_slots


def test_without_caps_or_diversity_the_slate_is_the_top_of_the_list() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(50)
    s = fill_slots(p, np.arange(50) % 5, slots=12, per_category=None, diversity=0.0)
    assert s.chosen.tolist() == np.argsort(-p)[:12].tolist()
    assert s.expected_clicks == pytest.approx(np.sort(p)[-12:].sum())
    assert s.top_of_list["expected_clicks"] == pytest.approx(s.expected_clicks, abs=1e-4)
    assert s.unfilled == 0 and s.intra_list_similarity is None


def test_the_category_cap_holds_and_costs_expected_clicks() -> None:
    rng = np.random.default_rng(1)
    cats = np.array(["shoes"] * 30 + ["hats"] * 10 + ["bags"] * 10)
    p = np.where(cats == "shoes", 0.8, 0.3) + 0.05 * rng.random(50)  # the top of the list is all shoes
    s = fill_slots(p, cats, slots=12, per_category=4, diversity=0.0)
    _, counts = np.unique(cats[s.chosen], return_counts=True)
    assert counts.max() <= 4 and len(s.chosen) == 12
    assert s.categories == 3 and s.category_coverage == 1.0
    assert s.top_of_list["categories"] == 1
    assert s.expected_clicks < s.top_of_list["expected_clicks"]  # diversity has a price, and it is reported


def test_slots_stay_empty_when_the_caps_leave_no_candidate() -> None:
    s = fill_slots(np.array([0.9, 0.8, 0.7]), np.array(["a", "a", "b"]), slots=5, per_category=1)
    assert s.chosen.tolist() == [0, 2] and s.unfilled == 3


def test_diversity_trades_relevance_for_dissimilar_items() -> None:
    # two near-duplicates at the top, a different item a little lower
    v = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.7, 0.7]])
    p = np.array([0.9, 0.88, 0.8, 0.5])
    cats = np.zeros(4)
    plain = fill_slots(p, cats, v, slots=2, per_category=None, diversity=0.0)
    diverse = fill_slots(p, cats, v, slots=2, per_category=None, diversity=0.5)
    assert plain.chosen.tolist() == [0, 1] and diverse.chosen.tolist() == [0, 2]
    assert diverse.intra_list_similarity is not None and plain.intra_list_similarity is not None
    assert diverse.intra_list_similarity < plain.intra_list_similarity


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ConfigError, match="one entry per candidate"):
        fill_slots(np.ones(3), np.zeros(2))
    with pytest.raises(ConfigError, match="diversity in"):
        fill_slots(np.ones(3), np.zeros(3), diversity=2.0)


class _FakeRecommender:
    """What SlateFiller reads of a Recommender: its data's item categories and an answer for the top of a list."""

    def __init__(self, cold: bool) -> None:
        import polars as pl

        self.cold = cold
        cats = ["a", "a", "a", "b", "b", "c"]  # items 1..6
        self.ds = SimpleNamespace(
            vocab={"item_id": pl.DataFrame({"item_id": [f"i{k}" for k in range(1, 7)], "index": list(range(1, 7))}),
                   "items.genre": pl.DataFrame({"value": ["a", "b", "c"], "index": [1, 2, 3]})},
            manifest={"config": {"items": {"categorical": ["genre"]}}},
            tables={"items": pl.DataFrame({"item": list(range(1, 7)), "genre": [" abc".index(c) for c in cats]})},
            content=lambda kind: None)

    def recommend(self, user: str, scenario: str, k: int, logged: list | None = None) -> dict:
        scores = [None] * 6 if self.cold else [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
        return {"model": "m", "cold_start": self.cold, "note": "unknown user",
                "items": [{"rank": r + 1, "item": f"i{r + 1}", "score": scores[r]} for r in range(k)]}

    def catalogue_size(self, scenario: str) -> int:
        return 6

    def item_indices(self, items: list[str]) -> np.ndarray:
        return np.array([int(i[1:]) for i in items])


@pytest.mark.parametrize("cold", [False, True])
def test_the_filler_caps_categories_and_invents_no_click_figures_for_a_cold_start(cold: bool) -> None:
    from mistrec.eval.slate import SlateFiller

    got = SlateFiller(_FakeRecommender(cold)).fill("u", "s", slots=4, per_category=2, diversity=0.0, candidates=6)
    assert [it["item"] for it in got["items"]] == ["i1", "i2", "i4", "i5"]  # the third 'a' is capped out
    assert [it["category"] for it in got["items"]] == ["a", "a", "b", "b"]
    assert got["slate"]["top_of_list"]["items"] == ["i1", "i2", "i3", "i4"]
    if cold:  # popularity order ranks; it is not a click probability
        assert got["slate"]["expected_clicks"] is None and got["slate"]["top_of_list"]["expected_clicks"] is None
    else:
        assert got["slate"]["expected_clicks"] == pytest.approx(0.9 + 0.8 + 0.6 + 0.5)
