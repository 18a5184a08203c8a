"""What a training option of mist changes, run against run: mist trained with it (the candidate runs) beside mist
trained without it (the work directory's runs/mist) and the isolated model, on the same prepared data and seeds.

    python benchmarks/option_effect.py --json benchmarks/results/blank_views_effect_synthetic.json \
        --seeds 2022,2023,2024 --label blank_rows=0.1 --candidate 'benchmarks/work/blank-views/{name}/seed-{seed}' \
        benchmarks/work/transfer-synth-s20/synthetic-{identity,transfer}-4000u

Each DIR is a benchmarks/transfer.py work directory (prepared/, runs/mist/seed-S, and runs/MODEL/seed-S of each of
`--others`, default isolated_dnn); `--candidate` names the candidate run of each (DIR's name as {name}, seed). Every
run scores the DIR's test rows now (`predict`). Per scenario and activity group (all users, "0", "1-2": the user's
training events in the scenario, grouped as `mistrec evaluate` groups them, mistrec.eval.activity), the test AUC of
each model per seed and their means, and paired bootstraps over users (`paired_bootstrap`, 1,000 resamples, the
per-seed differences averaged) of candidate - baseline mist, and of candidate - MODEL and baseline mist - MODEL for
each of the others. Groups with fewer than 100 rows in a scenario are left out. The rule the figures are read against
is written in docs/benchmarks.md before the runs (for blank_rows: "blank_rows").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, write_json

GROUPS = ("all", "0", "1-2")  # "all", then groups of mistrec.eval.activity.ACTIVITY_GROUPS
MIN_ROWS = 100


def scores(run: Path, ds: Any) -> dict[str, np.ndarray]:
    """A run's test probabilities with the rows' scenario name, user and label."""
    from mistrec.train.artifact import load_run
    from mistrec.train.predict import predict

    model, enc, _ = load_run(run)
    rows = enc.rows(ds, "test")
    names = enc.spec_.scenario_names
    return {"prob": predict(model, enc, rows), "label": rows.label, "user": rows.user, "scenario_index": rows.scenario,
            "scenario": np.array([names[s - 1] if s > 0 else "" for s in rows.scenario])}


def one_dir(root: Path, candidate: str, seeds: list[int], others: list[str]) -> list[dict[str, Any]]:
    from mistrec.data.prepared import PreparedDataset
    from mistrec.eval.activity import ACTIVITY_GROUPS, ActivityCounts, group_index
    from mistrec.metrics import auc, paired_bootstrap

    ds = PreparedDataset.load(root / "prepared")
    runs: dict[str, list[dict[str, np.ndarray]]] = {k: [] for k in ("candidate", "mist", *others)}
    pairs = [("candidate", "mist")] + [(a, b) for b in others for a in ("candidate", "mist")]
    for seed in seeds:
        runs["candidate"].append(scores(Path(candidate.format(name=root.name, seed=seed)), ds))
        for model in ("mist", *others):
            runs[model].append(scores(root / "runs" / model / f"seed-{seed}", ds))
    ref = runs["mist"][0]
    for model, per_seed in runs.items():  # the same test rows in the same order in every run
        for r in per_seed:
            assert np.array_equal(r["user"], ref["user"]) and np.array_equal(r["label"], ref["label"]), model
            assert np.array_equal(r["scenario"], ref["scenario"]), model
    counts = ActivityCounts.from_interactions(ds.interactions, len(ds.scenarios) + 1)  # as `mistrec evaluate`
    group_of = np.array(ACTIVITY_GROUPS)[group_index(counts.of(ref["user"], ref["scenario_index"]))]
    out = []
    for name in sorted(set(ref["scenario"].tolist()) - {""}):
        for group in GROUPS:
            m = ref["scenario"] == name
            if group != "all":
                m &= group_of == group
            if m.sum() < MIN_ROWS or len(set(ref["label"][m].tolist())) < 2:
                continue
            y, users = ref["label"][m], ref["user"][m]
            prob = {k: np.stack([r["prob"][m] for r in v]) for k, v in runs.items()}
            rec: dict[str, Any] = {
                "dir": root.name, "scenario": name, "group": group, "rows": int(m.sum()),
                "users": int(np.unique(users).size),
                "auc": {k: float(np.mean([auc(y, p) for p in v])) for k, v in prob.items()},
                "auc_per_seed": {k: [auc(y, p) for p in v] for k, v in prob.items()},
                "paired": {f"{a} - {b}": paired_bootstrap(y, prob[a], prob[b], users)
                           for a, b in pairs}}
            print(f"{root.name} {name} {group} ({rec['rows']} rows): " + ", ".join(
                f"{k} {v:.4f}" for k, v in rec["auc"].items()) + "; " + ", ".join(
                f"{k} {v['diff']:+.4f} p {v['p_value']:.3f}" for k, v in rec["paired"].items()), flush=True)
            out.append(rec)
    return out


def main() -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", default="2022,2023,2024")
    ap.add_argument("--label", required=True, help="what the candidate runs were trained with (recorded)")
    ap.add_argument("--candidate", required=True, help="the candidate run of a DIR and seed: '.../{name}/seed-{seed}'")
    ap.add_argument("--others", default="isolated_dnn", help="comma-separated models of each DIR to compare with")
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(int(THREADS))
    seeds = [int(s) for s in args.seeds.split(",")]
    results = [r for d in args.dirs for r in one_dir(Path(d), args.candidate, seeds, args.others.split(","))]
    write_json(args.json, {"candidate": args.label, "seeds": seeds, "results": results, "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
