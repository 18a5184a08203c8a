"""Training on several processes with PyTorch's DistributedDataParallel, launched by `torchrun` (docs/scale.md).

`torchrun --nproc_per_node N -m mistrec train ...` (or `mistrec train --nproc N`, which runs that command) starts N
processes; each reads RANK, WORLD_SIZE and the rendezvous from the environment torchrun sets. `process_group()`
joins them (gloo on CPU, NCCL when every rank has a GPU). The trainer (mistrec.train.loop) then:

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
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from mistrec.errors import ConfigError

__all__ = ["Ranks", "launch", "launch_ray", "launched", "process_group", "ranks", "without_nproc"]


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
        """The values of `n` rows scored in `slices(n)`, in row order, on rank 0 (None on the others)."""
        if not self.distributed:
            return local
        parts: list[Any] = [None] * self.world if self.main else []
        dist.gather_object(local, parts if self.main else None, dst=0)
        if not self.main:
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


@contextmanager
def process_group() -> Iterator[Ranks]:
    """Joins the process group torchrun's environment describes, for the block (one process: nothing to join)."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        yield ranks()
        return
    if not dist.is_available():
        raise ConfigError("This PyTorch build has no torch.distributed: train in one process (no torchrun).")
    gpu = torch.cuda.is_available() and torch.cuda.device_count() > 0
    dist.init_process_group(backend="nccl" if gpu else "gloo")
    try:
        yield ranks()
    finally:
        dist.destroy_process_group()


def launch(nproc: int, argv: Sequence[str]) -> int:
    """`mistrec train --nproc N`: the same command, without --nproc, under torchrun on this machine."""
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1. Got {nproc}.")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "mistrec", *argv]
    print("running: " + " ".join(command[1:]), file=sys.stderr, flush=True)
    return subprocess.call(command)


def without_nproc(argv: Sequence[str]) -> list[str]:
    """`argv` less its --nproc and --launcher options (either spelling)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--nproc", "--launcher"):
            skip = True
        elif not a.startswith(("--nproc=", "--launcher=")):
            out.append(a)
    return out


def launch_ray(nproc: int, argv: Sequence[str]) -> int:
    """`mistrec train --nproc N --launcher ray`: the same command on N Ray Train workers (`pip install
    'mistrec[ray]'`). Ray Train starts the workers (on this machine, or on the Ray cluster RAY_ADDRESS names) and
    joins them in a torch process group before each runs the command, which then trains exactly as under torchrun
    (rank 0 writes the run). Paths are the caller's: every worker runs in the caller's working directory, so the
    prepared data and the run directory must be reachable there at the same paths."""
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1. Got {nproc}.")
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError:
        raise ConfigError("--launcher ray needs Ray Train: pip install 'mistrec[ray]' (or use the default launcher, "
                          "torchrun).") from None
    import tempfile

    threads = max(1, (os.cpu_count() or 2) // nproc)
    command = [*argv, *([] if any(a.startswith("--threads") for a in argv) else ["--threads", str(threads)])]
    with tempfile.TemporaryDirectory(prefix="mistrec-ray-") as storage:
        if not ray.is_initialized():
            ray.init(include_dashboard=False, configure_logging=False)
        trainer = TorchTrainer(_ray_worker, train_loop_config={"argv": command, "cwd": os.getcwd()},
                               scaling_config=ScalingConfig(num_workers=nproc, use_gpu=torch.cuda.is_available()),
                               run_config=RunConfig(name="mistrec-train", storage_path=storage))
        try:
            trainer.fit()
        except Exception as exc:  # a worker's error, as Ray reports it
            print(f"mistrec train: the Ray Train workers failed: {exc}", file=sys.stderr)
            return 1
    return 0


def _ray_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the process group is joined (by Ray Train); runs `mistrec train` as a rank of it."""
    os.chdir(config["cwd"])
    from mistrec.cli.main import main

    code = main(config["argv"])
    if code:
        raise RuntimeError(f"mistrec {' '.join(config['argv'])} exited with {code}")
