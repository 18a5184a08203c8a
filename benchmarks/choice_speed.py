"""How long `co_scale: auto`'s choice takes, one scoring for every weight (mistrec.eval.ranking.choose_on_ranking
since 2026-12-04's twenty-seventh session) against the design it replaced (the validation queries ranked again
under each weight: CO_SCALES full-catalogue rankings whose network part is the same), on a saved mist run.

    MISTREC_BENCH_THREADS=1 python benchmarks/choice_speed.py --json benchmarks/results/choice_speed_sport_phone.json \
        --seeds 2022 benchmarks/work/s26-warm/amazon-sport_phone-warm

DIR is a benchmarks/transfer.py work directory (prepared/, runs/mist/seed-S). Per seed the run is loaded with
`co_scale: auto` and, `--repeats` times each, alternately: the baseline (per weight, `use_ranking_option` and
`rank_full_catalogue` of the same seeded sample of validation queries, then `settle_ranking`) and
`choose_on_ranking`. Both must record the same validation NDCG@10 per weight and kind of user and choose the same
weights (checked; the script fails otherwise). Medians, their ratio, the load average before and after, threads.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, write_json


def per_weight(model: Any, enc: Any, ds: Any) -> dict[str, Any]:
    """The replaced design: each weight's own full-catalogue ranking of the sampled validation queries."""
    import numpy as np

    from mistrec.eval.activity import ActivityCounts
    from mistrec.eval.ranking import rank_full_catalogue

    activity = ActivityCounts.from_interactions(ds.interactions, len(ds.scenarios) + 1)
    names = tuple(ds.scenarios)
    ndcg: dict[float, dict[int, dict[str, np.ndarray]]] = {}
    for option in model.ranking_options():
        model.use_ranking_option(option)
        result = rank_full_catalogue(model, enc, ds, "valid", ks=(10,), activity=activity,
                                     max_queries=model.ranking_queries)
        ndcg[option] = {names.index(n) + 1: {"user": q["user"], "group": q["group"], "ndcg@10": q["ndcg@10"]}
                        for n, q in result.per_query["full catalogue"].items()}
    return dict(model.settle_ranking(ndcg, enc.spec_.scenario_names))


def one(root: Path, seed: int, repeats: int, ds: Any) -> dict[str, Any]:
    import numpy as np

    from mistrec.eval.ranking import choose_on_ranking
    from mistrec.models.mist import Mist
    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(root / "runs" / "mist" / f"seed-{seed}", {"co_scale": "auto"})
    assert isinstance(model, Mist) and model.co_scale is not None, "a mist run with co_items"
    model.eval()
    times: dict[str, list[float]] = {"per weight": [], "one scoring": []}
    records: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in (("per weight", per_weight), ("one scoring", choose_on_ranking)):
            start = time.perf_counter()
            records[name] = fn(model, enc, ds)
            times[name].append(time.perf_counter() - start)
    a, b = records["per weight"]["co_scale"], records["one scoring"]["co_scale"]
    for scenario, kinds in a.items():
        for kind, rec in kinds.items():
            other = b[scenario][kind]
            assert rec["chosen"] == other["chosen"] and rec["queries"] == other["queries"], (scenario, kind)
            for w, v in rec["valid_ndcg@10"].items():
                assert np.isclose(v, other["valid_ndcg@10"][w], rtol=0, atol=1e-12, equal_nan=True), (scenario, kind)
    medians = {k: float(np.median(v)) for k, v in times.items()}
    print(f"seed {seed}: per weight {medians['per weight']:.1f} s, one scoring {medians['one scoring']:.1f} s "
          f"({medians['per weight'] / medians['one scoring']:.2f}x)", flush=True)
    return {"seed": seed, "seconds": times, "median_seconds": medians,
            "speedup": medians["per weight"] / medians["one scoring"], "chosen": b}


def main() -> int:
    import torch

    from mistrec.data.prepared import PreparedDataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", default="2022")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("dir")
    args = ap.parse_args()
    torch.set_num_threads(int(THREADS))
    root = Path(args.dir)
    ds = PreparedDataset.load(root / "prepared")
    before = context()
    results = [one(root, int(s), args.repeats, ds) for s in args.seeds.split(",")]
    write_json(args.json, {"dir": root.name, "repeats": args.repeats, "results": results,
                           "context_before": before, "context_after": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
