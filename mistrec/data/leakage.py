"""Leakage checks that run by default on every prepared dataset and fail loudly.

1. no test (or validation) interaction also in train: the same event in two splits;
2. for the temporal protocol, no user's training event after one of their valid/test events;
3. no history event at or after its sample's time, none from another user, none outside train;
4. no sampled negative that is one of the user's known positives;
5. no sampled negative naming an item that its scenario shows no positive of until a later split.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from mistrec.data.history import HistoryEvents
from mistrec.data.negatives import ScenarioPools, staged_pools
from mistrec.data.splits import TRAIN
from mistrec.errors import LeakageError

__all__ = ["check_histories", "check_negative_splits", "check_negatives", "check_no_eval_in_train",
           "check_temporal_order", "count_eval_pairs_in_train"]


def check_no_eval_in_train(df: pl.DataFrame, keys: list[str]) -> None:
    """Fails when the same event (same `keys`) is both in train and in valid/test."""
    clash = (
        df.filter(~pl.col("sampled"))
        .group_by(keys)
        .agg((pl.col("split") == "train").any().alias("in_train"), (pl.col("split") != "train").any().alias("in_eval"))
        .filter(pl.col("in_train") & pl.col("in_eval"))
    )
    if clash.height:
        first = clash.row(0, named=True)
        shown = ", ".join(f"{k}={first[k]}" for k in keys)
        raise LeakageError(
            f"Split leaks: {clash.height} evaluation interactions also appear in train (first: {shown}). The same "
            "event is in two splits: fix the predefined split files, or keep cleaning.deduplicate: true."
        )


def count_eval_pairs_in_train(df: pl.DataFrame) -> int:
    """Valid/test rows whose (user, item, scenario) also occurs in train."""
    train = df.filter((pl.col("split") == "train") & ~pl.col("sampled")).select("user", "item", "scenario_idx").unique()
    evals = df.filter((pl.col("split") != "train") & ~pl.col("sampled"))
    return evals.join(train, on=["user", "item", "scenario_idx"], how="semi").height


def check_temporal_order(user: np.ndarray, ts: np.ndarray, split: np.ndarray) -> None:
    """Temporal protocol: each user's training events are no later than their valid and test events."""
    n_users = int(user.max(initial=0)) + 1
    last_train = np.full(n_users, np.iinfo(np.int64).min)
    np.maximum.at(last_train, user[split == TRAIN], ts[split == TRAIN])
    later = (split != TRAIN) & (ts < last_train[user])
    if later.any():
        i = int(np.flatnonzero(later)[0])
        raise LeakageError(f"Split leaks: {int(later.sum())} valid/test events of a user come before that user's "
                           f"last training event (first: user index {user[i]}, time {ts[i]}); the temporal "
                           "protocol must not train on the future.")


def check_histories(
    ev: HistoryEvents, is_train: np.ndarray, user: np.ndarray, ts: np.ndarray, start: np.ndarray, end: np.ndarray,
    first_row: int = 0,
) -> None:
    """Every history window holds only this user's training events strictly before the sample's time.

    Args:
        is_train: per interaction row, whether it is a real (not sampled) training row, read from the final
            split, independently of how the events were selected.
        first_row: the row id of is_train[0] (a part of the users: its rows' ids continue the parts before it).
    """
    if not is_train[ev.row - first_row].all():
        raise LeakageError("History leaks: some history events are not training interactions.")
    has = end > start
    if not has.any():
        return
    last, first = end[has] - 1, start[has]
    bad_time = ev.ts[last] >= ts[has]
    bad_user = (ev.user[last] != user[has]) | (ev.user[first] != user[has])
    if bad_time.any() or bad_user.any():
        what = "at or after its sample's time" if bad_time.any() else "from another user"
        raise LeakageError(f"History leaks: {int(bad_time.sum() + bad_user.sum())} histories hold an event {what}.")


def check_negatives(user: np.ndarray, item: np.ndarray, label: np.ndarray, sampled: np.ndarray) -> None:
    """No sampled negative is a (user, item) pair the user interacted with positively."""
    n_items = int(item.max(initial=0)) + 1
    key = user.astype(np.int64) * n_items + item
    positives = np.unique(key[(label > 0) & ~sampled])
    bad = np.isin(key[sampled], positives)
    if bad.any():
        raise LeakageError(f"Negative sampling leaks: {int(bad.sum())} sampled negatives are known positives.")


def check_negative_splits(scenario: np.ndarray, item: np.ndarray, split: np.ndarray, sampled: np.ndarray,
                          pools: tuple[ScenarioPools, ...] | None = None) -> None:
    """No sampled negative names an item its scenario has no positive of in the negative's split or an earlier
    one (a training row naming an item that first appears in validation or test). `pools`: the pools by split
    the negatives were drawn from when the rows are one part of several; by default those of these rows'
    positives."""
    if pools is None:
        pos = ~sampled
        pools = staged_pools(scenario[pos], item[pos], split[pos])
    for code, pool in enumerate(pools):
        m = sampled & (split == code)
        bad = m.copy()
        bad[m] = ~pool.contains(scenario[m], item[m])
        if bad.any():
            where = ("train", "valid", "test")[code]
            raise LeakageError(f"Negative sampling leaks: {int(bad.sum())} sampled negatives of the {where} split "
                               f"name items their scenario has no positive of by then (the first: item index "
                               f"{int(item[bad][0])}, scenario index {int(scenario[bad][0])}).")

