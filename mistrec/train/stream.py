"""Streamed training: a split read a shard of whole users at a time (mistrec.data.shards), by DataLoader workers
that each read their own shards (docs/scale.md, "Prepared data that streams").

Every epoch the shards are put in an order drawn from the trainer's generator (alike on every rank); rank r takes
the shards r, r + N, ... of that order and its workers share them out (worker w of W: every W-th). A worker reads a
shard, encodes its rows, shuffles them with a generator seeded by (seed, epoch, shard) and yields batches of the
rank's share of the global batch; the DataLoader interleaves its workers' batches. The ranks agree, from the
manifest's rows per shard, on the number of steps of the epoch: the smallest of their batch counts (DDP needs as
many steps on every rank; what is past it on a longer rank waits for the next epoch's order).

What memory holds: the model, one shard per worker (and the batches they prefetch), and for validation and test
five numbers a row (score, label, scenario, user, conversion: 28 bytes). Models that derive structure from the
training rows are handed the rows' user, item and scenario indices and labels: a shard at a time where that
structure is a sum over the rows (`PreparesInChunks`: mist's item prior), else all at once, read
by a scan (`Prepares`: a graph, per-user counts; 28 bytes a row, 370 MB at the peak for 8.2 M training rows,
measured), the one part of such a model's training that grows with the rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np
import polars as pl
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from mistrec.batch import Batch
from mistrec.data.history import HistoryEvents
from mistrec.data.prepared import PreparedDataset
from mistrec.data.shards import Shards
from mistrec.errors import ConfigError
from mistrec.features import EncodedRows, FeatureEncoder, IndexedRows
from mistrec.models.base import Model
from mistrec.train.distributed import Ranks
from mistrec.train.predict import predict_tasks

__all__ = ["Scored", "StreamedRows"]

_INDEXED = ("user", "item", "scenario", "label")  # what `Prepares` models are handed of each training row


@dataclass
class StreamedRows:
    """One split of a prepared dataset loaded without its rows (`PreparedDataset.load(path, rows=False)`)."""

    ds: PreparedDataset
    enc: FeatureEncoder
    split: str
    workers: int = 0  # DataLoader workers reading shards (0: the training process reads them itself)

    @property
    def shards(self) -> Shards:
        return self.ds.shards

    def __len__(self) -> int:
        return sum(self.shards.rows_in(k, self.split) for k in range(len(self.shards)))

    def _scan(self) -> pl.LazyFrame:
        return self.ds.scan().filter(pl.col("split") == self.split)

    def scenarios(self) -> np.ndarray:
        """Every row's scenario index (for the loss weights per scenario: 8 bytes a row)."""
        return self._scan().select("scenario").collect(engine="streaming")["scenario"].to_numpy()

    def indexed(self) -> IndexedRows:
        """The rows' model indices and labels, read by a scan of four columns (for `Prepares` models)."""
        return self._indexed(self._scan().select(*_INDEXED).collect(engine="streaming"))

    def indexed_chunks(self) -> Iterator[IndexedRows]:
        """The same a shard at a time (for `PreparesInChunks` models): what memory holds is one shard's four
        columns."""
        for k in range(len(self.shards)):
            if self.shards.rows_in(k, self.split):
                yield self._indexed(self.shards.columns(k, self.split, list(_INDEXED)))

    def _indexed(self, df: pl.DataFrame) -> IndexedRows:
        enc = self.enc
        return IndexedRows(user=enc.user_map_[df["user"].to_numpy()], item=enc.item_map_[df["item"].to_numpy()],
                           scenario=enc.scenario_map_[df["scenario"].to_numpy()],
                           label=df["label"].to_numpy().astype(np.float32))

    def epoch(self, rng: np.random.Generator, epoch: int, seed: int, batch_size: int, where: Ranks,
              model: Model) -> tuple[Iterator[Batch], int]:
        """This rank's batches of one epoch and how many steps every rank takes."""
        if len(self.shards) < where.world:
            raise ConfigError(f"{self.ds.path} has {len(self.shards)} shard(s) for {where.world} ranks: each rank "
                              "reads shards of its own, so some would have none. Prepare it again with a smaller "
                              "--shard-rows.")
        order = rng.permutation(len(self.shards))
        local = max(1, batch_size // where.world)
        steps = min(sum(math.ceil(self.shards.rows_in(int(k), self.split) / local) for k in order[r::where.world])
                    for r in range(where.world))
        source = _ShardBatches(self, [int(k) for k in order[where.rank::where.world]], local, seed, epoch,
                               model.reads_history, model.reads_history_side)
        # spawned, not forked: polars' thread pool does not survive a fork (the child can deadlock on its locks)
        loader = DataLoader(source, batch_size=None, num_workers=self.workers,
                            multiprocessing_context="spawn" if self.workers else None)
        return islice(iter(loader), steps), steps

    def score(self, model: Model, where: Ranks, batch_size: int) -> Scored | None:
        """p(click) (and p(conversion | click) with a conversion head) of every row, shard by shard, the shards
        shared by the ranks; on rank 0 with each row's label, scenario, user and conversion (None elsewhere)."""
        parts = []
        for _, df, events in self.shards.each(self.split, list(range(where.rank, len(self.shards), where.world))):
            rows = self.enc.frame_rows(df, events)
            click, cvr = predict_tasks(model, self.enc, rows, batch_size)
            parts.append(Scored(click, cvr, rows.label, rows.scenario, rows.user, rows.conversion))
        gathered = where.gather(parts)
        if gathered is None:
            return None
        return Scored.concat([p for rank_parts in gathered for p in rank_parts], model.predicts_conversion)


@dataclass
class Scored:
    """Scores of a split's rows with what the metrics read of the rows."""

    click: np.ndarray
    cvr: np.ndarray | None
    label: np.ndarray
    scenario: np.ndarray
    user: np.ndarray
    conversion: np.ndarray

    @classmethod
    def concat(cls, parts: list[Scored], conversion: bool) -> Scored:
        def cat(name: str, dtype: type) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts]) if parts else np.zeros(0, dtype=dtype)

        return cls(cat("click", np.float32), cat("cvr", np.float32) if conversion else None,
                   cat("label", np.float32), cat("scenario", np.int64), cat("user", np.int64),
                   cat("conversion", np.float32))

    def rows(self) -> EncodedRows:
        """The rows as the metrics read them (label, scenario, user, conversion; no history)."""
        n, empty = len(self.label), np.zeros(0, dtype=np.int64)
        none = HistoryEvents(user=empty, ts=empty, item=empty, scenario=empty, label=np.zeros(0, np.float32),
                             row=empty, value=np.zeros(0, np.float32))
        zeros = np.zeros(n, dtype=np.int64)
        return EncodedRows(user=self.user, item=zeros, scenario=self.scenario, label=self.label, timestamp=zeros,
                           hist_start=zeros, hist_end=zeros, conversion=self.conversion, events=none)


class _ShardBatches(IterableDataset):
    """The batches of a rank's shards for one epoch; each DataLoader worker reads its own share of the shards."""

    def __init__(self, rows: StreamedRows, shards: list[int], batch_size: int, seed: int, epoch: int,
                 history: bool, history_side: bool) -> None:
        super().__init__()
        self.rows, self.shards, self.batch_size = rows, shards, batch_size
        self.seed, self.epoch, self.history, self.history_side = seed, epoch, history, history_side

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        mine = self.shards if info is None else self.shards[info.id::info.num_workers]
        if info is not None:
            torch.set_num_threads(1)  # a worker encodes; the training process computes
        split, enc = self.rows.split, self.rows.enc
        for k, df, events in self.rows.shards.each(split, mine):
            rows = enc.frame_rows(df, events)
            order = np.random.default_rng([self.seed, self.epoch, k]).permutation(len(rows))
            for lo in range(0, len(rows), self.batch_size):
                yield enc.batch(rows, order[lo:lo + self.batch_size], history=self.history,
                                history_side=self.history_side)
