"""Negative sampling for implicit-only data: per positive, items from its scenario's pool that the user
never interacted with positively, drawn with a seeded generator, all at once (no loop per row)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SampledNegatives", "ScenarioPools", "sample_negatives"]


class ScenarioPools:
    """The distinct items seen in each scenario, concatenated, with offsets; `draw` picks one uniformly from
    each given scenario's pool (vectorised)."""

    def __init__(self, scenario: np.ndarray, item: np.ndarray) -> None:
        n_items = int(item.max(initial=0)) + 1
        pairs = np.unique(scenario.astype(np.int64) * n_items + item)
        pool_scen, self.items = pairs // n_items, pairs % n_items
        self.offsets = np.searchsorted(pool_scen, np.arange(int(scenario.max(initial=0)) + 2))

    def draw(self, rng: np.random.Generator, scenario: np.ndarray) -> np.ndarray:
        sizes = self.offsets[scenario + 1] - self.offsets[scenario]
        return self.items[self.offsets[scenario] + rng.integers(0, sizes)]


@dataclass(frozen=True)
class SampledNegatives:
    """Negatives drawn for positives: for each, the index of its positive and its item; `unfilled` counts those
    that could not be drawn."""

    source: np.ndarray  # index of the positive each negative was drawn for
    item: np.ndarray
    unfilled: int  # negatives that could not be drawn (the user's positives cover the pool)


def sample_negatives(
    user: np.ndarray, item: np.ndarray, scenario: np.ndarray, per_positive: int, seed: int | list[int],
    max_rounds: int = 50, pools: ScenarioPools | None = None,
) -> SampledNegatives:
    """Draws `per_positive` negatives for every (positive) interaction.

    Args:
        user, item, scenario: integer arrays of the positive interactions.
        per_positive: negatives per positive.
        seed: the generator's seed.
        max_rounds: redraws for candidates that hit a known positive before giving up on them.
        pools: the scenarios' item pools (by default those of these interactions; a part of the users draws from
            the whole data's: data/parts.py).

    Example:
        >>> neg = sample_negatives(np.array([1, 1]), np.array([1, 2]), np.array([1, 1]), 1, seed=0)
        >>> neg.unfilled   # user 1 has every item of scenario 1's pool {1, 2} as a positive
        2
    """
    rng = np.random.default_rng(seed)
    pools = pools or ScenarioPools(scenario, item)
    n_items = max(int(item.max(initial=0)), int(pools.items.max(initial=0))) + 1  # keys of every drawable item
    known = np.unique(user.astype(np.int64) * n_items + item)

    src = np.repeat(np.arange(len(user)), per_positive)
    s, u = scenario[src], user[src].astype(np.int64)
    cand = np.zeros(len(src), dtype=np.int64)
    todo = np.arange(len(src))
    for _ in range(max_rounds):
        if len(todo) == 0:
            break
        draw = pools.draw(rng, s[todo])
        cand[todo] = draw
        keys = u[todo] * n_items + draw
        pos = np.searchsorted(known, keys)
        hit = known[np.minimum(pos, len(known) - 1)] == keys
        todo = todo[hit]
    ok = np.ones(len(src), dtype=bool)
    ok[todo] = False
    return SampledNegatives(source=src[ok], item=cand[ok], unfilled=len(todo))
