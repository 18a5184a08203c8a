"""Speed and memory of `mistrec prepare` on MovieLens-1M (age-group scenarios, temporal protocol, L = 50).

Each run is a fresh `python -m mistrec prepare` process (imports included), timed end to end, with the peak
RSS of that process alone. Targets (issue: foundation): under 20 s wall and under 2 GB peak RSS on 2 cores.

    python benchmarks/prepare_speed.py --json benchmarks/results/prepare_speed.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, context, timed_child, write_json


def dense_gather_seconds(prepared: Path, chunk: int = 65_536) -> float:
    """Seconds to gather padded histories for every sample, in training-sized chunks (in this process)."""
    import time

    import numpy as np

    from mistrec.data import PreparedDataset

    ds = PreparedDataset.load(prepared)
    n = ds.interactions.height
    start = time.perf_counter()
    for lo in range(0, n, chunk):
        ds.histories(np.arange(lo, min(lo + chunk, n)))
    return round(time.perf_counter() - start, 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True, help="where to write the results")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", default=str(SHARED_DATA / "ml-1m"), help="the ml-1m RecBole atomic files")
    args = ap.parse_args()

    from mistrec.data.recipes import write_recipe

    with tempfile.TemporaryDirectory() as tmp:
        cfg = write_recipe("ml-1m-age", Path(args.data), Path(tmp) / "ml1m.yaml")
        out = Path(tmp) / "prepared"
        argv = [sys.executable, "-m", "mistrec", "prepare", str(cfg), "--out", str(out), "--protocol", "temporal",
                "--history-length", "50", "--quiet"]
        before = context()
        runs = [timed_child(argv) for _ in range(args.runs)]
        manifest = json.loads((out / "manifest.json").read_text())
        gather = dense_gather_seconds(out)
    walls = [r["wall_seconds"] for r in runs]
    result = {
        "rows": manifest["counts"]["after_cleaning"]["ALL"]["rows"],
        "wall_seconds_median": statistics.median(walls),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "runs": runs,
        "history_length": manifest["history"]["length"],
        "history_events": manifest["history"]["events"],
        "protocol": manifest["protocol"]["name"],
        # Not part of prepare: turning every sample's window into padded (B, 50) arrays, as training will.
        "dense_history_gather_seconds_all_samples": gather,
        "targets": {"wall_seconds": 20.0, "peak_rss_mb": 2048.0},
        "context_before": before,
        "context_after": context(),
    }
    result["meets_targets"] = result["wall_seconds_median"] < 20.0 and result["peak_rss_mb"] < 2048.0
    write_json(args.json, result)
    print(json.dumps({k: result[k] for k in ("rows", "wall_seconds_median", "peak_rss_mb", "meets_targets")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
