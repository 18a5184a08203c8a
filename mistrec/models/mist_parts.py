"""mist's pure pieces (docs/models.md): the item prior fitted before training, and the interest-level shares with
the "no source" choice (`null_interest`). Functions of tensors and arrays, shared by the training forward, the
general candidate path and the catalogue path (mist_rank)."""

from __future__ import annotations

import numpy as np
import torch

from mistrec.data.negatives import expected_rows
from mistrec.features import IndexedRows

__all__ = ["ItemCounts", "interest_shares"]


class ItemCounts:
    """Per (scenario, item) sums over training rows, added a chunk of rows at a time (so that streamed training
    never holds the rows): the rows and the positive labels' sum."""

    def __init__(self, n_scenarios: int, n_items: int) -> None:
        self.shape = (n_scenarios, n_items)
        self.shown = np.zeros(n_scenarios * n_items)
        self.pos = np.zeros(n_scenarios * n_items)

    def add(self, rows: IndexedRows) -> ItemCounts:
        key = rows.scenario * self.shape[1] + rows.item
        n = len(self.shown)
        self.shown += np.bincount(key, minlength=n)
        self.pos += np.bincount(key, weights=rows.label, minlength=n)
        return self

    def prior(self, strength: float, expected_negatives: bool = False) -> torch.Tensor:
        """The logit of each (scenario, item)'s smoothed positive rate (S, I): `strength` pseudo-rows at the
        scenario's rate; the unknown scenario (row 0) at the overall rate; clamped to +-8.

        `expected_negatives` (the negatives were sampled): an item's negatives are counted as their expectation
        under the sampler (data/negatives.expected_rows), not the number drawn for it (docs/models.md,
        "prior_negatives")."""
        pos, shown = self.pos.reshape(self.shape), self.shown.reshape(self.shape)
        if expected_negatives:
            shown = expected_rows(pos, shown)
        overall = pos.sum() / max(shown.sum(), 1.0)
        rate = pos.sum(1, keepdims=True) / np.maximum(shown.sum(1, keepdims=True), 1.0)
        rate = np.where(shown.sum(1, keepdims=True) > 0, rate, overall)
        rate[0] = overall  # the unknown scenario: the overall rate
        smoothed = (pos + strength * rate) / (shown + strength)
        return torch.from_numpy(np.log(smoothed) - np.log1p(-smoothed)).float().clamp(-8.0, 8.0)


    def exposure(self) -> torch.Tensor:
        """The log of each (scenario, item)'s share of the scenario's training rows (S, I), one pseudo-row per item
        (an item never shown in a scenario gets the share of one row); the unknown scenario (row 0) every
        scenario's rows together."""
        shown = self.shown.reshape(self.shape).copy()
        shown[0] = shown.sum(0)
        smoothed = shown + 1.0
        return torch.from_numpy(np.log(smoothed) - np.log(smoothed.sum(1, keepdims=True))).float()


def interest_shares(g: torch.Tensor, present: torch.Tensor, null: torch.Tensor | None) -> torch.Tensor:
    """Step 4's interest-level shares beta (..., K) from the gate's logits g (..., K) over the pools that have
    events (`present`, broadcastable to g). With `null` (..., the leading shape of g, or broadcastable to it) a
    pool of no events and a zero interest competes with them: its share is what the shares leave below 1, so a
    history whose sources say nothing of the target can give (nearly) no interest instead of a mean of them.
    Without it the shares sum to 1 over the present pools; a history with none gives zeros either way."""
    g = g.masked_fill(~present, float("-inf"))
    if null is None:
        return g.softmax(dim=-1).nan_to_num(0.0)
    column = null.unsqueeze(-1).expand(*g.shape[:-1], 1)
    return torch.cat([g, column], dim=-1).softmax(dim=-1)[..., :-1]
