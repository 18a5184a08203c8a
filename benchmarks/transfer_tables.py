"""The transfer benchmark's results as the markdown tables of docs/benchmarks.md, and merging of results files.

    python benchmarks/transfer_tables.py tables benchmarks/results/transfer.json [--groups all,0,1-2] [--only DATASET]
    python benchmarks/transfer_tables.py merge benchmarks/results/transfer.json PART.json [PART.json ...]
    python benchmarks/transfer_tables.py fill OUT.json MORE_SEEDS.json FEWER_SEEDS.json
    python benchmarks/transfer_tables.py compare OLD.json NEW.json [--group 0] [--protocol cold-user] [--models ...]
    python benchmarks/transfer_tables.py runs OLD/eval.json NEW/eval.json [--groups 0,1-2,all]
    python benchmarks/transfer_tables.py seeds JOB/runs [--groups 0,all] [--models ...]

`merge` adds the rows and paired tests of each part (benchmarks/transfer.py run with its own --json, as runs side by
side must be, since concurrent writers to one file race) to the results file, replacing those of the same (dataset,
target, protocol), and records which models and seeds each benchmark ran. `compare` sets the rows two files share
side by side (AUC and NDCG@10, old -> new, and the change), for a model run again (what a results file held against
what the same command gives today). `runs` sets two runs' own evaluations (one seed each, `mistrec evaluate`'s
eval.json) side by side per scenario and activity group: a one-seed screen against the default's run of the same
seed and data. `seeds` gives the means over the seeds each model of a job has finished (every run directory with an
eval.json), with the number of seeds: for a job stopped before all its seeds were run, whose benchmark JSON was
never written; its means are unpaired and say so by their seed counts.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any


def _fig(x: float | None) -> str:
    """A figure to 4 places; '-' where it is undefined (an AUC over one class: null in the JSON)."""
    return "-" if x is None else f"{x:.4f}"


def _change(a: float | None, b: float | None) -> str:
    """new - old to 4 places; '-' where either is undefined."""
    return "-" if a is None or b is None else f"{b - a:+.4f}"


def tables(doc: dict[str, Any], groups: list[str], only: str | None) -> str:
    """One table per (dataset, protocol, target): AUC / NDCG@10 per model and group, then mist against the best
    other model in each group (paired bootstrap over users)."""
    by: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in doc["rows"]:
        if only is None or r["dataset"] == only:
            by[(r["dataset"], r["protocol"], r["target"])].append(r)
    out = []
    for (ds, proto, target), rs in sorted(by.items()):
        models = list(dict.fromkeys(r["model"] for r in rs))
        gs = [g for g in groups if any(r["group"] == g for r in rs)]
        if not gs:  # none of the groups asked for (warm protocols have no group 0)
            continue
        out += [f"\n**{ds}, {proto}, target {target}** (planted off-diagonal {rs[0]['planted_offdiag']})\n",
                "| model | " + " | ".join(f"{g}: AUC / NDCG@10" for g in gs) + " |", "|---|" + "---|" * len(gs)]
        for m in models:
            cells = []
            for g in gs:
                r = next((r for r in rs if r["model"] == m and r["group"] == g), None)
                cells.append("-" if r is None else f"{_fig(r['auc'])} / {_fig(r['ndcg@10'])}")
            seeds = next(r["seeds"] for r in rs if r["model"] == m)
            out.append(f"| {m} (seeds {seeds}) | " + " | ".join(cells) + " |")
        users = {g: next(r["users"] for r in rs if r["group"] == g) for g in gs}
        out.append("| users | " + " | ".join(f"{users[g]:,}" for g in gs) + " |")
        for p in doc["paired"]:
            if (p["dataset"], p["protocol"], p["target"]) == (ds, proto, target) and p["group"] in gs:
                out.append(f"- {p['group']} {p['metric']}: {p['model']} - {p['best_other']} = {p['diff']:+.4f} "
                           f"[{p['ci_low']:+.4f}, {p['ci_high']:+.4f}], p {p['p_value']:.3f}")
    return "\n".join(out + seen_tables(doc, only))


def seen_tables(doc: dict[str, Any], only: str | None) -> list[str]:
    """Cold-user AUC on every test row and on the rows whose item has a training positive (`seen_items`), one table
    per dataset, and mist against the best other model by the latter."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in doc.get("seen_items", []):
        if only is None or r["dataset"] == only:
            by[r["dataset"]].append(r)
    out = []
    for ds, rs in sorted(by.items()):
        targets = list(dict.fromkeys(r["target"] for r in rs))
        models = list(dict.fromkeys(r["model"] for r in rs if "paired" not in r))
        cell = {(r["model"], r["target"]): r for r in rs if "paired" not in r}
        first = {t: next(r for r in rs if r["target"] == t and "paired" not in r) for t in targets}
        out += [f"\n**{ds}, cold-user: AUC on every row / on the rows whose item has a training positive**\n",
                "| model | " + " | ".join(f"{t}" for t in targets) + " |", "|---|" + "---|" * len(targets)]
        for m in models:
            out.append(f"| {m} | " + " | ".join(
                "-" if (m, t) not in cell else f"{cell[(m, t)]['auc']:.4f} / {cell[(m, t)]['auc_seen']:.4f}"
                for t in targets) + " |")
        out.append("| rows seen; unseen items among positives / negatives | " + " | ".join(
            f"{first[t]['rows_seen']:,}; {first[t]['unseen_share_positives']:.0%} / "
            f"{first[t]['unseen_share_negatives']:.0%}" for t in targets) + " |")
        for r in rs:
            if "paired" in r:
                out.append(f"- {r['target']} AUC on seen items: mist - {r['best_other']} = {r['diff']:+.4f} "
                           f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}], p {r['p_value']:.3f}")
    return out


def merge(out: Path, parts: list[Path]) -> dict[str, Any]:
    """The parts merged into `out` (a new file when it does not exist yet)."""
    doc = json.loads(out.read_text()) if out.is_file() else {"rows": [], "paired": []}
    for path in parts:
        part = json.loads(path.read_text())
        keep = {(r["dataset"], r["target"], r["protocol"]) for r in part["rows"]}
        for key in ("rows", "paired"):
            doc[key] = [r for r in doc[key] if (r["dataset"], r["target"], r["protocol"]) not in keep] + part[key]
        doc.setdefault("benchmarks", {}).update(part.get("benchmarks", {}))
        doc.setdefault("leave_source_out", {}).update(part.get("leave_source_out", {}))
        seen = {(r["dataset"], r["target"]) for r in part.get("seen_items", [])}
        if seen:
            doc["seen_items"] = [r for r in doc.get("seen_items", []) if (r["dataset"], r["target"]) not in seen] + \
                part["seen_items"]
        for name in part.get("benchmarks", {}):
            doc.setdefault("models_by_benchmark", {})[name] = part["models"]
            doc.setdefault("seeds_by_benchmark", {})[name] = part["seeds"]
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def fill(main: dict[str, Any], more: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`main` with the rows (and seen-item rows) of the models it lacks, per (dataset, target, protocol), from
    `more`; and the warnings: each group and metric where an added model is ahead of the paired tests' best other."""
    doc = json.loads(json.dumps(main))
    have = {(r["dataset"], r["target"], r["protocol"], r["model"]) for r in main["rows"]}
    keys = {(r["dataset"], r["target"], r["protocol"]) for r in main["rows"]}
    added = [r for r in more["rows"] if (r["dataset"], r["target"], r["protocol"]) in keys
             and (r["dataset"], r["target"], r["protocol"], r["model"]) not in have]
    doc["rows"] += added
    seen_have = {(r["dataset"], r["target"], r["model"]) for r in main.get("seen_items", []) if "paired" not in r}
    doc["seen_items"] = main.get("seen_items", []) + [
        r for r in more.get("seen_items", []) if "paired" not in r
        and (r["dataset"], r["target"], r["protocol"]) in keys
        and (r["dataset"], r["target"], r["model"]) not in seen_have]
    doc["filled_from_fewer_seeds"] = sorted({r["model"] for r in added})
    # what `merge` records as the benchmark's models: every model with rows, each row saying its own seeds
    doc["models"] = list(main.get("models", [])) + [m for m in dict.fromkeys(r["model"] for r in added)
                                                     if m not in main.get("models", [])]
    warnings = []
    row = {(r["dataset"], r["target"], r["protocol"], r["group"], r["model"]): r for r in doc["rows"]}
    added_in: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in added:
        added_in[(r["dataset"], r["target"], r["protocol"], r["group"])].append(r)
    for p in main["paired"]:
        best = row.get((p["dataset"], p["target"], p["protocol"], p["group"], p["best_other"]))
        metric = p["metric"]
        for r in added_in[(p["dataset"], p["target"], p["protocol"], p["group"])]:
            if best is not None and r.get(metric) is not None and best.get(metric) is not None \
                    and r[metric] > best[metric]:
                warnings.append(f"{p['dataset']} {p['target']} {p['protocol']} group {p['group']} {metric}: "
                                f"{r['model']} ({r['seeds']} seeds) {r[metric]:.4f} is ahead of the paired test's "
                                f"best other {p['best_other']} {best[metric]:.4f}")
    doc["fill_warnings"] = warnings
    return doc, warnings


def compare(old: dict[str, Any], new: dict[str, Any], group: str, protocol: str,
            models: list[str] | None) -> str:
    """A markdown table of the (dataset, target, model) rows of `group` and `protocol` in both files: seeds, AUC and
    NDCG@10 old -> new, and new - old."""
    def key(r: dict[str, Any]) -> tuple[str, str, str]:
        return r["dataset"], r["target"], r["model"]

    def chosen(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
        return {key(r): r for r in doc["rows"] if r["group"] == group and r["protocol"] == protocol
                and (models is None or r["model"] in models)}

    before, after = chosen(old), chosen(new)
    out = ["| dataset, target | model | seeds | AUC | NDCG@10 | change (AUC / NDCG@10) |", "|---|---|---|---|---|---|"]
    for k in sorted(before.keys() & after.keys()):
        a, b = before[k], after[k]
        out.append(f"| {k[0].removeprefix('amazon-')} {k[1]} | {k[2]} | {a['seeds']} -> {b['seeds']} | "
                   f"{_fig(a['auc'])} -> {_fig(b['auc'])} | {_fig(a['ndcg@10'])} -> {_fig(b['ndcg@10'])} | "
                   f"{_change(a['auc'], b['auc'])} / {_change(a['ndcg@10'], b['ndcg@10'])} |")
    return "\n".join(out)


def run_groups(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(scenario, group) -> {auc, ndcg@10, users} of one eval.json's run; group "all" is the scenario's whole, and
    "sampled" its ranking on sampled candidate lists where the run has one (NDCG@10 only)."""
    (run,) = doc["runs"]
    metrics = run["metrics"]
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for scenario, m in metrics["by_scenario"].items():
        out[scenario, "all"] = {"auc": m.get("auc"), "ndcg@10": m.get("ndcg@10"), "users": None}
    for scenario, m in (metrics.get("sampled") or {}).get("by_scenario", {}).items():
        out[scenario, "sampled"] = {"auc": None, "ndcg@10": m.get("ndcg@10"), "users": None}
    for scenario, groups in metrics["by_activity"]["by_scenario"].items():
        for g, m in groups.items():
            out[scenario, g] = {"auc": m.get("auc"), "ndcg@10": m.get("ndcg@10"), "users": m.get("users")}
    return out


def compare_runs(old: dict[str, Any], new: dict[str, Any], groups: list[str]) -> str:
    """A markdown table of two runs' (scenario, group) figures, AUC and NDCG@10 old -> new and the change."""
    a_all, b_all = run_groups(old), run_groups(new)
    out = ["| scenario | group | users | AUC | NDCG@10 | change (AUC / NDCG@10) |", "|---|---|---|---|---|---|"]
    for k in sorted(a_all.keys() & b_all.keys()):
        if k[1] not in groups:
            continue
        a, b = a_all[k], b_all[k]
        out.append(f"| {k[0]} | {k[1]} | {'-' if a['users'] is None else a['users']} | {_fig(a['auc'])} -> "
                   f"{_fig(b['auc'])} | {_fig(a['ndcg@10'])} -> {_fig(b['ndcg@10'])} | "
                   f"{_change(a['auc'], b['auc'])} / {_change(a['ndcg@10'], b['ndcg@10'])} |")
    return "\n".join(out)


def seed_means(runs: Path, groups: list[str], models: list[str] | None) -> str:
    """A markdown table, per model, scenario and group, of the means over a job's finished seeds (eval.json)."""
    out = ["| model | scenario | group | seeds | AUC | NDCG@10 |", "|---|---|---|---|---|---|"]
    for model_dir in sorted(p for p in runs.iterdir() if p.is_dir()):
        if models is not None and model_dir.name not in models:
            continue
        evals = [json.loads(f.read_text()) for f in sorted(model_dir.glob("seed-*/eval.json"))]
        if not evals:
            continue
        figures = [run_groups(e) for e in evals]
        for key in sorted(set().union(*figures)):
            if key[1] not in groups:
                continue
            cells = [f[key] for f in figures if key in f]
            mean: dict[str, float | None] = {}
            for metric in ("auc", "ndcg@10"):
                values = [c[metric] for c in cells if c[metric] is not None]
                mean[metric] = sum(values) / len(values) if len(values) == len(cells) else None
            out.append(f"| {model_dir.name} | {key[0]} | {key[1]} | {len(cells)} | {_fig(mean['auc'])} | "
                       f"{_fig(mean['ndcg@10'])} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tables")
    t.add_argument("results")
    t.add_argument("--groups", default="all,0,1-2")
    t.add_argument("--only", help="one dataset (amazon-sport_phone, synthetic-transfer, ...)")
    m = sub.add_parser("merge")
    m.add_argument("out")
    m.add_argument("parts", nargs="+")
    f = sub.add_parser("fill")
    f.add_argument("out")
    f.add_argument("main", help="the run over more seeds")
    f.add_argument("more", help="the run over fewer seeds, with the models the first left out")
    c = sub.add_parser("compare")
    c.add_argument("old")
    c.add_argument("new")
    c.add_argument("--group", default="0")
    c.add_argument("--protocol", default="cold-user")
    c.add_argument("--models", help="comma-separated; every model the two files share by default")
    r = sub.add_parser("runs")
    r.add_argument("old", help="a run's eval.json")
    r.add_argument("new", help="another run's eval.json, of the same data")
    r.add_argument("--groups", default="0,1-2,all")
    e = sub.add_parser("seeds")
    e.add_argument("runs", help="a job's runs directory (MODEL/seed-N/eval.json)")
    e.add_argument("--groups", default="0,all")
    e.add_argument("--models", help="comma-separated; every model with a finished seed by default")
    args = ap.parse_args()
    if args.command == "seeds":
        print(seed_means(Path(args.runs), args.groups.split(","), args.models.split(",") if args.models else None))
    elif args.command == "runs":
        print(compare_runs(json.loads(Path(args.old).read_text()), json.loads(Path(args.new).read_text()),
                           args.groups.split(",")))
    elif args.command == "compare":
        print(compare(json.loads(Path(args.old).read_text()), json.loads(Path(args.new).read_text()), args.group,
                      args.protocol, args.models.split(",") if args.models else None))
    elif args.command == "tables":
        print(tables(json.loads(Path(args.results).read_text()), args.groups.split(","), args.only))
    elif args.command == "fill":
        doc, warnings = fill(json.loads(Path(args.main).read_text()), json.loads(Path(args.more).read_text()))
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"{args.out}: {len(doc['rows'])} rows; added {', '.join(doc['filled_from_fewer_seeds']) or 'none'}")
        for w in warnings:
            print("WARNING:", w)
    else:
        doc = merge(Path(args.out), [Path(p) for p in args.parts])
        print(f"{args.out}: {len(doc['rows'])} rows, {len(doc['paired'])} paired tests")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
