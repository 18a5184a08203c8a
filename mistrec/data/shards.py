"""Prepared data in shards of whole users, read one shard at a time (docs/scale.md, "Prepared data that streams").

`prepare` writes interactions.parquet and history_events.parquet (both sorted by user) in row groups that end at
a user's last row: shard k is rows [rows_lo, rows_hi) of the first file and events [events_lo, events_hi) of the
second, every row and every history event of users [users_lo, users_hi). The manifest's `shards` lists them with
their rows per split. A shard is self-contained: every history window of its rows points into its own events
(a history holds only the user's own earlier events), so `Shards.read(k)` gives its rows, with the windows moved
to the shard's events, and those events; memory holds one shard, never the whole dataset.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from mistrec.data.history import HistoryEvents
from mistrec.errors import ArtifactError

__all__ = ["SHARD_ROWS", "ShardWriter", "Shards", "shard_bounds"]

SHARD_ROWS = 1_000_000  # interactions per shard, about: whole users, so a shard may be a little larger


def shard_bounds(user: np.ndarray, target: int) -> list[tuple[int, int]]:
    """[lo, hi) row ranges of about `target` rows over rows sorted by user, each ending at a user's last row."""
    n = len(user)
    if n == 0:
        return []
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])  # each user's first row
    bounds, lo = [], 0
    while lo < n:
        # the first user boundary at or after lo + target (the end of the file if none)
        k = np.searchsorted(starts, lo + target, side="left")
        hi = int(starts[k]) if k < len(starts) else n
        bounds.append((lo, hi))
        lo = hi
    return bounds


class ShardWriter:
    """interactions.parquet and history_events.parquet written part after part (parts of users in increasing
    order, each sorted by user, its rows numbered from `rows` on and its windows into its own events): the windows
    are moved to the file's events as they are written."""

    def __init__(self, out: Path, target: int) -> None:
        self.out, self.target = out, target
        self.rows, self.events = 0, 0  # written so far
        self.shards: list[dict[str, Any]] = []
        self._writers: tuple[pq.ParquetWriter, pq.ParquetWriter] | None = None
        self._last_user = -1

    def add(self, inter: pl.DataFrame, events: pl.DataFrame) -> None:
        user = inter["user"].to_numpy()
        if len(user) and (np.any(user[1:] < user[:-1]) or user[0] <= self._last_user):
            raise AssertionError("interactions must be sorted by user, and parts in user order, to be sharded")
        if self._writers is None:  # the first part's schema is the files' (an empty file still has it)
            self._writers = (pq.ParquetWriter(self.out / "interactions.parquet", inter.head(0).to_arrow().schema),
                             pq.ParquetWriter(self.out / "history_events.parquet", events.head(0).to_arrow().schema))
        if len(user) == 0:
            return
        self._last_user = int(user[-1])
        inter = inter.with_columns(pl.col("hist_start") + self.events, pl.col("hist_end") + self.events)
        rows_out, ev_out = self._writers
        ev_user = events["user"].to_numpy()
        split = inter["split"].to_numpy()
        # each shard converted to Arrow on its own: one shard's copy at a time, not the whole table's
        for lo, hi in shard_bounds(user, self.target):
            users = (int(user[lo]), int(user[hi - 1]) + 1)
            e_lo, e_hi = (int(x) for x in np.searchsorted(ev_user, users, side="left"))
            rows_out.write_table(inter.slice(lo, hi - lo).to_arrow().cast(rows_out.schema), row_group_size=hi - lo)
            if e_hi > e_lo:
                ev_out.write_table(events.slice(e_lo, e_hi - e_lo).to_arrow().cast(ev_out.schema),
                                   row_group_size=e_hi - e_lo)
            names, counts = np.unique(split[lo:hi], return_counts=True)
            self.shards.append({"users": list(users), "rows": [self.rows + lo, self.rows + hi],
                                "events": [self.events + e_lo, self.events + e_hi],
                                "by_split": {str(k): int(v) for k, v in zip(names, counts, strict=True)}})
        self.rows += len(user)
        self.events += len(ev_user)

    def close(self) -> None:
        if self._writers is None:
            raise AssertionError("no rows were written")
        for w in self._writers:
            w.close()


def _read_range(file: pq.ParquetFile, lo: int, hi: int, columns: list[str] | None = None) -> pa.Table:
    """Rows [lo, hi) of a Parquet file (its `columns`, or all), reading only the row groups that hold them."""
    meta, groups, first, parts = file.metadata, [], 0, []
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if first < hi and first + n > lo:
            groups.append(g)
            parts.append(first)
        first += n
    if not groups:
        empty = file.schema_arrow.empty_table()
        return empty if columns is None else empty.select(columns)
    table = file.read_row_groups(groups, columns=columns)
    return table.slice(lo - parts[0], hi - lo)


@dataclass
class Shards:
    """The shards of a prepared directory (its manifest's `shards`)."""

    path: Path
    spec: list[dict[str, Any]]

    @classmethod
    def of(cls, path: Path, manifest: dict[str, Any]) -> Shards:
        spec = manifest.get("shards")
        if not spec and manifest.get("counts", {}).get("after_cleaning"):
            raise ArtifactError(f"{path} was prepared before shards were written: run `mistrec prepare` again to "
                                "train on it streamed.")
        return cls(Path(path), list(spec or []))

    def __len__(self) -> int:
        return len(self.spec)

    def rows_in(self, k: int, split: str) -> int:
        return int(self.spec[k]["by_split"].get(split, 0))

    def read(self, k: int, split: str | None = None) -> tuple[pl.DataFrame, HistoryEvents]:
        """Shard k's rows (of `split`, or all), their history windows moved into the shard's own events, and those
        events."""
        s = self.spec[k]
        rows = pl.from_arrow(_read_range(pq.ParquetFile(self.path / "interactions.parquet"), *s["rows"]))
        assert isinstance(rows, pl.DataFrame)
        if split is not None:
            rows = rows.filter(pl.col("split") == split)
        e_lo, e_hi = s["events"]
        rows = rows.with_columns(pl.col("hist_start") - e_lo, pl.col("hist_end") - e_lo)
        ev = pl.from_arrow(_read_range(pq.ParquetFile(self.path / "history_events.parquet"), e_lo, e_hi))
        assert isinstance(ev, pl.DataFrame)
        events = HistoryEvents(user=ev["user"].to_numpy(), ts=ev["timestamp"].to_numpy(), item=ev["item"].to_numpy(),
                               scenario=ev["scenario"].to_numpy(), label=ev["label"].to_numpy(),
                               row=ev["row"].to_numpy(), value=ev["value"].to_numpy())
        return rows, events

    def columns(self, k: int, split: str, names: list[str]) -> pl.DataFrame:
        """Shard k's rows of `split`, only the columns `names` (no history): the row groups that hold them, those
        columns read."""
        lo, hi = self.spec[k]["rows"]
        table = _read_range(pq.ParquetFile(self.path / "interactions.parquet"), lo, hi, columns=[*names, "split"])
        rows = pl.from_arrow(table)
        assert isinstance(rows, pl.DataFrame)
        return rows.filter(pl.col("split") == split).select(names)

    def each(self, split: str, which: list[int] | None = None) -> Iterator[tuple[int, pl.DataFrame, HistoryEvents]]:
        """(k, rows, events) of the given shards (all by default) that have rows of `split`."""
        for k in range(len(self)) if which is None else which:
            if self.rows_in(k, split):
                yield (k, *self.read(k, split))
