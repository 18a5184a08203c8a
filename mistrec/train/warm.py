"""Warm start on other data: a run's weights carried into a model built for another prepared dataset (the same
platform with more events: logged feedback, a newer export), so that `train --init-from RUN` continues training
where the old run stopped instead of starting again.

Rows of the id tables follow the ids, not the indices (a new prepared dataset numbers its users and items
anew): a user or item of both datasets keeps its learned row, a new one keeps its fresh initialisation. Tables
indexed by (item, scenario) or (user, scenario) are mapped the same way. Every other tensor is copied when its
shape is unchanged; what could not be carried is said, never silently dropped. The scenarios must be the same,
in the same order (their rows index every scenario-specific weight).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
import torch
from torch import nn

from mistrec.data.prepared import PreparedDataset
from mistrec.errors import ConfigError
from mistrec.features import FeatureSpec

__all__ = ["WarmStart", "id_rows", "warm_start"]


@dataclass
class WarmStart:
    """What a warm start carried: tensors copied whole, id tables mapped (with how many rows were known), and
    tensors left at their fresh initialisation (with why)."""

    copied: list[str] = field(default_factory=list)
    mapped: dict[str, str] = field(default_factory=dict)
    fresh: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        out = f"{len(self.copied)} tensors copied, {len(self.mapped)} id tables mapped by id"
        if self.mapped:
            out += " (" + "; ".join(f"{k}: {v}" for k, v in self.mapped.items()) + ")"
        if self.fresh:
            out += f"; left fresh: {'; '.join(f'{k} ({v})' for k, v in self.fresh.items())}"
        return out


def id_rows(old: PreparedDataset, new: PreparedDataset, vocab: str) -> np.ndarray:
    """For each index of the new dataset's `vocab` (user_id or item_id; 0 the unknown id), the index of the same
    id in the old one, or -1 where the old dataset did not have it."""
    def keyed(ds: PreparedDataset) -> pl.DataFrame:
        v = ds.vocab[vocab]
        keys = [c for c in v.columns if c not in ("index", "train_count")]  # item ids with their scope
        return v.select(pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in keys],
                                      separator="\x1f").alias("key"), pl.col("index").cast(pl.Int64))

    joined = keyed(new).join(keyed(old), on="key", how="left", suffix="_old")
    rows = np.full(new.vocab[vocab].height + 1, -1, dtype=np.int64)
    rows[0] = 0  # the unknown id
    rows[joined["index"].to_numpy()] = joined["index_old"].fill_null(-1).to_numpy()
    return rows


def warm_start(model: nn.Module, state: dict[str, torch.Tensor], old_spec: FeatureSpec, new_spec: FeatureSpec,
               users: np.ndarray, items: np.ndarray) -> WarmStart:
    """Loads `state` (a run's weights, built for `old_spec`) into `model` (built for `new_spec`), mapping the id
    tables' rows by `users` and `items` (`id_rows`). Returns what was carried."""
    if old_spec.scenario_names != new_spec.scenario_names:
        raise ConfigError(f"--init-from: the run was trained on scenarios {', '.join(old_spec.scenario_names)}, "
                          f"this data has {', '.join(new_spec.scenario_names)}: warm start needs the same "
                          "scenarios, in the same order.")
    s = new_spec.n_scenarios
    # (old rows, new rows, rows map, rows per id): the id tables, by their first dimension in both specs
    tables = {"user": (old_spec.n_users, new_spec.n_users, users, 1),
              "item": (old_spec.n_items, new_spec.n_items, items, 1),
              "user x scenario": (old_spec.n_users * s, new_spec.n_users * s, users, s),
              "item x scenario": (old_spec.n_items * s, new_spec.n_items * s, items, s)}
    report = WarmStart()
    target = model.state_dict()
    parameters = {name for name, _ in model.named_parameters()}
    for name, new in target.items():
        old = state.get(name)
        if old is None:
            report.fresh[name] = "not in the run"
            continue
        kind = _id_table(name, old, new, tables)
        if kind is not None:
            _, _, rows, per = tables[kind]
            with torch.no_grad():
                known = np.flatnonzero(rows >= 0)
                src = (rows[known][:, None] * per + np.arange(per)).reshape(-1)
                dst = (known[:, None] * per + np.arange(per)).reshape(-1)
                new[torch.from_numpy(dst)] = old[torch.from_numpy(src)].to(new.dtype)
            report.mapped[name] = f"{len(known) - 1:,} of {len(rows) - 1:,} {kind.split()[0]}s known"
        elif old.shape == new.shape:
            with torch.no_grad():
                new.copy_(old)
            report.copied.append(name)
        else:  # a buffer of another shape (mist's item prior) is the model's to fit again before training
            report.fresh[name] = (f"shape {tuple(old.shape)} in the run, {tuple(new.shape)} here"
                                  + ("" if name in parameters else "; a buffer, not a learned weight"))
    model.load_state_dict(target)
    return report


def _id_table(name: str, old: torch.Tensor, new: torch.Tensor,
              tables: dict[str, tuple[int, int, np.ndarray, int]]) -> str | None:
    """Which id table a tensor is, by its first dimension in the old and the new spec (and its name where two
    kinds have the same sizes); None for every other tensor."""
    if old.dim() == 0 or old.shape[1:] != new.shape[1:]:
        return None
    kinds = [k for k, (n_old, n_new, _, _) in tables.items() if old.shape[0] == n_old and new.shape[0] == n_new]
    if len(kinds) > 1:  # e.g. as many users as items: the name says which
        kinds = [k for k in kinds if k.split()[0] in name.lower()] or kinds[:0]
    if len(kinds) == 1 and (old.shape[0] != new.shape[0] or kinds[0].split()[0] in name.lower()):
        return kinds[0]
    return None
