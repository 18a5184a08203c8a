"""How far up the test AUC can go on a split: seed ensembles and cross-architecture ensembles of finished runs.

A target such as "mist beats the best baseline by 0.01 AUC in every scenario" is easier to judge next to what
averaging several trained models reaches on the same test rows. This script reads the test predictions that
`mistrec evaluate` / `mistrec benchmark` saved in each run directory (`predictions_test.npz`), checks that
they score the same rows in the same order, and reports per-scenario test AUC of:

- each run alone, and each model's mean over its seeds;
- each model's seed ensemble (the mean of its seeds' logits);
- the ensemble of every run given (and of every pair of models' runs).

Nothing is trained here: it reads runs trained by `benchmarks/quality_ml1m.py` (or `mistrec benchmark`).

    python benchmarks/ensemble_ceiling.py --json benchmarks/results/ensemble_ceiling_ml1m_age.json \
        --runs benchmarks/work/pn/ml-1m-age/benchmark-runs --runs benchmarks/work/ml-1m-age/benchmark-runs \
        --models mist,star,din,shared_bottom,mmoe,ple,isolated_dnn --ensemble mist+star+din
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json


def _auc_block(label: np.ndarray, score: np.ndarray, scenario: np.ndarray, names: list[str]) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    out = {names[s - 1] if 0 < s <= len(names) else str(s): float(roc_auc_score(label[scenario == s],
                                                                                  score[scenario == s]))
           for s in np.unique(scenario)}
    out["overall"] = float(roc_auc_score(label, score))
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def find_runs(roots: list[Path], models: list[str]) -> dict[tuple[str, int], Path]:
    """(model, seed) -> run directory with test predictions; the first root that has a run wins."""
    found: dict[tuple[str, int], Path] = {}
    for root in roots:
        for model in models:
            for run in sorted(p for p in (root / model).glob("seed-*") if p.is_dir()):
                key = (model, int(run.name.split("-", 1)[1]))
                if key not in found and (run / "predictions_test.npz").is_file():
                    found[key] = run
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--runs", action="append", required=True,
                    help="a benchmark work folder holding MODEL/seed-N run directories (repeatable: earlier wins)")
    ap.add_argument("--models", required=True, help="comma-separated model names")
    ap.add_argument("--ensemble", action="append", default=[],
                    help="another ensemble to score, models joined by '+' (repeatable): mist+star+din")
    args = ap.parse_args()

    models = args.models.split(",")
    runs = find_runs([Path(r) for r in args.runs], models)
    missing = [m for m in models if not any(k[0] == m for k in runs)]
    if missing:
        raise SystemExit(f"No run with test predictions for {', '.join(missing)} under {', '.join(args.runs)}.")
    loaded = {k: np.load(p / "predictions_test.npz") for k, p in runs.items()}
    first_key = next(iter(loaded))
    ref = loaded[first_key]
    for k, z in loaded.items():
        for col in ("user", "item", "scenario", "label"):
            if not np.array_equal(z[col], ref[col]):
                raise SystemExit(f"{runs[k]} scores other test rows than {runs[first_key]} (column {col}): "
                                 "runs of one prepared dataset are needed.")
    names = json.loads((runs[first_key] / "eval.json").read_text())["runs"][0]["scenario_names"] \
        if (runs[first_key] / "eval.json").is_file() else []
    label, scenario = ref["label"], ref["scenario"]
    logits = {k: _logit(z["prob"]) for k, z in loaded.items()}

    def block(keys: list[tuple[str, int]]) -> dict[str, float]:
        return _auc_block(label, np.mean([logits[k] for k in keys], axis=0), scenario, names)

    out: dict[str, Any] = {"context": context(), "runs": {f"{m}/seed-{s}": str(p) for (m, s), p in runs.items()},
                           "test_rows": len(label), "single": {}, "single_mean": {}, "seed_ensemble": {},
                           "pair_ensemble": {}}
    for k in sorted(runs):
        out["single"][f"{k[0]}/seed-{k[1]}"] = block([k])
    for m in models:
        keys = sorted(k for k in runs if k[0] == m)
        singles = [out["single"][f"{m}/seed-{s}"] for _, s in keys]
        out["single_mean"][m] = {c: float(np.mean([x[c] for x in singles])) for c in singles[0]}
        out["seed_ensemble"][m] = {"seeds": [s for _, s in keys], **block(keys)}
    for a, b in itertools.combinations(models, 2):
        out["pair_ensemble"][f"{a}+{b}"] = block(sorted(k for k in runs if k[0] in (a, b)))
    out["named_ensemble"] = {}
    for name in args.ensemble:
        parts = name.split("+")
        if not set(parts) <= set(models):
            raise SystemExit(f"--ensemble {name}: every model must be in --models.")
        out["named_ensemble"][name] = block(sorted(k for k in runs if k[0] in parts))
    out["all_ensemble"] = {"models": models, **block(sorted(runs))}
    write_json(args.json, out)

    cols = list(out["all_ensemble"].keys())[1:]
    print(f"{'':38s}" + " ".join(f"{c:>9s}" for c in cols))
    rows = [(f"{m} (mean of single seeds)", out["single_mean"][m]) for m in models]
    rows += [(f"{m} seed ensemble", out["seed_ensemble"][m]) for m in models]
    rows += [(f"{p} ensemble", v) for p, v in out["pair_ensemble"].items()]
    rows += [(f"{p} ensemble", v) for p, v in out["named_ensemble"].items()]
    rows += [("all runs ensemble", out["all_ensemble"])]
    for name, v in rows:
        print(f"{name:38s}" + " ".join(f"{v[c]:9.4f}" for c in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
