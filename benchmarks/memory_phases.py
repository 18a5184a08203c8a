"""Where a streamed training's memory goes: RSS sampled every 0.2 s in one `fit_run` (mist, one epoch, `train:
{stream: true}`), with the peak reached during each phase (encoder fit, mist's item counts fitted a shard at a
time, or the training rows' index columns read whole for a model that needs them, the epoch, validation scoring,
the final evaluation of valid and test).

    python benchmarks/memory_phases.py --data PREPARED --json OUT [--eval-batch-size 16384]

PREPARED: a prepared directory with shards (benchmarks/scaling.py leaves its raw data in benchmarks/work/scaling;
`mistrec prepare .../raw/dataset.yaml --out DIR --shard-rows 250000`). JSON: {"phases": [{"phase", "rss_before_mb",
"peak_mb", "rss_after_mb"}], "peak_mb", "context"}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, PeakRss, context, write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--eval-batch-size", type=int, default=16384)
    args = ap.parse_args()
    import torch

    from mistrec.eval import fit as fit_module
    from mistrec.models.mist import Mist
    from mistrec.train import TrainConfig, loop, stream

    torch.set_num_threads(int(THREADS))
    memory, phases = PeakRss(), []

    def watched(owner: Any, name: str, phase: str) -> None:
        inner = getattr(owner, name)

        def call(*a: Any, **k: Any) -> Any:
            before = memory.reset()
            out = inner(*a, **k)
            phases.append({"phase": phase, "rss_before_mb": round(before), "peak_mb": round(memory.final()),
                           "rss_after_mb": round(memory.now())})
            print(phases[-1], flush=True)
            return out

        setattr(owner, name, call)

    watched(fit_module.FeatureEncoder, "fit", "encoder fit")
    watched(stream.StreamedRows, "indexed", "training rows' index columns")
    watched(Mist, "setup_chunks", "item counts, a shard at a time")
    watched(loop, "_run_epoch", "training epoch")
    watched(loop, "_epoch_record", "validation scoring")
    watched(fit_module, "_evaluate", "final evaluation (one split)")
    with tempfile.TemporaryDirectory() as tmp:
        fit_module.fit_run(args.data, "mist", Path(tmp) / "run", quiet=True,
                           train_cfg=TrainConfig(epochs=1, stream=True, eval_batch_size=args.eval_batch_size))
    write_json(Path(args.json), {"data": args.data, "eval_batch_size": args.eval_batch_size, "phases": phases,
                                 "peak_mb": round(max(p["peak_mb"] for p in phases)), "context": context()})


if __name__ == "__main__":
    main()
