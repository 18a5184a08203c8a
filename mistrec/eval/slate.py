"""Filling a scene's display slots from a ranked list: the interaction-optimisation step on top of ranking.

A VR showroom has a fixed number of shelves, a game lobby a grid of tiles: what is shown is a set, and the set
should not be twelve variations of one thing. `fill_slots` fills `slots` positions greedily from scored
candidates, each step taking the candidate with the highest

    (1 - diversity) * p(click) - diversity * max cosine similarity to the items already placed

among those whose category has not reached `per_category` (maximal marginal relevance, Carbonell & Goldstein
1998, under a per-category cap). `diversity` 0 with no cap is the top of the ranked list. The slate is reported
with its expected clicks (the sum of the placed items' click probabilities: every slot is in view, as shelves of
a scene are; the figure is as good as the model's calibration), the categories it covers, and its intra-list
similarity, next to the same figures for the plain top of the list, so the price of diversity is visible.

Example:
    >>> s = fill_slots(np.array([0.9, 0.8, 0.7, 0.2]), np.array(["a", "a", "a", "b"]), slots=2, per_category=1)
    >>> s.chosen.tolist(), round(s.expected_clicks, 2)
    ([0, 3], 1.1)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mistrec.errors import ConfigError

__all__ = ["Slate", "SlateFiller", "fill_slots", "item_categories"]


@dataclass(frozen=True)
class Slate:
    """The filled slots: positions into the candidates, in slot order, with the slate's figures."""

    chosen: np.ndarray  # (n_filled,) int positions into the candidate arrays
    expected_clicks: float
    categories: int  # distinct categories among the placed items
    category_coverage: float  # of the candidates' distinct categories
    intra_list_similarity: float | None  # mean pairwise cosine of the placed items' vectors (None without vectors)
    unfilled: int  # slots left empty: the caps allowed no more candidates
    top_of_list: dict[str, Any] = field(default_factory=dict)  # the same figures for the plain top `slots`

    def to_dict(self) -> dict[str, Any]:
        return {"slots_filled": len(self.chosen), "unfilled": self.unfilled,
                "expected_clicks": round(self.expected_clicks, 4), "categories": self.categories,
                "category_coverage": round(self.category_coverage, 4),
                "intra_list_similarity": None if self.intra_list_similarity is None else
                round(self.intra_list_similarity, 4), "top_of_list": self.top_of_list}


def _figures(p: np.ndarray, categories: np.ndarray, unit: np.ndarray | None, chosen: np.ndarray
             ) -> tuple[float, int, float, float | None]:
    cats = len(np.unique(categories[chosen]))
    coverage = cats / max(1, len(np.unique(categories)))
    ils = None
    if unit is not None and len(chosen) > 1:
        sim = unit[chosen] @ unit[chosen].T
        n = len(chosen)
        ils = float((sim.sum() - np.trace(sim)) / (n * (n - 1)))
    return float(p[chosen].sum()), cats, coverage, ils


def fill_slots(p: np.ndarray, categories: np.ndarray, vectors: np.ndarray | None = None, *, slots: int = 12,
               per_category: int | None = 3, diversity: float = 0.3) -> Slate:
    """Fills `slots` positions from candidates with click probabilities `p` (n,), `categories` (n,) and optional
    content or item `vectors` (n, d) for the similarity term.

    Args:
        p: each candidate's click probability.
        categories: each candidate's category (any hashable values; the cap counts equal values).
        vectors: each candidate's vector; without them the similarity term is 0 (caps only).
        slots: positions to fill.
        per_category: the most items of one category in the slate (None: no cap).
        diversity: the weight of the similarity penalty, in [0, 1].
    """
    p = np.asarray(p, dtype=np.float64)
    categories = np.asarray(categories)
    n = len(p)
    if len(categories) != n or (vectors is not None and len(vectors) != n):
        raise ConfigError("fill_slots: p, categories and vectors need one entry per candidate.")
    if slots < 1 or (per_category is not None and per_category < 1) or not 0.0 <= diversity <= 1.0:
        raise ConfigError(f"fill_slots needs slots >= 1, per_category >= 1 (or none) and diversity in [0, 1]. Got "
                          f"slots={slots}, per_category={per_category}, diversity={diversity}.")
    unit = None
    if vectors is not None:
        v = np.asarray(vectors, dtype=np.float64)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        unit = np.where(norms > 0, v / np.where(norms > 0, norms, 1.0), 0.0)
    _, cat_id = np.unique(categories, return_inverse=True)
    counts = np.zeros(cat_id.max(initial=-1) + 1, dtype=np.int64)
    taken = np.zeros(n, dtype=bool)
    max_sim = np.zeros(n)
    chosen: list[int] = []
    for _ in range(min(slots, n)):
        allowed = ~taken if per_category is None else ~taken & (counts[cat_id] < per_category)
        if not allowed.any():
            break
        value = (1.0 - diversity) * p - diversity * max_sim
        i = int(np.flatnonzero(allowed)[np.argmax(value[allowed])])
        chosen.append(i)
        taken[i] = True
        counts[cat_id[i]] += 1
        if unit is not None:
            max_sim = np.maximum(max_sim, unit @ unit[i])
    picked = np.asarray(chosen, dtype=np.int64)
    top = np.argsort(-p, kind="stable")[:min(slots, n)]
    t_clicks, t_cats, t_cov, t_ils = _figures(p, categories, unit, top)
    clicks, cats, cov, ils = _figures(p, categories, unit, picked)
    return Slate(chosen=picked, expected_clicks=clicks, categories=cats, category_coverage=cov,
                 intra_list_similarity=ils, unfilled=slots - len(picked),
                 top_of_list={"expected_clicks": round(t_clicks, 4), "categories": t_cats,
                              "category_coverage": round(t_cov, 4),
                              "intra_list_similarity": None if t_ils is None else round(t_ils, 4)})


def item_categories(ds: Any, column: str | None = None) -> tuple[np.ndarray, str | None]:
    """Per item index, its value of a categorical item feature ('?' where unknown) and the feature's name:
    `column`, or the items table's first categorical feature; all '?' (and None) when there is none."""
    import polars as pl

    n = ds.vocab["item_id"].height + 1
    names = list((ds.manifest["config"].get("items") or {}).get("categorical", []) or [])
    if column is not None and column not in names:
        raise ConfigError(f"--slot-category {column!r} is not a categorical item feature of this data. Known: "
                          f"{', '.join(names) or 'none'}.")
    column = column or (names[0] if names else None)
    out = np.full(n, "?", dtype=object)
    if column is None or "items" not in ds.tables:
        return out, None
    items = ds.tables["items"]
    vocab = ds.vocab[f"items.{column}"]
    values = dict(zip(vocab["index"].to_list(), vocab["value"].cast(pl.Utf8).to_list(), strict=True))
    out[items["item"].to_numpy()] = [values.get(c, "?") for c in items[column].to_list()]
    return out, column


class SlateFiller:
    """Fills a scenario's slots for any user from a Recommender's ranked list (`fill_slots`): the cap counts a
    categorical item feature (`item_categories`), the similarity is that of the items' content vectors when the data
    has them. Both are read once, here, not per request."""

    def __init__(self, rec: Any, category: str | None = None) -> None:
        self.rec = rec
        self.categories, self.category = item_categories(rec.ds, category)
        self.content = rec.ds.content("items")

    def fill(self, user: str, scenario: str, *, slots: int = 12, per_category: int | None = 3,
             diversity: float = 0.3, candidates: int = 60, explain: bool = False, logged: list[Any] | None = None
             ) -> dict[str, Any]:
        """The Recommender's answer for the top `candidates` with `items` replaced by the slate (slot order), each
        item with its category and rank in the list, and the slate's figures under `slate` (the top of the list's
        items too, under `slate.top_of_list.items`). A cold-start answer has no click probabilities: its slots are
        filled in popularity order under the caps alone, and expected clicks are null. `logged`: the user's logged
        events (the service's), read as `Recommender.recommend` reads them."""
        rec = self.rec
        ranked = rec.recommend(user, scenario, k=min(max(candidates, slots), rec.catalogue_size(scenario)),
                               logged=logged)
        names = [it["item"] for it in ranked["items"]]
        idx = rec.item_indices(names)
        cold = bool(ranked.get("cold_start"))
        # popularity order stands in for the scores of a cold start: it ranks, it is not a probability
        p = -np.arange(len(names), dtype=np.float64) if cold else np.array([it["score"] for it in ranked["items"]])
        slate = fill_slots(p, self.categories[idx], None if self.content is None else self.content[idx],
                           slots=slots, per_category=per_category, diversity=0.0 if cold else diversity)
        items = [{"slot": s + 1, "item": names[i], "category": str(self.categories[idx[i]]), "rank": int(i) + 1,
                  "score": ranked["items"][i]["score"]} for s, i in enumerate(slate.chosen)]
        if explain and not cold:
            for item, e in zip(items, rec.explain_items(user, scenario, [it["item"] for it in items], logged=logged),
                               strict=True):
                item["explanation"] = e
        figures = slate.to_dict()
        figures["top_of_list"]["items"] = names[:slots]
        if cold:
            figures["expected_clicks"] = figures["top_of_list"]["expected_clicks"] = None
        return {**ranked, "items": items, "slate": {**figures, "category": self.category, "candidates": len(names),
                                                    "per_category": per_category, "diversity": diversity}}
