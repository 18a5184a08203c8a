"""Metrics as pure functions: arrays in, floats out. No imports from the rest of the package.

Example:
    >>> auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
"""

from __future__ import annotations

import numpy as np

__all__ = ["auc", "by_group", "logloss"]


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN when one class is absent."""
    y = np.asarray(y).astype(bool).ravel()
    score = np.asarray(score, dtype=np.float64).ravel()
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    # average rank (1-based) of each run of tied scores
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], score.size]
    avg = (starts + ends + 1) / 2.0
    ranks = np.empty(score.size)
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def logloss(y: np.ndarray, prob: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities, clipped to [eps, 1 - eps]."""
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.clip(np.asarray(prob, dtype=np.float64).ravel(), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def by_group(metric: str, y: np.ndarray, score: np.ndarray, group: np.ndarray) -> dict[int, float]:
    """A metric ('auc' or 'logloss') per group value (per scenario, say)."""
    if metric not in ("auc", "logloss"):
        raise ValueError(f"metric must be 'auc' or 'logloss'. Got {metric!r}.")
    fn = auc if metric == "auc" else logloss
    return {int(g): float(fn(y[group == g], score[group == g])) for g in np.unique(group)}
