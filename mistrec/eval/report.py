"""The benchmark report: one self-contained HTML file (inline CSS and SVG, no script, nothing fetched).

Sections: the per-scenario table with the best model marked, per-scenario AUC bars with error bars (std over
seeds), paired tests, transfer gain against the isolated model (negative transfer in red), training curves,
mist's scenario-to-scenario transfer matrix, speed and memory, and the data summary from the manifest.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from mistrec.eval.results import BenchmarkResult, RunResult

__all__ = ["render_report", "write_report"]

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22")


def write_report(doc: BenchmarkResult, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(render_report(doc), encoding="utf-8")


def render_report(doc: BenchmarkResult) -> str:
    """The benchmark as one self-contained HTML page (inline SVG charts, no script)."""
    summary = doc.summary or {}
    data = doc.data_summary or {}
    models = list(summary["by_model"])
    scenarios = list(data["scenarios"])
    colours = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}
    e = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>mistrec benchmark: {e(doc.dataset['name'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>mistrec benchmark: {e(doc.dataset['name'])}</h1>",
        f"<p class='meta'>protocol <b>{e(str(doc.protocol))}</b> &middot; seeds {e(str(doc.seeds))} &middot; "
        f"mistrec {e(doc.mistrec_version)} &middot; {doc.threads or '?'} threads per run &middot; load "
        f"average before {_fmt_load(doc.load_average_before)}, after {_fmt_load(doc.load_average_after)}"
        f" &middot; dataset fingerprint <code>{e(doc.dataset['fingerprint'][:16])}</code></p>",
        _legend(models, colours),
        "<h2>Per-scenario results</h2>",
        "<p>Test metrics, mean &plusmn; std over seeds. <span class='best'>Bold</span>: the best model in the "
        "column (by mean; lowest for LogLoss and ECE).</p>",
    ]
    for metric in _metrics_present(summary, ("auc", "gauc", "logloss", "ece", "ndcg@10", "hr@10", "recall@10",
                                             "mrr")):
        parts.append(_table(summary, models, scenarios, metric))
    conversion = {m: v["conversion"] for m, v in summary["by_model"].items() if "conversion" in v}
    if conversion:
        parts += ["<h2>The second task: conversion</h2>",
                  "<p>Models with a conversion head (ESMM: p(click and conversion) = p(click) p(conversion | "
                  "click), trained on every row). CVR AUC: p(conversion | click) on the clicked test rows; CTCVR "
                  "AUC and LogLoss: p(click) p(conversion | click) on every test row.</p>"]
        parts += [_table({"by_model": conversion}, list(conversion), scenarios, metric)
                  for metric in ("cvr_auc", "ctcvr_auc", "ctcvr_logloss")]
    parts += ["<h2>AUC per scenario</h2>", _bars(summary, models, scenarios, colours)]
    parts += ["<h2>Is the best model better? Paired tests</h2>", _tests(summary)]
    parts += ["<h2>Transfer gain against the isolated single-scenario model</h2>", _gains(summary, scenarios, colours)]
    parts += ["<h2>Transfer gain by the user's activity in the scenario</h2>",
              _gains_by_activity(summary.get("by_activity") or {}, scenarios, colours)]
    runs = list(doc.runs)
    parts += ["<h2>Training curves</h2>", _curves(runs, models, colours)]
    parts += ["<h2>mist: where the interest comes from</h2>", _matrix(runs)]
    parts += ["<h2>Gates and experts</h2>", _gates(runs, models)]
    parts += ["<h2>Speed and memory</h2>", _speed(summary, models)]
    parts += ["<h2>Data</h2>", _data(data)]
    parts.append("</body></html>")
    return "\n".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;
padding:0 1em}h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}td,th{border:1px solid #ddd;padding:.3em .6em;
text-align:right}th:first-child,td:first-child{text-align:left}caption{text-align:left;font-weight:600;
margin-bottom:.3em}.best{font-weight:700;background:#eef6ee}.neg{color:#c0392b;font-weight:600}.meta{color:#555}
.legend span{display:inline-block;margin-right:1em}.sw{display:inline-block;width:.9em;height:.9em;
margin-right:.3em;vertical-align:-.1em}svg{background:#fff;border:1px solid #eee;margin:.3em 0}
.note{color:#666;font-size:.9em}
"""


def _fmt_load(load: Any) -> str:
    return "?" if not load else " / ".join(f"{x:.2f}" for x in load)


def _num(v: Any, digits: int = 4) -> str:
    return "&ndash;" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _legend(models: list[str], colours: dict[str, str]) -> str:
    items = "".join(f"<span><i class='sw' style='background:{colours[m]}'></i>{html.escape(m)}</span>"
                    for m in models)
    return f"<p class='legend'>{items}</p>"


def _metrics_present(summary: dict[str, Any], wanted: tuple[str, ...]) -> list[str]:
    have = {k for v in summary["by_model"].values() for k in v["overall"]}
    return [m for m in wanted if m in have]


def _cell(block: dict[str, Any], metric: str) -> tuple[float | None, str]:
    s = block.get(metric)
    if not s or not s.get("n"):
        return None, "&ndash;"
    return s["mean"], f"{_num(s['mean'])} &plusmn; {_num(s['std'])}"


def _table(summary: dict[str, Any], models: list[str], scenarios: list[str], metric: str) -> str:
    lower_better = metric in ("logloss", "ece", "ctcvr_logloss")
    columns = [*scenarios, "overall"]
    grid = {m: [_cell(summary["by_model"][m]["overall"] if c == "overall" else
                      summary["by_model"][m]["by_scenario"].get(c, {}), metric) for c in columns] for m in models}
    best = []
    for j in range(len(columns)):
        vals = [(v, m) for m in models if (v := grid[m][j][0]) is not None and not math.isnan(v)]
        best.append((min(vals) if lower_better else max(vals))[1] if vals else None)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for m in models:
        cells = "".join(f"<td class='best'>{txt}</td>" if best[j] == m else f"<td>{txt}</td>"
                        for j, (_, txt) in enumerate(grid[m]))
        rows.append(f"<tr><td>{html.escape(m)}</td>{cells}</tr>")
    return f"<table><caption>{html.escape(metric)}</caption><tr><th>model</th>{head}</tr>{''.join(rows)}</table>"


def _bars(summary: dict[str, Any], models: list[str], scenarios: list[str], colours: dict[str, str]) -> str:
    columns = [*scenarios, "overall"]
    vals = {(m, c): (summary["by_model"][m]["overall"] if c == "overall" else
                     summary["by_model"][m]["by_scenario"].get(c, {})).get("auc") for m in models for c in columns}
    present = [v for v in vals.values() if v and v.get("n")]
    if not present:
        return "<p class='note'>No AUC to draw.</p>"
    lo = min(v["mean"] - v["std"] for v in present)
    hi = max(v["mean"] + v["std"] for v in present)
    pad = max((hi - lo) * 0.15, 0.005)
    lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
    width, height, left, bottom, top = 960, 320, 60, 40, 15
    group_w = (width - left - 10) / len(columns)
    bar_w = group_w * 0.8 / len(models)

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - lo) / (hi - lo))

    out = [f"<svg class='chart' data-chart='auc-bars' width='{width}' height='{height}' role='img' "
           f"aria-label='AUC per scenario'>"]
    out += _y_axis(lo, hi, y, left, width)
    for j, c in enumerate(columns):
        x0 = left + j * group_w + group_w * 0.1
        for i, m in enumerate(models):
            v = vals[(m, c)]
            if not v or not v.get("n"):
                continue
            x = x0 + i * bar_w
            yy = y(v["mean"])
            out.append(f"<rect class='bar' x='{x:.1f}' y='{yy:.1f}' width='{bar_w * 0.9:.1f}' "
                       f"height='{y(lo) - yy:.1f}' fill='{colours[m]}'><title>{html.escape(m)} {html.escape(c)}: "
                       f"{v['mean']:.4f} &#177; {v['std']:.4f}</title></rect>")
            cx = x + bar_w * 0.45
            out.append(f"<line class='err' x1='{cx:.1f}' x2='{cx:.1f}' y1='{y(v['mean'] - v['std']):.1f}' "
                       f"y2='{y(v['mean'] + v['std']):.1f}' stroke='#222'/>")
        out.append(f"<text x='{left + j * group_w + group_w / 2:.1f}' y='{height - 15}' text-anchor='middle' "
                   f"font-size='12'>{html.escape(c)}</text>")
    out.append("</svg>")
    return "".join(out)


def _y_axis(lo: float, hi: float, y: Any, left: int, width: int) -> list[str]:
    out = []
    for k in range(6):
        v = lo + (hi - lo) * k / 5
        out.append(f"<line x1='{left}' x2='{width - 10}' y1='{y(v):.1f}' y2='{y(v):.1f}' stroke='#eee'/>")
        out.append(f"<text x='{left - 5}' y='{y(v) + 4:.1f}' text-anchor='end' font-size='11'>{v:.3f}</text>")
    return out


def _tests(summary: dict[str, Any]) -> str:
    rows = []
    for s, others in summary["paired_tests"].items():
        best = summary["best"].get(s, "?")
        for m, t in others.items():
            boot = t.get("bootstrap", {})
            seed = t.get("seed_t_test", {})
            rows.append(f"<tr><td>{html.escape(s)}</td><td>{html.escape(best)}</td><td>{html.escape(m)}</td>"
                        f"<td>{_num(boot.get('diff'))}</td><td>[{_num(boot.get('ci_low'))}, "
                        f"{_num(boot.get('ci_high'))}]</td><td>{_num(boot.get('p_value'), 3)}</td>"
                        f"<td>{_num(seed.get('p_value'), 3)}</td></tr>")
    if not rows:
        return "<p class='note'>One model only: nothing to compare.</p>"
    return ("<p>AUC of the best model minus the other's, on the same test rows: a bootstrap over test users "
            "(95% interval, two-sided p), and a paired t-test over seeds.</p><table><tr><th>scenario</th>"
            "<th>best</th><th>against</th><th>AUC diff</th><th>95% interval</th><th>p (bootstrap)</th>"
            f"<th>p (seeds)</th></tr>{''.join(rows)}</table>")


def _gains(summary: dict[str, Any], scenarios: list[str], colours: dict[str, str]) -> str:
    gains = summary.get("transfer_gain") or {}
    if not gains:
        return f"<p class='note'>{html.escape(summary.get('transfer_gain_note', 'No transfer gain measured.'))}</p>"
    values = [g["auc_gain"] for per in gains.values() for g in per.values()]
    span = max(max(abs(v) for v in values), 1e-4) * 1.15
    models = list(gains)
    width, row_h, left = 960, 18, 230
    height = 30 + row_h * len(models) * len(scenarios) + 10 * len(scenarios)
    mid = left + (width - left - 20) / 2

    def x(v: float) -> float:
        return mid + (width - left - 20) / 2 * v / span

    out = [f"<svg class='chart' data-chart='transfer-gain' width='{width}' height='{height}' role='img' "
           f"aria-label='transfer gain'>",
           f"<line x1='{mid:.1f}' x2='{mid:.1f}' y1='10' y2='{height - 10}' stroke='#444'/>",
           f"<text x='{x(-span * 0.95):.1f}' y='12' font-size='11'>-{span:.3f}</text>",
           f"<text x='{x(span * 0.8):.1f}' y='12' font-size='11'>+{span:.3f}</text>"]
    yy = 22
    rows = []
    for s in scenarios:
        for m in models:
            g = gains[m].get(s)
            if g is None:
                continue
            v = g["auc_gain"]
            neg = g["negative_transfer"]
            x0, x1 = sorted((mid, x(v)))
            out.append(f"<rect class='bar' x='{x0:.1f}' y='{yy}' width='{max(x1 - x0, 1):.1f}' height='{row_h - 4}' "
                       f"fill='{'#c0392b' if neg else colours.get(m, '#4e79a7')}'><title>{html.escape(m)} in "
                       f"{html.escape(s)}: {v:+.4f}</title></rect>")
            out.append(f"<text x='{left - 6}' y='{yy + row_h - 7}' text-anchor='end' font-size='11'>"
                       f"{html.escape(s)} &#183; {html.escape(m)}</text>")
            flag = ("negative transfer" + ("" if g.get("significant") else " (not significant at 5%)")) if neg else ""
            rows.append(f"<tr><td>{html.escape(s)}</td><td>{html.escape(m)}</td><td class='{'neg' if neg else ''}'>"
                        f"{v:+.4f}</td><td>{_num(g.get('p_value'), 3)}</td><td class='{'neg' if neg else ''}'>"
                        f"{flag}</td></tr>")
            yy += row_h
        yy += 10
    out.append("</svg>")
    return ("<p>AUC of each model minus that of <code>isolated_dnn</code> (one model per scenario, trained on that "
            "scenario alone) in the same scenario, mean over seeds. Red: negative transfer.</p>" + "".join(out) +
            "<table><tr><th>scenario</th><th>model</th><th>AUC gain</th><th>p (bootstrap)</th><th></th></tr>"
            + "".join(rows) + "</table>")


def _gains_by_activity(by: dict[str, Any], scenarios: list[str], colours: dict[str, str]) -> str:
    """Per scenario, a panel of each model's AUC gain over the isolated model in every activity group (the user's
    training events in the scenario), and the table behind it with the users in each group and the p-values."""
    gains = by.get("transfer_gain") or {}
    if not gains:
        return "<p class='note'>No gain by activity: it needs isolated_dnn among the models and saved predictions.</p>"
    groups = list(by.get("groups", []))
    models = list(gains)
    values = [g["auc_gain"] for per in gains.values() for s in per.values() for g in s.values() if "auc_gain" in g]
    if not values or not groups:
        return "<p class='note'>No gain by activity measured.</p>"
    span = max(max(abs(v) for v in values), 1e-4) * 1.1
    panel_w, panel_h, top = 300, 170, 22
    slot = (panel_w - 40) / len(groups)
    bar = max(slot / (len(models) + 1), 2)
    out, rows = [], []
    shown = [s for s in scenarios if any(s in gains[m] for m in models)]
    width = panel_w * min(len(shown), 3)
    height = (panel_h + 30) * ((len(shown) + 2) // 3)
    out.append(f"<svg class='chart' data-chart='gain-by-activity' width='{width}' height='{height}' role='img' "
               f"aria-label='transfer gain by activity group'>")
    for i, s in enumerate(shown):
        ox, oy = panel_w * (i % 3), (panel_h + 30) * (i // 3)
        mid = oy + top + (panel_h - top) / 2

        def y(v: float, mid: float = mid) -> float:
            return mid - (panel_h - top) / 2 * v / span

        out.append(f"<text x='{ox + 35}' y='{oy + 14}' font-size='12' font-weight='600'>{html.escape(s)}</text>")
        out.append(f"<line x1='{ox + 35}' x2='{ox + panel_w - 5}' y1='{mid:.1f}' y2='{mid:.1f}' stroke='#444'/>")
        out.append(f"<text x='{ox + 32}' y='{y(span * 0.9) + 4:.1f}' font-size='10' text-anchor='end'>"
                   f"+{span:.3f}</text><text x='{ox + 32}' y='{y(-span * 0.9) + 4:.1f}' font-size='10' "
                   f"text-anchor='end'>-{span:.3f}</text>")
        for j, g in enumerate(groups):
            gx = ox + 38 + j * slot
            out.append(f"<text x='{gx + slot / 2:.1f}' y='{oy + panel_h + 14}' font-size='10' text-anchor='middle'>"
                       f"{html.escape(g)}</text>")
            for k, m in enumerate(models):
                entry = gains[m].get(s, {}).get(g)
                if not entry or "auc_gain" not in entry:
                    continue
                v, p = entry["auc_gain"], entry.get("auc_p_value")
                y0, y1 = sorted((mid, y(v)))
                out.append(f"<rect class='bar' x='{gx + k * bar:.1f}' y='{y0:.1f}' width='{bar - 1:.1f}' "
                           f"height='{max(y1 - y0, 1):.1f}' fill='{colours.get(m, '#4e79a7')}'><title>{html.escape(m)}"
                           f" in {html.escape(s)}, {html.escape(g)} events: {v:+.4f} (p {_num(p, 3)})</title></rect>")
                users = by.get("by_model", {}).get(m, {}).get(s, {}).get(g, {}).get("users", {}).get("mean")
                rows.append(f"<tr><td>{html.escape(s)}</td><td>{html.escape(g)}</td><td>{html.escape(m)}</td>"
                            f"<td>{'' if users is None else f'{users:,.0f}'}</td><td class='{'neg' if v < 0 else ''}'>"
                            f"{v:+.4f}</td><td>{_num(p, 3)}</td><td>{_num(entry.get('ndcg@10_gain'))}</td></tr>")
    out.append("</svg>")
    return ("<p>AUC of each model minus that of <code>isolated_dnn</code> in the same scenario, among the test rows "
            "of users with 0, 1-2, 3-5, 6-20 or more than 20 training events in the scenario (mean over seeds; p: "
            "bootstrap over users). Transfer is for the left-hand groups.</p>" + "".join(out) +
            "<table><tr><th>scenario</th><th>events</th><th>model</th><th>users</th><th>AUC gain</th>"
            "<th>p (bootstrap)</th><th>NDCG@10 gain</th></tr>" + "".join(rows) + "</table>")


def _curves(runs: list[RunResult], models: list[str], colours: dict[str, str]) -> str:
    series = {}
    for m in models:
        first = next((r for r in runs if r.model == m and r.curve), None)
        pts = [(c["epoch"], c["valid_mean_scenario_auc"]) for c in (first.curve or [] if first else [])
               if isinstance(c.get("valid_mean_scenario_auc"), float) and c.get("epoch", 0) > 0]
        if pts:
            series[m] = pts
    if not series:
        return "<p class='note'>No model trained for epochs here (closed-form models have no curve).</p>"
    width, height, left, bottom, top = 960, 300, 60, 35, 15
    max_epoch = max(e for pts in series.values() for e, _ in pts)
    vals = [v for pts in series.values() for _, v in pts]
    lo, hi = min(vals), max(vals)
    pad = max((hi - lo) * 0.1, 0.002)
    lo, hi = lo - pad, hi + pad

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - lo) / (hi - lo))

    def x(ep: float) -> float:
        return left + (width - left - 20) * (ep - 1) / max(max_epoch - 1, 1)

    out = [f"<svg class='chart' data-chart='curves' width='{width}' height='{height}' role='img' "
           f"aria-label='validation AUC per epoch'>"]
    out += _y_axis(lo, hi, y, left, width)
    for ep in range(1, max_epoch + 1):
        out.append(f"<text x='{x(ep):.1f}' y='{height - 15}' text-anchor='middle' font-size='11'>{ep}</text>")
    for m, pts in series.items():
        path = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in pts)
        out.append(f"<polyline class='curve' points='{path}' fill='none' stroke='{colours[m]}' stroke-width='2'>"
                   f"<title>{html.escape(m)}</title></polyline>")
        for e, v in pts:
            out.append(f"<circle cx='{x(e):.1f}' cy='{y(v):.1f}' r='2.5' fill='{colours[m]}'/>")
    out.append("</svg>")
    return ("<p>Validation mean per-scenario AUC after each epoch (first seed); training keeps the best epoch's "
            "weights.</p>" + "".join(out))


def _matrix(runs: list[RunResult]) -> str:
    mats = [r.transfer_matrix for r in runs if r.model == "mist" and r.transfer_matrix]
    if not mats:
        return "<p class='note'>No mist run in this benchmark.</p>"
    names = mats[0]["scenarios"]
    n = len(names)
    share = [[sum(m["source_share"][i][j] for m in mats) / len(mats) for j in range(n)] for i in range(n)]
    heatmap = _heatmap(names, names, share, "transfer-matrix", scale=1.0, blue=True)
    out = ("<p>Row: the target scenario of a test sample; column: the scenario of the history events. Each cell "
           "is mist's interest-level share of that source, averaged over the target's test samples with a "
           f"history (mean over {len(mats)} seed(s)): where the model looked.</p>" + heatmap)
    lso = [r.leave_source_out for r in runs if r.model == "mist" and r.leave_source_out]
    if lso:
        drop = [[sum(m["auc_drop"][i][j] for m in lso) / len(lso) for j in range(n)] for i in range(n)]
        top = max((abs(v) for row in drop for v in row), default=0.0) or 1.0
        out += ("<p>What the score depends on: the test AUC of the row's scenario minus its AUC when the column "
                "scenario's events are removed from every history (leave-source-out; mean over "
                f"{len(lso)} seed(s)). Near zero off the diagonal: other scenarios' events change nothing, "
                "whatever the attention says; below zero: the model is better off without them.</p>"
                + _heatmap(names, names, drop, "leave-source-out", scale=top))
    return out


def _gates(runs: list[RunResult], models: list[str]) -> str:
    out = []
    for m in models:
        first = next((r for r in runs if r.model == m and r.gates), None)
        if first is None or first.gates is None:
            continue
        for gate, g in first.gates.items():
            rows = list(g["by_scenario"])
            out.append(f"<h3>{html.escape(m)}: {html.escape(gate)}</h3>")
            out.append(_heatmap(rows, g["columns"], [g["by_scenario"][r] for r in rows], f"gates-{m}-{gate}",
                                scale=2.0 if gate == "mean_scaling" else 1.0))
    if not out:
        return "<p class='note'>No expert model (MMoE, PLE, SAR-Net, PEPNet) in this benchmark.</p>"
    return ("<p>Mean gate weight of each expert for the samples of each scenario (first seed); one column near 1 "
            "is an expert collapse. PEPNet: the mean scaling of each gate (1 = the gate does nothing).</p>"
            + "".join(out))


def _heatmap(rows: list[str], cols: list[str], values: list[list[float]], chart: str, scale: float,
             blue: bool = False) -> str:
    """A rows x cols heatmap with each value written in its cell; `scale` is the value drawn darkest."""
    cell_w, cell_h, left, top = 78, 34, 130, 80
    width, height = left + cell_w * len(cols) + 20, top + cell_h * len(rows) + 10
    out = [f"<svg class='chart' data-chart='{html.escape(chart)}' width='{width}' height='{height}' role='img' "
           f"aria-label='{html.escape(chart)}'>"]
    for j, c in enumerate(cols):
        out.append(f"<text transform='translate({left + j * cell_w + cell_w / 2:.1f},{top - 8}) rotate(-30)' "
                   f"font-size='11'>{html.escape(c)}</text>")
    for i, r in enumerate(rows):
        out.append(f"<text x='{left - 8}' y='{top + i * cell_h + cell_h / 2 + 4:.1f}' text-anchor='end' "
                   f"font-size='12'>{html.escape(r)}</text>")
        for j, v in enumerate(values[i]):
            shade = int(255 - 200 * max(0.0, min(1.0, v / scale)))
            fill = f"rgb({shade},{shade},255)" if blue else f"rgb(255,{shade},{shade})"
            out.append(f"<rect class='cell' x='{left + j * cell_w}' y='{top + i * cell_h}' width='{cell_w - 2}' "
                       f"height='{cell_h - 2}' fill='{fill}'><title>{html.escape(r)}, {html.escape(cols[j])}: "
                       f"{v:.3f}</title></rect>")
            x, y = left + j * cell_w + cell_w / 2 - 1, top + i * cell_h + cell_h / 2 + 4
            colour = "#fff" if v / scale > 0.6 else "#111"
            out.append(f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='middle' font-size='11' fill='{colour}'>{v:.2f}"
                       "</text>")
    out.append("</svg>")
    return "".join(out)


def _speed(summary: dict[str, Any], models: list[str]) -> str:
    rows = []
    for m in models:
        v = summary["by_model"][m]
        rows.append(f"<tr><td>{html.escape(m)}</td><td>{_num(v['train_seconds']['mean'], 1)}</td>"
                    f"<td>{_num(v['train_samples_per_second']['mean'], 0)}</td>"
                    f"<td>{_num(v['peak_rss_mb']['mean'], 0)}</td></tr>")
    return ("<table><tr><th>model</th><th>training s</th><th>training samples/s</th><th>peak RSS MB</th></tr>"
            + "".join(rows) + "</table><p class='note'>Means over seeds. Peak RSS is that of the process that "
            "trained the run: <code>mistrec benchmark</code> gives each run its own; the demo trains both in one.</p>")


def _data(d: dict[str, Any]) -> str:
    rows = []
    for name, a in d["after_cleaning"].items():
        split = [d["by_split"].get(s, {}).get(name, {}).get("rows", 0) for s in ("train", "valid", "test")]
        rate = a.get("positive_rate")
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{a['rows']:,}</td><td>{a['users']:,}</td>"
                    f"<td>{a['items']:,}</td><td>{_num(rate, 3)}</td><td>{split[0]:,}</td><td>{split[1]:,}</td>"
                    f"<td>{split[2]:,}</td></tr>")
    notes = "".join(f"<li>{html.escape(str(n))}</li>" for n in d.get("notes", []))
    hist = d["history"]
    return ("<table><tr><th>scenario</th><th>rows</th><th>users</th><th>items</th><th>positive rate</th>"
            "<th>train</th><th>valid</th><th>test</th></tr>" + "".join(rows) + "</table>"
            f"<p>Histories: the last {hist['length']} training events strictly before each sample (mean length "
            f"{hist.get('mean_length', '?')}). Protocol: <code>{html.escape(str(d['protocol']))}</code></p>"
            + (f"<ul class='note'>{notes}</ul>" if notes else ""))
