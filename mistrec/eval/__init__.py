"""Evaluation: per-scenario metrics of a run, full-catalogue ranking, benchmarks over models and seeds, reports;
typed results (mistrec.eval.results) that read and write the JSON of DESIGN.md section 5."""

from mistrec.eval.benchmark import BenchmarkConfig, benchmark_document, run_benchmark, summarise
from mistrec.eval.evaluate import attention_transfer_matrix, evaluate_run, write_json
from mistrec.eval.fit import fit_run
from mistrec.eval.pointwise import conversion_metrics, evaluate_rows, pointwise_metrics
from mistrec.eval.ranking import RankingResult, rank_full_catalogue
from mistrec.eval.report import render_report, write_report
from mistrec.eval.results import (
    ActivityMetrics,
    BenchmarkResult,
    ConversionMetrics,
    ConversionScores,
    Evaluation,
    Metrics,
    RunResult,
    ScenarioMetrics,
)

__all__ = ["ActivityMetrics", "BenchmarkConfig", "BenchmarkResult", "ConversionMetrics", "ConversionScores",
           "Evaluation", "Metrics", "RankingResult", "RunResult", "ScenarioMetrics", "attention_transfer_matrix",
           "benchmark_document", "conversion_metrics", "evaluate_rows", "evaluate_run", "fit_run", "pointwise_metrics",
           "rank_full_catalogue", "render_report", "run_benchmark", "summarise", "write_json", "write_report"]
