from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from mistrec.data.cleaning import NumericPreprocessor, kcore
from mistrec.data.config import NumericCleaning


def test_numeric_fill_clip_scale() -> None:
    train = np.array([[1.0], [2.0], [3.0], [4.0], [np.nan], [100.0]])
    p = NumericPreprocessor(NumericCleaning(fill="median", outliers="iqr", iqr_k=1.5, scale="zscore")).fit(train)
    assert p.fill_[0] == 3.0
    q1, q3 = np.percentile([1, 2, 3, 4, 3, 100], [25, 75])
    assert p.hi_[0] == pytest.approx(q3 + 1.5 * (q3 - q1))
    y = p.transform(train)
    assert y.mean() == pytest.approx(0.0) and y.std() == pytest.approx(1.0)
    assert p.n_clipped_ == 1


def test_knn_fill_uses_neighbours() -> None:
    x = np.array([[1.0, 10.0], [1.1, 11.0], [5.0, 50.0], [5.1, np.nan]])
    p = NumericPreprocessor(NumericCleaning(fill="knn", knn_neighbors=1, outliers="none", scale="none")).fit(x)
    assert p.transform(x)[3, 1] == pytest.approx(50.0)


def test_transform_before_fit_is_refused() -> None:
    with pytest.raises(RuntimeError, match="not fitted yet"):
        NumericPreprocessor(NumericCleaning()).transform(np.zeros((1, 1)))


def test_kcore_matches_its_definition() -> None:
    rng = np.random.default_rng(1)
    df = pl.DataFrame({"user_id": rng.integers(0, 50, 3000), "item_id": rng.integers(0, 80, 3000)})
    out, removed, rounds = kcore(df, 45, 28)
    assert out.group_by("user_id").len()["len"].min() >= 45
    assert out.group_by("item_id").len()["len"].min() >= 28
    assert 0 < removed == 3000 - out.height and rounds >= 2
