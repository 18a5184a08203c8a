"""What `co_scale: auto` (mist's default since the twenty-eighth session) chooses on saved mist runs trained before
it was the default: the choice `mistrec train` now makes after training, made on each run as it was saved, and
how long it took. Nothing is trained and nothing in the runs is written.

    MISTREC_BENCH_THREADS=1 python benchmarks/co_choices.py --json benchmarks/results/co_choices.json DIR[:SEEDS] ...

Each DIR is a benchmarks/transfer.py work directory (prepared/, runs/mist/seed-S; SEEDS comma-separated, default
2022,2023,2024). Per run: every scenario's and kind of user's record (the validation NDCG@10 at each weight, the
number of queries, the best weight, its p-value against 1, the weight kept), whether any weight left 1 (where none
did, the run's test figures are those it had with the term whole: the choice is the only thing the setting
changes), the seconds the choice took and the run's own training seconds (from its benchmark.json, timed when it
was trained, at that load).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, write_json


def one(root: Path, seed: int, ds: Any) -> dict[str, Any]:
    from mistrec.eval.ranking import choose_on_ranking
    from mistrec.models.mist import Mist
    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(root / "runs" / "mist" / f"seed-{seed}", {"co_scale": "auto"})
    assert isinstance(model, Mist) and model.co_scale is not None, "a mist run with co_items"
    start = time.perf_counter()
    chosen = choose_on_ranking(model, enc, ds)["co_scale"]
    seconds = time.perf_counter() - start
    runs = json.loads((root / "benchmark.json").read_text())["runs"]
    trained = next(r["train_seconds"] for r in runs if r["model"] == "mist" and r["seed"] == seed)
    moved = sorted(f"{name} {kind} {rec['chosen']:g}" for name, kinds in chosen.items()
                   for kind, rec in kinds.items() if rec["chosen"] != 1.0)
    print(f"{root.name} seed {seed}: {'moved ' + ', '.join(moved) if moved else 'every weight stays 1'} "
          f"({seconds:.1f} s; trained in {trained:.1f} s)", flush=True)
    return {"dir": root.name, "seed": seed, "co_scale": chosen, "moved": moved, "choice_seconds": seconds,
            "train_seconds_when_trained": trained}


def main() -> int:
    import torch

    from mistrec.data.prepared import PreparedDataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("dirs", nargs="+", help="DIR[:SEEDS]")
    args = ap.parse_args()
    torch.set_num_threads(int(THREADS))
    before = context()
    results = []
    for spec in args.dirs:
        path, _, seeds = spec.partition(":")
        root = Path(path)
        ds = PreparedDataset.load(root / "prepared")
        results += [one(root, int(s), ds) for s in (seeds or "2022,2023,2024").split(",")]
    write_json(args.json, {"results": results, "context_before": before, "context_after": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
