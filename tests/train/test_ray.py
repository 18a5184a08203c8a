"""`mistrec train --nproc 2 --launcher ray`: the same training on 2 Ray Train workers as on 2 torchrun processes
(to the tolerance tests/train/test_distributed.py states). Runs where Ray Train is installed (pip install
'mistrec[ray]'); it is not in the dev extra, so CI skips it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import prepared_synthetic, write_yaml

pytest.importorskip("ray.train")

EXACT = {"model": {"dropout": 0.0, "user_dropout": 0.0, "item_id_dropout": 0.0, "top": "mlp"}}


def test_ray_workers_train_as_one_process(tmp_path: Path) -> None:
    prepared = prepared_synthetic(tmp_path / "data", n_users=300, events_per_user=30, seed=1)
    config = write_yaml(tmp_path / "exact.yaml", EXACT)
    base = [sys.executable, "-m", "mistrec", "train", str(prepared), "--model", "mist", "--epochs", "2",
            "--batch-size", "64", "--quiet", "--config", str(config)]
    subprocess.run([*base, "--out", str(tmp_path / "one"), "--threads", "1"], check=True, capture_output=True)
    done = subprocess.run([*base, "--out", str(tmp_path / "ray"), "--nproc", "2", "--launcher", "ray"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    def losses(run: Path) -> list[float]:
        return [h["train_loss"] for h in json.loads((run / "metrics.json").read_text())["train"]["history"]]

    assert losses(tmp_path / "ray") == pytest.approx(losses(tmp_path / "one"), rel=1e-4)


def test_the_ray_launcher_needs_nproc(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mistrec", "train", str(tmp_path), "--model", "mist", "--out",
                           str(tmp_path / "run"), "--launcher", "ray"], capture_output=True, text=True)
    assert done.returncode == 2 and "--launcher ray needs --nproc" in done.stderr
