"""What starts the processes of `mistrec train --nproc N`: torchrun (the default) or Ray Train's workers
(`--launcher ray`); each process then trains as one rank of the group (mistrec.train.distributed)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from mistrec.errors import ConfigError

__all__ = ["launch", "launch_ray", "without_nproc"]


def launch(nproc: int, argv: Sequence[str]) -> int:
    """`mistrec train --nproc N`: the same command, without --nproc, under torchrun on this machine."""
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
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError:
        raise ConfigError("--launcher ray needs Ray Train: pip install 'mistrec[ray]' (or use the default launcher, "
                          "torchrun).") from None
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mistrec-ray-") as storage:
        if not ray.is_initialized():
            ray.init(include_dashboard=False, configure_logging=False)
        trainer = TorchTrainer(_ray_worker, train_loop_config={"argv": list(argv), "cwd": os.getcwd()},
                               scaling_config=ScalingConfig(num_workers=nproc, use_gpu=False),  # CPU: gloo
                               run_config=RunConfig(name="mistrec-train", storage_path=storage))
        try:
            trainer.fit()
        except Exception as exc:  # a worker's error, as Ray reports it
            print(f"mistrec train: the Ray Train workers failed: {exc}", file=sys.stderr)
            return 1
    return 0


def _ray_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the process group is joined (by Ray Train); runs `mistrec train` as a rank of it."""
    from ray.train import get_context

    from mistrec.cli.main import main

    os.chdir(config["cwd"])
    # what torchrun sets and `mistrec train` divides the threads by
    os.environ["LOCAL_WORLD_SIZE"] = str(get_context().get_local_world_size())
    code = main(config["argv"])
    if code:
        raise RuntimeError(f"mistrec {' '.join(config['argv'])} exited with {code}")
