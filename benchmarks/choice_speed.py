"""How long `co_scale: auto`'s choice takes (mistrec.eval.ranking.choose_on_ranking) against an earlier design of
it, on a saved mist run, with the same figures and choice checked.

    MISTREC_BENCH_THREADS=1 python benchmarks/choice_speed.py --json benchmarks/results/choice_speed_sport_phone.json \
        --seeds 2022 benchmarks/work/s26-warm/amazon-sport_phone-warm

DIR is a benchmarks/transfer.py work directory (prepared/, runs/mist/seed-S). Per seed the run is loaded with
`co_scale: auto` and, `--repeats` times each, alternately: the baseline and `choose_on_ranking` as it stands (the
queries screened against the scenario's most-taken items first, since the twenty-eighth session). `--baseline
in-full` (the default): `choose_on_ranking(screen=None)`, every query scored against the whole catalogue once
for every weight (the twenty-seventh session's design); `--baseline per-weight`: the design that replaced, each
weight a `rank_full_catalogue` of the same seeded sample, then `settle_ranking`. Both must record the same
validation NDCG@10 per weight and kind of user and choose the same weights (checked; the script fails
otherwise). Medians, their ratio, the run's own training seconds (from its benchmark.json: timed when it was
trained, at that load), the load average before and after, threads.

`--baseline unguarded` times instead what `prior_tilt`'s guard costs (models/base.GuardsOnRanking): the run's tilt
put back as its validation AUC chose it (run.json `result.selected.prior_tilt`), then `choose_on_ranking` once
(the choice as it would be made without a guard) against `ranking_choices` (the choice made with the tilt and
without, the guard's rule applied); in each scenario whose tilt the guard kept, both must record the same choice
(checked). A run with no tilt chosen has nothing to guard: the script fails on it.

`--baseline without-own` times what `co_own` (mist's default since the forty-first session) costs the choice: the run
as saved (with it) against the same run loaded with `co_own: off`, `choose_on_ranking` alternately from the trained
state; the new users' choices must agree (checked).

    MISTREC_BENCH_THREADS=1 python benchmarks/choice_speed.py --baseline without-own --seeds 2022 \
        --json benchmarks/results/choice_speed_co_own.json benchmarks/work/s41-train-ec/amazon-electronic_cloth-warm

    MISTREC_BENCH_THREADS=1 python benchmarks/choice_speed.py --baseline unguarded --seeds 2022 \
        --json benchmarks/results/guard_speed_electronic_cloth.json \
        benchmarks/work/s38-pt/amazon-electronic_cloth-cold-last
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, mist_choosing, train_seconds, write_json


def per_weight(model: Any, enc: Any, ds: Any) -> dict[str, Any]:
    """The replaced design: each weight's own full-catalogue ranking of the sampled validation queries."""
    import numpy as np

    from mistrec.eval.activity import ActivityCounts
    from mistrec.eval.ranking import rank_full_catalogue

    activity = ActivityCounts.from_interactions(ds.interactions, len(ds.scenarios) + 1)
    names = tuple(ds.scenarios)
    ndcg: dict[float, dict[int, dict[str, np.ndarray]]] = {}
    for option in model.ranking_options():
        model.use_ranking_option(option)
        result = rank_full_catalogue(model, enc, ds, "valid", ks=(10,), activity=activity,
                                     max_queries=model.ranking_queries)
        ndcg[option] = {names.index(n) + 1: {"user": q["user"], "group": q["group"], "ndcg@10": q["ndcg@10"]}
                        for n, q in result.per_query["full catalogue"].items()}
    return dict(model.settle_ranking(ndcg, enc.spec_.scenario_names))


def in_full(model: Any, enc: Any, ds: Any) -> dict[str, Any]:
    """The twenty-seventh session's design: one scoring for every weight, every query against the whole
    catalogue."""
    from mistrec.eval.ranking import choose_on_ranking

    return choose_on_ranking(model, enc, ds, screen=None)


def guarded(root: Path, seed: int, repeats: int, ds: Any) -> dict[str, Any]:
    """`--baseline unguarded`: the guard's cost, the choice made once with the tilt AUC chose against the guarded
    choices (`ranking_choices`), each repeat from the tilt as AUC chose it."""
    import json

    import numpy as np
    import torch

    from mistrec.eval.ranking import choose_on_ranking, ranking_choices

    model, enc = mist_choosing(root, seed)
    record = json.loads((root / "runs" / "mist" / f"seed-{seed}" / "run.json").read_text())["result"]["selected"]
    assert model.prior_tilt is not None and model.tilt_ranked is not None, "a mist run with prior_tilt: auto"
    names = list(enc.spec_.scenario_names)
    tilt = torch.zeros_like(model.prior_tilt)
    for name, choice in record.get("prior_tilt", {}).items():
        tilt[names.index(name) + 1] = float(choice["chosen"])
    if not bool(tilt.any()):
        raise SystemExit(f"{root} seed {seed}: its validation AUC chose no tilt, there is nothing to guard")
    times: dict[str, list[float]] = {"unguarded": [], "ranking_choices": []}
    records: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in (("unguarded", choose_on_ranking), ("ranking_choices", ranking_choices)):
            model.prior_tilt.copy_(tilt)
            model.tilt_ranked.fill_(True)
            start = time.perf_counter()
            records[name] = fn(model, enc, ds)
            times[name].append(time.perf_counter() - start)
    guard = records["ranking_choices"]["prior_tilt_guard"]
    for scenario, kinds in records["unguarded"]["co_scale"].items():
        if scenario in guard and not guard[scenario]["kept"]:
            continue  # the untilted state's choice, which the unguarded choice never makes
        assert json.dumps(kinds, sort_keys=True) == json.dumps(records["ranking_choices"]["co_scale"][scenario],
                                                               sort_keys=True), scenario
    medians = {k: float(np.median(v)) for k, v in times.items()}
    trained = train_seconds(root, "mist", seed)
    print(f"seed {seed}: unguarded {medians['unguarded']:.1f} s, guarded {medians['ranking_choices']:.1f} s "
          f"({medians['ranking_choices'] / medians['unguarded']:.2f}x); trained in {trained:.1f} s", flush=True)
    return {"seed": seed, "seconds": times, "median_seconds": medians,
            "cost_ratio": medians["ranking_choices"] / medians["unguarded"], "train_seconds_when_trained": trained,
            "prior_tilt_guard": guard}


def without_own(root: Path, seed: int, repeats: int, ds: Any) -> dict[str, Any]:
    """`--baseline without-own`: what `co_own` (mist's default since the forty-first session) costs the choice: the
    run loaded as saved (with it: the pairs (c, w) for the active users) against the same run loaded with `co_own:
    off` (the weights alone), `choose_on_ranking` alternately; the new users' choices must be the same (checked)."""
    import numpy as np
    import torch

    from mistrec.eval.ranking import choose_on_ranking

    models = {"without_own": mist_choosing(root, seed, {"co_own": "off"}), "with_own": mist_choosing(root, seed)}
    assert models["with_own"][0].co.own_rows and not models["without_own"][0].co.own_rows, "a run saved with co_own"
    for model, _ in models.values():
        model.use_ranking_option(1.0)  # the trained state, where the choice starts
    times: dict[str, list[float]] = {name: [] for name in models}
    records: dict[str, Any] = {}
    for _ in range(repeats):
        for name, (model, enc) in models.items():
            start = time.perf_counter()
            with torch.no_grad():
                records[name] = choose_on_ranking(model, enc, ds)
            times[name].append(time.perf_counter() - start)
    for scenario, kinds in records["with_own"]["co_scale"].items():
        assert kinds["new"]["chosen"] == records["without_own"]["co_scale"][scenario]["new"]["chosen"], scenario
    medians = {k: float(np.median(v)) for k, v in times.items()}
    print(f"seed {seed}: without co_own {medians['without_own']:.1f} s, with {medians['with_own']:.1f} s "
          f"({medians['with_own'] / medians['without_own']:.2f}x)", flush=True)
    return {"seed": seed, "seconds": times, "median_seconds": medians,
            "cost_ratio": medians["with_own"] / medians["without_own"],
            "options": {name: len(model.ranking_options()) for name, (model, _) in models.items()},
            "chosen": {name: {s: {k: rec["chosen"] for k, rec in kinds.items()} for s, kinds in r["co_scale"].items()}
                       for name, r in records.items()}}


def one(root: Path, seed: int, repeats: int, ds: Any, baseline: str) -> dict[str, Any]:
    import numpy as np

    from mistrec.eval.ranking import choose_on_ranking

    if baseline == "unguarded":
        return guarded(root, seed, repeats, ds)
    if baseline == "without own":
        return without_own(root, seed, repeats, ds)
    model, enc = mist_choosing(root, seed)
    times: dict[str, list[float]] = {baseline: [], "choose_on_ranking": []}
    records: dict[str, Any] = {}
    first = per_weight if baseline == "per weight" else in_full
    for _ in range(repeats):
        for name, fn in ((baseline, first), ("choose_on_ranking", choose_on_ranking)):
            start = time.perf_counter()
            records[name] = fn(model, enc, ds)
            times[name].append(time.perf_counter() - start)
    a, b = records[baseline]["co_scale"], records["choose_on_ranking"]["co_scale"]
    for scenario, kinds in a.items():
        for kind, rec in kinds.items():
            other = b[scenario][kind]
            assert rec["chosen"] == other["chosen"] and rec["queries"] == other["queries"], (scenario, kind)
            for w, v in rec["valid_ndcg@10"].items():
                assert np.isclose(v, other["valid_ndcg@10"][w], rtol=0, atol=1e-12, equal_nan=True), (scenario, kind)
    medians = {k: float(np.median(v)) for k, v in times.items()}
    trained = train_seconds(root, "mist", seed)
    print(f"seed {seed}: {baseline} {medians[baseline]:.1f} s, choose_on_ranking {medians['choose_on_ranking']:.1f} s "
          f"({medians[baseline] / medians['choose_on_ranking']:.2f}x); trained in {trained:.1f} s", flush=True)
    return {"seed": seed, "seconds": times, "median_seconds": medians,
            "speedup": medians[baseline] / medians["choose_on_ranking"], "train_seconds_when_trained": trained,
            "chosen": b}


def main() -> int:
    import torch

    from mistrec.data.prepared import PreparedDataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", default="2022")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", choices=("in-full", "per-weight", "unguarded", "without-own"), default="in-full")
    ap.add_argument("dir")
    args = ap.parse_args()
    torch.set_num_threads(int(THREADS))
    root = Path(args.dir)
    ds = PreparedDataset.load(root / "prepared")
    before = context()
    baseline = args.baseline.replace("-", " ")
    results = [one(root, int(s), args.repeats, ds, baseline) for s in args.seeds.split(",")]
    write_json(args.json, {"dir": root.name, "baseline": baseline, "repeats": args.repeats, "results": results,
                           "context_before": before, "context_after": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
