"""Two saved runs of one model on one prepared dataset, compared file for file: the after-training choices each
recorded (run.json's `result.selected`), and whether their saved test predictions and per-query rankings are the
same bit for bit. Nothing is trained or scored. The check behind "the setting changes nothing else" claims: a run
made again (trained again, or its choices made again by benchmarks/rechoose.py) against the run it was copied from.

    python benchmarks/run_diff.py --json OUT.json OLD_RUN:NEW_RUN [OLD_RUN:NEW_RUN ...]

Per pair: `choices_differ`, the choices (every `chosen`, `form` and `kept` under `selected`) whose value differs, and
`figures_differ`, how many of the recorded validation figures behind them differ and by how much at most (1e-9 and
less counts as equal); `predictions_identical` and `rankings_identical` (every array of predictions_test.npz and
ranking_test.npz equal, the same arrays in both), with the largest difference of the predicted probabilities, and
`scored_after_choices` (the new run's test files written after its run.json: otherwise they are a copy's and prove
nothing); and both runs' `co_scale` records (mist's weight of `co_items`' term per scenario and kind of user: the
validation NDCG@10 at each weight, the best, its p-value against 1, the weight chosen) and `prior_tilt_guard` records
(per tilted scenario, the new users' validation NDCG@10 with and without the tilt, and whether it was kept), where
they have them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CHOICE_KEYS, context, flat, write_json


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 or (a != a and b != b)
    return bool(a == b)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def compare(old: Path, new: Path) -> dict[str, Any]:
    selected = [flat(json.loads((run / "run.json").read_text())["result"].get("selected", {})) for run in (old, new)]
    keys = sorted(set(selected[0]) | set(selected[1]))
    choices = {k for k in keys if k.rsplit(".", 1)[-1] in CHOICE_KEYS}
    differ = [k for k in keys if not _same(selected[0].get(k), selected[1].get(k))]
    figures = [k for k in differ if k not in choices]
    gaps = [abs(selected[0][k] - selected[1][k]) for k in figures
            if isinstance(selected[0].get(k), float) and isinstance(selected[1].get(k), float)]
    out: dict[str, Any] = {
        "old": str(old), "new": str(new), "choices": len(choices),
        "choices_differ": {k: [selected[0].get(k), selected[1].get(k)] for k in differ if k in choices},
        "figures_differ": len(figures), "figures_max_difference": max(gaps, default=0.0)}
    # the new run's files written after its choices (run.json): a copy that was never scored again compares its
    # own old files, which would be the same whatever the choices
    out["scored_after_choices"] = all((new / name).stat().st_mtime >= (new / "run.json").stat().st_mtime
                                      for name in ("predictions_test.npz", "ranking_test.npz"))
    for name, label in (("predictions_test.npz", "predictions"), ("ranking_test.npz", "rankings")):
        a, b = _arrays(old / name), _arrays(new / name)
        out[f"{label}_identical"] = a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        if label == "predictions":
            out["prob_max_difference"] = float(np.abs(a["prob"] - b["prob"]).max())
    for side, run in (("old", old), ("new", new)):
        chosen = json.loads((run / "run.json").read_text())["result"].get("selected", {})
        for record in ("co_scale", "prior_tilt_guard"):
            if chosen.get(record) is not None:
                out[f"{side}_{record}"] = chosen[record]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("pairs", nargs="+", help="OLD_RUN:NEW_RUN")
    args = ap.parse_args()
    results = []
    for pair in args.pairs:
        old, sep, new = pair.partition(":")
        if not sep:
            ap.error(f"{pair!r}: expected OLD_RUN:NEW_RUN")
        rec = compare(Path(old), Path(new))
        if not rec["scored_after_choices"]:
            print(f"WARNING: {new}'s test files are older than its run.json: it was not evaluated after its choices "
                  "were made, so its files say nothing of them (`mistrec evaluate` it first)", flush=True)
        print(f"{old} -> {new}: choices differing {len(rec['choices_differ'])} of {rec['choices']}, figures "
              f"{rec['figures_differ']} (max {rec['figures_max_difference']:.2g}), predictions "
              f"{'identical' if rec['predictions_identical'] else 'differ'} (max {rec['prob_max_difference']:.2g}), "
              f"rankings {'identical' if rec['rankings_identical'] else 'differ'}", flush=True)
        results.append(rec)
    write_json(args.json, {"pairs": results, "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
