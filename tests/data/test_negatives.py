from __future__ import annotations

import numpy as np
import pytest

from mistrec.data.leakage import check_negative_splits
from mistrec.data.negatives import expected_rows, sample_negatives, staged_pools
from mistrec.errors import LeakageError


def test_negatives_come_from_the_scenario_pool_and_avoid_known_positives() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    user = rng.integers(1, 100, n)
    scen = rng.integers(1, 4, n)
    item = scen * 1000 + rng.integers(0, 60, n)  # disjoint pools per scenario
    neg = sample_negatives(user, item, scen, per_positive=3, seed=5)
    assert neg.unfilled == 0 and len(neg.item) == 3 * n
    assert (neg.item // 1000 == scen[neg.source]).all()
    positives = set(zip(user.tolist(), item.tolist(), strict=True))
    assert not any((u, i) in positives for u, i in zip(user[neg.source].tolist(), neg.item.tolist(), strict=True))
    again = sample_negatives(user, item, scen, per_positive=3, seed=5)
    assert (again.item == neg.item).all()


def test_a_split_draws_only_items_its_scenario_has_shown_by_then() -> None:
    # scenario 1: items 1-20 have training positives, 21-30 first appear in valid, 31-40 only in test. A pool of
    # every split would give training rows items 21-40 as negatives (the control below shows test rows get them).
    rng = np.random.default_rng(1)
    item = np.r_[rng.integers(1, 21, 400), rng.integers(21, 31, 100), rng.integers(31, 41, 100)]
    split = np.r_[np.zeros(400, np.int64), np.ones(100, np.int64), np.full(100, 2)]
    user = rng.integers(1, 500, len(item))
    scen = np.ones(len(item), np.int64)
    neg = sample_negatives(user, item, scen, per_positive=4, seed=3, split=split)
    drawn_split = split[neg.source]
    assert neg.unfilled == 0
    assert (neg.item[drawn_split == 0] <= 20).all()
    assert (neg.item[drawn_split == 1] <= 30).all() and (neg.item[drawn_split == 1] > 20).any()
    assert (neg.item[drawn_split == 2] > 30).any()
    unstaged = sample_negatives(user, item, scen, per_positive=4, seed=3)
    assert (unstaged.item[split[unstaged.source] == 0] > 20).any()
    check_negative_splits(np.r_[scen, scen[neg.source]], np.r_[item, neg.item], np.r_[split, drawn_split],
                          np.r_[np.zeros(len(item), bool), np.ones(len(neg.item), bool)])
    with pytest.raises(LeakageError, match="train split"):
        check_negative_splits(np.r_[scen, scen[unstaged.source]], np.r_[item, unstaged.item],
                              np.r_[split, split[unstaged.source]],
                              np.r_[np.zeros(len(item), bool), np.ones(len(unstaged.item), bool)])


def test_pools_by_split_are_refused_without_the_splits_and_one_pool_with_them() -> None:
    one = np.ones(3, np.int64)
    pools = staged_pools(one, np.array([1, 2, 3]), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="split"):
        sample_negatives(one, np.array([1, 2, 3]), one, 1, seed=0, pools=pools)
    with pytest.raises(ValueError, match="by split"):
        sample_negatives(one, np.array([1, 2, 3]), one, 1, seed=0, pools=pools[2], split=np.array([0, 1, 2]))
    assert pools[0].contains(one, np.array([1, 2, 99])).tolist() == [True, False, False]


def test_expected_rows_are_the_samplers_expectation() -> None:
    """Negatives drawn by `sample_negatives` for many positives: each pool item's drawn negatives average the
    scenario's negatives over its pool (what `expected_rows` counts), the negatives' total is kept, and items with
    no positive keep their rows; on one small draw the drawn counts spread apart where the expectation does not."""
    rng = np.random.default_rng(0)
    n_users, n_items = 3000, 40
    user = np.repeat(np.arange(n_users), 2)
    scenario = np.tile([1, 2], n_users)
    item = np.where(scenario == 1, rng.integers(0, 30, len(user)), rng.integers(30, 40, len(user)))
    neg = sample_negatives(user, item, scenario, 1, seed=1)
    pos = np.zeros((3, n_items))
    rows = np.zeros((3, n_items))
    np.add.at(pos, (scenario, item), 1.0)
    np.add.at(rows, (scenario, item), 1.0)
    np.add.at(rows, (scenario[neg.source], neg.item), 1.0)
    want = expected_rows(pos, rows)
    np.testing.assert_allclose(want.sum(1), rows.sum(1))  # no negative lost or made
    for s, items in ((1, np.arange(30)), (2, np.arange(30, 40))):
        drawn = (rows - pos)[s, items]
        np.testing.assert_allclose((want - pos)[s, items], drawn.mean())  # one value: the pool's mean
        assert drawn.std() > 0  # the draw's own counts differ item to item
    # outside a scenario's pool nothing moves: scenario 1 never shows items 30-39, scenario 2 items 0-29
    assert (want[1, 30:] == rows[1, 30:]).all() and (want[2, :30] == rows[2, :30]).all() and (want[0] == rows[0]).all()
    # a negative outside the pool (not the sampler's: a logged one) stays where it is; every row is kept
    logged = expected_rows(np.array([[0.0, 2.0, 1.0]]), np.array([[3.0, 5.0, 2.0]]))
    np.testing.assert_allclose(logged, [[3.0, 4.0, 3.0]])
