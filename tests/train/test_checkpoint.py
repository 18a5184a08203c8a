"""Checkpoints and resume: a run killed mid-epoch and started again with the same command ends where a run never
interrupted ends (same weights, bit for bit on one thread); a checkpoint of another training is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from mistrec.errors import ArtifactError, ConfigError
from mistrec.eval.fit import fit_run
from mistrec.train import TrainConfig
from mistrec.train.checkpoint import Checkpointer
from tests.conftest import prepared_synthetic


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_synthetic(tmp_path_factory.mktemp("ckpt"), n_users=300, events_per_user=30, seed=1)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "weights.pt", weights_only=True)


def _same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def _metrics(run: Path) -> dict[str, Any]:
    return json.loads((run / "metrics.json").read_text())


def test_sigkill_mid_epoch_then_the_same_command_ends_at_the_uninterrupted_result(prepared: Path,
                                                                                   tmp_path: Path) -> None:
    command = [sys.executable, "-m", "mistrec", "train", str(prepared), "--model", "mist", "--epochs", "2",
               "--batch-size", "32", "--threads", "1", "--quiet"]
    subprocess.run([*command, "--out", str(tmp_path / "whole")], check=True, capture_output=True)
    out, every = tmp_path / "killed", 25
    checkpoint = tmp_path / "killed.checkpoint" / "checkpoint.pt"
    proc = subprocess.Popen([*command, "--out", str(out), "--checkpoint-every", str(every)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        assert proc.poll() is None, "the run ended before its first checkpoint: make it longer"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)  # a few steps past the checkpoint: they are lost, and must be redone alike
    assert proc.poll() is None, "the run ended before it could be killed: make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # the run is written whole at the end or not at all
    state = torch.load(checkpoint, weights_only=True)
    assert state["position"]["batch"] > 0 and state["taken"] % every == 0  # mid-epoch, on the interval
    again = subprocess.run([*command, "--out", str(out), "--checkpoint-every", str(every)], check=True,
                           capture_output=True, text=True)
    assert "resuming from" in again.stderr
    _same_weights(tmp_path / "whole", out)
    whole, resumed = _metrics(tmp_path / "whole"), _metrics(out)
    assert resumed["test"] == whole["test"] and resumed["valid"] == whole["valid"]
    assert [h["train_loss"] for h in resumed["train"]["history"]] == \
        pytest.approx([h["train_loss"] for h in whole["train"]["history"]], rel=1e-12)
    assert not checkpoint.parent.exists()  # removed once the run is written


class _Killed(Exception):
    pass


def _kill_after(monkeypatch: pytest.MonkeyPatch, saves: int, stage: int = 0) -> None:
    """Checkpointer.save writes checkpoints until the `saves`-th of training stage `stage`, then the process 'dies'
    right after it."""
    real, count = Checkpointer.save, {"n": 0}

    def save(self: Checkpointer, state: dict[str, Any]) -> None:
        real(self, state)
        count["n"] += state["stage"] == stage
        if count["n"] == saves:
            raise _Killed

    monkeypatch.setattr(Checkpointer, "save", save)


@pytest.mark.parametrize(("model", "values", "train", "stage", "saves"), [
    ("emcdr", {"embedding_dim": 8}, {"batch_size": 256}, 1, 2),  # killed in its second (mapping) stage
    ("mist", {"embedding_dim": 8}, {"batch_size": 128, "ema": 0.9}, 0, 15),  # the weight average resumes too
    ("bpr_mf", {"embedding_dim": 8}, {"batch_size": 128}, 0, 8),  # negatives drawn from the shared generator
])
def test_resume_in_process(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str,
                           values: dict[str, Any], train: dict[str, Any], stage: int, saves: int) -> None:
    torch.set_num_threads(1)
    cfg = TrainConfig(epochs=3, seed=3, **train)
    fit_run(prepared, model, tmp_path / "whole", model_values=values, train_cfg=cfg, quiet=True)
    with_checkpoints = TrainConfig(epochs=3, seed=3, checkpoint_every=5, **train)
    with monkeypatch.context() as m:
        _kill_after(m, saves, stage)
        with pytest.raises(_Killed):
            fit_run(prepared, model, tmp_path / "run", model_values=values, train_cfg=with_checkpoints, quiet=True)
    state = torch.load(tmp_path / "run.checkpoint" / "checkpoint.pt", weights_only=True)
    # past the first epoch, so the records and the best epoch's weights so far are resumed too
    assert state["stage"] == stage and len(json.loads(state["history"])) >= 1
    fit_run(prepared, model, tmp_path / "run", model_values=values, train_cfg=with_checkpoints, quiet=True)
    _same_weights(tmp_path / "whole", tmp_path / "run")
    assert _metrics(tmp_path / "run")["test"] == _metrics(tmp_path / "whole")["test"]


def test_a_checkpoint_of_another_training_is_refused(prepared: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(1)
    cfg = TrainConfig(epochs=1, batch_size=256, checkpoint_every=3)
    with monkeypatch.context() as m:
        _kill_after(m, 1)
        with pytest.raises(_Killed):
            fit_run(prepared, "mist", tmp_path / "run", model_values={"embedding_dim": 8}, train_cfg=cfg, quiet=True)
    with pytest.raises(ConfigError, match="checkpoint of another training"):  # another learning rate
        fit_run(prepared, "mist", tmp_path / "run", model_values={"embedding_dim": 8},
                train_cfg=TrainConfig(epochs=1, batch_size=256, checkpoint_every=3, lr=1e-2), quiet=True)
    (tmp_path / "run.checkpoint" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ArtifactError, match="damaged"):
        fit_run(prepared, "mist", tmp_path / "run", model_values={"embedding_dim": 8}, train_cfg=cfg, quiet=True)


def test_checkpoint_every_is_checked() -> None:
    with pytest.raises(ConfigError, match="checkpoint_every"):
        TrainConfig(checkpoint_every=-1).validate()
