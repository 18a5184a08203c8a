"""What mist's `rank_exposure` does to a saved run's full-catalogue ranking, on the validation and the test queries:
every scenario ranked by the click probability times the item's share of the scenario's training rows, and every
scenario by the logit alone (what `rank_exposure: off` gives with the same weights; training never reads the table),
whatever the run's validation chose per scenario (recorded as `chosen_when_trained`). Per scenario, NDCG@10 over all
queries and per activity group.

    python benchmarks/rank_exposure_probe.py --json OUT RUN [RUN ...]

Read against docs/benchmarks.md, "rank_exposure chosen per scenario". A run without the table (sampled
negatives, or `rank_exposure: off`) is refused: there is nothing to compare.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json

from mistrec.eval.activity import ActivityCounts
from mistrec.eval.evaluate import load_run_and_data
from mistrec.eval.ranking import rank_full_catalogue
from mistrec.models.mist import Mist


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out: dict[str, Any] = {}
    for run in args.runs:
        model, enc, _meta, ds = load_run_and_data(run)
        if not isinstance(model, Mist) or model.exposure is None or model.exposed is None:
            raise SystemExit(f"{run}: not a mist run with rank_exposure's table.")
        activity = ActivityCounts.from_interactions(ds.interactions, len(ds.scenarios) + 1)
        res: dict[str, Any] = {"chosen_when_trained": model.exposed.tolist()}
        for name, on in (("exposure", True), ("logit", False)):
            model.exposed.fill_(on)  # every scenario with the exposure, or none (the run's own choice aside)
            for split in ("valid", "test"):
                m = rank_full_catalogue(model, enc, ds, split=split, ks=(10,), activity=activity).metrics
                res[f"{name} {split}"] = {
                    s: {"all": round(v["ndcg@10"], 4),
                        **{g: round(x["ndcg@10"], 4)
                           for g, x in m["by_activity"]["by_scenario"].get(s, {}).items()}}
                    for s, v in m["by_scenario"].items()}
                print(run, name, split, {s: v["all"] for s, v in res[f"{name} {split}"].items()}, flush=True)
        out[run] = res
    write_json(args.json, {**out, "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
