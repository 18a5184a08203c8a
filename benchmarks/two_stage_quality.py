"""Quality of two-stage recommendation against mist ranking the whole catalogue, on MovieLens-1M by age group with
the temporal protocol (docs/serving.md, "Retrieval").

    python benchmarks/two_stage_quality.py --json benchmarks/results/two_stage_quality_ml1m_age.json [--n 500]

Trains (or takes, --mist / --tower) mist and two_tower on the same prepared data, indexes the towers' items
(`mistrec index`, exact here: 3,706 items), and ranks every test query three ways with full-catalogue metrics:
mist over the whole catalogue; the two stages (the --n items the index returns for the query's user vector, ranked
by mist, every other item after them: mistrec.eval.two_stage.TwoStageScorer); and two_tower alone, whose Recall@N
is the first stage's recall. Writes NDCG@10 and Recall@50 of each, their ratio, and Recall@N of retrieval.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, THREADS, context, write_json


def prepared_temporal(work: Path) -> Path:
    from mistrec.data import ProtocolConfig, load_dataset_config, prepare
    from mistrec.data.recipes import write_recipe

    root = work / "ml-1m-age-temporal"
    prepared = root / "prepared"
    if not (prepared / "manifest.json").is_file():
        cfg = write_recipe("ml-1m-age", SHARED_DATA / "ml-1m", root / "dataset.yaml")
        prepare(load_dataset_config(cfg), prepared, protocol=ProtocolConfig(name="temporal"), history_length=50)
    return prepared


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--n", type=int, default=500, help="items retrieved per query (default 500)")
    ap.add_argument("--mist", help="a mist run on the prepared data (default: trained here)")
    ap.add_argument("--tower", help="a two_tower run on the prepared data (default: trained here)")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work"))
    args = ap.parse_args()

    import torch

    from mistrec.data import PreparedDataset
    from mistrec.eval import rank_full_catalogue
    from mistrec.eval.fit import fit_run
    from mistrec.eval.index import build_index, load_index
    from mistrec.eval.two_stage import TwoStageScorer
    from mistrec.train import TrainConfig, load_run

    torch.set_num_threads(int(THREADS))
    prepared = prepared_temporal(Path(args.work))
    root = prepared.parent
    runs, seconds = {}, {}
    for name, given in (("mist", args.mist), ("two_tower", args.tower)):
        run = Path(given) if given else root / f"{name}-run"
        if not (run / "run.json").is_file():
            start = time.perf_counter()
            fit_run(prepared, name, run, train_cfg=TrainConfig(epochs=args.epochs, seed=2022), quiet=True)
            seconds[f"train_{name}"] = round(time.perf_counter() - start, 1)
        runs[name] = run
    build_index(runs["two_tower"], kind="flat")
    ranker, enc, _ = load_run(runs["mist"])
    tower, tower_enc, _ = load_run(runs["two_tower"])
    if not ((enc.item_map_ == tower_enc.item_map_).all() and (enc.user_map_ == tower_enc.user_map_).all()):
        raise SystemExit("the two runs' encoders map ids differently: train both on the same prepared data")
    ds = PreparedDataset.load(prepared)
    ks = (10, 50, args.n)
    load_before = os.getloadavg()
    results = {}
    for label, model in (("mist_full_catalogue", ranker),
                         ("two_stage", TwoStageScorer(ranker, tower, load_index(runs["two_tower"]), list(ds.scenarios),
                                                      enc.item_map_, args.n)),
                         ("two_tower_alone", tower)):
        start = time.perf_counter()
        m = rank_full_catalogue(model, enc if model is not tower else tower_enc, ds, ks=ks).metrics["overall"]
        results[label] = {"ndcg@10": m["ndcg@10"], "recall@50": m["recall@50"],
                          f"recall@{args.n}": m[f"recall@{args.n}"], "queries": m["n_queries"],
                          "seconds": round(time.perf_counter() - start, 1)}
    full, two = results["mist_full_catalogue"], results["two_stage"]
    doc = {"data": "ml-1m-age, temporal protocol", "n": args.n, "results": results,
           "two_stage_over_full": {k: two[k] / full[k] for k in ("ndcg@10", "recall@50")},
           "retrieval_recall_at_n": results["two_tower_alone"][f"recall@{args.n}"],
           "runs": {k: str(v) for k, v in runs.items()}, "train_seconds": seconds, "load_average_before": load_before,
           "load_average_after": os.getloadavg(), "context": context()}
    write_json(args.json, doc)
    print(json.dumps({k: doc[k] for k in ("two_stage_over_full", "retrieval_recall_at_n")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
