"""The results files of docs/benchmarks.md's "rank_exposure chosen per scenario" (thirty-first session), assembled
from the saved runs and the benchmark JSONs that section's commands wrote: what a throw-away script did then, kept
so that the files can be made again and checked.

    python benchmarks/rank_exposure_results.py synthetic OUT.json \\
        --runs benchmarks/work/s31-syn --everywhere PLATFORM=JSON ... --chosen PLATFORM=JSON ...
    python benchmarks/rank_exposure_results.py genre OUT.json \\
        --run benchmarks/work/s31-ml1m/ml-1m-genre-cold/runs/mist/seed-2022
    python benchmarks/rank_exposure_results.py age OUT.json --benchmark benchmarks/work/s31_age.json
    python benchmarks/rank_exposure_results.py check OUT.json COMMITTED.json

`synthetic`: each mist run's validation choice per scenario (run.json `result.selected.rank_exposure`, made by
benchmarks/rechoose.py) and, per (platform, scenario, activity group), mist's test NDCG@10 with the exposure in
every scenario (the benchmark JSON of the runs as trained, `--everywhere`) and as chosen (the JSON of the runs
evaluated again, `--chosen`). `genre`: one run's rank_exposure record and its co_scale record before and after the
choices were made again (`result.selected_before_rechoose`). `age`: a benchmarks/quality_ml1m.py JSON's one mist
run: its rank_exposure record (the run's run.json), its test AUC and NDCG@10 overall and per scenario, its training
seconds and the load averages around the run. `check`: the figures of two files equal to 1e-12 (the
descriptions aside); exits 1 where they are not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

GROUPS = ("all", "0", "1-2", "3-5", "6-20", ">20")


def _pairs(items: list[str]) -> dict[str, Path]:
    """PLATFORM=JSON arguments as {platform: path}."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"expected PLATFORM=JSON, got {item!r}")
        out[name] = Path(path)
    return out


def _mist_ndcg(path: Path, platform: str) -> dict[str, float | None]:
    """mist's warm-full NDCG@10 per 'scenario group' in a transfer.py JSON."""
    doc = json.loads(path.read_text())
    rows = [r for r in doc["rows"] if r["model"] == "mist" and r["dataset"] == platform
            and r["protocol"] == "warm-full" and r["group"] in GROUPS]
    if not rows:
        raise SystemExit(f"{path}: no mist warm-full rows for {platform}")
    return {f"{r['target']} {r['group']}": r["ndcg@10"] for r in rows}


def synthetic(args: argparse.Namespace) -> dict[str, Any]:
    everywhere, chosen = _pairs(args.everywhere), _pairs(args.chosen)
    if set(everywhere) != set(chosen):
        raise SystemExit("--everywhere and --chosen must name the same platforms")
    choices: dict[str, Any] = {}
    test: dict[str, Any] = {}
    for platform in sorted(everywhere):
        runs = sorted((Path(args.runs) / f"{platform}-4000u" / "runs" / "mist").glob("seed-*/"))
        if not runs:
            raise SystemExit(f"no mist runs under {args.runs}/{platform}-4000u")
        for run in runs:
            doc = json.loads((run / "run.json").read_text())
            seed = run.name.removeprefix("seed-")
            choices[f"{platform} seed {seed}"] = doc["result"]["selected"]["rank_exposure"]
        before, after = _mist_ndcg(everywhere[platform], platform), _mist_ndcg(chosen[platform], platform)
        test[platform] = {key: {"exposure everywhere": before[key], "chosen": after.get(key)} for key in before}
    return {"what": args.what, "choices": choices, "test_ndcg@10": test}


def genre(args: argparse.Namespace) -> dict[str, Any]:
    doc = json.loads((Path(args.run) / "run.json").read_text())
    result = doc["result"]
    if "selected_before_rechoose" not in result:
        raise SystemExit(f"{args.run}: its choices were never made again (no result.selected_before_rechoose)")
    return {"what": args.what, "rank_exposure": result["selected"]["rank_exposure"],
            "co_scale_before_and_after": {"before": result["selected_before_rechoose"]["co_scale"],
                                          "after": result["selected"]["co_scale"]}}


def age(args: argparse.Namespace) -> dict[str, Any]:
    doc = json.loads(Path(args.benchmark).read_text())
    runs = [r for r in doc["runs"] if r["model"] == "mist"]
    if len(runs) != 1:
        raise SystemExit(f"{args.benchmark}: expected one mist run, found {len(runs)}")
    run, metrics = runs[0], runs[0]["metrics"]
    run_dir = Path(run["run_dir"])
    if not run_dir.is_absolute():  # quality_ml1m.py records it from the repository root
        run_dir = Path(__file__).resolve().parent.parent / run_dir
    record = json.loads((run_dir / "run.json").read_text())["result"]["selected"]["rank_exposure"]
    test = {"auc": metrics["overall"]["auc"], "ndcg@10": metrics["overall"]["ndcg@10"],
            "by_scenario": {s: {"auc": m["auc"], "ndcg@10": m["ndcg@10"]} for s, m in metrics["by_scenario"].items()}}
    return {"what": args.what, "rank_exposure": record, "test": test, "train_seconds": run["train_seconds"],
            "load_average_before": doc["load_average_before"], "load_average_after": doc["load_average_after"]}


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two JSON values differ (numbers to 1e-12), the top-level 'what' left out."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (set(a) | set(b)) - ({"what"} if not where else set())
        return [d for k in sorted(keys, key=str) for d in
                (_differences(a[k], b[k], f"{where}/{k}") if k in a and k in b else [f"{where}/{k}: in one only"])]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{where}[{i}]")]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return [] if abs(a - b) <= 1e-12 else [f"{where}: {a} != {b}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what_to_do", required=True)
    s = sub.add_parser("synthetic")
    s.add_argument("out")
    s.add_argument("--runs", required=True, help="the transfer.py --work directory of the synthetic platforms")
    s.add_argument("--everywhere", nargs="+", required=True, help="PLATFORM=JSON: the runs as trained")
    s.add_argument("--chosen", nargs="+", required=True, help="PLATFORM=JSON: the runs with their choices remade")
    s.add_argument("--what", default="", help="the file's description")
    g = sub.add_parser("genre")
    g.add_argument("out")
    g.add_argument("--run", required=True, help="a mist run directory whose choices benchmarks/rechoose.py remade")
    g.add_argument("--what", default="", help="the file's description")
    a = sub.add_parser("age")
    a.add_argument("out")
    a.add_argument("--benchmark", required=True, help="benchmarks/quality_ml1m.py's JSON of one mist run")
    a.add_argument("--what", default="", help="the file's description")
    c = sub.add_parser("check")
    c.add_argument("out")
    c.add_argument("committed")
    args = ap.parse_args()
    if args.what_to_do == "check":
        diffs = _differences(json.loads(Path(args.out).read_text()), json.loads(Path(args.committed).read_text()))
        print("\n".join(diffs) if diffs else "the same figures")
        sys.exit(1 if diffs else 0)
    doc = {"synthetic": synthetic, "genre": genre, "age": age}[args.what_to_do](args)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
