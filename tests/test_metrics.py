from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, ndcg_score, roc_auc_score

from mistrec.metrics import (
    auc,
    by_group,
    coverage,
    ece,
    gauc,
    intra_list_diversity,
    logloss,
    novelty,
    paired_bootstrap,
    ranking_from_ranks,
    weighted_auc,
)


@pytest.mark.parametrize("seed", range(5))
def test_auc_and_logloss_agree_with_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 2000)
    score = np.round(rng.random(2000) + 0.3 * y, 2)  # rounded: many ties
    assert auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    p = np.clip(score / score.max(), 1e-3, 1 - 1e-3)
    assert logloss(y, p) == pytest.approx(log_loss(y, p), abs=1e-12)


def test_auc_edge_cases() -> None:
    assert np.isnan(auc(np.ones(3), np.array([0.1, 0.2, 0.3])))
    assert auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    groups = by_group("auc", np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.8, 0.2]), np.array([1, 1, 2, 2]))
    assert groups == {1: 1.0, 2: 0.0}


@pytest.mark.parametrize("seed", range(3))
def test_weighted_auc_is_the_auc_of_repeated_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    score = np.round(rng.random(500) + 0.3 * y, 1)
    w = rng.integers(0, 4, (3, 500))
    got = weighted_auc(y, score, w)
    for r in range(3):
        assert got[r] == pytest.approx(roc_auc_score(y, score, sample_weight=w[r]), abs=1e-12)
        assert got[r] == pytest.approx(auc(np.repeat(y, w[r]), np.repeat(score, w[r])), abs=1e-12)
    assert weighted_auc(y, score, np.ones(500)) == pytest.approx(auc(y, score), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_gauc_is_the_count_weighted_mean_of_per_user_auc(seed: int) -> None:
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 60, 3000)
    y = rng.integers(0, 2, 3000)
    score = np.round(rng.random(3000) + 0.2 * y, 2)
    value, used, excluded = gauc(y, score, user)
    per, sizes, skipped = [], [], 0
    for u in np.unique(user):
        m = user == u
        if len(np.unique(y[m])) < 2:
            skipped += 1
            continue
        per.append(roc_auc_score(y[m], score[m]))
        sizes.append(m.sum())
    assert value == pytest.approx(np.average(per, weights=sizes), abs=1e-12)
    assert (used, excluded) == (len(per), skipped)


def test_gauc_counts_single_class_users() -> None:
    value, used, excluded = gauc(np.array([1, 1, 0, 1]), np.array([0.1, 0.2, 0.3, 0.9]), np.array([7, 7, 8, 8]))
    assert (value, used, excluded) == (1.0, 1, 1)
    assert np.isnan(gauc(np.ones(3), np.zeros(3), np.arange(3))[0])


def test_ece_against_a_direct_computation() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(5000)
    y = (rng.random(5000) < p ** 2).astype(int)  # miscalibrated on purpose
    bins = np.minimum((p * 10).astype(int), 9)
    want = sum(abs(y[bins == b].mean() - p[bins == b].mean()) * (bins == b).mean() for b in range(10))
    assert ece(y, p, n_bins=10) == pytest.approx(want, abs=1e-12)
    assert ece(y, p) > 0.05
    perfect = rng.random(200_000)
    assert ece((rng.random(200_000) < perfect).astype(int), perfect) < 0.01


def test_ranking_metrics_against_scikit_learn_and_brute_force() -> None:
    rng = np.random.default_rng(1)
    n_queries, n_items, k = 40, 30, 10
    ranks, query, ndcg_sk = [], [], []
    rel = rng.random((n_queries, n_items)) < 0.1
    rel[np.arange(n_queries), rng.integers(0, n_items, n_queries)] = True  # every query has a relevant item
    scores = rng.random((n_queries, n_items))
    for q in range(n_queries):
        order = np.argsort(-scores[q])
        r = np.flatnonzero(rel[q][order]) + 1
        ranks.append(r)
        query.append(np.full(len(r), q))
        ndcg_sk.append(ndcg_score(rel[q:q + 1].astype(float), scores[q:q + 1], k=k))
    got = ranking_from_ranks(np.concatenate(ranks), np.concatenate(query), n_queries, k)
    np.testing.assert_allclose(got["ndcg"], ndcg_sk, atol=1e-12)
    np.testing.assert_allclose(got["hr"], [float(r.min() <= k) for r in ranks])
    np.testing.assert_allclose(got["recall"], [(r <= k).sum() / len(r) for r in ranks])
    np.testing.assert_allclose(got["mrr"], [1.0 / r.min() for r in ranks])


def test_beyond_accuracy_metrics() -> None:
    top = np.array([[0, 1], [0, 2]])
    assert coverage(top, 6) == pytest.approx(0.5)
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert intra_list_diversity(top, vectors) == pytest.approx(0.5)  # list 1 identical (0), list 2 orthogonal (1)
    assert novelty(top, np.array([0.5, 0.25, 0.125])) == pytest.approx((1 + 1 + 2 + 3) / 4)


def test_paired_bootstrap_finds_a_real_difference_and_not_a_fake_one() -> None:
    rng = np.random.default_rng(0)
    user = np.repeat(np.arange(300), 10)
    y = rng.integers(0, 2, 3000)
    good = y + rng.normal(0, 0.8, 3000)
    bad = y + rng.normal(0, 2.0, 3000)
    real = paired_bootstrap(y, good, bad, user, n_boot=300)
    assert real["diff"] > 0.1 and real["ci_low"] > 0 and real["p_value"] < 0.01
    same = paired_bootstrap(y, np.stack([good, bad]), np.stack([good, bad]), user, n_boot=300)
    assert same["diff"] == 0.0 and same["p_value"] == 1.0
    noise = paired_bootstrap(y, good, good + rng.normal(0, 0.01, 3000), user, n_boot=300)
    assert noise["p_value"] > 0.05
