"""The typed batch every model reads: integer id tensors, side features, the scenario-tagged history."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

__all__ = ["Batch"]


@dataclass
class Batch:
    """One batch of B samples with histories of length L.

    Index 0 of every id tensor is the reserved unknown/padding index.
    """

    user: torch.Tensor  # (B,) long
    item: torch.Tensor  # (B,) long
    scenario: torch.Tensor  # (B,) long
    user_cat: torch.Tensor  # (B, Fu) long, categorical user features
    item_cat: torch.Tensor  # (B, Fi) long, categorical item features
    item_seq: torch.Tensor  # (B, Fs, S) long, multi-valued item features (genres), 0-padded
    user_num: torch.Tensor  # (B, Nu) float
    item_num: torch.Tensor  # (B, Ni) float
    hist_items: torch.Tensor  # (B, L) long, most recent last, 0 = padding
    hist_scenarios: torch.Tensor  # (B, L) long
    hist_gaps: torch.Tensor  # (B, L) long, log2 bucket of the time gap to the sample, 0 = padding
    hist_labels: torch.Tensor  # (B, L) float, the event's label (training labels only)
    hist_values: torch.Tensor  # (B, L) float, the graded value behind the label (a rating), standardised
    hist_mask: torch.Tensor  # (B, L) bool, True for real events
    label: torch.Tensor  # (B,) float
    conversion: torch.Tensor  # (B,) float 0/1, the second task's label; NaN where unknown (or no such task)
    # side features of the history's items, as item_cat / item_seq / item_num are of the sample's item
    # (behaviour tokens embed them); padding rows are the unknown item's (zeros)
    hist_item_cat: torch.Tensor  # (B, L, Fi) long
    hist_item_seq: torch.Tensor  # (B, L, Fs, S) long
    hist_item_num: torch.Tensor  # (B, L, Ni) float
    # (B,) long: the user's training events in the sample's scenario strictly before its time, all of them (not
    # only those in the history window): how much the user has done there. 0 for a user new in the scenario.
    activity: torch.Tensor
    # the dataset's item index of the sample item and of the history's items, kept for items training never saw
    # (their `item` is 0): the row of their content vector (data/content.py), 0 for padding
    item_key: torch.Tensor  # (B,) long
    hist_item_key: torch.Tensor  # (B, L) long

    def to(self, device: torch.device | str) -> Batch:
        return Batch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def subset(self, rows: torch.Tensor | slice) -> Batch:
        """The samples selected by a boolean mask, an index tensor or a slice."""
        return Batch(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def concat(self, other: Batch) -> Batch:
        """This batch's samples, then `other`'s (the same history length and feature shapes)."""
        return Batch(**{f.name: torch.cat([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)})

    def without_events(self, drop: torch.Tensor) -> Batch:
        """The same samples with the history events where `drop` (B, L) is True removed (turned into padding):
        what a model would see had those events not happened."""
        keep = self.hist_mask & ~drop
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("hist_items", "hist_scenarios", "hist_gaps", "hist_labels", "hist_values", "hist_item_cat",
                     "hist_item_seq", "hist_item_num", "hist_item_key"):
            v = out[name]
            k = keep.view(*keep.shape, *([1] * (v.dim() - 2)))
            out[name] = torch.where(k, v, torch.zeros_like(v))
        out["hist_mask"] = keep
        # what the user had done in the scenario without the removed events of that scenario
        own = (drop & self.hist_mask & (self.hist_scenarios == self.scenario.unsqueeze(1))).sum(1)
        out["activity"] = (self.activity - own).clamp_min(0)
        return Batch(**out)

    _ITEM_FIELDS = ("item", "item_cat", "item_seq", "item_num", "item_key")

    def cross(self, items: Batch, history: bool = True) -> Batch:
        """Every row of this batch (a query: user, scenario, history) paired with every row of `items`
        (candidates: their item fields are used): U x C rows, query-major. `history=False` leaves the history
        empty, (U x C, 0), for a model that reads it once per query instead."""
        n_q, n_c = len(self), len(items)
        rep = torch.arange(n_q).repeat_interleave(n_c)
        out = {}
        for f in fields(self):
            if f.name in self._ITEM_FIELDS:
                v = getattr(items, f.name)
                out[f.name] = v.repeat(n_q, *([1] * (v.dim() - 1)))
            elif f.name.startswith("hist_") and not history:
                v = getattr(self, f.name)
                out[f.name] = v.new_empty((n_q * n_c, 0, *v.shape[2:]))
            else:
                out[f.name] = getattr(self, f.name).index_select(0, rep)
        return Batch(**out)
