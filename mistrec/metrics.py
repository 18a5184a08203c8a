"""Metrics as pure functions: arrays in, floats out. No imports from the rest of the package.

Example:
    >>> auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
"""

from __future__ import annotations

import numpy as np

__all__ = ["auc", "by_group", "conversion_aucs", "coverage", "ece", "gauc", "intra_list_diversity", "logloss",
           "novelty", "paired_bootstrap", "ranking_from_ranks", "scenario_aucs", "weighted_auc"]


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


def scenario_aucs(y: np.ndarray, score: np.ndarray, scenario: np.ndarray) -> tuple[float, dict[int, float], float]:
    """AUC over all rows, per scenario (per value of `scenario`, in sorted order), and the mean of the scenarios'
    AUCs that exist (NaN when none does): the trainer's early-stopping score, and evaluation's
    `mean_scenario_auc`."""
    per = {int(s): auc(y[scenario == s], score[scenario == s]) for s in np.unique(scenario)}
    known = [v for v in per.values() if not np.isnan(v)]
    return auc(y, score), per, float(np.mean(known)) if known else float("nan")


def conversion_aucs(click: np.ndarray, conversion: np.ndarray, p_click: np.ndarray, p_cvr: np.ndarray
                    ) -> tuple[float, float]:
    """ESMM's two AUCs on rows whose conversion is known: CVR AUC (p(conversion | click) on the clicked rows,
    against conversion) and CTCVR AUC (p(click) * p(conversion | click) on every row, against click and
    conversion)."""
    clicked = click > 0
    return auc(conversion[clicked], p_cvr[clicked]), auc(click * conversion, p_click * p_cvr)


def weighted_auc(y: np.ndarray, score: np.ndarray, weight: np.ndarray) -> np.ndarray | float:
    """AUC with sample weights (ties count one half), for one weight vector (n,) or many at once (R, n).

    With integer weights it is the AUC of the data with each row repeated `weight` times: what a bootstrap
    resample is. The scores are sorted once for all R weightings. NaN where a weighting leaves one class empty.
    """
    y = np.asarray(y).astype(bool).ravel()
    score = np.asarray(score, dtype=np.float64).ravel()
    w = np.atleast_2d(np.asarray(weight, dtype=np.float64))
    order = np.argsort(score, kind="mergesort")
    s, yy, w = score[order], y[order], w[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # runs of tied scores
    w_pos, w_neg = w * yy, w * ~yy
    run_pos = np.add.reduceat(w_pos, starts, axis=1)  # (R, runs)
    run_neg = np.add.reduceat(w_neg, starts, axis=1)
    neg_below = np.cumsum(run_neg, axis=1) - run_neg  # negatives strictly below each run
    num = (run_pos * (neg_below + 0.5 * run_neg)).sum(axis=1)
    den = run_pos.sum(axis=1) * run_neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    return float(out[0]) if np.ndim(weight) == 1 else out


def gauc(y: np.ndarray, score: np.ndarray, group: np.ndarray) -> tuple[float, int, int]:
    """Group AUC (Zhou et al., DIN): the AUC within each group (user), averaged with the group's sample count
    as weight. Groups with one class only have no AUC: they are excluded, and counted.

    Returns (gAUC, groups used, groups excluded); gAUC is NaN when no group has both classes.
    """
    y = np.asarray(y).astype(bool).ravel()
    score = np.asarray(score, dtype=np.float64).ravel()
    group = np.asarray(group).ravel()
    if y.size == 0:
        return float("nan"), 0, 0
    _, g = np.unique(group, return_inverse=True)
    order = np.lexsort((score, g))
    gs, ss, ys = g[order], score[order], y[order]
    n = y.size
    new_group = np.r_[True, gs[1:] != gs[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    run_start_flag = new_group | np.r_[True, ss[1:] != ss[:-1]]
    run_starts = np.flatnonzero(run_start_flag)
    run_ends = np.r_[run_starts[1:], n]
    run_id = np.cumsum(run_start_flag) - 1
    # average 1-based rank of each tie run, within its group
    avg = (run_starts + run_ends + 1) / 2.0 - group_start[run_starts]
    rank = avg[run_id]
    n_groups = int(gs[-1]) + 1
    size = np.bincount(gs, minlength=n_groups).astype(np.float64)
    n_pos = np.bincount(gs, weights=ys, minlength=n_groups)
    n_neg = size - n_pos
    pos_rank = np.bincount(gs, weights=rank * ys, minlength=n_groups)
    ok = (n_pos > 0) & (n_neg > 0)
    if not ok.any():
        return float("nan"), 0, int(n_groups)
    per = (pos_rank[ok] - n_pos[ok] * (n_pos[ok] + 1) / 2.0) / (n_pos[ok] * n_neg[ok])
    return float(np.average(per, weights=size[ok])), int(ok.sum()), int((~ok).sum())


def ece(y: np.ndarray, prob: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error: |mean label - mean probability| per equal-width probability bin, weighted
    by the bin's share of samples (Guo et al., 2017, for the positive class)."""
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.clip(np.asarray(prob, dtype=np.float64).ravel(), 0.0, 1.0)
    if y.size == 0:
        return float("nan")
    b = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    gap = np.abs(np.bincount(b, weights=y, minlength=n_bins) - np.bincount(b, weights=p, minlength=n_bins))
    return float(gap.sum() / y.size)


def ranking_from_ranks(pos_rank: np.ndarray, query: np.ndarray, n_queries: int, k: int) -> dict[str, np.ndarray]:
    """Per-query top-K metrics from the 1-based ranks of each query's relevant items among its candidates.

    Args:
        pos_rank: the rank of every relevant item, flat over queries.
        query: the query (0 .. n_queries - 1) each rank belongs to; every query has at least one.
        k: the cut-off.

    Returns per-query arrays: hr (a relevant item in the top K), recall (relevant items in the top K / relevant
    items, as RecBole), ndcg (binary gain, ideal DCG over min(relevant, K) items), mrr (1 / best rank, no
    cut-off).
    """
    pos_rank = np.asarray(pos_rank, dtype=np.int64)
    query = np.asarray(query, dtype=np.int64)
    n_rel = np.bincount(query, minlength=n_queries).astype(np.float64)
    hit = pos_rank <= k
    hits = np.bincount(query, weights=hit, minlength=n_queries)
    dcg = np.bincount(query, weights=np.where(hit, 1.0 / np.log2(pos_rank + 1.0), 0.0), minlength=n_queries)
    ideal_cum = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))]
    idcg = ideal_cum[np.minimum(n_rel, k).astype(np.int64)]
    best = np.full(n_queries, np.iinfo(np.int64).max)
    np.minimum.at(best, query, pos_rank)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"hr": (hits > 0).astype(np.float64), "recall": hits / n_rel, "ndcg": dcg / idcg,
                "mrr": 1.0 / best}


def coverage(top_items: np.ndarray, catalogue_size: int) -> float:
    """Share of the catalogue that appears in at least one top-K list."""
    return float(np.unique(np.asarray(top_items).ravel()).size / catalogue_size) if catalogue_size else float("nan")


def intra_list_diversity(top_items: np.ndarray, item_vectors: np.ndarray) -> float:
    """Mean over lists of the mean pairwise cosine distance (1 - cosine) between a list's items
    (Ziegler et al., 2005). `top_items` (Q, K) indexes rows of `item_vectors`; a zero vector has distance 1."""
    top_items = np.asarray(top_items)
    if top_items.shape[1] < 2:
        return float("nan")
    v = np.asarray(item_vectors, dtype=np.float64)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    unit = np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)[top_items]  # (Q, K, D)
    sim = unit @ unit.transpose(0, 2, 1)  # (Q, K, K)
    k = top_items.shape[1]
    off_diag = (sim.sum(axis=(1, 2)) - np.trace(sim, axis1=1, axis2=2)) / (k * (k - 1))
    return float(np.mean(1.0 - off_diag))


def novelty(top_items: np.ndarray, popularity: np.ndarray) -> float:
    """Mean self-information -log2 p(i) of recommended items, p(i) the share of training users who interacted
    with item i (items no training user saw count as 1 / (users + 1))."""
    p = np.asarray(popularity, dtype=np.float64)[np.asarray(top_items).ravel()]
    return float(np.mean(-np.log2(p))) if p.size else float("nan")


def paired_bootstrap(y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, group: np.ndarray,
                     n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Bootstrap over groups (test users) of AUC(a) - AUC(b) on the same rows.

    `score_a` and `score_b` may be (n,) or (seeds, n): with several seeds each resample's difference is the
    mean over seeds of the per-seed differences (the same resample for every seed). Returns the observed
    difference, a 95% interval and a two-sided p-value (twice the smaller tail share of resampled differences
    on either side of zero, at least 1 / n_boot).
    """
    a, b = np.atleast_2d(score_a), np.atleast_2d(score_b)
    _, g = np.unique(np.asarray(group).ravel(), return_inverse=True)
    rng = np.random.default_rng(seed)
    n_groups = int(g.max()) + 1
    parts = []
    for lo in range(0, n_boot, 100):  # 100 resamples at a time: (100, n) weights, not (n_boot, n)
        counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=min(100, n_boot - lo))
        w = counts[:, g]  # each row weighted by how often its user was drawn
        parts.append(np.mean([np.asarray(weighted_auc(y, a[i], w)) - np.asarray(weighted_auc(y, b[i], w))
                              for i in range(a.shape[0])], axis=0))
    diffs = np.concatenate(parts)
    observed = float(np.mean([auc(y, a[i]) - auc(y, b[i]) for i in range(a.shape[0])]))
    diffs = diffs[~np.isnan(diffs)]
    if diffs.size == 0:
        return {"diff": observed, "ci_low": float("nan"), "ci_high": float("nan"), "p_value": float("nan"),
                "n_boot": 0}
    tail = min(np.mean(diffs <= 0), np.mean(diffs >= 0))
    return {"diff": observed, "ci_low": float(np.quantile(diffs, 0.025)), "ci_high": float(np.quantile(diffs, 0.975)),
            "p_value": float(min(1.0, max(2 * tail, 1.0 / diffs.size))), "n_boot": int(diffs.size)}


def paired_bootstrap_mean(value_a: np.ndarray, value_b: np.ndarray, group: np.ndarray, n_boot: int = 1000,
                          seed: int = 0) -> dict[str, float]:
    """Bootstrap over groups (users) of mean(a) - mean(b) for per-unit values on the same units (per-query NDCG).

    `value_a` and `value_b` may be (n,) or (seeds, n): each resample's difference is then the mean over seeds of
    the per-seed differences. Returns the observed difference, a 95% interval and a two-sided p-value (twice the
    smaller tail share on either side of zero, at least 1 / n_boot), as `paired_bootstrap`.
    """
    d = (np.atleast_2d(value_a) - np.atleast_2d(value_b)).mean(axis=0)  # (n,): the mean over seeds per unit
    if d.size == 0:
        return {"diff": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "p_value": float("nan"),
                "n_boot": 0}
    _, g = np.unique(np.asarray(group).ravel(), return_inverse=True)
    n_groups = int(g.max()) + 1
    per_group = np.bincount(g, weights=d, minlength=n_groups)
    size = np.bincount(g, minlength=n_groups).astype(np.float64)
    rng = np.random.default_rng(seed)
    diffs = np.concatenate([
        (c @ per_group) / np.maximum(c @ size, 1.0) for c in (  # 100 resamples at a time: (100, groups) counts
            rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=min(100, n_boot - lo)).astype(float)
            for lo in range(0, n_boot, 100))])
    tail = float(min(np.mean(diffs <= 0), np.mean(diffs >= 0)))
    return {"diff": float(d.mean()), "ci_low": float(np.quantile(diffs, 0.025)),
            "ci_high": float(np.quantile(diffs, 0.975)), "p_value": float(min(1.0, max(2 * tail, 1.0 / n_boot))),
            "n_boot": int(n_boot)}
