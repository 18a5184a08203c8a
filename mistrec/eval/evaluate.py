"""A trained run -> every metric of DESIGN.md section 4, overall and per scenario, in the section 5 JSON.

Pointwise metrics on the evaluated split's rows: AUC, gAUC (by user), LogLoss, ECE, with sample and positive
counts. Ranking metrics against the full scenario catalogue (mistrec.eval.ranking). The split's predictions
are saved next to the run (`predictions_<split>.npz`) so that benchmarks can compare models row by row.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mistrec import metrics
from mistrec.data.prepared import PreparedDataset
from mistrec.errors import ArtifactError, ConfigError
from mistrec.eval.activity import ActivityCounts, group_index, pointwise_by_activity
from mistrec.eval.pointwise import conversion_metrics, pointwise_metrics
from mistrec.eval.ranking import rank_full_catalogue
from mistrec.eval.results import ActivityMetrics, Evaluation, Metrics, RunResult
from mistrec.features import EncodedRows, FeatureEncoder
from mistrec.models.base import Explains, Model, ReportsGates
from mistrec.train import load_run, predict_tasks
from mistrec.train.artifact import json_text

__all__ = ["attention_transfer_matrix", "evaluate_run", "gate_summary", "leave_source_out_matrix", "load_per_query",
           "load_run_and_data", "offdiagonal_spearman", "write_json"]


def load_run_and_data(run_dir: str | Path, data: str | Path | None = None, settings: dict[str, Any] | None = None
                      ) -> tuple[Model, FeatureEncoder, dict[str, Any], PreparedDataset]:
    """A run and the prepared dataset it was trained on (or `data`, which must have the same fingerprint);
    `settings` as load_run's."""
    model, enc, meta = load_run(run_dir, settings)
    if data is None and not meta.get("data"):
        raise ArtifactError(f"{run_dir} does not say where its prepared dataset is: pass --data DATA_DIR.")
    path = Path(data if data is not None else meta["data"])
    if not path.is_dir():
        raise ArtifactError(f"The prepared dataset of {run_dir} is not at {path}: pass --data DATA_DIR.")
    ds = PreparedDataset.load(path)
    if ds.manifest["fingerprint"] != enc.dataset_fingerprint_:
        raise ArtifactError(f"{path} is not the prepared dataset {run_dir} was trained on (fingerprint "
                            f"{ds.manifest['fingerprint']}, the run's {enc.dataset_fingerprint_}).")
    return model, enc, meta, ds


def evaluate_run(
    run_dir: str | Path, data: str | Path | None = None, split: str = "test", ks: tuple[int, ...] = (10, 20),
    ranking: bool = True, sampled_negatives: int | None = None, quiet: bool = True, also_sampled: int | None = None,
    max_queries: int | None = None,
) -> Evaluation:
    """Evaluates a run directory on a split of its prepared dataset (or of `data`, which must be the same one).

    Every metric is also split by the user's activity in the scenario (`metrics.by_activity`, mistrec.eval.activity).
    `also_sampled` and `max_queries`: see `rank_full_catalogue`. Returns the DESIGN.md section 5 document with one
    run (`Evaluation.run`).
    """
    from mistrec import __version__

    if split not in ("valid", "test"):
        raise ConfigError(f"split must be 'valid' or 'test'. Got {split!r}.")
    run_dir = Path(run_dir)
    model, enc, meta, ds = load_run_and_data(run_dir, data)
    names = enc.spec_.scenario_names
    rows = enc.rows(ds, split)
    if not len(rows):
        raise ConfigError(f"{data} has no {split} rows to evaluate.")
    t0 = time.perf_counter()
    prob, cvr = predict_tasks(model, enc, rows)
    result = pointwise_metrics(prob, rows, names)
    activity = ActivityCounts.from_interactions(ds.interactions, len(names) + 1)
    group = group_index(activity.of(rows.user, rows.scenario))
    result = replace(result, by_activity=ActivityMetrics.from_json(
        pointwise_by_activity(prob, rows.label, rows.user, rows.scenario, group, names)))
    saved = {"prob": prob, "label": rows.label, "user": rows.user, "scenario": rows.scenario, "item": rows.item,
             "group": group}
    if cvr is not None:  # the second task: CVR AUC on clicked rows, CTCVR AUC and LogLoss on every row
        result = replace(result, conversion=conversion_metrics(prob, cvr, rows, names))
        saved.update(cvr=cvr, conversion=rows.conversion)
    pointwise_seconds = time.perf_counter() - t0
    np.savez_compressed(run_dir / f"predictions_{split}.npz", **saved)  # type: ignore[arg-type]
    ranking_seconds = 0.0
    if ranking:
        ranked = rank_full_catalogue(model, enc, ds, split=split, ks=ks, sampled_negatives=sampled_negatives,
                                     quiet=quiet, activity=activity, also_sampled=also_sampled,
                                     max_queries=max_queries)
        ranking_seconds = ranked.seconds
        result = _with_ranking(result, Metrics.from_json(ranked.metrics))
        _save_per_query(run_dir / f"ranking_{split}.npz", ranked.per_query)
    trained = _read_json(run_dir / "metrics.json")
    train = trained.get("train", meta.get("result", {}))
    eval_seconds = {"pointwise": round(pointwise_seconds, 3), "ranking": round(ranking_seconds, 3)}
    more: dict[str, Any] = {}
    if isinstance(model, Explains):
        more["transfer_matrix"] = attention_transfer_matrix(model, enc, rows)
    if model.reads_history:  # what each source scenario's events are worth: the AUC lost without them
        t1 = time.perf_counter()
        more["leave_source_out"] = leave_source_out_matrix(model, enc, rows, prob=prob)
        eval_seconds["leave_source_out"] = round(time.perf_counter() - t1, 3)
    if isinstance(model, ReportsGates):
        more["gates"] = gate_summary(model, enc, rows)
    run = RunResult(
        model=meta["model"], seed=int(meta["train_config"]["seed"]), run_dir=str(run_dir),
        train_seconds=float(train.get("train_seconds", float("nan"))),
        train_samples_per_second=float(train.get("train_samples_per_second", float("nan"))),
        peak_rss_mb=float(trained.get("peak_rss_mb", float("nan"))),
        best_epoch=train.get("best_epoch"), curve=_curve(train.get("history", [])), eval_seconds=eval_seconds,
        split=split, scenario_names=list(names), metrics=result, **more)
    return Evaluation(mistrec_version=__version__, dataset={"name": ds.manifest["name"],
                                                            "fingerprint": ds.manifest["fingerprint"]},
                      protocol=ds.manifest["protocol"]["name"], protocol_detail=ds.manifest["protocol"], runs=(run,))


def _with_ranking(pointwise: Metrics, ranked: Metrics) -> Metrics:
    """The pointwise metrics with the ranking metrics of the same blocks added (overall, per scenario, per
    activity group), and the sampled candidate lists' block and the ranking notes."""
    by = dict(pointwise.by_scenario)
    for s, block in ranked.by_scenario.items():
        by[s] = by[s].with_ranking(block.to_json()) if s in by else block
    activity = pointwise.by_activity
    if activity is not None and ranked.by_activity is not None:
        activity = activity.merged(ranked.by_activity)
    return replace(pointwise, overall=pointwise.overall.with_ranking(ranked.overall.to_json()), by_scenario=by,
                   by_activity=activity, sampled=ranked.sampled, notes=ranked.notes)


def _save_per_query(path: Path, per_query: dict[str, dict[str, dict[str, np.ndarray]]]) -> None:
    """Per-query ranking metrics of every candidate set, for paired tests over users. Names (candidate sets,
    scenarios, fields) go in a JSON index, so that any scenario name is safe as a key."""
    arrays: dict[str, np.ndarray] = {}
    index: list[list[str]] = []
    for view, by in per_query.items():
        for s, q in by.items():
            for k, v in q.items():
                arrays[f"a{len(index)}"] = v
                index.append([view, s, k])
    np.savez_compressed(path, index=np.array(json.dumps(index)), **arrays)  # type: ignore[arg-type]


def load_per_query(path: str | Path) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """The per-query ranking metrics `evaluate_run` saved (`ranking_<split>.npz`): candidate set -> scenario ->
    {"user", "group", metric: (Q,)}."""
    out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    with np.load(path) as z:
        for i, (view, s, k) in enumerate(json.loads(str(z["index"]))):
            out.setdefault(view, {}).setdefault(s, {})[k] = z[f"a{i}"]
    return out


def attention_transfer_matrix(model: Model, enc: FeatureEncoder, rows: EncodedRows,
                              batch_size: int = 8192) -> dict[str, Any]:
    """mist's T[target, source]: the interest-level share (and the attention mass) of each source scenario's
    events, averaged over the rows of each target scenario whose interest reads a history (with `interest_scope:
    auto` an active user's interest reads their own scenario's events only, and a row with none of them in its window
    reads none)."""
    import torch

    if not isinstance(model, Explains):
        raise TypeError(f"{type(model).__name__} does not explain its scores (no attention to read)")
    n = enc.spec_.n_scenarios
    share = np.zeros((n, n))
    mass = np.zeros((n, n))
    count = np.zeros(n)
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(rows), batch_size):
            b = enc.batch(rows, np.arange(lo, min(lo + batch_size, len(rows))), history_side=model.reads_history_side)
            out = model.explain(b)
            has = (out.source_share.sum(dim=1) > 0).numpy()
            target = b.scenario.numpy()[has]
            np.add.at(share, target, out.source_share.numpy()[has])
            np.add.at(mass, target, out.source_mass.numpy()[has])
            np.add.at(count, target, 1)
    keep = np.arange(1, n)  # index 0: unknown scenario
    denom = np.maximum(count[keep], 1)[:, None]
    return {"scenarios": list(enc.spec_.scenario_names), "rows_with_history": count[keep].astype(int).tolist(),
            "source_share": (share[np.ix_(keep, keep)] / denom).tolist(),
            "source_mass": (mass[np.ix_(keep, keep)] / denom).tolist()}


def offdiagonal_spearman(planted: Any, learned: Any) -> float:
    """Spearman correlation of two (target x source) matrices over their off-diagonal entries: how well a learned
    transfer matrix (leave-source-out AUC drops, attention shares) ranks the sources as the planted one does; NaN
    when the planted off-diagonal is constant (the identity control)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(planted, dtype=float), np.asarray(learned, dtype=float)
    off = ~np.eye(len(a), dtype=bool)
    return float(spearmanr(a[off], b[off]).statistic) if a[off].std() > 0 else float("nan")


def leave_source_out_matrix(model: Model, enc: FeatureEncoder, rows: EncodedRows, batch_size: int = 8192,
                            prob: np.ndarray | None = None) -> dict[str, Any]:
    """Per target scenario, the AUC lost when each source scenario's events are removed from every history.
    `prob`: the model's probabilities for the rows with their full histories, when already computed.

    Returns {"scenarios", "auc_full"[t], "auc_without"[t][s], "auc_drop"[t][s], "rows_touched"[t][s]} where
    rows_touched counts the target rows whose history had an event of the source.
    """
    import torch

    names = enc.spec_.scenario_names
    n = len(names)
    target = enc.scenario_map_[rows.scenario]
    probs = np.empty((n + 1, len(rows)), dtype=np.float32)  # row 0: full histories; row s: without source s
    touched = np.zeros((n + 1, n + 1), dtype=np.int64)
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(rows), batch_size):
            idx = np.arange(lo, min(lo + batch_size, len(rows)))
            b = enc.batch(rows, idx, history_side=model.reads_history_side)
            probs[0, idx] = torch.sigmoid(model(b)).numpy() if prob is None else prob[idx]
            for s in range(1, n + 1):
                drop = b.hist_mask & (b.hist_scenarios == s)
                has = drop.any(dim=1).numpy()
                np.add.at(touched[:, s], target[idx][has], 1)
                probs[s, idx] = torch.sigmoid(model(b.without_events(drop))).numpy()
    full, without = [], []
    for t in range(1, n + 1):
        m = target == t
        full.append(metrics.auc(rows.label[m], probs[0, m]) if m.any() else float("nan"))
        without.append([metrics.auc(rows.label[m], probs[s, m]) if m.any() else float("nan")
                        for s in range(1, n + 1)])
    drop_matrix = [[full[t] - without[t][s] for s in range(n)] for t in range(n)]
    return {"scenarios": list(names), "auc_full": full, "auc_without": without, "auc_drop": drop_matrix,
            "rows_touched": touched[1:, 1:].tolist()}


def gate_summary(model: Model, enc: FeatureEncoder, rows: EncodedRows, batch_size: int = 8192) -> dict[str, Any]:
    """Mean gate weights of an expert model (MMoE, PLE, SAR-Net; PEPNet's mean scalings) per scenario: each
    sample's own-scenario gate, averaged over the scenario's rows. A column near 1 and the rest near 0 is an
    expert collapse."""
    import torch

    if not isinstance(model, ReportsGates):
        raise TypeError(f"{type(model).__name__} has no gates to report")
    names = enc.spec_.scenario_names
    sums: dict[str, np.ndarray] = {}
    count = np.zeros(len(names) + 1)
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(rows), batch_size):
            b = enc.batch(rows, np.arange(lo, min(lo + batch_size, len(rows))), history=model.reads_history,
                          history_side=model.reads_history_side)
            record = model.gate_values(b)
            s = b.scenario.numpy()
            np.add.at(count, s, 1)
            for gate, w in record.items():
                acc = sums.setdefault(gate, np.zeros((len(names) + 1, w.shape[1])))
                np.add.at(acc, s, w.numpy())
    out = {}
    for gate, acc in sums.items():
        out[gate] = {"columns": list(model.gate_columns[gate]),
                     "by_scenario": {names[i - 1]: (acc[i] / count[i]).tolist() for i in range(1, len(names) + 1)
                                     if count[i] > 0}}
    return out


def _curve(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("epoch", "train_loss", "valid_auc", "valid_mean_scenario_auc", "seconds")
    return [{k: h[k] for k in keep if k in h} for h in history]


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json(doc: Evaluation | dict[str, Any], path: str | Path) -> None:
    """Writes a result document, whole or not at all (a sibling file renamed into place), as strict JSON: NaN (a
    metric with no value, such as AUC with one class) becomes null."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(json_text(doc.to_json() if isinstance(doc, Evaluation) else doc))
    os.replace(tmp, path)
