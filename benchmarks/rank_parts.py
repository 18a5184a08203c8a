"""Which part of mist's logit ranks a cold user's catalogue: the same trained runs ranked against the full catalogue
with the after-training choice as made, at "scale 0" (the counted prior and `co_items`' term), and with the counted
prior alone (`co_items`' term removed), which is the popularity baseline's ranking (its smoothed rate, the same
pseudo-rows).

    python benchmarks/rank_parts.py --json benchmarks/results/rank_parts_electronic_cloth.json \
        benchmarks/work/s24-amazon/amazon-electronic_cloth-cold-last

DIR is a benchmarks/transfer.py work directory (prepared/, runs/mist/seed-S) of implicit data
(where mist counts the prior). Per seed and scenario: NDCG@10 and HR@10 of the test queries
(mistrec.eval.ranking.rank_full_catalogue, as the benchmark ranks them), for each view. Nothing is trained and
nothing in the runs is written. A probe for the electronic_cloth cold users' NDCG@10 (docs/benchmarks.md). With
`--warm`, a warm-protocol directory: the views at "warm 0" (users active in the domain get the prior and the term)
and with the prior alone, ranked as transfer.py's warm protocols rank (full catalogue and 1 + 999 sampled lists, at
most 3,000 users a domain).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, write_json

SAMPLED, MAX_QUERIES = 999, 3000  # benchmarks/transfer.py's warm protocols: 1 + 999 lists, 3,000 users a domain

VIEWS = ("chosen", "scale 0", "prior alone")
WARM_VIEWS = ("chosen", "warm 0", "prior alone")


def one(root: Path, seed: int, view: str, ds: Any, warm: bool = False) -> dict[str, dict[str, float]]:
    from mistrec.eval.ranking import rank_full_catalogue
    from mistrec.models.mist import Mist
    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(root / "runs" / "mist" / f"seed-{seed}")
    if view != "chosen":
        assert isinstance(model, Mist) and model.prior is not None, "implicit data, where mist counts the prior"
        # every scenario: the row of a user new there (cold) or active there (--warm) is the prior and co_items' term
        model.use_option("warm 0" if warm else "scale 0")
        model.as_new = False  # rows as they are: only the users of that kind are scaled
        if view == "prior alone":
            model.co = None
    extra = {"also_sampled": SAMPLED, "max_queries": MAX_QUERIES} if warm else {}  # as transfer.py's warm protocols
    metrics = rank_full_catalogue(model, enc, ds, "test", ks=(10,), **extra).metrics  # type: ignore[arg-type]
    out = {s: {k: float(m[k]) for k in ("ndcg@10", "hr@10")} for s, m in metrics["by_scenario"].items()}
    if warm:
        for s, m in metrics["sampled"]["by_scenario"].items():
            out[s].update({f"sampled {k}": float(m[k]) for k in ("ndcg@10", "hr@10")})
    return out


def main() -> int:
    import torch

    from mistrec.data.prepared import PreparedDataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", default="2022,2023,2024")
    ap.add_argument("--warm", action="store_true", help="a warm-protocol DIR: users active in the domain, views at "
                                                        "warm_scale 0, full catalogue and sampled-999 lists")
    ap.add_argument("dir")
    args = ap.parse_args()
    torch.set_num_threads(int(THREADS))
    root = Path(args.dir)
    ds = PreparedDataset.load(root / "prepared")
    before = context()
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for view in WARM_VIEWS if args.warm else VIEWS:
            got = one(root, seed, view, ds, args.warm)
            print(f"seed {seed} {view}: " + ", ".join(f"{s} " + " ".join(f"{k} {v:.4f}" for k, v in m.items())
                                                      for s, m in got.items()), flush=True)
            results.append({"seed": seed, "view": view, "by_scenario": got})
    write_json(args.json, {"dir": root.name, "views": list(WARM_VIEWS if args.warm else VIEWS), "warm": args.warm,
                           "results": results, "context_before": before, "context_after": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
