"""How much of a cold user's other scenarios their evaluated rows' histories hold: per target scenario of a
prepared cold-user dataset, the mean history length of the cold users' test rows (positives), the mean number of
the user's training events in other scenarios (and that number capped at the history length), and the share of
rows with an empty history. Run on the same data prepared with cold_order "time" and "last" (docs/benchmarks.md,
"Amazon cold users again").

    python benchmarks/cold_history.py --json OUT PREPARED_DIR [PREPARED_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json


def measure(prepared: Path) -> dict[str, Any]:
    manifest = json.loads((prepared / "manifest.json").read_text())
    length = manifest["history"]["length"]
    rows = pl.read_parquet(prepared / "interactions.parquet",
                           columns=["user", "scenario", "split", "sampled", "hist_start", "hist_end"])
    train = rows.filter((pl.col("split") == "train") & ~pl.col("sampled"))
    per_scenario = train.group_by("user", "scenario").len("n")
    test = rows.filter((pl.col("split") == "test") & ~pl.col("sampled")).with_columns(
        (pl.col("hist_end") - pl.col("hist_start")).alias("history"))
    out = {}
    for s, name in enumerate(manifest["scenarios"], start=1):
        mine = test.filter(pl.col("scenario") == s)
        elsewhere = per_scenario.filter(pl.col("scenario") != s).group_by("user").agg(pl.col("n").sum())
        mine = mine.join(elsewhere, on="user", how="left").with_columns(pl.col("n").fill_null(0))
        out[name] = {"rows": mine.height, "history_mean": mine["history"].mean(),
                     "events_elsewhere_mean": mine["n"].mean(),
                     "events_elsewhere_capped_mean": mine["n"].clip(0, length).mean(),
                     "empty_history_share": (mine["history"] == 0).mean()}
    return {"prepared": str(prepared), "protocol": manifest["protocol"], "history_length": length,
            "by_target": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("prepared", nargs="+")
    args = ap.parse_args()
    write_json(Path(args.json), {"datasets": [measure(Path(p)) for p in args.prepared]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
