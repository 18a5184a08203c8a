"""How often a two-rank run of `mistrec train --nproc 2` fails on the way out, on 2 busy cores (docs/scale.md).

    python benchmarks/ranks_exit.py --json benchmarks/results/ranks_exit.json --runs 30 --busy 2

The streamed-training test's command (tests/train/test_stream.py, test_two_ranks_stream_their_own_shards: the
synthetic platform, 300 users x 30 events, shards of 2,000 rows, mist at 8 dimensions, 2 epochs, batches of 128,
streamed, no loader workers) run `--runs` times while `--busy` Python busy loops hold the cores, as a full test suite
or another job does. Per run: the exit code, whether a rank aborted with "terminate called without an active
exception", seconds, and a failed run's last lines of stderr. Measured first as a hand loop before 2026-12-04's
barrier (mistrec/train/distributed.py: 6 aborts in 45 runs), then with it by this script, then with the worker
ranks' os._exit as well (mistrec/cli/main.py; docs/scale.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, context, write_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--busy", type=int, default=2, help="busy loops beside the runs")
    args = ap.parse_args()
    from mistrec.data import ProtocolConfig, SyntheticConfig, generate, load_dataset_config, prepare

    root = Path(tempfile.mkdtemp(prefix="ranks-exit-"))
    raw = generate(SyntheticConfig(n_users=300, events_per_user=30, seed=1)).write(root / "raw")
    prepare(load_dataset_config(raw), root / "prepared", protocol=ProtocolConfig(name="temporal"), history_length=10,
            quiet=True, shard_rows=2000)
    (root / "stream.yaml").write_text("model: {embedding_dim: 8}\ntrain: {stream: true, stream_workers: 0}\n")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    before = context()
    runs = []
    try:
        for i in range(args.runs):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "mistrec", "train", str(root / "prepared"), "--model", "mist",
                                   "--out", str(root / f"run-{i}"), "--epochs", "2", "--batch-size", "128", "--quiet",
                                   "--nproc", "2", "--config", str(root / "stream.yaml")],
                                  capture_output=True, text=True, cwd=REPO, env=os.environ.copy())
            aborted = "terminate called without an active exception" in done.stderr
            runs.append({"run": i, "returncode": done.returncode, "aborted": aborted,
                         "seconds": round(time.perf_counter() - start, 2),
                         **({"stderr_tail": done.stderr[-3000:]} if done.returncode else {})})
            print(f"run {i}: exit {done.returncode}{' (a rank aborted)' if aborted else ''}", flush=True)
    finally:
        for p in busy:
            p.kill()
        shutil.rmtree(root, ignore_errors=True)  # the data and the runs: only the figures are kept
    write_json(args.json, {"runs": runs, "failed": sum(r["returncode"] != 0 for r in runs),
                           "aborted": sum(r["aborted"] for r in runs), "busy_loops": args.busy,
                           "context_before": before, "context_after": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
