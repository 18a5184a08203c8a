"""What a training option of mist changes, run against run: mist trained with it (the candidate runs) beside mist
trained without it (the work directory's runs/mist) and the isolated model, on the same prepared data and seeds.

    python benchmarks/option_effect.py --json benchmarks/results/blank_views_effect_synthetic.json \
        --seeds 2022,2023,2024 --label blank_rows=0.1 --candidate 'benchmarks/work/blank-views/{name}/seed-{seed}' \
        benchmarks/work/transfer-synth-s20/synthetic-{identity,transfer}-4000u

Each DIR is a benchmarks/transfer.py work directory (prepared/, runs/mist/seed-S, and runs/MODEL/seed-S of each of
`--others`, default isolated_dnn); `--candidate` names the candidate run of each (DIR's name as {name}, seed);
`--runs benchmark-runs` reads a `mistrec benchmark` work directory (benchmarks/quality_ml1m.py's) instead.
With `--settings KEY=VALUE,...` instead, a setting that does not change the trained weights (an after-training
choice's options) is measured on the same weights: the candidate is each mist run loaded with the settings, the
baseline the run as trained, both with their after-training choices made again by the current code on the
validation rows (the choices made are in the JSON):

    python benchmarks/option_effect.py --json benchmarks/results/cold_rate_effect_synthetic.json \
        --label cold_rate=true --settings cold_rate=true benchmarks/work/s24-synth/synthetic-{identity,transfer}-4000u

With `--candidate`, `--baseline-settings KEY=VALUE,...` loads the DIR's mist runs with those settings and makes both
arms' after-training choices again: a baseline saved under an older default of such a choice, compared at today's.

Every run scores the DIR's test rows now (`predict`). Per scenario and activity group (all users, "0", "1-2": the user's
training events in the scenario, grouped as `mistrec evaluate` groups them, mistrec.eval.activity), the test AUC of each
model per seed and their means (and the overall AUC per seed, under "overall"), and paired bootstraps over users
(`paired_bootstrap`, 1,000 resamples, the per-seed differences averaged) of candidate - baseline mist, and of candidate
- MODEL and baseline mist - MODEL for each of the others (`--groups all,0,1-2,3-5,6-20,>20` for every group).
Groups with fewer than 100 rows in a scenario are left out.
With `--lso`, each mist arm's leave-source-out matrix per seed as well, and on a synthetic-transfer DIR its
Spearman correlation with the planted T (benchmarks/transfer.py's figure). The rule the figures are read against is
written in docs/benchmarks.md before the runs (for blank_rows: "blank_rows").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, parse_settings, write_json

from mistrec.eval.activity import ACTIVITY_GROUPS

GROUPS = ("all", "0", "1-2")  # the default of --groups: "all", then groups of ACTIVITY_GROUPS
MIN_ROWS = 100


def scores(run: Path, ds: Any, settings: dict[str, Any] | None = None, lso: bool = False) -> dict[str, Any]:
    """A run's test probabilities with the rows' scenario name, user and label. With `settings` ({} for none) the
    run is loaded with them (load_run) and its after-training choices (`SelectsOnValidation`) are made again by the
    current code on its validation rows first (and those on the validation ranking, `ChoosesOnRanking`: mist's
    co_scale); the choices made are returned under "selected". With `lso`, also
    its leave-source-out matrix on the test rows (mistrec.eval.evaluate.leave_source_out_matrix)."""
    from mistrec.eval.ranking import choose_on_ranking
    from mistrec.models.base import ChoosesOnRanking, SelectsOnValidation
    from mistrec.models.mist import Mist
    from mistrec.train.artifact import load_run
    from mistrec.train.distributed import Ranks
    from mistrec.train.loop import TrainConfig, select_on_validation
    from mistrec.train.predict import predict

    model, enc, _ = load_run(run, settings)
    selected = None
    if settings is not None:
        assert isinstance(model, SelectsOnValidation)
        if isinstance(model, Mist) and model.cold_rate is not None:  # `cold_rate`'s counted rate, absent from runs
            model.fit_rate(enc.indexed(enc.rows(ds, "train")))  # saved without it
        # again: every round starts from its trained state, as in training; without it a round is scored with the
        # saved choices of the rounds after it in place (warm_scale, co_scale), which training never does
        selected = select_on_validation(model, enc, enc.rows(ds, "valid"), TrainConfig(), Ranks(), again=True)
        if isinstance(model, ChoosesOnRanking):  # `co_scale: auto`: on the validation queries' ranking, as fit_run
            selected.update(choose_on_ranking(model, enc, ds))
    rows = enc.rows(ds, "test")
    names = enc.spec_.scenario_names
    prob = predict(model, enc, rows)
    matrix = None
    if lso:
        from mistrec.eval.evaluate import leave_source_out_matrix

        matrix = leave_source_out_matrix(model, enc, rows, prob=prob)
    return {"prob": prob, "label": rows.label, "user": rows.user, "scenario_index": rows.scenario,
            "scenario": np.array([names[s - 1] if s > 0 else "" for s in rows.scenario]), "selected": selected,
            "lso": matrix}


def lso_spearman(root: Path, matrix: dict[str, Any]) -> float:
    """The leave-source-out matrix's Spearman correlation with the planted T, as benchmarks/transfer.py reads it: a
    synthetic-transfer directory (strength 1); NaN elsewhere (nothing planted off the diagonal)."""
    from transfer import planted_spearman

    if not root.name.startswith("synthetic-transfer"):
        return float("nan")
    return planted_spearman(matrix["scenarios"], np.asarray(matrix["auc_drop"]), 1.0)[0]


def one_dir(root: Path, candidate: str, seeds: list[int], others: list[str], runs_dir: str = "runs",
            settings: dict[str, Any] | None = None, lso: bool = False, baseline: dict[str, Any] | None = None,
            groups: tuple[str, ...] = GROUPS) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of one DIR, and per seed the overall test AUC of each model (and with `settings`, the choices)."""
    from mistrec.data.prepared import PreparedDataset
    from mistrec.eval.activity import ACTIVITY_GROUPS, ActivityCounts, group_index
    from mistrec.metrics import auc, paired_bootstrap, scenario_aucs

    ds = PreparedDataset.load(root / "prepared")
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in ("candidate", "mist", *others)}
    pairs = [("candidate", "mist")] + [(a, b) for b in others for a in ("candidate", "mist")]
    remake = None if baseline is None else {}  # --candidate with baseline settings: both arms' choices made again
    for seed in seeds:
        if settings is None:  # a candidate trained with the option against the DIR's mist
            runs["candidate"].append(scores(Path(candidate.format(name=root.name, seed=seed)), ds, remake, lso))
            runs["mist"].append(scores(root / runs_dir / "mist" / f"seed-{seed}", ds, baseline, lso))
        else:  # the same weights, loaded with the settings and as trained, the choices made again in both
            run = root / runs_dir / "mist" / f"seed-{seed}"
            runs["candidate"].append(scores(run, ds, settings, lso))
            runs["mist"].append(scores(run, ds, baseline or {}, lso))
        for model in others:
            runs[model].append(scores(root / runs_dir / model / f"seed-{seed}", ds))
    overall = {k: [scenario_aucs(r["label"], r["prob"], r["scenario_index"])[0] for r in v] for k, v in runs.items()}
    summary: dict[str, Any] = {"dir": root.name, "overall_auc_per_seed": overall,
                               "overall_auc": {k: float(np.mean(v)) for k, v in overall.items()}}
    if settings is not None or baseline is not None:
        summary["selected"] = {k: [r["selected"] for r in runs[k]] for k in ("candidate", "mist")}
    if lso:
        arms = ("candidate", "mist")
        summary["leave_source_out"] = {k: [r["lso"] for r in runs[k]] for k in arms}
        rho = {k: [lso_spearman(root, r["lso"]) for r in runs[k]] for k in arms}
        summary["lso_spearman_per_seed"] = rho
        summary["lso_spearman"] = {k: float(np.mean(v)) for k, v in rho.items()}
        summary["leave_source_out_mean"] = {k: np.mean([r["lso"]["auc_drop"] for r in runs[k]], axis=0).tolist()
                                            for k in arms}  # [target][source], the matrices' order
        print(f"{root.name} leave-source-out Spearman: " + ", ".join(
            f"{k} {np.mean(v):.3f} ({' / '.join(f'{x:.3f}' for x in v)})" for k, v in rho.items()), flush=True)
    print(f"{root.name} overall: " + ", ".join(f"{k} {v:.5f}" for k, v in summary["overall_auc"].items()), flush=True)
    ref = runs["mist"][0]
    for model, per_seed in runs.items():  # the same test rows in the same order in every run
        for r in per_seed:
            assert np.array_equal(r["user"], ref["user"]) and np.array_equal(r["label"], ref["label"]), model
            assert np.array_equal(r["scenario"], ref["scenario"]), model
    counts = ActivityCounts.from_interactions(ds.interactions, len(ds.scenarios) + 1)  # as `mistrec evaluate`
    group_of = np.array(ACTIVITY_GROUPS)[group_index(counts.of(ref["user"], ref["scenario_index"]))]
    out = []
    for name in sorted(set(ref["scenario"].tolist()) - {""}):
        for group in groups:
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
    return out, summary


def main() -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", default="2022,2023,2024")
    ap.add_argument("--label", required=True, help="what the candidate runs were trained with (recorded)")
    ap.add_argument("--candidate", help="the candidate run of a DIR and seed: '.../{name}/seed-{seed}'")
    ap.add_argument("--settings", help="KEY=VALUE,... (values read as YAML) of settings that leave the weights as "
                                       "they are: no candidate runs; each DIR's mist runs loaded with them "
                                       "(candidate) and as trained (baseline), the after-training choices made again")
    ap.add_argument("--others", default="isolated_dnn", help="comma-separated models of each DIR to compare with")
    ap.add_argument("--runs", default="runs", help="the runs' directory in each DIR (mistrec benchmark's: "
                                                   "benchmark-runs)")
    ap.add_argument("--baseline-settings", help="KEY=VALUE,... for the baseline arm of --settings (default: the "
                                                "run's recorded configuration; a run saved before an option existed "
                                                "takes today's default for it, so give the old one here); with "
                                                "--candidate, the DIR's mist runs are loaded with them and both "
                                                "arms' after-training choices made again (baseline runs saved "
                                                "under an older default, compared at today's)")
    ap.add_argument("--lso", action="store_true", help="also each mist arm's leave-source-out matrix, and on a "
                                                       "synthetic-transfer DIR its Spearman with the planted T")
    ap.add_argument("--groups", default=",".join(GROUPS), help="comma-separated: 'all' and activity groups of "
                    f"{', '.join(ACTIVITY_GROUPS)} (default: %(default)s)")
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    if (args.candidate is None) == (args.settings is None):
        ap.error("give --candidate (runs trained with an option) or --settings (the same runs, choices remade)")
    groups = tuple(g for g in args.groups.split(",") if g)
    if unknown := [g for g in groups if g not in ("all", *ACTIVITY_GROUPS)]:
        ap.error(f"--groups: {', '.join(unknown)} is not 'all' nor one of {', '.join(ACTIVITY_GROUPS)}")
    torch.set_num_threads(int(THREADS))
    seeds = [int(s) for s in args.seeds.split(",")]
    others = [m for m in args.others.split(",") if m]
    try:
        settings, baseline = parse_settings(args.settings), parse_settings(args.baseline_settings)
    except ValueError as exc:
        ap.error(str(exc))
    results, overall = [], []
    for d in args.dirs:
        rows, summary = one_dir(Path(d), args.candidate or "", seeds, others, args.runs, settings, args.lso, baseline,
                                groups)
        results += rows
        overall.append(summary)
    write_json(args.json, {"candidate": args.label, "settings": settings, "baseline_settings": baseline, "seeds": seeds,
                           "results": results, "overall": overall, "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
