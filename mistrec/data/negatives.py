"""Negative sampling for implicit-only data: per positive, items from its scenario's pool that the user
never interacted with positively, drawn with a seeded generator, all at once (no loop per row).

The pools are staged by split: a training positive draws from the items its scenario has training positives
of, a validation positive from those of training and validation, a test positive from all. A pool of every
split's items would name, in training rows, items that first appear in validation or test, always as negatives:
the training data would then say of each new item, before it exists, that nobody wants it (on the Amazon pairs
10-12% of the training negatives were such items; docs/protocols.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FreshNegatives", "SampledNegatives", "ScenarioPools", "expected_rows", "sample_negatives", "staged_pools"]


class ScenarioPools:
    """The distinct items seen in each scenario, concatenated, with offsets; `draw` picks one uniformly from
    each given scenario's pool (vectorised)."""

    def __init__(self, scenario: np.ndarray, item: np.ndarray) -> None:
        n_items = int(item.max(initial=0)) + 1
        pairs = np.unique(scenario.astype(np.int64) * n_items + item)
        self.keys, self.n_items = pairs, n_items
        pool_scen, self.items = pairs // n_items, pairs % n_items
        self.offsets = np.searchsorted(pool_scen, np.arange(int(scenario.max(initial=0)) + 2))

    def draw(self, rng: np.random.Generator, scenario: np.ndarray) -> np.ndarray:
        sizes = self.offsets[scenario + 1] - self.offsets[scenario]
        if (sizes == 0).any():
            raise ValueError(f"Scenario {int(scenario[sizes == 0][0])} has an empty item pool to draw from.")
        return self.items[self.offsets[scenario] + rng.integers(0, sizes)]

    def contains(self, scenario: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Whether each (scenario, item) is in the pools (bool array)."""
        item = item.astype(np.int64)
        inside = (item >= 0) & (item < self.n_items)
        return inside & np.isin(scenario.astype(np.int64) * self.n_items + item, self.keys)


def staged_pools(scenario: np.ndarray, item: np.ndarray, split: np.ndarray) -> tuple[ScenarioPools, ...]:
    """The pools a positive of each split draws from (indexed by split code 0 train, 1 valid, 2 test): the items
    with a positive of that split or an earlier one in the scenario."""
    return tuple(ScenarioPools(scenario[split <= code], item[split <= code]) for code in range(3))


@dataclass(frozen=True)
class SampledNegatives:
    """Negatives drawn for positives: for each, the index of its positive and its item; `unfilled` counts those
    that could not be drawn."""

    source: np.ndarray  # index of the positive each negative was drawn for
    item: np.ndarray
    unfilled: int  # negatives that could not be drawn (the user's positives cover the pool)


def sample_negatives(
    user: np.ndarray, item: np.ndarray, scenario: np.ndarray, per_positive: int, seed: int | list[int],
    max_rounds: int = 50, pools: ScenarioPools | tuple[ScenarioPools, ...] | None = None,
    split: np.ndarray | None = None,
) -> SampledNegatives:
    """Draws `per_positive` negatives for every (positive) interaction.

    Args:
        user, item, scenario: integer arrays of the positive interactions.
        per_positive: negatives per positive.
        seed: the generator's seed.
        max_rounds: redraws for candidates that hit a known positive before giving up on them.
        pools: the scenarios' item pools (by default those of these interactions; a part of the users draws from
            the whole data's: data/parts.py); with `split`, one per split code (`staged_pools`).
        split: each positive's split code (0 train, 1 valid, 2 test): it draws from `pools[code]`, by default the
            items its scenario has positives of in that split or an earlier one, so that a training row never
            names an item that first appears later.

    Example:
        >>> neg = sample_negatives(np.array([1, 1]), np.array([1, 2]), np.array([1, 1]), 1, seed=0)
        >>> neg.unfilled   # user 1 has every item of scenario 1's pool {1, 2} as a positive
        2
    """
    rng = np.random.default_rng(seed)
    if split is None:
        if isinstance(pools, tuple):
            raise ValueError("Pools by split need each positive's split.")
        by_split: tuple[ScenarioPools, ...] = (pools or ScenarioPools(scenario, item),)
        code = np.zeros(len(user), dtype=np.int64)
    else:
        if isinstance(pools, ScenarioPools):
            raise ValueError("With each positive's split, give the pools by split (staged_pools) or none.")
        by_split = pools if pools is not None else staged_pools(scenario, item, split)
        code = split.astype(np.int64)
    top = max(int(p.items.max(initial=0)) for p in by_split)
    n_items = max(int(item.max(initial=0)), top) + 1  # keys of every drawable item
    known = np.unique(user.astype(np.int64) * n_items + item)

    src = np.repeat(np.arange(len(user)), per_positive)
    s, u, c = scenario[src], user[src].astype(np.int64), code[src]
    cand = np.zeros(len(src), dtype=np.int64)
    todo = np.arange(len(src))
    for _ in range(max_rounds):
        if len(todo) == 0:
            break
        draw = np.empty(len(todo), dtype=np.int64)
        for k, pool in enumerate(by_split):
            m = c[todo] == k
            if m.any():
                draw[m] = pool.draw(rng, s[todo][m])
        cand[todo] = draw
        keys = u[todo] * n_items + draw
        pos = np.searchsorted(known, keys)
        hit = known[np.minimum(pos, len(known) - 1)] == keys
        todo = todo[hit]
    ok = np.ones(len(src), dtype=bool)
    ok[todo] = False
    return SampledNegatives(source=src[ok], item=cand[ok], unfilled=len(todo))


def expected_rows(positives: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Each (scenario, item)'s training rows (S, I) with its sampled negatives counted as their expectation under
    `sample_negatives`: the training negatives of a scenario are drawn uniformly from its items with a training
    positive, so each such item expects the pool's negatives over their number, whatever was drawn for it. The
    number drawn is chance (on the Amazon electronic_cloth pair 3.2 a pool item, standard deviation 2.0) and
    reorders items with as many positives at random; with the expectation a rate orders a scenario's items as
    their count of positives does. Items with no training positive keep their rows (the sampler draws none of
    them; any other negative stays where it is), so every row is kept.
    `positives` and `rows`: the positive labels' and the rows' sums (S, I), of training rows whose negatives are
    all sampled. The known-positive redraws make a very popular item's share slightly lower; not modelled.

    Example:
        >>> expected_rows(np.array([[2.0, 1.0, 0.0]]), np.array([[6.0, 1.0, 3.0]]))
        array([[4., 3., 3.]])
    """
    pool = positives > 0
    mean = np.where(pool, rows - positives, 0.0).sum(1, keepdims=True) / np.maximum(pool.sum(1, keepdims=True), 1)
    return np.where(pool, positives + mean, rows)


class FreshNegatives:
    """`negatives: fresh` (TrainConfig): the training rows' sampled negatives drawn again each time a row enters a
    batch, as RecBole's and LightGCN's trainers draw theirs, instead of the one draw made when the data was
    prepared. Each is drawn as `sample_negatives` drew it for a training positive: uniformly from the items its
    scenario has a training positive of, never one of the user's training positives (only training labels are
    known to the trainer). The row keeps everything else (user, scenario, time, history: those of the positive it
    was drawn for). A row whose redraws keep hitting the user's positives keeps the item it has.

    Example:
        >>> fresh = FreshNegatives(np.array([1, 1, 2, 2]), np.array([1, 2, 3, 1]), np.array([1, 1, 1, 1]),
        ...                        np.array([1.0, 0.0, 1.0, 0.0]))
        >>> items = fresh.redraw(np.random.default_rng(0), np.array([1, 2]), np.array([2, 1]), np.array([1, 1]),
        ...                      np.array([0.0, 0.0]))
        >>> bool(items[0] == 3), bool(items[1] == 1)   # user 1's only other pool item is 3; user 2's is 1
        (True, True)
    """

    def __init__(self, user: np.ndarray, item: np.ndarray, scenario: np.ndarray, label: np.ndarray) -> None:
        positive = label > 0
        self.pools = ScenarioPools(scenario[positive], item[positive])
        self.n_items = int(item.max(initial=0)) + 1  # keys of every item (the pools' are among them)
        self.known = np.unique(user[positive].astype(np.int64) * self.n_items + item[positive])
        sizes = np.diff(self.pools.offsets)
        self.drawable = np.flatnonzero(sizes > 0)  # the scenarios with a training positive

    def redraw(self, rng: np.random.Generator, user: np.ndarray, item: np.ndarray, scenario: np.ndarray,
               label: np.ndarray, max_rounds: int = 50) -> np.ndarray:
        """The rows' items (dataset indices), each negative's drawn again; positives' as they are."""
        out = item.astype(np.int64, copy=True)
        todo = np.flatnonzero((label <= 0) & np.isin(scenario, self.drawable))
        u, s = user[todo].astype(np.int64), scenario[todo]
        for _ in range(max_rounds):
            if len(todo) == 0:
                break
            draw = self.pools.draw(rng, s)
            keys = u * self.n_items + draw
            pos = np.searchsorted(self.known, keys)
            hit = self.known[np.minimum(pos, len(self.known) - 1)] == keys
            out[todo[~hit]] = draw[~hit]
            todo, u, s = todo[hit], u[hit], s[hit]
        return out
