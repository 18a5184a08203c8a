"""Results by activity: groups, counts from the training split only, and per-group metrics that agree with a
direct computation on the same rows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from mistrec.eval.activity import (
    ACTIVITY_GROUPS,
    ActivityCounts,
    group_index,
    pointwise_by_activity,
    ranking_by_activity,
)


def test_groups_have_the_documented_bounds() -> None:
    counts = np.array([0, 1, 2, 3, 5, 6, 20, 21, 500])
    assert [ACTIVITY_GROUPS[g] for g in group_index(counts)] == ["0", "1-2", "1-2", "3-5", "3-5", "6-20", "6-20",
                                                                 ">20", ">20"]


def test_counts_are_real_training_events_per_user_and_scenario() -> None:
    df = pl.DataFrame({
        "user": [1, 1, 1, 1, 2, 2, 2], "scenario": [1, 1, 2, 1, 1, 1, 2],
        "split": ["train", "train", "train", "test", "train", "valid", "train"],
        "sampled": [False, True, False, False, False, False, False],  # user 1's sampled negative is no event
    })
    c = ActivityCounts.from_interactions(df, n_scenarios=3)
    assert c.of(np.array([1, 1, 2, 2, 3]), np.array([1, 2, 1, 2, 1])).tolist() == [1, 1, 1, 1, 0]
    empty = ActivityCounts.from_interactions(df.filter(pl.col("split") == "none"), n_scenarios=3)
    assert empty.of(np.array([1]), np.array([1])).tolist() == [0]


def test_pointwise_blocks_match_scikit_learn_on_the_same_rows() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    label = (rng.random(n) < 0.4).astype(np.float32)
    prob = np.clip(0.3 * label + rng.random(n) * 0.7, 1e-3, 1 - 1e-3)
    user, scenario = rng.integers(0, 300, n), rng.integers(1, 3, n)
    group = group_index(rng.integers(0, 30, n))
    out = pointwise_by_activity(prob, label, user, scenario, group, ("a", "b"))
    for s, name in ((1, "a"), (2, "b")):
        for g, gname in enumerate(ACTIVITY_GROUPS):
            m = (scenario == s) & (group == g)
            block = out["by_scenario"][name][gname]
            assert block["n"] == m.sum() and block["users"] == len(np.unique(user[m]))
            assert block["auc"] == pytest.approx(roc_auc_score(label[m], prob[m]), abs=1e-9)
    assert sum(b["n"] for b in out["overall"].values()) == n


def test_ranking_means_per_group() -> None:
    q = {"a": {"user": np.arange(4), "group": np.array([0, 0, 4, 1], dtype=np.int8), "ndcg@10": np.array([1.0, 0.0,
                                                                                                      0.5, 0.2])},
         "b": {"user": np.arange(2), "group": np.array([0, 4], dtype=np.int8), "ndcg@10": np.array([0.3, 0.1])}}
    out = ranking_by_activity(q)
    assert out["by_scenario"]["a"]["0"] == {"ndcg@10": 0.5, "n_queries": 2}
    assert "3-5" not in out["by_scenario"]["a"]
    assert out["overall"]["0"]["ndcg@10"] == pytest.approx((1.0 + 0.0 + 0.3) / 3)
    assert out["overall"][">20"]["n_queries"] == 2
