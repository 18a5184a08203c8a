"""Histories: the vectorised windows equal a brute-force per-row answer, ties and truncation included."""

from __future__ import annotations

import numpy as np

from mistrec.data.history import HistoryEvents


def brute_force(user, ts, ev_user, ev_ts, ev_item, length):  # type: ignore[no-untyped-def]
    out = []
    for u, t in zip(user, ts, strict=True):
        mine = [(et, i) for eu, et, i in zip(ev_user, ev_ts, ev_item, strict=True) if eu == u and et < t]
        mine.sort(key=lambda x: x[0])
        out.append([i for _, i in mine][-length:])
    return out


def test_windows_match_brute_force_with_ties_and_truncation() -> None:
    rng = np.random.default_rng(3)
    n_ev = 400
    ev_user = rng.integers(1, 20, n_ev)
    ev_ts = rng.integers(0, 50, n_ev)  # many ties
    ev_item = np.arange(1, n_ev + 1)  # unique items: order is fully visible
    ev = HistoryEvents.build(ev_user, ev_ts, ev_item, np.ones(n_ev, int), np.ones(n_ev), np.arange(n_ev))
    user = rng.integers(1, 22, 300)  # users 20, 21 have no events
    ts = rng.integers(0, 55, 300)
    start, end = ev.windows(user, ts, 7)
    batch = ev.gather(start, end, ts, 7)
    expected = brute_force(user, ts, ev_user, ev_ts, ev_item, 7)
    for row, want in enumerate(expected):
        got = batch.items[row][batch.mask[row]].tolist()
        # same multiset and strictly-before; ties in time keep row order, which brute force's stable sort keeps too
        assert sorted(got) == sorted(want)
        assert len(got) == len(want) <= 7
        assert (batch.time_gaps[row][batch.mask[row]] > 0).all()
        assert not batch.mask[row][: 7 - len(want)].any()  # padding on the left, most recent last


def test_most_recent_event_is_last() -> None:
    ev = HistoryEvents.build(np.array([1, 1, 1]), np.array([30, 10, 20]), np.array([3, 1, 2]), np.ones(3, int),
                             np.ones(3), np.arange(3))
    start, end = ev.windows(np.array([1]), np.array([31]), 5)
    b = ev.gather(start, end, np.array([31]), 5)
    assert b.items.tolist() == [[0, 0, 1, 2, 3]]
    assert b.time_gaps.tolist() == [[0, 0, 21, 11, 1]]


def test_empty_event_pool() -> None:
    ev = HistoryEvents.build(*(np.array([], dtype=np.int64) for _ in range(6)))
    start, end = ev.windows(np.array([1, 2]), np.array([5, 6]), 4)
    b = ev.gather(start, end, np.array([5, 6]), 4)
    assert not b.mask.any() and b.items.shape == (2, 4)
