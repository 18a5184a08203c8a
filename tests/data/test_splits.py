"""Protocols on random data: each one's defining property, checked directly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mistrec.data import leakage
from mistrec.data.config import ProtocolConfig
from mistrec.data.history import HistoryEvents
from mistrec.data.splits import EXCLUDED, TEST, TRAIN, VALID, split_interactions, temporal
from mistrec.errors import ConfigError, DataError, LeakageError

RNG = np.random.default_rng(0)
N = 5000
USER = RNG.integers(1, 300, N)
TS = RNG.integers(0, 10_000, N)  # with ties
SCEN = RNG.integers(1, 5, N)


def split(target_idx: int | None = None, **kw: object) -> tuple[np.ndarray, dict[str, object]]:
    codes, facts, _ = split_interactions(ProtocolConfig.from_dict(kw), USER, TS, SCEN, target_idx)
    return codes, facts


def test_random_is_811_and_seeded() -> None:
    a, _ = split(name="random", seed=1)
    b, _ = split(name="random", seed=1)
    c, _ = split(name="random", seed=2)
    assert (a == b).all() and not (a == c).all()
    assert [(a == k).sum() for k in (TRAIN, VALID, TEST)] == [4000, 500, 500]


def test_temporal_puts_each_users_last_events_in_test() -> None:
    codes = temporal(USER, TS, 0.1, 0.1)
    leakage.check_temporal_order(USER, TS, codes)  # raises if a train event follows an eval one
    for u in np.unique(USER)[:50]:
        mine = u == USER
        n = mine.sum()
        want_test = max(1, int(np.floor(n * 0.1))) if n >= 3 else 0
        assert (codes[mine] == TEST).sum() == min(want_test, n - 1)
        assert (codes[mine] == TRAIN).sum() >= 1


def test_temporal_with_counts_is_leave_one_out() -> None:
    codes = temporal(USER, TS, 1, 1)
    for u in np.unique(USER)[:50]:
        n = (u == USER).sum()
        assert (codes[u == USER] == TEST).sum() == (1 if n >= 2 else 0)
        assert (codes[u == USER] == VALID).sum() == (1 if n >= 3 else 0)


def test_leave_scenario_out_has_no_target_training_rows() -> None:
    codes, facts = split(name="leave-scenario-out", target="b", target_idx=3)
    assert (codes[SCEN == 3] == TEST).all()
    assert (codes[SCEN != 3] == TRAIN).sum() > 0
    assert facts["target_rows_in_test"] == (SCEN == 3).sum()


def test_kshot_keeps_k_percent_of_target_training_rows() -> None:
    base = temporal(USER, TS, 0.1, 0.1)
    codes, facts = split(name="kshot", target="b", target_idx=2, k=5)
    n_train = ((SCEN == 2) & (base == TRAIN)).sum()
    assert ((SCEN == 2) & (codes == TRAIN)).sum() == int(np.ceil(n_train * 0.05)) == facts["target_train_rows_kept"]
    assert ((SCEN == 2) & (codes == EXCLUDED)).sum() == n_train - facts["target_train_rows_kept"]
    # nothing else moves
    assert (codes[SCEN != 2] == base[SCEN != 2]).all()


def test_cold_user_users_have_no_target_training_rows() -> None:
    base = temporal(USER, TS, 0.1, 0.1)
    codes, facts = split(name="cold-user", target="b", target_idx=1, cold_fraction=0.3)
    in_target = SCEN == 1
    made_cold = np.unique(USER[in_target & (base == TRAIN) & (codes != TRAIN)])
    assert 0 < len(made_cold) <= facts["cold_users"]
    for u in made_cold:
        assert not ((u == USER) & in_target & (codes == TRAIN)).any()
        assert ((u == USER) & ~in_target & (codes == TRAIN)).any()  # their other scenarios remain to transfer from
    assert (codes[~in_target] == base[~in_target]).all()


def test_per_scenario_temporal_is_leave_one_out_per_user_and_scenario() -> None:
    codes, _ = split(name="temporal", valid=1, test=1, per_scenario=True)
    for u in np.unique(USER)[:40]:
        for s in np.unique(SCEN):
            mine = (u == USER) & (s == SCEN)
            n = mine.sum()
            assert (codes[mine] == TEST).sum() == (1 if n >= 2 else 0)
            assert (codes[mine] == VALID).sum() == (1 if n >= 3 else 0)
            if n >= 2:  # the test event is the sequence's last one
                assert TS[mine][codes[mine] == TEST].max() >= TS[mine][codes[mine] == TRAIN].max()


def test_cold_user_with_several_targets_and_the_rest_in_training() -> None:
    codes, facts = split(name="cold-user", target="a,b", target_idx=(1, 2), cold_fraction=0.2, cold_rest="train")
    cold = {}
    for t in (1, 2):
        rows = (t == SCEN) & (codes != TRAIN)
        cold[t] = np.unique(USER[rows])
        for u in cold[t]:  # all of a cold user's target rows are evaluated, none trained on
            assert not ((u == USER) & (t == SCEN) & (codes == TRAIN)).any()
    assert not set(cold[1]) & set(cold[2])  # a user is cold in one target at most
    eligible = len(np.intersect1d(np.unique(USER[SCEN == 2]), np.unique(USER[SCEN != 2])))
    assert len(cold[2]) == round(eligible * 0.2) == facts["by_target"][2]["cold_users"]
    # everything else is training data: only cold users are evaluated
    assert (codes[~np.isin(SCEN, (1, 2))] == TRAIN).all()
    assert ((codes != TRAIN) == (((SCEN == 1) & np.isin(USER, cold[1])) | ((SCEN == 2) & np.isin(USER, cold[2])))
            ).all()


def test_cold_order_last_moves_only_the_cold_rows_after_the_users_other_rows() -> None:
    p = ProtocolConfig.from_dict({"name": "cold-user", "target": "b", "cold_fraction": 0.3, "cold_rest": "train",
                                  "cold_order": "last"})
    codes, facts, moved = split_interactions(p, USER, TS, SCEN, 2)
    before = split_interactions(dataclasses.replace(p, cold_order="time"), USER, TS, SCEN, 2)
    assert moved is not None and before.timestamps is None
    assert (codes == before.codes).all() and facts == before.facts  # the same users and rows, only their time
    cold = (SCEN == 2) & (codes != TRAIN)
    assert cold.any() and (moved[~cold] == TS[~cold]).all()
    for u in np.unique(USER[cold]):
        mine, others = cold & (u == USER), ~cold & (u == USER)
        assert moved[mine].min() > TS[others].max()  # after every other row of the user
        order = np.lexsort((np.flatnonzero(mine), TS[mine]))  # their order among themselves is kept
        assert (np.diff(moved[mine][order]) > 0).all()
    # the time protocol is untouched by the option's existence, and a wrong value is refused by name
    with pytest.raises(ConfigError, match=r"protocol\.cold_order"):
        ProtocolConfig.from_dict({"name": "cold-user", "cold_order": "first"})
    assert "cold_order" not in dataclasses.replace(p, cold_order="time").describe()
    assert p.describe()["cold_order"] == "last"


def test_cold_user_needs_shared_users() -> None:
    user = np.array([1, 1, 2, 2])
    scen = np.array([1, 1, 2, 2])
    with pytest.raises(DataError, match="users active both in the target scenario and in another"):
        split_interactions(ProtocolConfig(name="cold-user", target="x"), user, np.arange(4), scen, 1)


def test_leakage_checks_catch_manufactured_leaks() -> None:
    codes = temporal(USER, TS, 0.1, 0.1)
    # swap a user's test event with one of their strictly earlier training events: train now follows test
    first_test = int(np.flatnonzero(codes == TEST)[0])
    same_user, before = USER[first_test] == USER, TS[first_test] > TS
    earlier = np.flatnonzero(same_user & (codes == TRAIN) & before)
    assert len(earlier), "the fixture needs a training event before the test event"
    broken = codes.copy()
    broken[earlier[0]], broken[first_test] = TEST, TRAIN
    with pytest.raises(LeakageError, match="come before that user's last training event"):
        leakage.check_temporal_order(USER, TS, broken)

    train = np.flatnonzero(codes == TRAIN)
    ev = HistoryEvents.build(USER[train], TS[train], np.ones(len(train), int), SCEN[train],
                             np.ones(len(train)), train)
    start, end = ev.windows(USER, TS, 10)
    is_train = codes == TRAIN
    leakage.check_histories(ev, is_train, USER, TS, start, end)
    with pytest.raises(LeakageError, match="at or after its sample's time"):
        leakage.check_histories(ev, is_train, USER, TS, start, np.minimum(end + 1, len(ev)))
    relabelled = is_train.copy()
    relabelled[train[0]] = False  # an event whose row is (now) in valid/test
    with pytest.raises(LeakageError, match="not training interactions"):
        leakage.check_histories(ev, relabelled, USER, TS, start, end)


def test_cold_item_items_have_no_training_row() -> None:
    item = RNG.integers(1, 200, N)
    base = temporal(USER, TS, 0.1, 0.1)
    codes, facts, _ = split_interactions(ProtocolConfig.from_dict({"name": "cold-item", "cold_fraction": 0.2,
                                                                   "seed": 3}), USER, TS, SCEN, None, item=item)
    held = np.unique(item[~np.isin(item, item[codes == TRAIN])])
    assert len(held) == facts["cold_items"] == round(len(np.unique(item)) * 0.2)
    in_valid, in_test = np.unique(item[codes == VALID]), np.unique(item[codes == TEST])
    # each held-out item is in valid or in test, whole; the other items keep the temporal split
    assert len(np.intersect1d(np.intersect1d(held, in_valid), in_test)) == 0
    assert facts["cold_items_valid"] + facts["cold_items_test"] == len(held)
    warm = ~np.isin(item, held)
    assert (codes[warm] == base[warm]).all()
    # the same seed holds out the same items; a target scenario restricts the choice to its items
    again = split_interactions(ProtocolConfig.from_dict({"name": "cold-item", "cold_fraction": 0.2, "seed": 3}),
                               USER, TS, SCEN, None, item=item).codes
    assert (again == codes).all()
    scoped = item + 1000 * (SCEN == 2)  # scenario 2 has its own items
    codes2 = split_interactions(ProtocolConfig.from_dict({"name": "cold-item", "target": "b", "seed": 3}),
                                USER, TS, SCEN, 2, item=scoped).codes
    held2 = np.unique(scoped[~np.isin(scoped, scoped[codes2 == TRAIN])])
    assert (held2 > 1000).all()
