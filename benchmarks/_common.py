"""Helpers shared by the benchmark scripts: timed child processes with their own peak RSS, and context
(load average, threads, versions) recorded next to every timing."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MISTREC_SHARED_DATA", REPO.parent / "shared" / "data"))
THREADS = os.environ.get("MISTREC_BENCH_THREADS", "2")  # 1 when two benchmarks share the 2 cores


def thread_env() -> dict[str, str]:
    """Thread counts set explicitly: on a 2-core box another job's threads distort timings badly."""
    env = dict(os.environ)
    env.update({"POLARS_MAX_THREADS": THREADS, "OMP_NUM_THREADS": THREADS, "MKL_NUM_THREADS": THREADS,
                "OPENBLAS_NUM_THREADS": THREADS})
    return env


def timed_child(argv: list[str]) -> dict[str, float]:
    """Runs one command; returns its wall time and its own peak RSS (from wait4, not the parent's)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=thread_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed ({' '.join(argv)}):\n{err}")
    return {"wall_seconds": round(wall, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def context() -> dict[str, Any]:
    import polars

    return {
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "threads": int(THREADS),
        "python": sys.version.split()[0],
        "polars": polars.__version__,
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    """Writes a benchmark result, creating its folder."""
    import json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=2) + "\n")


def run_benchmark_cli(cmd: list[str], json_path: str | Path) -> int:
    """Runs a `mistrec benchmark` command (with the explicit thread counts) and records the machine's context
    next to its figures in the JSON it wrote; returns its exit code."""
    import json

    code = subprocess.run(cmd, env=thread_env(), check=False).returncode
    if Path(json_path).is_file():
        doc = json.loads(Path(json_path).read_text())
        doc["context"] = context()
        write_json(json_path, doc)
    return code


def prepared_ml1m(work: Path, recipe: str, data: Path) -> Path:
    """MovieLens-1M prepared under work/ml-1m-RECIPE/prepared (once; later calls reuse it): age groups with the
    random 8:1:1 split (seed 2022, the published benchmarks' setting), genre shelves with the temporal protocol;
    L = 50."""
    from mistrec.data import ProtocolConfig, load_dataset_config, prepare
    from mistrec.data.recipes import write_recipe

    root = work / f"ml-1m-{recipe}"
    prepared = root / "prepared"
    if not (prepared / "manifest.json").is_file():
        cfg = write_recipe(f"ml-1m-{recipe}", data, root / "dataset.yaml")
        protocol = ProtocolConfig(name="random", seed=2022) if recipe == "age" else ProtocolConfig(name="temporal")
        prepare(load_dataset_config(cfg), prepared, protocol=protocol, history_length=50)
    return prepared
