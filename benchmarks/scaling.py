"""How prepare and training cost grow with the data (issue: scale; docs/scale.md).

    python benchmarks/scaling.py --json OUT [--sizes 100000,1000000,10000000] [--model mist] [--threads 2]
                                 [--ranks-at ROWS] [--shard-rows 250000] [--stream 0,1 | --stream only:1]
                                 [--part-rows ROWS]

For each size: the synthetic platform (the generator, n_users = rows / 50 at 50 events each, item pools grown with
the rows, each event's item chosen among 64 drawn from the pool) written to Parquet (one interactions file, one
items file), then `mistrec prepare` and one epoch of `mistrec train`, each in a process of its own, so that its
wall time and peak RSS (os.wait4) are its alone. With --stream, the epoch again read a shard at a time (train:
stream) with each given number of DataLoader workers ("only:W": streamed alone). With --ranks-at ROWS, the same
epoch at that size on 2 processes (`mistrec train --nproc 2`, DDP over gloo), for the throughput of 2 ranks against
1 on this machine. With --part-rows, prepare reads and prepares the users in parts of about that many rows
(`mistrec prepare --parts`, data/parts.py), and the largest size is also prepared in one piece, for its memory. The
load average is recorded before every step.

JSON: {"points": [{"rows", "prepare_seconds", "epoch_seconds", "peak_rss_mb", "streamed": {...}, ...}],
"per_interaction": [...], "ranks": {...}, "context": {...}}; a PNG of the cost per interaction and the peak RSS
against rows beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, timed_child, write_json

from mistrec.data import SyntheticConfig, generate

WORK = Path(__file__).resolve().parent / "work" / "scaling"
EVENTS_PER_USER = 50


def write_parquet_dataset(rows: int, out: Path) -> Path:
    """The synthetic platform with about `rows` interactions as Parquet files and their dataset YAML."""
    scale = max(rows / 100_000, 1.0)
    base = SyntheticConfig()
    # the catalogue grows with the rows (930 items per 100,000 rows); each event's item is chosen among 64 drawn
    # from its scenario's pool (the generator's choice_candidates), which keeps its memory bounded by blocks
    cfg = SyntheticConfig(n_users=max(rows // EVENTS_PER_USER, 10), events_per_user=EVENTS_PER_USER, seed=0,
                          pool_sizes=tuple(int(p * scale) for p in base.pool_sizes), choice_candidates=64)
    data = generate(cfg)
    out.mkdir(parents=True, exist_ok=True)
    data.interactions.select("user_id", "item_id", "scenario", "timestamp", "label").write_parquet(
        out / "interactions.parquet", row_group_size=1_000_000)
    data.items.select("item_id", "category", "price").write_parquet(out / "items.parquet")
    config = {"name": f"scaling-{rows}",
              "interactions": [{"path": "interactions.parquet", "format": "parquet",
                                "columns": {"user_id": "user_id", "item_id": "item_id", "scenario": "scenario",
                                            "timestamp": "timestamp", "label": "label"}}],
              "label": {"column": "label"}, "timestamp": {"unit": "s"},
              "items": {"path": "items.parquet", "columns": {"item_id": "item_id"}, "categorical": ["category"],
                        "numeric": ["price"]},
              "history": {"length": 50}}
    path = out / "dataset.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def measured(command: list[str]) -> tuple[float, float, float]:
    """Runs `command` (thread counts set, _common.timed_child); returns its wall seconds, its peak RSS in MB (itself
    or any process it waited for: wait4) and the 1-minute load average just before it started."""
    load = os.getloadavg()[0]
    done = timed_child(command)
    return done["wall_seconds"], done["peak_rss_mb"], load


def prepare(yaml_path: Path, prepared: Path, shard_rows: int, parts: int) -> tuple[float, float, float]:
    """`mistrec prepare` in a process of its own (in `parts` parts of users); its wall seconds, peak RSS, load."""
    return measured([sys.executable, "-m", "mistrec", "prepare", str(yaml_path), "--out", str(prepared), "--quiet",
                     "--force", "--shard-rows", str(shard_rows), "--parts", str(parts)])


def epoch(prepared: Path, run: Path, model: str, threads: int, nproc: int = 1, stream: int | None = None
          ) -> dict[str, Any]:
    """One epoch of `model` on `prepared` in a process of its own (or under torchrun with `nproc` ranks); with
    `stream` (a number of DataLoader workers), read a shard at a time."""
    shutil.rmtree(run, ignore_errors=True)
    command = [sys.executable, "-m", "mistrec", "train", str(prepared), "--model", model, "--out", str(run),
               "--epochs", "1", "--quiet", "--threads", str(threads if nproc == 1 else max(threads // nproc, 1))]
    if stream is not None:
        config = run.parent / f"stream-{stream}.yaml"
        config.write_text(yaml.safe_dump({"train": {"stream": True, "stream_workers": stream}}))
        command += ["--config", str(config)]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    wall, rss, load = measured(command)
    metrics = json.loads((run / "metrics.json").read_text())
    first = metrics["train"]["history"][0]
    return {"epoch_seconds": first["seconds"], "train_rows": metrics["train"]["train_samples"],
            "train_process_seconds": round(wall, 2), "train_peak_rss_mb": round(rss, 1),
            "load_before_train": load, "valid_auc": first.get("valid_auc")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True)
    ap.add_argument("--sizes", default="100000,1000000,10000000")
    ap.add_argument("--model", default="mist")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ranks-at", type=int, help="also train this size on 2 processes (DDP)")
    ap.add_argument("--shard-rows", type=int, default=250_000, help="prepare's rows per shard (default 250,000)")
    ap.add_argument("--stream", default="", help="also train each size streamed with these DataLoader worker "
                    "counts, e.g. 0,1 ('only:1': streamed alone, not in memory too)")
    ap.add_argument("--part-rows", type=int, help="prepare in parts of about this many rows (--parts)")
    ap.add_argument("--replot", action="store_true", help="only draw the PNG of an existing --json")
    args = ap.parse_args()
    if args.replot:
        plot(json.loads(Path(args.json).read_text()), Path(args.json).with_suffix(".png"))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    points, ranks = [], None
    for rows in sizes:
        root = WORK / str(rows)
        shutil.rmtree(root, ignore_errors=True)
        t0 = time.perf_counter()
        yaml_path = write_parquet_dataset(rows, root / "raw")
        generate_seconds = time.perf_counter() - t0
        n_rows = pl.scan_parquet(root / "raw" / "interactions.parquet").select(pl.len()).collect().item()
        prepared = root / "prepared"
        parts = max(1, round(n_rows / args.part_rows)) if args.part_rows else 1

        point: dict[str, Any] = {"rows": int(n_rows), "generate_seconds": round(generate_seconds, 2)}
        if args.part_rows and parts > 1 and rows == sizes[-1]:  # the same data in one piece, for its memory
            wall, rss, load = prepare(yaml_path, prepared, args.shard_rows, 1)
            point["one_piece"] = {"prepare_seconds": round(wall, 2), "prepare_peak_rss_mb": round(rss, 1),
                                  "load_before_prepare": load}
        prep_wall, prep_rss, prep_load = prepare(yaml_path, prepared, args.shard_rows, parts)
        point.update({"prepare_seconds": round(prep_wall, 2), "prepare_peak_rss_mb": round(prep_rss, 1),
                      "load_before_prepare": prep_load, "shard_rows": args.shard_rows, "parts": parts})
        only_streamed = args.stream.startswith("only:")
        workers = [int(w) for w in args.stream.removeprefix("only:").split(",") if w.strip()]
        if not only_streamed:
            point.update(epoch(prepared, root / f"run-{args.model}", args.model, args.threads))
        point["streamed"] = {str(w): epoch(prepared, root / f"run-{args.model}-stream{w}", args.model, args.threads,
                                           stream=w) for w in workers}
        if only_streamed:  # the point's own figures are the first worker count's
            point.update(point["streamed"][str(workers[0])])
        point["peak_rss_mb"] = max(point["prepare_peak_rss_mb"], point["train_peak_rss_mb"])
        points.append(point)
        print(json.dumps(point), flush=True)
        if args.ranks_at == rows:
            two = epoch(prepared, root / f"run-{args.model}-2ranks", args.model, args.threads, nproc=2)
            ranks = {"rows": int(n_rows), "threads_total": args.threads, "one_process": point, "two_ranks": two,
                     "speedup_epoch": point["epoch_seconds"] / two["epoch_seconds"]}
            print(json.dumps(ranks), flush=True)
        shutil.rmtree(prepared, ignore_errors=True)  # the work folder holds one size at a time
    per = [{"rows": p["rows"], "prepare_us_per_row": 1e6 * p["prepare_seconds"] / p["rows"],
            "epoch_us_per_train_row": 1e6 * p["epoch_seconds"] / p["train_rows"]} for p in points]
    doc = {"points": points, "per_interaction": per, "ranks": ranks, "model": args.model, "threads": args.threads,
           "streamed_only": args.stream.startswith("only:"), "context": context()}
    if len(per) >= 2:
        doc["ratios_largest_to_previous"] = {
            "prepare": per[-1]["prepare_us_per_row"] / per[-2]["prepare_us_per_row"],
            "epoch": per[-1]["epoch_us_per_train_row"] / per[-2]["epoch_us_per_train_row"]}
    write_json(Path(args.json), doc)
    plot(doc, Path(args.json).with_suffix(".png"))


def plot(doc: dict[str, Any], path: Path) -> None:
    """The cost per interaction and the peak RSS against rows; a panel is left out when the doc sets its figures
    aside (`time_note`, `rss_note`), the in-memory lines when only streamed epochs were run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [p["rows"] for p in doc["points"]]
    panels = [name for name, note in (("time", "time_note"), ("memory", "rss_note")) if not doc.get(note)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    ax = dict(zip(panels, axes[0], strict=True))
    in_memory = not doc.get("streamed_only")
    if "time" in ax:
        a = ax["time"]
        a.plot(rows, [p["prepare_us_per_row"] for p in doc["per_interaction"]], "o-", label="prepare")
        if in_memory:
            a.plot(rows, [p["epoch_us_per_train_row"] for p in doc["per_interaction"]], "s-",
                   label=f"one training epoch ({doc['model']})")
        for w in doc["points"][0].get("streamed", {}):
            a.plot(rows, [1e6 * p["streamed"][w]["epoch_seconds"] / p["streamed"][w]["train_rows"]
                          for p in doc["points"]], "^--", label=f"one epoch streamed ({w} workers)")
        a.set(xscale="log", xlabel="interactions", ylabel="microseconds per interaction",
              title="cost per interaction")
        a.legend()
    if "memory" in ax:
        b = ax["memory"]
        b.plot(rows, [p["prepare_peak_rss_mb"] for p in doc["points"]], "o-", label="prepare")
        if in_memory:
            b.plot(rows, [p["train_peak_rss_mb"] for p in doc["points"]], "s-", label="train (in memory)")
        for w in doc["points"][0].get("streamed", {}):
            b.plot(rows, [p["streamed"][w]["train_peak_rss_mb"] for p in doc["points"]], "^--",
                   label=f"train streamed ({w} workers)")
        b.axhline(4096, color="grey", ls="--", label="4 GB")
        b.set(xscale="log", xlabel="interactions", ylabel="peak RSS (MB)", title="memory")
        b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
