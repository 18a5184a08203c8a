"""Protocols: how interactions are split into train / valid / test (docs/protocols.md).

Every function takes integer arrays (one entry per interaction) and returns split codes
(TRAIN, VALID, TEST, or EXCLUDED for rows a protocol withholds entirely) and a dict of facts for
the manifest. All randomness comes from a seeded numpy Generator.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from mistrec.data.config import ProtocolConfig
from mistrec.errors import DataError

__all__ = ["EXCLUDED", "SPLIT_NAMES", "TEST", "TRAIN", "VALID", "Split", "split_interactions"]

TRAIN, VALID, TEST, EXCLUDED = 0, 1, 2, -1
SPLIT_NAMES = {TRAIN: "train", VALID: "valid", TEST: "test"}


class Split(NamedTuple):
    """A protocol's split: a code per interaction, facts for the manifest, and the interactions' timestamps where
    the protocol moved some of them (cold-user with cold_order "last"; None otherwise)."""

    codes: np.ndarray
    facts: dict[str, Any]
    timestamps: np.ndarray | None = None


def split_interactions(
    p: ProtocolConfig,
    user: np.ndarray,
    ts: np.ndarray,
    scenario: np.ndarray,
    target: int | tuple[int, ...] | None,
    predefined: np.ndarray | None = None,
    item: np.ndarray | None = None,
    seed: int | list[int] | None = None,
) -> Split:
    """Dispatches to the protocol named in `p`.

    Args:
        p: the protocol configuration.
        user: user index per interaction.
        ts: timestamp per interaction (ties are broken by row order).
        scenario: scenario index per interaction.
        target: the target scenario's index for cold-user, kshot and leave-scenario-out (cold-user: one or several);
            for cold-item, optional: the scenarios whose items may be held out.
        predefined: split codes given by the data, for the predefined protocol.
        item: item index per interaction, for cold-item.
        seed: the generator's seed (the protocol's by default; a part of the users has its own: data/parts.py).
    """
    p = p.resolved(data_has_splits=predefined is not None)
    rng = np.random.default_rng(p.seed if seed is None else seed)
    if p.name == "predefined":
        if predefined is None:
            raise DataError("Protocol 'predefined' needs splits in the data: give sources a 'split:' or map a "
                            "'split' column.")
        return Split(predefined.astype(np.int8), {})
    if p.name == "random":
        return Split(_random(rng, len(user), p.valid, p.test), {})
    sequence = user * (int(scenario.max(initial=0)) + 1) + scenario if p.per_scenario else user
    codes = temporal(sequence, ts, p.valid, p.test)
    if p.name == "temporal":
        return Split(codes, {})
    if p.name == "cold-item":
        assert item is not None
        return Split(*_cold_item(rng, codes, item, scenario, target, p.cold_fraction))
    assert target is not None  # ProtocolConfig.validate_for checked it
    if p.name == "cold-user":
        codes, facts, cold = _cold_user(rng, codes, user, scenario, (target,) if isinstance(target, int) else target,
                                        p.cold_fraction, p.cold_rest)
        if p.cold_order == "last":
            return Split(codes, facts, cold_rows_last(user, ts, cold))
        return Split(codes, facts)
    assert isinstance(target, int)  # one target for the others (validate_for)
    in_target = scenario == target
    if p.name == "leave-scenario-out":
        codes[in_target] = TEST
        return Split(codes, {"target_rows_in_test": int(in_target.sum())})
    assert p.k is not None
    return Split(*_kshot(rng, codes, in_target, p.k))


def _random(rng: np.random.Generator, n: int, valid: float, test: float) -> np.ndarray:
    order = rng.permutation(n)
    n_test, n_valid = round(n * test), round(n * valid)
    codes = np.full(n, TRAIN, dtype=np.int8)
    codes[order[:n_test]] = TEST
    codes[order[n_test:n_test + n_valid]] = VALID
    return codes


def _per_user_count(counts: np.ndarray, spec: float, reserved: np.ndarray) -> np.ndarray:
    """How many of each user's last events a split takes: a fraction or a count, always leaving one in train."""
    if spec >= 1:
        want = np.full_like(counts, int(spec))
    else:
        want = np.where(counts >= 3, np.maximum(1, np.floor(counts * spec)), 0).astype(counts.dtype)
    return np.clip(np.minimum(want, counts - 1 - reserved), 0, None)


def temporal(user: np.ndarray, ts: np.ndarray, valid: float, test: float) -> np.ndarray:
    """Per user, in time order: the last events go to test, the ones before them to valid, the rest to train."""
    n = len(user)
    order = np.lexsort((np.arange(n), ts, user))  # by user, then time, then row order
    u_sorted = user[order]
    starts = np.flatnonzero(np.r_[True, u_sorted[1:] != u_sorted[:-1]])
    counts = np.diff(np.r_[starts, n])
    pos = np.arange(n) - np.repeat(starts, counts)
    from_end = np.repeat(counts, counts) - 1 - pos  # 0 for the user's last event
    n_test = _per_user_count(counts, test, np.zeros_like(counts))
    n_valid = _per_user_count(counts, valid, n_test)
    t = np.repeat(n_test, counts)
    v = np.repeat(n_valid, counts)
    codes_sorted = np.where(from_end < t, TEST, np.where(from_end < t + v, VALID, TRAIN)).astype(np.int8)
    codes = np.empty(n, dtype=np.int8)
    codes[order] = codes_sorted
    return codes


def _kshot(
    rng: np.random.Generator, codes: np.ndarray, in_target: np.ndarray, k: float
) -> tuple[np.ndarray, dict[str, Any]]:
    train_target = np.flatnonzero(in_target & (codes == TRAIN))
    keep = max(1, int(np.ceil(len(train_target) * k / 100.0))) if len(train_target) else 0
    dropped = rng.permutation(train_target)[keep:]
    codes[dropped] = EXCLUDED
    return codes, {"target_train_rows_before": len(train_target), "target_train_rows_kept": keep,
                   "target_train_rows_excluded": len(dropped)}


def _cold_item(rng: np.random.Generator, codes: np.ndarray, item: np.ndarray, scenario: np.ndarray,
               target: int | tuple[int, ...] | None, fraction: float) -> tuple[np.ndarray, dict[str, Any]]:
    """`fraction` of the items (of the target scenarios, or of all) become new: every row of theirs goes to valid
    (the rows of half of them) or test, so that no training row, and so no history, holds them; the other rows keep
    `codes` (the temporal split, so warm items are evaluated too)."""
    pool = item if target is None else item[np.isin(scenario, np.atleast_1d(target))]
    items = np.unique(pool)
    if len(items) < 2:
        raise DataError("Protocol 'cold-item' needs at least two items to hold out some of them.")
    n_cold = min(len(items) - 1, max(2, round(len(items) * fraction)))
    cold = rng.permutation(items)[:n_cold]
    half = n_cold // 2
    valid_items, test_items = cold[:half], cold[half:]
    codes = codes.copy()
    codes[np.isin(item, valid_items)] = VALID
    codes[np.isin(item, test_items)] = TEST
    return codes, {"items": len(items), "cold_items": n_cold, "cold_items_valid": len(valid_items),
                   "cold_items_test": len(test_items), "cold_item_rows": int(np.isin(item, cold).sum())}


def _cold_user(
    rng: np.random.Generator, codes: np.ndarray, user: np.ndarray, scenario: np.ndarray, targets: tuple[int, ...],
    fraction: float, rest: str,
) -> tuple[np.ndarray, dict[str, Any], np.ndarray]:
    """In each target scenario, `fraction` of the users active there and elsewhere become cold: all their target
    rows go to valid (half of them) or test. Users are cold in one target at most. `rest` "train": every other
    row is training data (only cold users are evaluated); "split": the other rows keep `codes`. Also returns the
    cold rows (a mask)."""
    if rest == "train":
        codes = np.full_like(codes, TRAIN)
    facts: dict[str, Any] = {}
    taken = np.zeros(0, dtype=user.dtype)
    cold_rows = np.zeros(len(user), dtype=bool)
    for target in targets:
        in_target = scenario == target
        eligible = np.intersect1d(np.unique(user[in_target]), np.unique(user[~in_target]))
        available = np.setdiff1d(eligible, taken)  # a user is cold in one target at most
        if len(available) == 0:
            raise DataError("Protocol 'cold-user' needs users active both in the target scenario and in another "
                            "one (their other scenarios are the history to transfer from); there are none here. "
                            "Scenarios that split users into disjoint groups (such as age groups) cannot be "
                            "cold-user targets: use leave-scenario-out or kshot instead.")
        n_cold = min(len(available), max(1, round(len(eligible) * fraction)))
        cold = rng.permutation(available)[:n_cold]
        taken = np.union1d(taken, cold)
        half = len(cold) // 2
        valid_users, test_users = cold[:half], cold[half:]
        rows = in_target & np.isin(user, cold)
        cold_rows |= rows
        codes[rows & np.isin(user, valid_users)] = VALID
        codes[rows & np.isin(user, test_users)] = TEST
        block = {"eligible_users": len(eligible), "cold_users": len(cold), "cold_users_valid": len(valid_users),
                 "cold_users_test": len(test_users), "cold_target_rows": int(rows.sum())}
        if len(targets) == 1:
            facts.update(block)
        else:
            facts.setdefault("by_target", {})[int(target)] = block
    return codes, facts, cold_rows


def cold_rows_last(user: np.ndarray, ts: np.ndarray, cold: np.ndarray) -> np.ndarray:
    """The timestamps with every user's `cold` rows moved after the user's other rows: the k-th of them (in time,
    then row order) at the user's last other time + k + 1, so that they keep their order among themselves and each
    one's history holds all of the user's other events. A user with only cold rows keeps their times."""
    out = ts.astype(np.int64, copy=True)
    rows = np.flatnonzero(cold)
    if not len(rows):
        return out
    n_users = int(user.max()) + 1
    last = np.full(n_users, np.iinfo(np.int64).min)
    np.maximum.at(last, user[~cold], out[~cold])
    rows = rows[np.lexsort((rows, out[rows], user[rows]))]  # by user, then time, then row order
    u = user[rows]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    rank = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    has_other = last[u] > np.iinfo(np.int64).min
    out[rows[has_other]] = last[u[has_other]] + 1 + rank[has_other]
    return out
