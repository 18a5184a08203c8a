"""benchmarks/warm_sampled_ceiling.py: its lists, its item-to-item scores and its NDCG, on tiny data where each can be
worked out by hand (the figures in docs/benchmarks.md, "How far the warm sampled lists go", rest on them)."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from tests.eval.benchmark_scripts import load

ceiling = load("warm_sampled_ceiling")


def _positives() -> pl.DataFrame:
    """Users 1-6, target domain 1 (items 1-8), other domain 2 (items 9-12); each user's last target item tests."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(1, 7):
        target = rng.choice(np.arange(1, 9), size=4, replace=False)
        other = rng.choice(np.arange(9, 13), size=2, replace=False)
        rows += [(u, int(i), 1, "train") for i in target[:2]]
        rows += [(u, int(target[2]), 1, "valid"), (u, int(target[3]), 1, "test")]
        rows += [(u, int(i), 2, "train") for i in other]
    return pl.DataFrame(rows, schema=["user", "item", "scenario", "split"], orient="row")


def test_ndcg_counts_ties_against_the_held_out_item() -> None:
    scores = np.array([[1.0, 0.5, 0.2], [1.0, 1.0, 0.2], [0.1, 0.5, 0.2]])
    rank = np.array([1, 2, 3])
    np.testing.assert_allclose(ceiling._ndcg(scores), 1 / np.log2(rank + 1))
    many = np.zeros((1, 12))
    assert ceiling._ndcg(many)[0] == 0.0  # tied with 11 others: rank 12, outside the top ten


def test_lists_hold_the_held_out_item_first_and_no_item_the_user_took(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ceiling, "SAMPLED", 3)
    pos = _positives()
    catalogue = np.arange(1, 9)
    for split, seen_splits in (("valid", ["train"]), ("test", ["train", "valid"])):
        users, cands = ceiling._lists(pos, split, 1, catalogue, max_queries=10, seed=0)
        assert cands.shape == (6, 4)
        for u, row in zip(users, cands, strict=True):
            mine = pos.filter((pl.col("user") == u) & (pl.col("scenario") == 1))
            assert row[0] == mine.filter(pl.col("split") == split)["item"][0]
            taken = set(mine.filter(pl.col("split").is_in(seen_splits))["item"].to_list())
            assert not taken & set(row[1:].tolist()) and len(set(row.tolist())) == 4
    users, _ = ceiling._lists(pos, "test", 1, catalogue, max_queries=4, seed=0)
    assert len(users) == 4 and np.all(np.diff(users) > 0)  # a seeded sample of the users, in order


def test_item_to_item_scores_are_the_cosine_sums_and_the_table_cut_keeps_the_nearest() -> None:
    pos = _positives()
    train = pos.filter(pl.col("split") == "train")
    n_users, n_items = 7, 13
    domain_of = np.zeros(n_items, np.int64)
    domain_of[1:9], domain_of[9:13] = 1, 2
    users = np.array([1, 2, 3])
    cands = np.tile(np.arange(1, 9), (3, 1))
    within, cross = ceiling.Neighbours(train, n_users, n_items).scores(users, cands, domain_of, 1)
    x = np.zeros((n_users, n_items))
    x[train["user"].to_numpy(), train["item"].to_numpy()] = 1.0
    deg = x.sum(0)
    cos = (x.T @ x) / np.sqrt(np.outer(np.maximum(deg, 1), np.maximum(deg, 1)))
    for q, u in enumerate(users):
        mine = np.flatnonzero(x[u])
        for part, got in ((mine[domain_of[mine] == 1], within), (mine[domain_of[mine] == 2], cross)):
            np.testing.assert_allclose(got[q], cos[part][:, cands[q]].sum(0), rtol=1e-5, atol=1e-6)
    # a table deep enough for every neighbour gives the same sums, less each item's cosine with itself (the table
    # holds no item as its own neighbour; held-out items are never the user's own, so the lists never meet it)
    full_w, full_c = ceiling.Neighbours(train, n_users, n_items, k=12).scores(users, cands, domain_of, 1)
    for q, u in enumerate(users):
        own = np.isin(cands[q], np.flatnonzero(x[u]))
        np.testing.assert_allclose(full_w[q][~own], within[q][~own], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(full_c[q], cross[q], rtol=1e-5, atol=1e-6)
    # cut to one neighbour an item, only each history item's nearest can score
    cut = ceiling.Neighbours(train, n_users, n_items, k=1)
    cut_w, _ = cut.scores(users, cands, domain_of, 1)
    assert np.all(cut_w <= full_w + 1e-6) and np.count_nonzero(cut_w) < np.count_nonzero(full_w)
    places = cut.stats["table_places"]  # what fills the places, counted from the same table
    assert places["filled"] == np.count_nonzero(cut.nbr) and 0 <= places["share_co_users_1"] <= 1


def test_the_stack_chosen_is_the_grids_best_and_the_count_wins_ties() -> None:
    rng = np.random.default_rng(1)
    f = {"count": rng.integers(0, 5, (40, 6)).astype(float), "knn_within": rng.random((40, 6)),
         "knn_cross": np.zeros((40, 6))}
    (a, b), figures = ceiling._best(f)
    assert figures[f"{a},{b}"] == max(figures.values())
    assert len(figures) == len(list(itertools.product(ceiling.GRID, ceiling.GRID)))
    flat = {"count": np.ones((5, 4)), "knn_within": np.zeros((5, 4)), "knn_cross": np.zeros((5, 4))}
    assert ceiling._best(flat)[0] == (0.0, 0.0)
