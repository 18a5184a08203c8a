"""Evaluation: per-scenario metrics of a run, full-catalogue ranking, benchmarks over models and seeds, reports."""

from mistrec.eval.benchmark import BenchmarkConfig, benchmark_document, run_benchmark, summarise
from mistrec.eval.evaluate import attention_transfer_matrix, evaluate_run, pointwise_metrics, write_json
from mistrec.eval.ranking import RankingResult, rank_full_catalogue
from mistrec.eval.report import render_report, write_report

__all__ = ["BenchmarkConfig", "RankingResult", "attention_transfer_matrix", "benchmark_document", "evaluate_run",
           "pointwise_metrics", "rank_full_catalogue", "render_report", "run_benchmark", "summarise", "write_json",
           "write_report"]
