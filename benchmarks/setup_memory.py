"""Memory of mist's setup before a streamed training (the item prior, docs/scale.md): the training
rows' index columns read whole (`StreamedRows.indexed`, what `Prepares` models get) against a shard at a time
(`StreamedRows.indexed_chunks`, what mist, a `PreparesInChunks` model, gets), each in a fresh process, alternated.

    python benchmarks/setup_memory.py --data PREPARED --json OUT [--repeats 2]

PREPARED: a prepared directory with shards (benchmarks/scaling.py's data, `mistrec prepare ... --shard-rows
250000`). Each run samples the process's RSS every 50 ms during the setup alone (the encoder and model built
before). JSON: {"runs": [{"way", "rows", "rss_before_mb", "peak_mb", "growth_mb", "seconds", "prior_sum"}],
"context"}: the two ways must give the same prior. (Files written before 2026-12-03's eighteenth session also compare
mist's `known_items`, which the model no longer has.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakRss, context, thread_env, write_json


def _one(path: str, way: str) -> dict[str, object]:
    """In this (fresh) process: the encoder and model built, then mist's setup alone, watched."""
    import torch

    from mistrec.data import PreparedDataset
    from mistrec.features import FeatureEncoder
    from mistrec.models import build_model
    from mistrec.train.stream import StreamedRows

    torch.set_num_threads(1)
    ds = PreparedDataset.load(path, rows=False)
    enc = FeatureEncoder().fit(ds)
    model = build_model("mist", enc.spec_, {"item_prior": True})
    rows = StreamedRows(ds, enc, "train")
    memory = PeakRss(every=0.05)
    time.sleep(0.2)
    before = memory.reset()
    start = time.perf_counter()
    if way == "whole":
        model.setup(rows.indexed())
    else:
        model.setup_chunks(rows.indexed_chunks())
    seconds = time.perf_counter() - start
    time.sleep(0.2)
    peak = memory.final()
    assert model.prior is not None
    return {"way": way, "rows": len(rows), "rss_before_mb": round(before), "peak_mb": round(peak),
            "growth_mb": round(peak - before), "seconds": round(seconds, 2), "prior_sum": float(model.prior.sum())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--one", choices=("whole", "chunks"), help=argparse.SUPPRESS)  # a child: one way, printed
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(args.data, args.one)))
        return 0
    runs = []
    for _ in range(args.repeats):
        for way in ("whole", "chunks"):
            out = subprocess.run([sys.executable, __file__, "--data", args.data, "--json", args.json, "--one", way],
                                 env=thread_env(), check=True, capture_output=True, text=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), flush=True)
    same = len({r["prior_sum"] for r in runs}) == 1
    write_json(args.json, {"data": args.data, "runs": runs, "same_prior": same,
                           "context": context()})
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
