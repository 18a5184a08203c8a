"""Checkpoints of a training run, and resuming from them (docs/training.md, "Checkpoints and resume").

With `checkpoint_every: N` (steps) the trainer writes, every N optimisation steps, everything the rest of the run
depends on: the model's weights, the optimiser's and learning-rate schedule's state, the weight average, the
position in the epoch (stage, epoch, next batch, the loss summed so far), the epoch order's generator as it was
when the epoch's order was drawn and as it is now, every random state (Python, NumPy's global, torch's, per rank),
the epochs' records, and the best epoch's weights so far. A run killed at any moment and started again with the
same command reads it and continues from the step after it: same seed and data, so the same weights as a run never
interrupted (bit for bit on one thread; tests/train/test_checkpoint.py).

The file is written to a temporary name and renamed, so a kill while writing leaves the previous checkpoint. It is
only read back by a run of the same model, configs, data and number of processes (a fingerprint of them is in
it): any other is refused with the fix, never silently restarted or silently mixed. The directory is removed when
the run is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from mistrec.errors import ArtifactError, ConfigError
from mistrec.train.distributed import Ranks

__all__ = ["Checkpointer", "fingerprint", "random_states", "set_random_states"]

FILE = "checkpoint.pt"


def fingerprint(**parts: Any) -> str:
    """A hash of what a checkpoint must agree with to be resumed (JSON of `parts`, keys sorted)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Checkpointer:
    """Where a run's checkpoint lives, how often it is written, and what it must match."""

    directory: Path
    every: int  # optimisation steps between checkpoints (> 0)
    key: str  # fingerprint() of the run

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ConfigError(f"checkpoint_every must be >= 1 step. Got {self.every}.")

    @property
    def path(self) -> Path:
        return self.directory / FILE

    def load(self) -> dict[str, Any] | None:
        """The checkpoint to resume from, or None when there is none."""
        if not self.path.is_file():
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception:  # a file another program wrote, or cut short by a full disk
            raise ArtifactError(f"{self.path} is damaged: not a checkpoint mistrec wrote. Remove {self.directory} "
                                "to train from the start.") from None
        if not isinstance(state, dict) or state.get("key") != self.key:
            raise ConfigError(f"{self.directory} holds the checkpoint of another training (other model, config, "
                              f"data or number of processes): remove it to train this one from the start, or run "
                              "the command that wrote it to resume that one.")
        return state

    def save(self, state: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{FILE}.{os.getpid()}"
        torch.save({**state, "key": self.key}, tmp)
        os.replace(tmp, self.path)  # atomic: a kill while saving leaves the previous checkpoint

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def random_states(where: Ranks) -> dict[str, Any]:
    """Python's, NumPy's global and every rank's torch random state, as weights_only torch.load reads them back (a
    collective on several ranks: every rank calls it)."""
    name, keys, pos, has_gauss, gauss = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    return {"python": random.getstate(), "numpy": [name, keys.tolist(), pos, has_gauss, gauss],
            "torch": where.all_gather(torch.get_rng_state())}


def set_random_states(states: dict[str, Any], where: Ranks) -> None:
    random.setstate(states["python"])
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"][where.rank])
