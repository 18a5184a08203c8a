from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from mistrec.metrics import auc, by_group, logloss


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
