"""Which part of mist's logit ranks a cold user's catalogue: the same trained runs ranked against the full catalogue
with the after-training choice as made, at "scale 0" (the counted prior and `co_items`' term), and with the counted
prior alone (`co_items`' term removed), which is the popularity baseline's ranking (its smoothed rate, the same
pseudo-rows).

    python benchmarks/rank_parts.py --json benchmarks/results/rank_parts_electronic_cloth.json \
        benchmarks/work/s24-amazon/amazon-electronic_cloth-cold-last

DIR is a benchmarks/transfer.py work directory (prepared/, runs/mist/seed-S) of implicit data
(where mist counts the prior). Per seed and scenario: NDCG@10 and HR@10 of the test queries
(mistrec.eval.ranking.rank_full_catalogue, as the benchmark ranks them), for each view. Nothing is trained and
nothing in the runs is written. A probe for the electronic_cloth cold users' NDCG@10 (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, write_json

VIEWS = ("chosen", "scale 0", "prior alone")


def one(root: Path, seed: int, view: str, ds: Any) -> dict[str, dict[str, float]]:
    from mistrec.eval.ranking import rank_full_catalogue
    from mistrec.models.mist import Mist
    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(root / "runs" / "mist" / f"seed-{seed}")
    if view in ("scale 0", "prior alone"):
        assert isinstance(model, Mist) and model.prior is not None, "implicit data, where mist counts the prior"
        model.use_option("scale 0")  # every scenario: a new user's row is the prior and the co_items term
        model.as_new = False  # rows as they are: only users with no event in the scenario are scaled
        if view == "prior alone":
            model.co = None
    metrics = rank_full_catalogue(model, enc, ds, "test", ks=(10,)).metrics
    return {s: {k: float(m[k]) for k in ("ndcg@10", "hr@10")} for s, m in metrics["by_scenario"].items()}


def main() -> int:
    import torch

    from mistrec.data.prepared import PreparedDataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", default="2022,2023,2024")
    ap.add_argument("dir")
    args = ap.parse_args()
    torch.set_num_threads(int(THREADS))
    root = Path(args.dir)
    ds = PreparedDataset.load(root / "prepared")
    before = context()
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for view in VIEWS:
            got = one(root, seed, view, ds)
            print(f"seed {seed} {view}: " + ", ".join(f"{s} NDCG@10 {m['ndcg@10']:.4f} HR@10 {m['hr@10']:.3f}"
                                                      for s, m in got.items()), flush=True)
            results.append({"seed": seed, "view": view, "by_scenario": got})
    write_json(args.json, {"dir": root.name, "views": list(VIEWS), "results": results, "context_before": before,
                           "context_after": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
