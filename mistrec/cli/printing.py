"""What the command line prints: tables of runs, benchmarks, activity groups and prepared data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the command line starts without importing evaluation (and torch)
    from mistrec.eval.results import ActivityMetrics, BenchmarkResult

__all__ = ["print_activity", "print_benchmark", "print_gain_by_activity", "print_matrix", "print_run", "print_slate",
           "print_summary"]


def print_activity(by_activity: ActivityMetrics, second: str) -> None:
    """AUC (and a ranking metric) per scenario and activity group: the user's training events in the scenario."""
    groups = by_activity.groups or ()
    print(f"  by the user's training events in the scenario (AUC{'' if second == 'auc' else ' / ' + second}; "
          "rows):")
    width = max(8, *(len(s) for s in by_activity.by_scenario))
    print(f"  {'scenario':<{width}}  " + "  ".join(f"{g:>22}" for g in groups))
    for name, by in [*by_activity.by_scenario.items(), ("overall", by_activity.overall)]:
        cells = []
        for g in groups:
            v = by.get(g)
            if v is None:
                cells.append(f"{'-':>22}")
                continue
            auc = f"{v.auc:.4f}" if isinstance(v.auc, float) and v.auc == v.auc else "-"
            value = v.get(second)
            extra = "" if second == "auc" else f" / {value:.4f}" if isinstance(value, float) else " / -"
            text = f"{auc}{extra} ({v.n or 0:,})"
            cells.append(f"{text:>22}")
        print(f"  {name:<{width}}  " + "  ".join(cells))



def print_benchmark(doc: BenchmarkResult) -> None:
    """Test AUC per model and scenario, mean +- std over seeds, the best in each column starred; failed runs."""
    summary = doc.summary or {}
    scenarios = list((doc.data_summary or {})["scenarios"])
    width = max([12, *(len(m) for m in summary["by_model"])])  # no model at all where every run failed
    print(f"Test AUC, mean +- std over seeds {doc.seeds} ({doc.dataset['name']}, {doc.protocol}):")
    print(f"  {'model':<{width}}  " + "  ".join(f"{s[:15]:>15}" for s in [*scenarios, "overall"]))
    for m, v in summary["by_model"].items():
        cells = []
        for s in [*scenarios, "overall"]:
            block = v["overall"] if s == "overall" else v["by_scenario"].get(s, {})
            a = block.get("auc")
            mark = "*" if summary["best"].get(s) == m else " "
            cells.append(f"{a['mean']:.4f}+-{a['std']:.4f}{mark}" if a and a["n"] else f"{'-':>15}")
        print(f"  {m:<{width}}  " + "  ".join(f"{c:>15}" for c in cells))
    print("  * best in the column")
    for f in summary["failed_runs"]:
        print(f"  FAILED {f['model']} seed {f['seed']}: {f['error']}")



def print_run(summary: dict[str, Any]) -> None:
    t = summary["train"]
    print(f"Trained {summary['model']} (seed {summary['seed']}): best epoch {t['best_epoch']} of "
          f"{len(t['history'])}, {t['train_samples_per_second']:,.0f} training samples/s, "
          f"peak RSS {summary['peak_rss_mb']:,.0f} MB")
    for split in ("valid", "test"):
        if split not in summary:
            continue
        by = summary[split]["by_scenario"]
        cells = "  ".join(f"{s} {v['auc']:.4f}" for s, v in by.items())
        print(f"  {split} AUC: overall {summary[split]['overall']['auc']:.4f} | {cells}")



def print_gain_by_activity(bench: BenchmarkResult) -> None:
    """mist's AUC gain over the isolated model per scenario and activity group (the user's training events in the
    scenario), with the users there and the bootstrap p-value."""
    by = (bench.summary or {}).get("by_activity", {})
    gains = by.get("transfer_gain", {}).get("mist", {})
    if not gains:
        return
    groups = by["groups"]
    print("Transfer gain of mist over the isolated per-scenario model, test AUC, by the user's training events in "
          "the scenario (users; * p < 0.05):")
    print(f"  {'scenario':<12}  " + "  ".join(f"{g:>19}" for g in groups))
    for scenario, per_group in gains.items():
        if scenario == "overall":
            continue
        cells = []
        for g in groups:
            entry = per_group.get(g)
            users = by["by_model"]["mist"].get(scenario, {}).get(g, {}).get("users", {}).get("mean")
            if entry is None or "auc_gain" not in entry or users is None:
                cells.append(f"{'-':>19}")
                continue
            mark = "*" if entry.get("auc_p_value", 1.0) < 0.05 else " "
            cells.append(f"{entry['auc_gain']:+.4f}{mark} ({int(users):>5,})")
        print(f"  {scenario:<12}  " + "  ".join(f"{c:>19}" for c in cells))



def print_matrix(names: Sequence[str], m: object, digits: int = 2) -> None:
    import numpy as np

    arr = np.asarray(m)
    width = max(len(n) for n in names)
    print(" " * (width + 2) + "  ".join(f"{n[:11]:>11}" for n in names))
    for name, row in zip(names, arr, strict=True):
        print(f"  {name:<{width}}" + "  ".join(f"{v:>11.{digits}f}" for v in row))



def print_summary(manifest: dict[str, Any], out: Path) -> None:
    counts = manifest["counts"]["by_split"]
    after = manifest["counts"]["after_cleaning"]
    names = [*manifest["scenarios"], "ALL"]
    rows = [n for n in names if n in after]
    width = max(8, *(len(n) for n in rows))
    proto = manifest["protocol"]
    seed = f" (seed {proto['seed']})" if "seed" in proto else ""
    print(f"Prepared '{manifest['name']}' with protocol '{proto['name']}'{seed}:")
    print(f"  {'scenario':<{width}}  {'rows':>9}  {'users':>7}  {'items':>7}  {'pos.rate':>8}  "
          f"{'train':>9}  {'valid':>8}  {'test':>8}")
    for n in rows:
        a = after[n]
        split_rows = [counts[s].get(n, {}).get("rows", 0) for s in ("train", "valid", "test")]
        rate = "-" if a["positive_rate"] is None else f"{a['positive_rate']:.3f}"
        print(f"  {n:<{width}}  {a['rows']:>9,}  {a['users']:>7,}  {a['items']:>7,}  {rate:>8}  "
              f"{split_rows[0]:>9,}  {split_rows[1]:>8,}  {split_rows[2]:>8,}")
    hist = manifest["history"]
    print(f"  histories: last {hist['length']} training events strictly before each sample "
          f"(mean length {hist['mean_length']}); leakage checks: "
          f"{', '.join(f'{k} {v}' for k, v in manifest['leakage_checks'].items())}")
    sources = manifest.get("sources", [])
    if len(sources) > 1 or any(src.get("format") == "store" for src in sources):
        print("  sources: " + "; ".join(
            f"{src['name']} ({'event store ' if src.get('format') == 'store' else ''}{src['path']}): "
            f"{src.get('rows_valid', 0):,} rows kept" for src in sources))
    cleaning = manifest["cleaning"]
    lost = {**cleaning["invalid_rows"].get("removed", {}), "duplicate": cleaning.get("duplicates_removed", 0),
            "k-core": cleaning.get("kcore", {}).get("rows_removed", 0),
            "excluded by the protocol": cleaning.get("protocol_excluded_rows", 0)}
    if any(lost.values()):
        print(f"  rows read {manifest['rows_read']:,}; removed: " + ", ".join(
            f"{n:,} {reason.replace('_', ' ')}" for reason, n in lost.items() if n) + " (examples in manifest.json)")
    for note in manifest["notes"]:
        print(f"  note: {note}")
    for warning in manifest.get("warnings", []):
        print(f"  warning: {warning}")
    print(f"  written to {out} (manifest.json has the cleaning report and fingerprints)")


def print_slate(out: dict[str, Any], user: str, scenario: str, limit: int | None = None,
                notes: dict[str, str] | None = None) -> None:
    """A filled slate (`eval.slate.SlateFiller.fill`): its figures against the top of the list's, then each slot
    (the first `limit`), with a note per item where `notes` has one."""
    sl, top = out["slate"], out["slate"]["top_of_list"]
    clicks = ("" if sl["expected_clicks"] is None else
              f"expected clicks {sl['expected_clicks']:.2f} (top of the list: {top['expected_clicks']:.2f}), ")
    ils = "" if sl["intra_list_similarity"] is None else (
        f", similarity {sl['intra_list_similarity']:.2f} (top: {top['intra_list_similarity']:.2f})")
    print(f"{sl['slots_filled']} slots in {scenario} for user {user} from {out['model']}'s top "
          f"{sl['candidates']} (at most {sl['per_category']} per {sl['category'] or 'category'}, diversity "
          f"{sl['diversity']}): {clicks}{sl['categories']} categories (top: {top['categories']}){ils}"
          + (f"; cold start: {out['note']}" if out["cold_start"] else ""))
    for item in out["items"][:limit]:
        score = "" if item["score"] is None else f"  p(click) {item['score']:.3f}"
        note = f"  {notes[item['item']]}" if notes and item["item"] in notes else ""
        print(f"  {item['slot']:>2}. {item['item']} [{item['category']}] (rank {item['rank']}){score}{note}")
        if item.get("explanation"):
            print(f"      {item['explanation'].get('sentence', '')}")
    if limit is not None and len(out["items"]) > limit:
        print(f"  ... and {len(out['items']) - limit} more slots")
    if sl["unfilled"]:
        print(f"  {sl['unfilled']} slots left empty: the per-category cap allowed no more of the candidates")
