"""Which part of mist's logit ranks a cold user's catalogue: the same trained runs ranked against the full catalogue
with the after-training choice as made, at "scale 0" (the counted prior and `co_items`' term), and with the counted
prior alone (`co_items`' term removed), which is the popularity baseline's ranking (its smoothed rate, the same
pseudo-rows).

    python benchmarks/rank_parts.py --json benchmarks/results/rank_parts_electronic_cloth.json \
        benchmarks/work/s24-amazon/amazon-electronic_cloth-cold-last

Each DIR is a benchmarks/transfer.py work directory (prepared/, runs/mist/seed-S) of implicit data
(where mist counts the prior). Per seed and scenario: NDCG@10 and HR@10 of the test queries
(mistrec.eval.ranking.rank_full_catalogue, as the benchmark ranks them), for each view. Nothing is trained and
nothing in the runs is written. A probe for the electronic_cloth cold users' NDCG@10 (docs/benchmarks.md). With
`--warm`, a warm-protocol directory: the views at "warm 0" (users active in the domain get the prior and the term)
and with the prior alone, ranked as transfer.py's warm protocols rank (full catalogue and 1 + 999 sampled lists, at
most 3,000 users a domain). `--views` names the views to rank (default: the three above), among them "co C": the
run as chosen with `co_items`' W scaled by C in every domain (co_rank_choice.scaled): on the cold protocol every test
user is new in the domain, on the warm one active there, so the scale reaches exactly the users the view is about.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_dirs_and_seeds
from co_rank_choice import ranked_lists, scaled  # ranked_lists: the benchmark's lists (warm: 1 + 999, 3,000 users)

VIEWS = ("chosen", "scale 0", "prior alone")
WARM_VIEWS = ("chosen", "warm 0", "prior alone")


def ranked(root: Path, seed: int, view: str, ds: Any, warm: bool) -> dict[str, dict[str, float]]:
    from mistrec.models.mist import Mist
    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(root / "runs" / "mist" / f"seed-{seed}")
    if view.startswith("co "):
        assert isinstance(model, Mist) and model.co is not None, "a mist run with co_items"
        with scaled(model, dict.fromkeys(range(1, len(enc.spec_.scenario_names) + 1), float(view[3:]))):
            return ranked_lists(model, enc, ds, warm)[0]
    if view != "chosen":
        assert isinstance(model, Mist) and model.prior is not None, "implicit data, where mist counts the prior"
        # every scenario: the row of a user new there (cold) or active there (--warm) is the prior and co_items' term
        model.use_option("warm 0" if warm else "scale 0")
        model.as_new = False  # rows as they are: only the users of that kind are scaled
        if view == "prior alone":
            model.co = None
    return ranked_lists(model, enc, ds, warm)[0]


def one(root: Path, seed: int, warm: bool = False, views: str = "") -> list[dict[str, Any]]:
    """Every view of one run."""
    from mistrec.data.prepared import PreparedDataset

    ds = PreparedDataset.load(root / "prepared")
    out = []
    for view in [v.strip() for v in views.split(",") if v.strip()] or (WARM_VIEWS if warm else VIEWS):
        if view not in (WARM_VIEWS if warm else VIEWS) and not view.startswith("co "):
            raise SystemExit(f"Unknown view {view!r}: {', '.join(WARM_VIEWS if warm else VIEWS)} or 'co C'.")
        got = ranked(root, seed, view, ds, warm)
        print(f"{root.name} seed {seed} {view}: " + ", ".join(
            f"{s} " + " ".join(f"{k} {v:.4f}" for k, v in m.items()) for s, m in got.items()), flush=True)
        out.append({"dir": root.name, "seed": seed, "view": view, "warm": warm, "by_scenario": got})
    return out


if __name__ == "__main__":
    raise SystemExit(run_dirs_and_seeds(__doc__.splitlines()[0], one, seeds="2022,2023,2024", flags=(
        ("--warm", {"action": "store_true", "help": "warm-protocol DIRs: users active in the domain, views at "
                                                    "warm_scale 0, full catalogue and sampled-999 lists"}),
        ("--views", {"default": "", "help": "comma-separated views (default: all three; 'co C' scales co_items' W "
                                            "by C, e.g. 'co 0.5,co 0.25')"}),)))
