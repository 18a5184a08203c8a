"""Cleaning: de-duplication, k-core filtering, per-scenario counts, numeric side-feature preprocessing.

Every removed row is counted by reason; numeric preprocessing is fitted on training entities only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from mistrec.data.config import NumericCleaning
from mistrec.errors import DataError

__all__ = ["NumericPreprocessor", "deduplicate", "kcore", "scenario_counts"]


def deduplicate(df: pl.DataFrame, keys: list[str]) -> tuple[pl.DataFrame, int]:
    """Drops repeated events (same keys), keeping the last occurrence in source order."""
    out = df.unique(subset=keys, keep="last", maintain_order=True)
    return out, df.height - out.height


def kcore(df: pl.DataFrame, min_user: int, min_item: int) -> tuple[pl.DataFrame, int, int]:
    """Repeatedly drops users with < min_user and items with < min_item rows until none is left.

    Returns the filtered frame, the rows removed and the number of rounds.
    """
    n0, rounds = df.height, 0
    while min_user > 0 or min_item > 0:
        rounds += 1
        keep = pl.lit(True)
        if min_user > 0:
            keep = keep & (pl.len().over("user_id") >= min_user)
        if min_item > 0:
            keep = keep & (pl.len().over("item_id") >= min_item)
        nxt = df.filter(keep)
        if nxt.height == df.height:
            break
        df = nxt
        if df.height == 0:
            raise DataError(f"k-core filtering (user >= {min_user}, item >= {min_item}) removed every row: "
                            "lower cleaning.kcore.")
    return df, n0 - df.height, rounds


def scenario_counts(df: pl.DataFrame | pl.LazyFrame, user: str = "user_id", item: str = "item_id"
                    ) -> dict[str, dict[str, Any]]:
    """Rows, users, items and positive rate per scenario, plus 'ALL' (a lazy frame: by a streaming scan)."""
    lf = df.lazy()
    stats = [pl.len().alias("rows"), pl.col(user).n_unique().alias("users"), pl.col(item).n_unique().alias("items"),
             pl.col("label").mean().alias("positive_rate")]
    per = lf.group_by("scenario").agg(stats).sort("scenario").collect(engine="streaming")
    out = {str(r["scenario"]): _row(r) for r in per.iter_rows(named=True)}
    out["ALL"] = _row(lf.select(stats).collect(engine="streaming").row(0, named=True))
    return out


def _row(r: dict[str, Any]) -> dict[str, Any]:
    rate = r["positive_rate"]
    return {"rows": int(r["rows"]), "users": int(r["users"]), "items": int(r["items"]),
            "positive_rate": None if rate is None else round(float(rate), 6)}


@dataclass
class NumericPreprocessor:
    """Fill missing values, clip outliers, then standardise numeric columns (scikit-learn contract).

    Args:
        config: the cleaning.numeric section of the dataset YAML.

    Example:
        >>> import numpy as np
        >>> p = NumericPreprocessor(NumericCleaning(fill="mean", outliers="none", scale="minmax"))
        >>> p.fit(np.array([[0.0], [2.0], [np.nan]])).transform(np.array([[np.nan], [4.0]])).ravel().tolist()
        [0.5, 2.0]
    """

    config: NumericCleaning

    def fit(self, x: np.ndarray) -> NumericPreprocessor:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise DataError("Numeric features need at least one training row to fit their preprocessing.")
        c = self.config
        self.n_missing_ = np.isnan(x).sum(axis=0)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: filled with 0 below
            self.fill_ = np.nanmedian(x, axis=0) if c.fill == "median" else np.nanmean(x, axis=0)
        self.fill_ = np.where(np.isnan(self.fill_), 0.0, self.fill_)  # a column missing on every train row
        if c.fill == "knn":
            from sklearn.impute import KNNImputer

            self.knn_ = KNNImputer(n_neighbors=c.knn_neighbors, keep_empty_features=True).fit(x)
        filled = self._fill(x)
        if c.outliers == "iqr":
            q1, q3 = np.percentile(filled, [25, 75], axis=0)
            self.lo_, self.hi_ = q1 - c.iqr_k * (q3 - q1), q3 + c.iqr_k * (q3 - q1)
        elif c.outliers == "zscore":
            mu, sd = filled.mean(axis=0), filled.std(axis=0)
            self.lo_, self.hi_ = mu - c.z_max * sd, mu + c.z_max * sd
        else:
            self.lo_, self.hi_ = np.full(x.shape[1], -np.inf), np.full(x.shape[1], np.inf)
        clipped = np.clip(filled, self.lo_, self.hi_)
        if c.scale == "zscore":
            self.shift_, sd = clipped.mean(axis=0), clipped.std(axis=0)
            self.scale_ = np.where(sd > 0, sd, 1.0)
        elif c.scale == "minmax":
            lo, hi = clipped.min(axis=0), clipped.max(axis=0)
            self.shift_, self.scale_ = lo, np.where(hi > lo, hi - lo, 1.0)
        else:
            self.shift_, self.scale_ = np.zeros(x.shape[1]), np.ones(x.shape[1])
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if not hasattr(self, "scale_"):
            raise RuntimeError("This NumericPreprocessor is not fitted yet: call fit on training rows first.")
        x = np.asarray(x, dtype=np.float64)
        clipped = np.clip(self._fill(x), self.lo_, self.hi_)
        self.n_clipped_ = int((clipped != self._fill(x)).sum())
        return (clipped - self.shift_) / self.scale_

    def _fill(self, x: np.ndarray) -> np.ndarray:
        if self.config.fill == "none":
            return x
        if self.config.fill == "knn":
            return np.asarray(self.knn_.transform(x))
        return np.where(np.isnan(x), self.fill_, x)

    def state(self) -> dict[str, list[float]]:
        """The fitted statistics, for the manifest (so the same transform can be applied when serving)."""
        return {"fill": self.fill_.tolist(), "clip_low": self.lo_.tolist(), "clip_high": self.hi_.tolist(),
                "shift": self.shift_.tolist(), "scale": self.scale_.tolist()}
