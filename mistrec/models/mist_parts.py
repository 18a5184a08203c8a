"""mist's pure pieces (docs/models.md): the item prior fitted before training, and the interest-level shares with
the "no source" choice (`null_interest`). Functions of tensors and arrays, shared by the training forward, the
general candidate path and the catalogue path (mist_rank)."""

from __future__ import annotations

import numpy as np
import torch

from mistrec.features import IndexedRows

__all__ = ["interest_shares", "item_prior"]


def item_prior(rows: IndexedRows, n_scenarios: int, n_items: int, strength: float) -> torch.Tensor:
    """The logit of each (scenario, item)'s smoothed positive rate in the training rows (S, I): `strength`
    pseudo-rows at the scenario's rate; the unknown scenario (row 0) at the overall rate; clamped to +-8."""
    key = rows.scenario * n_items + rows.item
    pos = np.bincount(key, weights=rows.label, minlength=n_scenarios * n_items).reshape(n_scenarios, n_items)
    shown = np.bincount(key, minlength=n_scenarios * n_items).reshape(n_scenarios, n_items).astype(np.float64)
    rate = pos.sum(1, keepdims=True) / np.maximum(shown.sum(1, keepdims=True), 1.0)
    rate = np.where(shown.sum(1, keepdims=True) > 0, rate, rows.label.mean())
    rate[0] = rows.label.mean()  # the unknown scenario: the overall rate
    smoothed = (pos + strength * rate) / (shown + strength)
    return torch.from_numpy(np.log(smoothed) - np.log1p(-smoothed)).float().clamp(-8.0, 8.0)


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
