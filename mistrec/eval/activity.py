"""Results by activity: how much the user had done in the target scenario before the evaluated rows.

Transfer is for users who have done little or nothing in a scenario, so every per-scenario result is also split
by the user's number of training events in that scenario (docs/evaluation.md). A user's *activity* in scenario s
is the number of their real training interactions in s (sampled negatives are not interactions); the groups are
0, 1-2, 3-5, 6-20 and more than 20. Cold users of the cold-user protocol are group 0 in their target scenario.

Example:
    >>> group_index(np.array([0, 1, 2, 3, 6, 20, 21]))
    array([0, 1, 1, 2, 3, 3, 4], dtype=int8)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from mistrec import metrics

__all__ = ["ACTIVITY_GROUPS", "ActivityCounts", "group_index", "pointwise_by_activity", "ranking_by_activity"]

ACTIVITY_GROUPS = ("0", "1-2", "3-5", "6-20", ">20")
_LOWER = np.array([1, 3, 6, 21])  # a count c is in group searchsorted(_LOWER, c, side="right")


def group_index(counts: np.ndarray) -> np.ndarray:
    """The activity group (an index into ACTIVITY_GROUPS) of each count of training events."""
    return np.searchsorted(_LOWER, np.asarray(counts), side="right").astype(np.int8)


@dataclass(frozen=True)
class ActivityCounts:
    """Each user's number of real training interactions per scenario (dataset indices), looked up per row."""

    keys: np.ndarray  # sorted user * n_scenarios + scenario
    counts: np.ndarray
    n_scenarios: int

    @classmethod
    def from_interactions(cls, interactions: pl.DataFrame, n_scenarios: int) -> ActivityCounts:
        """From a prepared dataset's interactions: the training split, sampled negatives left out."""
        train = interactions.filter(pl.col("split") == "train")
        if "sampled" in train.columns:
            train = train.filter(~pl.col("sampled"))
        c = train.group_by("user", "scenario").len().with_columns(
            (pl.col("user").cast(pl.Int64) * n_scenarios + pl.col("scenario").cast(pl.Int64)).alias("key")).sort("key")
        return cls(keys=c["key"].to_numpy(), counts=c["len"].to_numpy().astype(np.int64), n_scenarios=n_scenarios)

    def of(self, user: np.ndarray, scenario: np.ndarray) -> np.ndarray:
        """The training events of each (user, scenario) pair; 0 for a pair with none."""
        key = np.asarray(user, dtype=np.int64) * self.n_scenarios + np.asarray(scenario, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.keys, key), max(len(self.keys) - 1, 0))
        if not len(self.keys):
            return np.zeros(len(key), dtype=np.int64)
        return np.where(self.keys[pos] == key, self.counts[pos], 0)


def pointwise_by_activity(prob: np.ndarray, label: np.ndarray, user: np.ndarray, scenario: np.ndarray,
                          group: np.ndarray, scenario_names: tuple[str, ...]) -> dict[str, Any]:
    """AUC and LogLoss per scenario and activity group, with rows, positives and users per group.

    `scenario` holds dataset indices (1-based; 0 is unknown). Returns {"groups", "by_scenario": {S: {G: block}},
    "overall": {G: block}}; a group with no rows is absent."""

    def block(m: np.ndarray) -> dict[str, Any]:
        y, p = label[m], prob[m]
        return {"auc": metrics.auc(y, p), "logloss": metrics.logloss(y, p), "n": int(m.sum()),
                "positives": int(y.sum()), "users": int(np.unique(user[m]).size)}

    def groups(m: np.ndarray) -> dict[str, Any]:
        return {name: block(m & (group == g)) for g, name in enumerate(ACTIVITY_GROUPS) if (m & (group == g)).any()}

    by = {scenario_names[s - 1] if s > 0 else "<unknown>": groups(scenario == s) for s in np.unique(scenario)}
    return {"groups": list(ACTIVITY_GROUPS), "by_scenario": by, "overall": groups(np.ones(len(label), dtype=bool))}


def ranking_by_activity(per_query: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Per-query ranking metrics (scenario -> {"group": (Q,), metric: (Q,), ...}) averaged per activity group,
    per scenario and over all scenarios, with the queries in each group."""

    def means(parts: list[dict[str, np.ndarray]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for g, name in enumerate(ACTIVITY_GROUPS):
            sel = [(p, p["group"] == g) for p in parts]
            n = int(sum(int(m.sum()) for _, m in sel))
            if not n:
                continue
            names = [k for k in parts[0] if k not in ("group", "user")]
            out[name] = {k: float(np.concatenate([p[k][m] for p, m in sel]).mean()) for k in names}
            out[name]["n_queries"] = n
        return out

    by = {s: means([q]) for s, q in per_query.items()}
    return {"by_scenario": by, "overall": means(list(per_query.values())) if per_query else {}}
