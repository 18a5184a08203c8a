"""mist's item-to-item transfer (`co_items`): what the other users who took a history's items also took, in any
scenario, weighed per (target, source) scenario pair.

For a row of target scenario t, candidate j and a history whose liked events are items h_l in scenarios s_l:

    co(row) = sum over liked events l of  W[t, s_l] * cos(h_l, j)

with cos(h, j) = c(h, j) / sqrt(n(h) n(j)), c the number of training users with a positive on both items and n an
item's training users (the binary user x item matrix of the training positives, every scenario in one), times
c / (c + lambda) with `shrink` lambda > 0 (item-KNN's damping of a pair that rests on one or two users: two items
taken by one user each, by the same user, have a cosine of 1), kept for each item's `k` most similar items only (by
that similarity), and W (S, S) learned with the rest of the model (zero at the start). With `shrink_new` a row whose
user is new in the row's scenario is scored with that lambda instead, in evaluation (the callers pass `new`), and
with `k_new` < k such a row reads only each item's first `k_new` places of the table (the `k_new` nearest: the table
a fit with k = `k_new` keeps, as the order is the same). With `k_read` < k every row reads the first `k_read` places
(training, and each event in evaluation), and with `own_rows` a row of a user active in its scenario also reads, in
evaluation, its liked events of the row's own scenario through all k places, weighted by `own_weight[t]` instead of
W (held at 0 with `cross_only`): a deeper, within-scenario item-to-item part that training never sees and that
mist's `co_own: auto` weighs on the validation ranking. The
term joins the logit beside the item terms. Why: on the Amazon pairs a cold user's other-domain items say, through
the users who took both, which target items follow, far more than a learned embedding of items seen by 1-3 users
can (benchmarks/cdr_knn_probe.py, docs/benchmarks.md); this is that signal as a term each of whose parts is one
past behaviour.

With `co_scope: cross` (mist's default) only events of scenarios other than the row's are read (W's diagonal is
held at 0): the term is transfer only, and a history wholly in its row's scenario adds nothing.

In training a positive row's own user is one of the c(h, j) users (both are its training positives), which a test
row's user is not (unless they took the item in training too: a repeat); so on those rows the user is left out of
the counts, c - 1, n - 1 (leave-one-out), and the weights learn what the term is worth for a user the counts do
not already contain.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from scipy import sparse
from torch import nn

__all__ = ["CoItems", "cut_table", "damped"]


def damped(cos: Any, count: Any, shrink: Any) -> Any:
    """A pair's cosine times c / (c + shrink), c the users it rests on (`count`); as it is without a shrink. Numpy
    arrays (the table's fit) and tensors (every scoring path) alike; `shrink` a number, or a tensor broadcast against
    `count` (each row's own, 0 for none: c / c, and 0 where c is 0, as the cosine is)."""
    if isinstance(shrink, torch.Tensor):
        return cos * (count / (count + shrink).clamp_min(1e-12))
    return cos * (count / (count + shrink)) if shrink else cos


class CoItems(nn.Module):
    """The co-occurrence table (each item's `k` nearest items by cosine, their co-counts, the items' user counts,
    all buffers saved with the weights) and the learned weights per (target, source) scenario."""

    # the table, ragged: item i's places (its nearest first, at most k) are the slots start[i] to start[i + 1] of
    # `nbr` and `count`; slot 0 is "none" (neighbour 0, count 0), where a place past an item's last reads. Only the
    # filled places are kept: on electronic_cloth at k = 500, 9.5M of the 52.6M a dense (n_items, k) table held
    start: torch.Tensor  # (n_items + 1,) long
    nbr: torch.Tensor  # (1 + places,) int32: the neighbours' model indices (0: none)
    count: torch.Tensor  # (1 + places,) float: users with a training positive on both
    users: torch.Tensor  # (n_items,) float: users with a training positive on the item
    depth: torch.Tensor  # () long: the k the table was made with (a loaded table shallower than k: `refit`)
    own_weight: torch.Tensor | None  # (n_scenarios,) `own_rows`' weight of an active row's own scenario's events

    seen: torch.Tensor  # () long: training rows the term has scored (as BatchNorm's num_batches_tracked)
    fast_rows: torch.Tensor  # () long: the training rows of one epoch (0: the fast part never stops)

    def __init__(self, n_items: int, n_scenarios: int, k: int, cross_only: bool = False, gain: float = 20.0,
                 shrink: float = 0.0, shrink_new: float | None = None, k_new: int | None = None,
                 k_read: int | None = None, own_rows: bool = False) -> None:
        super().__init__()
        self.k = k  # the table's places an item (its k nearest items)
        # the places every row reads, the first (nearest) ones: in training, and in evaluation but for `own_rows`'
        # events (`co_items` where `co_own_items` makes the table deeper); k: all
        self.k_read = k if k_read is None else min(int(k_read), k)
        # ... a row (in evaluation) whose user is new in the row's scenario (`co_items_new`); `k_read`: as every row
        self.k_new = self.k_read if k_new is None else min(int(k_new), k)
        # in evaluation, a row of a user active in its scenario also reads its own scenario's liked events through
        # all k places, weighted by `own_weight` (`co_own`); training never does
        self.own_rows = own_rows
        self.register_buffer("own_weight", torch.zeros(n_scenarios) if own_rows else None)
        # lambda of the damping c / (c + lambda) of each pair's cosine (0: none); part of the model's config, so a
        # saved run is scored with the similarity it was trained with
        self.shrink = float(shrink)
        # ... for the rows (in evaluation) whose user is new in the row's scenario (`co_shrink_new`)
        self.shrink_new = self.shrink if shrink_new is None else float(shrink_new)
        # only events of another scenario than the row's count (W's diagonal held at 0): `co_scope: cross`
        self.cross_only = cross_only
        self.register_buffer("start", torch.ones(n_items + 1, dtype=torch.long))  # no places yet
        self.register_buffer("nbr", torch.zeros(1, dtype=torch.int32))
        self.register_buffer("count", torch.zeros(1))
        self.register_buffer("users", torch.zeros(n_items))
        self.register_buffer("depth", torch.tensor(k))
        # W = gain * fast + weight. Adam moves a parameter by about the learning rate per step whatever its
        # gradient's scale, so at mist's 3e-3 over the few hundred steps an Amazon pair trains for, W alone could not
        # pass ~0.6: `fast` moves W `gain` times faster (`co_gain`). It learns for the first epoch only (the
        # training rows counted in `seen` up to `fast_rows`, set by `fit`); then W goes on at the rest's rate: at
        # 20x for the whole run, W's steps of ~0.06 jittered the logits of a platform that trains thousands of steps
        # (MovieLens-1M genre shelves, the synthetic platforms; docs/models.md, "co_items")
        self.gain = gain
        self.fast = nn.Parameter(torch.zeros(n_scenarios, n_scenarios))
        self.weight = nn.Parameter(torch.zeros(n_scenarios, n_scenarios))
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("fast_rows", torch.zeros((), dtype=torch.long))
        # True: find a candidate among an event's neighbours by comparing it with all k of them, (U, C, L, k), as the
        # exported graph must (ONNX has no binary search); False: by a binary search in the sorted keys
        # item * n_items + neighbour, (U, L, C) lookups of log2(places) steps (`_sorted`)
        self.graph = False
        self._cache: tuple[tuple[tuple[torch.Tensor, int], ...],
                           dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] | None = None
        # the places a loaded table held where it was saved shallower than k (None: as deep as this one)
        self.saved_places: int | None = None

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        saved = state_dict.get(prefix + "nbr")
        if saved is not None and saved.dim() == 2 and prefix + "start" not in state_dict:
            # saved as a dense (n_items, k) table (before 2026-12-06): its filled places (a count of at least one
            # user; each item's are its first) made ragged
            filled = state_dict[prefix + "count"] > 0
            start = torch.zeros(len(saved) + 1, dtype=torch.long)
            start[1:] = filled.sum(1).cumsum(0)
            state_dict[prefix + "start"] = start + 1
            state_dict[prefix + "nbr"] = torch.cat([saved.new_zeros(1), saved[filled]]).to(torch.int32)
            state_dict[prefix + "count"] = torch.cat([state_dict[prefix + "count"].new_zeros(1),
                                                      state_dict[prefix + "count"][filled]])
            state_dict[prefix + "depth"] = torch.tensor(saved.shape[1])
        if prefix + "start" in state_dict:
            depth = int(state_dict[prefix + "depth"])
            if depth > self.k:
                # made deeper than this model reads (a `co_own` run loaded without it): its first k places are the
                # table a fit at k makes (one order)
                state_dict[prefix + "start"], state_dict[prefix + "nbr"], state_dict[prefix + "count"] = cut_table(
                    state_dict[prefix + "start"], state_dict[prefix + "nbr"], state_dict[prefix + "count"], self.k)
            elif depth < self.k:
                # made shallower than this one (a run loaded with a deeper `co_own_items`): its places are the first
                # ones; `refit` makes the rest from the training rows (benchmarks/rechoose.py does)
                self.saved_places = depth
            state_dict[prefix + "depth"] = self.depth.clone()
            for name in ("nbr", "count"):  # the table's size is the saved one's
                mine = getattr(self, name)
                setattr(self, name, mine.new_empty(state_dict[prefix + name].shape))
            self._cache = None
        if self.own_weight is not None and prefix + "own_weight" not in state_dict:
            state_dict[prefix + "own_weight"] = torch.zeros_like(self.own_weight)  # saved without `co_own`: 0
        elif self.own_weight is None:
            state_dict.pop(prefix + "own_weight", None)  # saved with `co_own`, loaded without it: its part unread
        if prefix + "fast" not in state_dict and prefix + "weight" in state_dict:
            # saved before the weights had two parts (2026-12-03): `weight` was W / gain, learned at the gain
            old = state_dict[prefix + "weight"]
            state_dict[prefix + "fast"], state_dict[prefix + "weight"] = old, torch.zeros_like(old)
            state_dict.setdefault(prefix + "seen", torch.zeros((), dtype=torch.long))
            state_dict.setdefault(prefix + "fast_rows", torch.zeros((), dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def count_rows(self, n: int) -> None:
        """Counts `n` training rows scored (every rank's, under DDP: each process sees its share of an epoch)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            n *= torch.distributed.get_world_size()
        self.seen += n

    def matrix(self) -> torch.Tensor:
        """W (S, S); in training after the first epoch `fast` gets no gradient (Adam skips it)."""
        fast: torch.Tensor = self.fast
        if self.training and 0 < int(self.fast_rows) <= int(self.seen):
            fast = fast.detach()
        return self.gain * fast + self.weight

    def fit(self, pairs: Iterable[tuple[np.ndarray, np.ndarray]], rows: int = 0, chunk: int = 2048) -> None:
        """The table from (users, items) of training positives (model indices), given a chunk at a time; `rows`:
        the training rows of an epoch (how long `fast` learns; 0: throughout)."""
        us, its = [], []
        for u, i in pairs:
            us.append(np.asarray(u, dtype=np.int64))
            its.append(np.asarray(i, dtype=np.int64))
        n_items = self.users.shape[0]
        u = np.concatenate(us) if us else np.zeros(0, dtype=np.int64)
        i = np.concatenate(its) if its else np.zeros(0, dtype=np.int64)
        m = sparse.csr_matrix((np.ones(u.size, dtype=np.float32), (u, i)), shape=(int(u.max(initial=0)) + 1, n_items))
        m.data[:] = 1.0  # a user who took an item twice counts once
        n = np.asarray(m.sum(axis=0)).ravel()
        mt = m.T.tocsr()
        lengths = np.zeros(n_items, dtype=np.int64)
        nbrs, counts = [np.zeros(1, dtype=np.int32)], [np.zeros(1, dtype=np.float32)]  # slot 0: none
        for lo in range(0, n_items, chunk):
            co = (mt[lo:lo + chunk] @ m).tocsr()  # (chunk, n_items) co-counts
            for r in range(co.shape[0]):
                a, b = co.indptr[r], co.indptr[r + 1]
                cols, vals = co.indices[a:b], co.data[a:b]
                keep = cols != lo + r  # an item is not its own neighbour
                cols, vals = cols[keep], vals[keep]
                if cols.size == 0:
                    continue
                cos = damped(vals / np.sqrt(n[lo + r] * n[cols]), vals, self.shrink)
                top = np.argsort(-cos, kind="stable")[:self.k]
                lengths[lo + r] = top.size
                nbrs.append(cols[top].astype(np.int32))
                counts.append(vals[top].astype(np.float32))
        start = np.ones(n_items + 1, dtype=np.int64)
        start[1:] += np.cumsum(lengths)
        self.start.copy_(torch.from_numpy(start))
        self.nbr = torch.from_numpy(np.concatenate(nbrs)).to(self.nbr.device)
        self.count = torch.from_numpy(np.concatenate(counts)).to(self.count.device)
        self.users.copy_(torch.from_numpy(n.astype(np.float32)))
        self._cache = None
        self.fast_rows.fill_(rows)
        self.seen.zero_()

    def refit(self, pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
        """A loaded table made again at this depth from the same training positives (`fit`'s), the training
        counters kept; its first places must be the saved ones (one order), else ValueError: the rows are not the
        ones the run was trained on."""
        saved = self.start, self.nbr, self.count
        seen, fast_rows = self.seen.clone(), self.fast_rows.clone()
        self.start = self.start.clone()
        self.fit(pairs)
        kept = self.saved_places if self.saved_places is not None else self.k
        made = cut_table(self.start, self.nbr, self.count, kept)
        if not all(torch.equal(a, b) for a, b in zip(made, saved, strict=True)):
            self.start, self.nbr, self.count = saved
            self._cache = None
            raise ValueError("co_items' table made again from these training rows does not begin with the saved one")
        self.seen.copy_(seen)
        self.fast_rows.copy_(fast_rows)
        self.saved_places = None

    def _cosine(self, count: torch.Tensor, n_h: torch.Tensor, n_j: torch.Tensor, own: torch.Tensor | None,
                new: torch.Tensor | None = None) -> torch.Tensor:
        """c / sqrt(n_h n_j), times c / (c + shrink) with a shrink, broadcast; `own` (bool, broadcastable): the row's
        user is counted in both (a training positive and a liked event), and is left out of all three; `new` (U,)
        bool, the rows' users new in the row's scenario (`shrink_new`'s rows; count's first dimension is U)."""
        if own is not None:
            d = own.to(count.dtype)
            count, n_h, n_j = count - d, n_h - d, n_j - d
        count = count.clamp_min(0)
        return damped(count / (n_h.clamp_min(1) * n_j.clamp_min(1)).sqrt(), count, self._row_shrink(new, count.dim()))

    def _row_shrink(self, new: torch.Tensor | None, dims: int) -> float | torch.Tensor:
        """The damping's lambda: `shrink`, or with `new` (U,) given and `shrink_new` different, each row's (U, 1, ...)
        of `dims` dimensions: `shrink_new` where the row's user is new in its scenario."""
        if new is None or self.shrink_new == self.shrink:
            return self.shrink
        lam = torch.where(new, self.shrink_new, self.shrink).to(self.count.dtype)
        return lam.view(-1, *([1] * (dims - 1)))

    def _check_fitted(self) -> None:
        """A table loaded shallower than this one scores nothing until `refit` has made its other places: read as
        it is, the deeper places would silently be none."""
        if self.saved_places is not None:
            raise ValueError(f"co_items' table was saved with {self.saved_places} places an item and this model reads "
                             f"{self.k}: make the rest from the run's training rows first (Mist.refit_co_table, as "
                             "benchmarks/rechoose.py does), or load the run without the deeper setting.")

    def rows(self, items: torch.Tensor, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The table's first `width` (k) places of `items` (...) as (..., width) neighbours (long) and co-counts,
        nearest first; a place past an item's last is none (neighbour 0, count 0)."""
        at = torch.arange(self.k if width is None else width, device=items.device)
        first = self.start[items].unsqueeze(-1)
        slot = torch.where(at < self.start[items + 1].unsqueeze(-1) - first, first + at, 0)
        return self.nbr[slot].long(), self.count[slot]

    def dense(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole table as (n_items, k) neighbours and co-counts (`rows` of every item): for probes and tests;
        n_items x k of them, which the model itself never holds."""
        return self.rows(torch.arange(self.users.shape[0], device=self.start.device))

    def _cosines(self, items: torch.Tensor, own: torch.Tensor | None, new: torch.Tensor | None = None,
                 limit: torch.Tensor | None = None, rows: tuple[torch.Tensor, torch.Tensor] | None = None
                 ) -> torch.Tensor:
        """(..., k) cosines of `items` (...) with their neighbours; `own` (...), `new` (U,): as `_cosine`; `limit`
        (...): the places each reads (`_limits`), the rest 0; `rows`: `rows(items)` where the caller has them."""
        self._check_fitted()
        nbr, count = self.rows(items) if rows is None else rows
        cos = self._cosine(count, self.users[items].unsqueeze(-1), self.users[nbr],
                           None if own is None else own.unsqueeze(-1), new)
        if limit is None:
            return cos
        return cos.masked_fill(torch.arange(cos.shape[-1], device=cos.device) >= limit.unsqueeze(-1), 0.0)

    def _limits(self, scenario: torch.Tensor, hist_scenarios: torch.Tensor, new: torch.Tensor | None
                ) -> torch.Tensor | None:
        """(U, L) the places of its item's table each event reads: `k_read` (training: `new` None), `k_new` in the
        rows of users new in the row's scenario, and with `own_rows` all k for an active row's events of its own
        scenario; None where every event reads every place."""
        if min(self.k_read, self.k_new) >= self.k:
            return None
        if new is None:
            return torch.full_like(hist_scenarios, self.k_read)
        row = torch.where(new, self.k_new, self.k_read).to(hist_scenarios.dtype)  # (U,)
        limit = row.unsqueeze(1).expand_as(hist_scenarios)
        if self.own_rows:
            limit = torch.where(self._own_events(scenario, hist_scenarios, new), self.k, limit)
        return limit

    def _read_limits(self, scenario: torch.Tensor, hist_scenarios: torch.Tensor, new: torch.Tensor | None,
                     weights: torch.Tensor) -> torch.Tensor | None:
        """`_limits`, but 0 for the events of weight 0 where no gradient flows to the weights (evaluation): they add
        nothing, so the table is read only as deep as the others need (an active row's own scenario's events, read
        all k places deep under `co_own` while its weight is held at 0, and the cross events of its own part, are
        none); in training a weight at 0 still learns from its events' cosines, and every limit stays."""
        limit = self._limits(scenario, hist_scenarios, new)
        if limit is None or self.graph or weights.requires_grad:
            return limit
        return torch.where(weights != 0, limit, torch.zeros_like(limit))

    def _own_events(self, scenario: torch.Tensor, hist_scenarios: torch.Tensor, new: torch.Tensor | None
                    ) -> torch.Tensor:
        """(U, L) bool: with `own_rows`, in evaluation (`new` given), the events of an active row's own scenario."""
        if not self.own_rows or new is None:
            return torch.zeros_like(hist_scenarios, dtype=torch.bool)
        return (hist_scenarios == scenario.unsqueeze(1)) & ~new.unsqueeze(1)

    def _reads(self, scenario: torch.Tensor, hist_scenarios: torch.Tensor, liked: torch.Tensor,
               new: torch.Tensor | None = None) -> torch.Tensor:
        """(U, L) the events the term reads: the liked ones, and with `cross_only` only those of another scenario
        than the row's (a scenario described after training included: its own logged events are not read), but
        with `own_rows` in evaluation (`new` given) an active row's own scenario's too."""
        if not self.cross_only:
            return liked
        return liked & ((hist_scenarios != scenario.unsqueeze(1)) | self._own_events(scenario, hist_scenarios, new))

    def event_weights(self, scenario: torch.Tensor, hist_scenarios: torch.Tensor, liked: torch.Tensor,
                      mix: torch.Tensor | None = None, new: torch.Tensor | None = None) -> torch.Tensor:
        """(U, L): W[t, s_l] for each liked event (0 for the rest, and with `cross_only` for events of the row's own
        scenario), but `own_weight[t]` for an active row's own scenario's events with `own_rows` in evaluation
        (`new` given). `mix` (S', S): mist's step 6, scenarios described after training read as a mix of the trained
        ones (W's rows and columns mixed, as the transfer bias's); without it a target past the table reads the mean
        of the trained rows."""
        w = self.matrix()
        if self.cross_only:  # W's diagonal is 0 by definition, so that a mixed row reads none of it either
            w = w * (1 - torch.eye(*w.shape, dtype=w.dtype, device=w.device))
        if mix is not None:
            w = mix @ w @ mix.t()
        known = scenario < w.shape[0]
        rows = torch.where(known.unsqueeze(1), w.index_select(0, scenario.clamp_max(w.shape[0] - 1)),
                           w.mean(0, keepdim=True))  # (U, S)
        weights = rows.gather(1, hist_scenarios.clamp_max(w.shape[1] - 1))
        if self.own_rows and new is not None:
            assert self.own_weight is not None
            own = torch.where(known, self.own_weight.index_select(0, scenario.clamp_max(len(self.own_weight) - 1)),
                              torch.zeros((), dtype=weights.dtype))  # (U,) a scenario past the table: none
            weights = torch.where(self._own_events(scenario, hist_scenarios, new), own.unsqueeze(1), weights)
        return weights * self._reads(scenario, hist_scenarios, liked, new)

    def _sorted(self, depth: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The table's first `depth` places an item as sorted keys item * n_items + neighbour, the co-counts in their
        order and each key's place in its item's table (0 the nearest), made again whenever the table changes (a fit,
        loaded weights); one per depth asked (`k_read` in training, where `co_own` makes the table deeper: the same
        keys as a table of that depth, so training searches what it searched without it)."""
        tables = (self.start, self.nbr, self.count)
        if self._cache is None or any(a is not b or a._version != v
                                      for a, (b, v) in zip(tables, self._cache[0], strict=True)):
            self._cache = (tuple((t, t._version) for t in tables), {})  # the tensors themselves: a new table is another
        made = self._cache[1]
        if depth not in made:
            start, nbr, count = (self.start, self.nbr, self.count) if depth >= self.k else cut_table(*tables, depth)
            item, place = _slots(start)
            # slot 0 (none) as key -1, which no lookup asks for: the keys are never empty
            keys = torch.cat([torch.full((1,), -1, device=item.device), item * self.users.shape[0] + nbr[1:].long()])
            keys, order = keys.sort(stable=True)
            made[depth] = (keys, count[order], torch.cat([place.new_zeros(1), place])[order])
        return made[depth]

    def pair_cosines(self, hist_items: torch.Tensor, candidates: torch.Tensor, own: torch.Tensor | None,
                     new: torch.Tensor | None = None, limit: torch.Tensor | None = None) -> torch.Tensor:
        """(U, C, L) cos(h_l, j) of U histories (U, L) and candidates (U, C) or (1, C), 0 where j is not among h_l's
        kept neighbours; `own` (U, L) bool: the row's user is counted in both, and is left out; `new` (U,) bool: the
        rows damped by `shrink_new`; `limit` (U, L): the places each event reads (`_limits`)."""
        if self.graph:
            rows = self.rows(hist_items)
            cos = self._cosines(hist_items, own, new, limit, rows)  # (U, L, k)
            match = rows[0].unsqueeze(1) == candidates[:, :, None, None]  # (U, C, L, k)
            return (match * cos.unsqueeze(1)).sum(-1)
        self._check_fitted()
        # the places read: every event's `k_read` in training (all of them: `_limits`), more in evaluation
        depth = self.k if limit is None else min(self.k, int(limit.max()) if limit.numel() else 0)
        keys, counts, places = self._sorted(depth)
        n = self.users.shape[0]
        query = (hist_items.unsqueeze(1) * n + candidates.unsqueeze(-1)).contiguous()  # (U, C, L)
        at = torch.searchsorted(keys, query).clamp_max(len(keys) - 1)
        found = keys[at] == query
        if limit is not None:  # a match past the places its event reads is none
            found &= places[at] < limit.unsqueeze(1)
        count = torch.where(found, counts[at], 0.0)
        return self._cosine(count, self.users[hist_items].unsqueeze(1), self.users[candidates].unsqueeze(-1),
                            None if own is None else own.unsqueeze(1), new)

    def _weights(self, scenario: torch.Tensor, hist_scenarios: torch.Tensor, liked: torch.Tensor,
                 mix: torch.Tensor | None, new: torch.Tensor | None, own_part: bool) -> torch.Tensor:
        """(U, L): `event_weights`, or with `own_part` 1 for each liked event of an active row's own scenario that
        `own_rows` reads (a trained scenario's) and 0 for the rest: that part of the term at `own_weight` 1."""
        if not own_part:
            return self.event_weights(scenario, hist_scenarios, liked, mix, new)
        known = (scenario < self.fast.shape[0]).unsqueeze(1)
        return (liked & known & self._own_events(scenario, hist_scenarios, new)).to(self.count.dtype)

    def per_event(self, hist_items: torch.Tensor, hist_scenarios: torch.Tensor, liked: torch.Tensor,
                  scenario: torch.Tensor, candidates: torch.Tensor, own: torch.Tensor | None = None,
                  mix: torch.Tensor | None = None, new: torch.Tensor | None = None, own_part: bool = False
                  ) -> torch.Tensor:
        """(U, C, L) each event's part of the term of U histories (U, L) against candidates (U, C) or (1, C), in
        logit units (what explanations show); `own` (U,): the rows are training positives (leave-one-out, see the
        module); `mix`: as `event_weights`; `new` (U,) bool: the rows' users new in the row's scenario (evaluation:
        damped by `shrink_new`, read to `k_new` places; the active rows' own scenario's events read with
        `own_rows`); `own_part`: only those events' part, at `own_weight` 1 (`_weights`)."""
        if self.cross_only and not self.graph and not bool(self._reads(scenario, hist_scenarios, liked, new).any()):
            # no event reaches the term (a platform whose users stay in one scenario): no lookup
            return self.count.new_zeros(len(hist_items), candidates.shape[1], hist_items.shape[1])
        weights = self._weights(scenario, hist_scenarios, liked, mix, new, own_part)
        cos = self.pair_cosines(hist_items, candidates, None if own is None else own.unsqueeze(1) & liked, new,
                                self._read_limits(scenario, hist_scenarios, new, weights))
        return cos * weights.unsqueeze(1)

    def term(self, hist_items: torch.Tensor, hist_scenarios: torch.Tensor, liked: torch.Tensor,
             scenario: torch.Tensor, candidates: torch.Tensor, own: torch.Tensor | None = None,
             mix: torch.Tensor | None = None, new: torch.Tensor | None = None, own_part: bool = False
             ) -> torch.Tensor:
        """(U, C): `per_event` summed over the history. In the exported graph (evaluation: no `own`) through `scatter`,
        each event's k neighbours added into one row of n_items and the candidates' columns read: comparing C
        candidates with L x k neighbours, (U, C, L, k), would take gigabytes for a catalogue of 100,000 items."""
        if self.graph and own is None:
            columns = self.scatter(hist_items, hist_scenarios, liked, scenario, self.users.shape[0], mix, new,
                                   own_part)
            return columns.gather(1, candidates.expand(len(hist_items), -1))
        return self.per_event(hist_items, hist_scenarios, liked, scenario, candidates, own, mix, new,
                              own_part).sum(-1)

    def scatter(self, hist_items: torch.Tensor, hist_scenarios: torch.Tensor, liked: torch.Tensor,
                scenario: torch.Tensor, n_items: int, mix: torch.Tensor | None = None,
                new: torch.Tensor | None = None, own_part: bool = False) -> torch.Tensor:
        """(U, n_items) terms of U histories against every item, by adding each event's neighbours' cosines into
        the item's column (a catalogue's scores are its columns); `new`, `own_part`: as `per_event`."""
        weights = self._weights(scenario, hist_scenarios, liked, mix, new, own_part)
        limit = self._read_limits(scenario, hist_scenarios, new, weights)
        # as deep as an event reads (the exported graph: every place, its shapes fixed)
        width = self.k if limit is None or self.graph else int(limit.max()) if limit.numel() else 0
        rows = self.rows(hist_items, width)
        cos = self._cosines(hist_items, None, new, limit, rows) * weights.unsqueeze(-1)
        out = cos.new_zeros(len(hist_items), n_items)
        return out.scatter_add_(1, rows[0].flatten(1), cos.flatten(1))


def _slots(start: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each filled slot's (1 on, slot 0 aside) item and place in that item's table (0 the nearest), of a ragged
    table's `start`."""
    item = torch.repeat_interleave(torch.arange(len(start) - 1, device=start.device), start.diff())
    return item, torch.arange(len(item), device=start.device) + 1 - start[item]


def cut_table(start: torch.Tensor, nbr: torch.Tensor, count: torch.Tensor, places: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A ragged table (`CoItems`' start, nbr, count) with each item's first `places` places only: the table a fit
    with k = `places` makes, as the order is the same."""
    keep = torch.cat([torch.ones(1, dtype=torch.bool, device=start.device), _slots(start)[1] < places])
    cut = torch.ones_like(start)
    cut[1:] += start.diff().clamp_max(places).cumsum(0)
    return cut, nbr[keep], count[keep]
