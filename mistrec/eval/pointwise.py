"""Pointwise metrics of scored rows, overall and per scenario: AUC and LogLoss with the rows and positives (what
a finished training run reports), gAUC and ECE on top (what `mistrec evaluate` reports), and the conversion
task's CVR / CTCVR metrics."""

from __future__ import annotations

import numpy as np

from mistrec import metrics
from mistrec.eval.results import ConversionMetrics, ConversionScores, Metrics, ScenarioMetrics
from mistrec.features import EncodedRows

__all__ = ["conversion_metrics", "evaluate_rows", "pointwise_metrics"]


def _name(scenario_names: tuple[str, ...], s: int) -> str:
    return scenario_names[s - 1] if s > 0 else "<unknown>"


def evaluate_rows(prob: np.ndarray, rows: EncodedRows, scenario_names: tuple[str, ...]) -> Metrics:
    """AUC and LogLoss overall and per scenario (with sample and positive counts), and the mean of the
    scenarios' AUCs."""
    overall_auc, per, mean = metrics.scenario_aucs(rows.label, prob, rows.scenario)
    by = {}
    for s, auc in per.items():
        m = rows.scenario == s
        by[_name(scenario_names, s)] = ScenarioMetrics(auc=auc, logloss=metrics.logloss(rows.label[m], prob[m]),
                                                       n=int(m.sum()), positives=int(rows.label[m].sum()))
    overall = ScenarioMetrics(auc=overall_auc, logloss=metrics.logloss(rows.label, prob), n=len(rows),
                              positives=int(rows.label.sum()), mean_scenario_auc=mean)
    return Metrics(overall=overall, by_scenario=by)


def pointwise_metrics(prob: np.ndarray, rows: EncodedRows, scenario_names: tuple[str, ...]) -> Metrics:
    """`evaluate_rows` plus gAUC (with the users used and left out) and ECE, overall and per scenario."""

    def more(block: ScenarioMetrics, m: np.ndarray) -> ScenarioMetrics:
        g, used, excluded = metrics.gauc(rows.label[m], prob[m], rows.user[m])
        return ScenarioMetrics(auc=block.auc, logloss=block.logloss, n=block.n, positives=block.positives,
                               mean_scenario_auc=block.mean_scenario_auc, gauc=g,
                               ece=metrics.ece(rows.label[m], prob[m]), gauc_users=used,
                               gauc_users_excluded_one_class=excluded)

    base = evaluate_rows(prob, rows, scenario_names)
    by = {_name(scenario_names, s): more(base.by_scenario[_name(scenario_names, s)], rows.scenario == s)
          for s in np.unique(rows.scenario)}
    return Metrics(overall=more(base.overall, np.ones(len(rows), dtype=bool)), by_scenario=by)


def conversion_metrics(click: np.ndarray, cvr: np.ndarray, rows: EncodedRows, scenario_names: tuple[str, ...]
                       ) -> ConversionMetrics:
    """The second task's metrics, overall and per scenario, on the rows whose conversion is known: CVR AUC
    (p(conversion | click) on the clicked rows, against conversion) and CTCVR AUC and LogLoss (p(click) *
    p(conversion | click) on every row, against click and conversion), with the counts."""
    known = ~np.isnan(rows.conversion)

    def block(m: np.ndarray) -> ConversionScores:
        m = m & known
        target = rows.label[m] * rows.conversion[m]
        p = click[m] * cvr[m]
        cvr_auc, ctcvr_auc = metrics.conversion_aucs(rows.label[m], rows.conversion[m], click[m], cvr[m])
        return ConversionScores(cvr_auc=cvr_auc, ctcvr_auc=ctcvr_auc,
                                ctcvr_logloss=metrics.logloss(target, p) if m.any() else float("nan"),
                                n=int(m.sum()), clicks=int((rows.label[m] > 0).sum()), conversions=int(target.sum()))

    by = {_name(scenario_names, s): block(rows.scenario == s) for s in np.unique(rows.scenario)}
    return ConversionMetrics(overall=block(np.ones(len(rows), dtype=bool)), by_scenario=by)
