"""Training on several processes with PyTorch's DistributedDataParallel, launched by `torchrun` (docs/scale.md).

`torchrun --nproc_per_node N -m mistrec train ...` (or `mistrec train --nproc N`, which runs that command:
mistrec.cli.launch) starts N processes; each reads RANK, WORLD_SIZE and the rendezvous from the environment
torchrun sets. `process_group()` joins them over gloo (the trainer computes on the CPU: nothing moves the model or
the batches to a GPU, so NCCL, which needs GPU tensors, is not used); under Ray Train the group is joined before the
command runs. The trainer (mistrec.train.loop) then:

- builds the same epoch order on every rank (the order's generator is seeded alike) and gives rank r the rows
  r, r + N, r + 2N, ... of every global batch, so N ranks step through the batches one process would;
- wraps the loss in DistributedDataParallel, which averages the gradients over the ranks; each rank's loss is its
  rows' sum over the global batch's size times N, so the average is the one-process gradient of the batch's mean;
- seeds dropout and the other torch randomness per rank (seed + rank);
- scores the validation rows in N slices, gathers them on rank 0, which computes the metrics and decides early
  stopping once, and sends its record to every rank;
- lets rank 0 alone write checkpoints and the run.

What differs from one process, within the tolerance tests/train/test_distributed.py states: the sums of the
gradient average (float addition in another order), and the top's moving normalisation statistics (buffers are not
broadcast every step: the content table would go with them; the run keeps rank 0's, estimated on its half of each
batch).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from mistrec.errors import ConfigError

__all__ = ["Ranks", "launched", "process_group", "ranks"]


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that prints, decides and writes."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def share(self, idx: np.ndarray) -> np.ndarray:
        """This rank's rows of a global batch: every world-th from its rank."""
        return idx[self.rank::self.world]

    def gather_rows(self, local: np.ndarray, n: int) -> np.ndarray | None:
        """The values of `n` rows scored in `slice(n)`, in row order, on rank 0 (None on the others)."""
        parts = self.gather(local)
        if parts is None:
            return None
        out = np.concatenate(parts)
        if len(out) != n:
            raise RuntimeError(f"gathered {len(out)} rows' values from {self.world} ranks, expected {n}")
        return out

    def slice(self, n: int) -> np.ndarray:
        """This rank's contiguous slice of `n` rows (validation scoring)."""
        return np.array_split(np.arange(n), self.world)[self.rank]

    def from_main(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if not self.distributed:
            return obj
        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's `obj`, in rank order, on rank 0 (None on the others)."""
        if not self.distributed:
            return [obj]
        out: list[Any] | None = [None] * self.world if self.main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def sum(self, *values: float) -> tuple[float, ...]:
        """Each value summed over the ranks."""
        if not self.distributed:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return tuple(float(v) for v in t)


def ranks() -> Ranks:
    """This process's ranks: from the initialised process group, else one process."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def launched() -> bool:
    """Started by torchrun (or anything that sets its environment) with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def joins_group() -> bool:
    """Whether `process_group()` joins (and at the end destroys) a group itself: a process torchrun started, the
    group not joined yet (a Ray Train worker is joined by Ray before the command runs)."""
    return launched() and not (dist.is_available() and dist.is_initialized())


@contextmanager
def process_group() -> Iterator[Ranks]:
    """Joins the process group torchrun's environment describes, for the block (one process, or a group joined
    already: nothing to join)."""
    if not joins_group():
        yield ranks()
        return
    if not dist.is_available():
        raise ConfigError("This PyTorch build has no torch.distributed: train in one process (no torchrun).")
    dist.init_process_group(backend="gloo")  # CPU tensors: the trainer does not place anything on a GPU
    done = False
    try:
        yield ranks()
        done = True
    finally:
        if done:
            # every rank at the end before any tears the group down: rank 0 writes the run after the others have
            # finished, and a rank that destroyed its group (and exited) meanwhile aborted now and then under load
            # ("terminate called without an active exception", SIGABRT, on 2 shared cores; docs/scale.md)
            dist.barrier()
        dist.destroy_process_group()
