"""Would a choice of `co_items`' weight for users new in a scenario, made on the validation users' full-catalogue
NDCG@10, give the Amazon cold users a better top ten? A probe on trained runs (docs/benchmarks.md, "co_items' weight
chosen on a ranking metric"); nothing is trained and nothing in the runs is written.

    python benchmarks/co_rank_choice.py --json benchmarks/results/co_rank_choice_electronic_cloth.json \
        benchmarks/work/s24-amazon/amazon-electronic_cloth-cold-last

DIR is a benchmarks/transfer.py work directory of the cold-user protocol (prepared/, runs/mist/seed-S): every
validation and test query there is a user new in the query's domain, so scaling the target domain's row of the
term's W (mist_cooc.CoItems: `fast` and `weight`, whose sum with the gain is W) by c scales the term for exactly
those users. Per seed: the validation queries ranked against the full catalogue (mistrec.eval.ranking.
rank_full_catalogue, as the benchmark ranks) with c in COS for every domain at once (a domain's queries read only
its own row of W); per domain the c with the highest validation NDCG@10 (1 on a tie: the trained state); then the
test queries ranked with c = 1 (the run as it is) and with each domain's chosen c. The run's own after-training
choices (cold_scale's form and scale) are kept as they were made.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, write_json

COS = (1.0, 0.5, 0.25, 0.0)


def ranked(model: Any, enc: Any, ds: Any, split: str, scale: dict[int, float]) -> dict[str, dict[str, float]]:
    """NDCG@10 and HR@10 per domain of `split`'s queries with W's row of domain s scaled by scale[s]."""
    import torch

    from mistrec.eval.ranking import rank_full_catalogue

    co = model.co
    saved = (co.fast.detach().clone(), co.weight.detach().clone())
    with torch.no_grad():
        for s, c in scale.items():
            co.fast[s] *= c
            co.weight[s] *= c
        try:
            metrics = rank_full_catalogue(model, enc, ds, split, ks=(10,)).metrics
        finally:
            co.fast.copy_(saved[0])
            co.weight.copy_(saved[1])
    return {s: {k: float(m[k]) for k in ("ndcg@10", "hr@10")} for s, m in metrics["by_scenario"].items()}


def one(root: Path, seed: int, ds: Any) -> dict[str, Any]:
    from mistrec.models.mist import Mist
    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(root / "runs" / "mist" / f"seed-{seed}")
    assert isinstance(model, Mist) and model.co is not None, "a mist run with co_items"
    names = enc.spec_.scenario_names
    index = {n: i for i, n in enumerate(names, start=1)}
    valid = {}
    for c in COS:
        valid[c] = ranked(model, enc, ds, "valid", {s: c for s in index.values()})
        print(f"seed {seed} valid c={c:g}: " + ", ".join(f"{n} {m['ndcg@10']:.4f}" for n, m in valid[c].items()),
              flush=True)
    chosen = {}
    for n in valid[1.0]:
        best = 1.0
        for c in COS[1:]:
            if valid[c][n]["ndcg@10"] > valid[best][n]["ndcg@10"]:
                best = c
        chosen[n] = best
    test = {"1": ranked(model, enc, ds, "test", {})}
    if any(c != 1.0 for c in chosen.values()):
        test["chosen"] = ranked(model, enc, ds, "test", {index[n]: c for n, c in chosen.items()})
    else:
        test["chosen"] = test["1"]
    print(f"seed {seed} chosen {chosen}; test NDCG@10 " + ", ".join(
        f"{n} {test['1'][n]['ndcg@10']:.4f} -> {test['chosen'][n]['ndcg@10']:.4f}" for n in test["1"]), flush=True)
    return {"seed": seed, "valid": {f"{c:g}": v for c, v in valid.items()}, "chosen": chosen, "test": test}


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
    results = [one(root, int(s), ds) for s in args.seeds.split(",")]
    write_json(args.json, {"dir": root.name, "cos": list(COS), "results": results, "context_before": before,
                           "context_after": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
