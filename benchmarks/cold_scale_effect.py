"""What mist's `cold_scale: auto` changes: one mist run with the defaults, its validation and test rows scored with
the scales the validation rows chose and with every scale of COLD_SCALES in every scenario (training never reads
the scale, so "1" is what `cold_scale: off` gives with the same weights, and "0" leaves a new user's items at their
counted prior and item-to-item term; before 2026-12-03's eighteenth session it scaled only items with a training
positive in the scenario and left the learned bias whole), and the AUC of each by scenario and activity group (the
user's training events in the row's scenario, as `mistrec evaluate` groups), with the choice and its validation AUCs
from run.json.

    python benchmarks/cold_scale_effect.py --json benchmarks/results/cold_scale_effect.json \
        --only synthetic-transfer,synthetic-identity,amazon-sport_phone

Datasets as benchmarks/transfer.py prepares them under --work (made here when missing): "synthetic-transfer" and
"synthetic-identity" (4,000 users, temporal split), "amazon-PAIR" (the cold-user protocol, cold rows last),
"ml-1m-genre" (cold-user on the family shelf). The run is reused when it exists (RUN = the prepared directory's
sibling cold-scale-mist). On the Amazon pairs the AUC is also given on the rows whose item has a training positive in
the domain ("seen", from the training rows), and the test's full-catalogue NDCG@10 at the chosen scales and
at 1. One seed (2022), transfer.py's training settings, --threads 1 by default. Several --only runs add to one JSON
file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, context, write_json


def job_for(name: str, args: argparse.Namespace) -> Any:
    from transfer import jobs

    for job in jobs(args):
        if job.dataset == name and (not name.startswith("amazon-") or "cold-user" in job.protocols):
            return job
    raise SystemExit(f"unknown dataset {name!r}")


def auc_or_none(label: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(label, p)) if 0 < label.sum() < len(label) else None


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from transfer import prepare

    from mistrec.data import PreparedDataset
    from mistrec.eval.activity import ACTIVITY_GROUPS, ActivityCounts, group_index
    from mistrec.eval.fit import fit_run
    from mistrec.models.mist_config import COLD_SCALES
    from mistrec.train import TrainConfig, load_run, predict

    torch.set_num_threads(args.threads)
    job = job_for(name, args)
    prepared = prepare(job, Path(args.work), args)
    run = prepared.parent / "cold-scale-mist"
    if not (run / "run.json").is_file():
        fit_run(prepared, "mist", run, train_cfg=TrainConfig(epochs=20, seed=2022, lr=3e-3, batch_size=1024),
                quiet=True)
    model, enc, _ = load_run(run)
    selected = json.loads((run / "run.json").read_text())["result"]["selected"]
    ds = PreparedDataset.load(prepared)
    chosen = model.cold_scale.clone()
    names = enc.spec_.scenario_names
    activity = ActivityCounts.from_interactions(ds.interactions, len(names) + 1)  # as `mistrec evaluate` groups
    train = enc.indexed(enc.rows(ds, "train"))  # the (scenario, item) pairs with a training positive: "seen"
    liked = train.label > 0
    known = np.unique(train.scenario[liked].astype(np.int64) * enc.spec_.n_items + train.item[liked])
    amazon = name.startswith("amazon-")
    rows = []
    for split in ("valid", "test"):
        split_rows = enc.rows(ds, split)
        scored = {"chosen": predict(model, enc, split_rows)}
        for scale in COLD_SCALES:  # every scale in every scenario; at 0 a new user's known item is its item terms
            with torch.no_grad():
                model.cold_scale.fill_(scale)
            scored[f"{scale:g}"] = predict(model, enc, split_rows)
        with torch.no_grad():
            model.cold_scale.copy_(chosen)
        group = group_index(activity.of(split_rows.user, split_rows.scenario))
        ix = enc.indexed(split_rows)
        seen = np.isin(ix.scenario.astype(np.int64) * enc.spec_.n_items + ix.item, known)
        for s, scen in enumerate(names, start=1):
            in_s = split_rows.scenario == s
            for g, gname in [(-1, "all"), *enumerate(ACTIVITY_GROUPS)]:
                mask = in_s & (group == g if g >= 0 else True)
                if not mask.any():
                    continue
                row: dict[str, Any] = {"dataset": name, "split": split, "scenario": scen, "group": gname,
                                       "rows": int(mask.sum()), "scale": float(chosen[s])}
                for key, p in scored.items():
                    row[f"auc_{key}"] = auc_or_none(split_rows.label[mask], p[mask])
                    if amazon:
                        row[f"auc_seen_{key}"] = auc_or_none(split_rows.label[mask & seen], p[mask & seen])
                rows.append(row)
    ndcg: dict[str, dict[str, float]] = {}
    if amazon:  # every test user is cold in the target: full-catalogue NDCG@10 per domain
        from mistrec.eval import rank_full_catalogue

        for key, scale in (("chosen", chosen), ("1", torch.ones_like(chosen))):
            with torch.no_grad():
                model.cold_scale.copy_(scale)
            by = rank_full_catalogue(model, enc, ds, split="test", ks=(10,), quiet=True).metrics["by_scenario"]
            for scen, block in by.items():
                ndcg.setdefault(scen, {})[f"ndcg@10_{key}"] = block["ndcg@10"]
        with torch.no_grad():
            model.cold_scale.copy_(chosen)
    return {"rows": rows, "ndcg": ndcg, "selected": selected, "run": str(run), "context": context()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--only", required=True, help="comma-separated datasets (synthetic-transfer, amazon-sport_phone)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "transfer"))
    ap.add_argument("--amazon", default=str(SHARED_DATA / "amazon-cdr-disencdr"))
    ap.add_argument("--ml1m", default=str(SHARED_DATA / "ml-1m"))
    ap.add_argument("--synthetic-users", type=int, default=4000)
    ap.add_argument("--max-queries", type=int, default=3000)
    args = ap.parse_args()
    out = Path(args.json)
    doc: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {"datasets": {}}
    for name in [x.strip() for x in args.only.split(",") if x.strip()]:
        doc["datasets"][name] = measure(name, args)
        write_json(out, doc)
        for r in doc["datasets"][name]["rows"]:
            if r["group"] in ("all", "0", "1-2"):
                print(name, r["split"], r["scenario"], r["group"], r["rows"], "scale", r["scale"],
                      {k: round(v, 4) for k, v in r.items() if k.startswith("auc") and v is not None})
        for scen, v in doc["datasets"][name]["ndcg"].items():
            print(name, scen, {k: round(x, 4) for k, x in v.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
