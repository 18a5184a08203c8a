"""`mistrec benchmark`: every model on the same prepared split and seeds, summarised with uncertainty.

Each (model, seed) run is trained and evaluated in a fresh Python process (`mistrec train`, then
`mistrec evaluate`), so its time and peak memory are its own, and a crash ends that run only. Runs live in
WORK/MODEL/seed-N; a run with `eval.json` is finished and never retrained, a run with `run.json` only is
evaluated, anything else there is removed and trained again: a killed benchmark continues where it stopped.

The summary (all from the runs' JSON and saved test predictions):
- mean and std over seeds of every metric, per model, overall and per scenario;
- the best model per scenario (highest mean AUC), and a paired comparison of it with every other model: a
  bootstrap over test users of the AUC difference on the same rows (the mean over seeds of the per-seed
  differences, one resample for all seeds), and with 2 or more seeds a paired t-test on the per-seed AUCs;
- the transfer gain of every model in every scenario: its AUC minus that of the isolated single-scenario
  model (`isolated_dnn`) on the same split, with its bootstrap p-value; a negative gain is flagged as
  negative transfer.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from mistrec import metrics
from mistrec.data.prepared import PreparedDataset
from mistrec.errors import ConfigError
from mistrec.eval.activity import ACTIVITY_GROUPS
from mistrec.eval.results import ActivityMetrics, BenchmarkResult, Evaluation, Metrics, RunResult, nan_to_none

__all__ = ["BenchmarkConfig", "activity_summary", "benchmark_document", "compare_in_group", "load_per_query_files",
           "load_prediction_files", "run_benchmark", "summarise", "validate_configs"]

ISOLATED = "isolated_dnn"


@dataclass
class BenchmarkConfig:
    """What `mistrec benchmark` runs: models, seeds, the work directory, the train settings and model configs
    (validated before the first run), threads, ranking options, bootstrap resamples and experiment tracking."""

    models: list[str]
    seeds: list[int]
    work_dir: Path
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig values for every model
    model_configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # model name -> config values
    threads: int = 2
    ranking: bool = True
    ks: tuple[int, ...] = (10, 20)
    also_sampled: int | None = None  # also rank against N sampled negatives per query (evaluate --also-sampled)
    max_queries: int | None = None  # rank a seeded sample of queries per scenario (evaluate --max-queries)
    n_boot: int = 1000
    tracking: tuple[str, ...] = ()  # "mlflow", "tensorboard"


def validate_configs(cfg: BenchmarkConfig) -> None:
    """Parses the train settings and every model's config as the runs will, before the first run starts: a
    misspelt key or a wrong type stops the benchmark here, naming it, instead of failing every run one by one."""
    from mistrec.config import parse_config
    from mistrec.models.registry import model_config
    from mistrec.train import TrainConfig

    parse_config(TrainConfig, dict(cfg.train), "the benchmark's train settings")
    for name in cfg.models:
        model_config(name, cfg.model_configs.get(name))


def run_benchmark(data: str | Path, cfg: BenchmarkConfig, log: Any = print, progress: bool = False
                  ) -> BenchmarkResult:
    """Trains and evaluates every (model, seed) not finished yet in cfg.work_dir, then summarises them all;
    `progress`: a bar over the runs on a terminal (none in logs)."""
    from mistrec.models import REGISTRY

    unknown = [m for m in cfg.models if m not in REGISTRY]
    if unknown:
        raise ConfigError(f"Unknown model(s) {', '.join(unknown)}. Known models: {', '.join(sorted(REGISTRY))}.")
    if not cfg.seeds:
        raise ConfigError("A benchmark needs at least one seed.")
    unused = sorted(set(cfg.model_configs) - set(cfg.models))
    if unused:
        raise ConfigError(f"The config has a section for {', '.join(unused)}, which is not in --models.")
    validate_configs(cfg)
    data = Path(data).resolve()
    ds = PreparedDataset.load(data)  # fails early, with the reason, on a bad directory
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    _check_work(work, ds.manifest["fingerprint"], {"train": cfg.train, "model_configs": cfg.model_configs,
                                                   "ranking": cfg.ranking, "ks": list(cfg.ks),
                                                   **_ranking_options(cfg)})
    load_before = os.getloadavg()
    runs: list[RunResult] = []
    todo = [(m, s) for m in cfg.models for s in cfg.seeds]
    bar = tqdm(todo, desc="benchmark", unit="run", disable=None if progress else True, leave=False)
    for i, (model, seed) in enumerate(bar, start=1):
        run_dir = work / model / f"seed-{seed}"
        label = f"[{i}/{len(todo)}] {model} seed {seed}"
        if (run_dir / "eval.json").is_file():
            log(f"{label}: finished before, kept")
        else:
            started = time.perf_counter()
            log(f"{label}: running (logs: {work / model / f'seed-{seed}.train.log'}, .eval.log)")
            error = _train_and_evaluate(data, run_dir, model, seed, cfg, work)
            if error:
                log(f"{label}: FAILED: {error}")
                runs.append(RunResult(model=model, seed=seed, error=error, run_dir=str(run_dir)))
                continue
            log(f"{label}: done in {time.perf_counter() - started:.0f} s")
        run = Evaluation.from_json(json.loads((run_dir / "eval.json").read_text())).run
        runs.append(run)
        if cfg.tracking:
            from mistrec.eval.tracking import log_run

            log_run(run, run_dir, cfg.tracking, work, ds.manifest["name"])
    return benchmark_document(ds, runs, cfg, load_before)


def benchmark_document(ds: PreparedDataset, runs: list[RunResult], cfg: BenchmarkConfig,
                       load_before: tuple[float, ...] | None = None) -> BenchmarkResult:
    """The benchmark document (DESIGN.md section 5, plus the summary and the data summary) from evaluated runs."""
    from mistrec import __version__

    return BenchmarkResult(
        mistrec_version=__version__, dataset={"name": ds.manifest["name"], "fingerprint": ds.manifest["fingerprint"],
                                              "path": str(Path(ds.path).resolve())},
        protocol=ds.manifest["protocol"]["name"], protocol_detail=ds.manifest["protocol"], models=cfg.models,
        seeds=cfg.seeds, threads=cfg.threads, load_average_before=None if load_before is None else list(load_before),
        load_average_after=list(os.getloadavg()), train_config=cfg.train, model_configs=cfg.model_configs,
        runs=tuple(runs), summary=summarise(runs, cfg.n_boot), data_summary=_data_summary(ds.manifest))


def _check_work(work: Path, fingerprint: str, settings: dict[str, Any]) -> None:
    """A work directory holds runs of one prepared dataset and one set of training and evaluation settings:
    resuming with others would mix runs that are not comparable."""
    stamp = work / "benchmark-settings.json"
    current = {"fingerprint": fingerprint, **json.loads(json.dumps(settings))}
    if stamp.is_file():
        before = json.loads(stamp.read_text())
        if before.get("fingerprint") != fingerprint:
            raise ConfigError(f"{work} holds runs on another prepared dataset (fingerprint "
                              f"{before.get('fingerprint')}); use another --work directory, or remove it to start "
                              "over.")
        changed = sorted(k for k in current if before.get(k) != current[k])
        if changed:
            raise ConfigError(f"{work} holds runs made with other settings ({', '.join(changed)}: "
                              f"{', '.join(f'{k}={before.get(k)!r}' for k in changed)}); use the same settings to "
                              "resume, another --work directory, or remove it to start over.")
    else:
        stamp.write_text(json.dumps(current, indent=2) + "\n")


def _ranking_options(cfg: BenchmarkConfig) -> dict[str, int]:
    """The ranking options a work directory's runs were evaluated with, when set (older settings lack them)."""
    return {k: v for k, v in (("also_sampled", cfg.also_sampled), ("max_queries", cfg.max_queries)) if v is not None}


def _train_and_evaluate(data: Path, run_dir: Path, model: str, seed: int, cfg: BenchmarkConfig,
                        work: Path) -> str | None:
    """Runs `mistrec train` and `mistrec evaluate` in fresh processes; returns an error line or None."""
    if run_dir.exists() and not (run_dir / "run.json").is_file():
        shutil.rmtree(run_dir)  # a run killed while training: start it again
    cli = [sys.executable, "-m", "mistrec"]
    if not (run_dir / "run.json").is_file():
        config = work / f"config-{model}.yaml"
        config.write_text(yaml.safe_dump({"model": cfg.model_configs.get(model, {}), "train": cfg.train}))
        cmd = [*cli, "train", str(data), "--model", model, "--out", str(run_dir), "--seed", str(seed), "--quiet",
               "--threads", str(cfg.threads), "--config", str(config)]
        error = _call(cmd, run_dir.parent / f"seed-{seed}.train.log")
        if error:
            return error
    cmd = [*cli, "evaluate", str(run_dir), "--data", str(data), "--json", str(run_dir / "eval.json.part"), "--quiet",
           "--threads", str(cfg.threads), "--k", ",".join(map(str, cfg.ks))]
    if not cfg.ranking:
        cmd.append("--no-ranking")
    for flag, value in (("--also-sampled", cfg.also_sampled), ("--max-queries", cfg.max_queries)):
        if cfg.ranking and value is not None:
            cmd += [flag, str(value)]
    error = _call(cmd, run_dir.parent / f"seed-{seed}.eval.log")
    if error:
        return error
    (run_dir / "eval.json.part").rename(run_dir / "eval.json")  # written whole, or not at all
    return None


def _call(cmd: list[str], log_path: Path) -> str | None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode == 0:
        return None
    lines = [ln for ln in log_path.read_text().splitlines() if ln.strip()]
    return f"exit {proc.returncode}: {lines[-1] if lines else 'no output'} (log: {log_path})"


# -- summary ------------------------------------------------------------------------------------------------

def summarise(runs: list[RunResult], n_boot: int = 1000) -> dict[str, Any]:
    """Mean +- std per model and scenario, best model per scenario, paired tests, transfer gains."""
    ok = [r for r in runs if r.ok]
    models = list(dict.fromkeys(r.model for r in ok))
    scenarios = list(dict.fromkeys(s for r in ok for s in _metrics(r).by_scenario))
    by_model: dict[str, Any] = {}
    for m in models:
        mine = [r for r in ok if r.model == m]
        by_model[m] = {"seeds": [r.seed for r in mine],
                       "overall": _mean_std([_json(_metrics(r).overall) for r in mine]),
                       "by_scenario": {s: _mean_std([_json(_metrics(r).by_scenario[s]) for r in mine
                                                     if s in _metrics(r).by_scenario]) for s in scenarios},
                       "train_seconds": _stat([r.train_seconds for r in mine]),
                       "train_samples_per_second": _stat([r.train_samples_per_second for r in mine]),
                       "peak_rss_mb": _stat([r.peak_rss_mb for r in mine])}
        conv = [c for r in mine if (c := _metrics(r).conversion) is not None]
        if conv:  # the second task (models with a conversion head, on data with conversions)
            by_model[m]["conversion"] = {
                "overall": _mean_std([_json(c.overall) for c in conv]),
                "by_scenario": {s: _mean_std([_json(c.by_scenario[s]) for c in conv if s in c.by_scenario])
                                for s in scenarios}}
    best: dict[str, str] = {}
    for s in [*scenarios, "overall"]:
        cands = [((by_model[m]["overall"] if s == "overall" else by_model[m]["by_scenario"][s]).get("auc", {})
                  .get("mean"), m) for m in models]
        cands = [(v, m) for v, m in cands if v is not None and not math.isnan(v)]
        if cands:
            best[s] = max(cands)[1]
    predictions = load_prediction_files(ok)
    done: dict[tuple[str, str, str], dict[str, Any]] = {}

    def paired(a: str, b: str, s: str) -> dict[str, Any]:  # best vs isolated is asked for twice: test once
        if (a, b, s) not in done:
            done[(a, b, s)] = _paired(a, b, s, ok, predictions, n_boot)
        return done[(a, b, s)]

    tests: dict[str, Any] = {}
    gains: dict[str, Any] = {}
    for s in scenarios:
        if s not in best:
            continue
        tests[s] = {m: paired(best[s], m, s) for m in models if m != best[s]}
    if ISOLATED in models:
        for m in models:
            if m == ISOLATED:
                continue
            gains[m] = {}
            for s in scenarios:
                a = by_model[m]["by_scenario"][s].get("auc", {}).get("mean")
                b = by_model[ISOLATED]["by_scenario"][s].get("auc", {}).get("mean")
                if a is None or b is None or math.isnan(a) or math.isnan(b):
                    continue
                test = paired(m, ISOLATED, s)
                p_value = test.get("bootstrap", {}).get("p_value")
                gains[m][s] = {"auc_gain": a - b, "negative_transfer": bool(a - b < 0), "p_value": p_value,
                               "significant": p_value is not None and p_value < 0.05}
    out: dict[str, Any] = {"by_model": by_model, "best": best, "paired_tests": tests, "transfer_gain": gains,
                           "failed_runs": [{"model": r.model, "seed": r.seed, "error": r.error}
                                           for r in runs if r.error is not None]}
    if ISOLATED not in models:
        out["transfer_gain_note"] = f"no transfer gain: add {ISOLATED} to --models to measure it"
    out["by_activity"] = activity_summary(ok, predictions, n_boot)
    return out


def activity_summary(runs: list[RunResult], predictions: dict[tuple[str, int], dict[str, np.ndarray]],
                     n_boot: int = 1000) -> dict[str, Any]:
    """Results by the user's activity in the scenario (mistrec.eval.activity), from evaluated runs:

    - `by_model[M][S][G]`: mean and std over seeds of every metric in scenario S and activity group G (S also
      "overall");
    - `best[S][G]`: the model with the highest mean AUC there, and `paired[S][G][M]`: it against M;
    - `transfer_gain[M][S][G]`: M against the isolated model.
    Each comparison holds `auc` (bootstrap over users of the AUC difference on the group's rows, as the
    per-scenario tests) and, with ranking metrics, `ndcg@K` (bootstrap over users of the mean per-query NDCG@K
    difference), from the runs' saved predictions and per-query ranking metrics, on the seeds both models have.
    """
    with_groups = [r for r in runs if r.ok and _metrics(r).by_activity is not None]
    if not with_groups:
        return {}
    groups = _groups(with_groups)
    models = list(dict.fromkeys(r.model for r in with_groups))
    scenarios = [*dict.fromkeys(s for r in with_groups for s in _activity(r).by_scenario), "overall"]

    def blocks(m: str, s: str, g: str) -> list[dict[str, Any]]:
        out = []
        for r in with_groups:
            if r.model != m:
                continue
            by = _activity(r)
            block = (by.overall if s == "overall" else by.by_scenario.get(s, {})).get(g)
            if block is not None:
                out.append(_json(block))
        return out

    by_model = {m: {s: {g: _mean_std(b) for g in groups if (b := blocks(m, s, g))} for s in scenarios}
                for m in models}
    ndcg = next((k for k in ("ndcg@10", "ndcg@20", "ndcg@5") if any(
        k in v for m in by_model.values() for by in m.values() for v in by.values())), None)
    per_query = load_per_query_files(with_groups)

    def compare(a: str, b: str, s: str, g: str) -> dict[str, Any]:
        return compare_in_group(with_groups, predictions, per_query, a, b, s, g, ndcg, n_boot)

    best: dict[str, dict[str, str]] = {}
    paired: dict[str, dict[str, Any]] = {}
    gains: dict[str, Any] = {}
    for s in scenarios:
        for g in groups:
            cands = [(by_model[m][s][g]["auc"]["mean"], m) for m in models
                     if g in by_model[m][s] and "auc" in by_model[m][s][g]
                     and not math.isnan(by_model[m][s][g]["auc"]["mean"])]
            if not cands:
                continue
            top = max(cands)[1]
            best.setdefault(s, {})[g] = top
            paired.setdefault(s, {})[g] = {m: compare(top, m, s, g) for _, m in cands if m != top}
            if ISOLATED in models and g in by_model[ISOLATED][s]:
                for m in models:
                    if m == ISOLATED or g not in by_model[m][s]:
                        continue
                    test = compare(m, ISOLATED, s, g)
                    entry = {k: by_model[m][s][g][k]["mean"] - by_model[ISOLATED][s][g][k]["mean"]
                             for k in ("auc", ndcg) if k and k in by_model[m][s][g] and k in by_model[ISOLATED][s][g]}
                    gains.setdefault(m, {}).setdefault(s, {})[g] = {
                        **{f"{k}_gain": v for k, v in entry.items()},
                        **{f"{k}_p_value": test[k]["p_value"] for k in ("auc", ndcg) if k and k in test}}
    return {"groups": list(groups), "ndcg_metric": ndcg, "by_model": by_model, "best": best, "paired": paired,
            "transfer_gain": gains}


def compare_in_group(runs: list[RunResult], predictions: dict[tuple[str, int], dict[str, np.ndarray]],
                     per_query: dict[tuple[str, int], dict[str, dict[str, dict[str, np.ndarray]]]], a: str, b: str,
                     scenario: str, group: str | None, ndcg: str | None, n_boot: int = 1000,
                     view: str = "full catalogue") -> dict[str, Any]:
    """Model a against model b on the rows (and queries) of one scenario ("overall": all) and activity group (None:
    every group), on the seeds both have: `auc` a bootstrap over users of the AUC difference on the same rows,
    `ndcg` (the metric named, e.g. "ndcg@10") a bootstrap over users of the mean per-query difference in the
    candidate set `view`. A comparison that the saved files cannot support (rows that differ, one class only) is
    left out."""
    groups = _groups([r for r in runs if r.ok and _metrics(r).by_activity is not None])
    names = next((r.scenario_names for r in runs if r.model == a), None) or []
    seeds = _common_seeds(runs, a, b)
    result: dict[str, Any] = {"seeds": seeds}
    pa = [predictions.get((a, x)) for x in seeds]
    pb = [predictions.get((b, x)) for x in seeds]
    if seeds and all(p is not None and "group" in p for p in pa + pb):
        first = pa[0]
        assert first is not None
        rows = first["group"] == groups.index(group) if group is not None else np.ones(len(first["group"]), bool)
        if scenario != "overall":
            rows &= first["scenario"] == (names.index(scenario) + 1 if scenario in names else -1)
        same = all(np.array_equal(p["user"], first["user"]) and np.array_equal(p["label"], first["label"])
                   for p in pa + pb if p is not None)
        if same and rows.any() and len(np.unique(first["label"][rows])) == 2:
            result["auc"] = metrics.paired_bootstrap(
                first["label"][rows], np.stack([p["prob"][rows] for p in pa if p is not None]),
                np.stack([p["prob"][rows] for p in pb if p is not None]), first["user"][rows], n_boot=n_boot)
    qa = [per_query.get((a, x)) for x in seeds]
    qb = [per_query.get((b, x)) for x in seeds]
    if ndcg and seeds and all(q is not None for q in qa + qb):
        picked = [_queries(q, scenario, None if group is None else groups.index(group), ndcg, view)
                  for q in qa + qb if q is not None]
        users = picked[0][0]
        if len(users) and all(np.array_equal(u, users) for u, _ in picked):
            k = len(seeds)
            result[ndcg] = metrics.paired_bootstrap_mean(np.stack([v for _, v in picked[:k]]),
                                                         np.stack([v for _, v in picked[k:]]), users, n_boot=n_boot)
    return result


def _queries(per_query: dict[str, dict[str, dict[str, np.ndarray]]], scenario: str, group: int | None, metric: str,
             view: str = "full catalogue") -> tuple[np.ndarray, np.ndarray]:
    """The (user, metric) arrays of one run's queries (candidate set `view`) in a scenario (or every scenario) and
    group (None: all). A user's queries in several scenarios share the user: a bootstrap over users resamples them
    together."""
    by = per_query.get(view, {})
    parts = [q for s, q in by.items() if scenario in ("overall", s)]
    keep = [np.ones(len(q["user"]), bool) if group is None else q["group"] == group for q in parts]
    users = [q["user"][k] for q, k in zip(parts, keep, strict=True)]
    values = [q[metric][k] for q, k in zip(parts, keep, strict=True)]
    if not users:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate(users), np.concatenate(values)


PerQuery = dict[str, dict[str, dict[str, np.ndarray]]]  # candidate set -> scenario -> field -> (queries,)


def load_per_query_files(runs: list[RunResult]) -> dict[tuple[str, int], PerQuery]:
    """Each run's per-query ranking metrics (`ranking_<split>.npz`), by (model, seed)."""
    from mistrec.eval.evaluate import load_per_query

    out = {}
    for r in runs:
        path = Path(r.run_dir or "") / f"ranking_{r.split or 'test'}.npz"
        if path.is_file():
            out[(r.model, r.seed)] = load_per_query(path)
    return out


def _stat(values: list[Any]) -> dict[str, float]:
    v = np.array([x for x in values if isinstance(x, int | float) and not math.isnan(float(x))], dtype=np.float64)
    if v.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}


def _mean_std(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in dict.fromkeys(k for b in blocks for k in b) if all(
        isinstance(b.get(k), int | float) and not isinstance(b.get(k), bool) for b in blocks)]
    return {k: _stat([b.get(k) for b in blocks]) for k in keys}


def load_prediction_files(runs: list[RunResult]) -> dict[tuple[str, int], dict[str, np.ndarray]]:
    """Each run's saved predictions (`predictions_<split>.npz`), by (model, seed)."""
    out = {}
    for r in runs:
        path = Path(r.run_dir or "") / f"predictions_{r.split or 'test'}.npz"
        if path.is_file():
            with np.load(path) as z:
                out[(r.model, r.seed)] = {k: z[k] for k in z.files}
    return out


def _json(block: Any) -> dict[str, Any]:
    """A metrics block as its file has it (null for NaN): what the summary's means are taken over."""
    return nan_to_none(block.to_json())


def _metrics(run: RunResult) -> Metrics:
    assert run.metrics is not None, f"{run.model} seed {run.seed} has no metrics: {run.error}"
    return run.metrics


def _activity(run: RunResult) -> ActivityMetrics:
    by = _metrics(run).by_activity
    assert by is not None
    return by


def _groups(runs: list[RunResult]) -> tuple[str, ...]:
    """The activity groups of the first run that has them (every run of a benchmark has the same)."""
    groups = next(_activity(r).groups for r in runs)
    return tuple(groups or ACTIVITY_GROUPS)


def _common_seeds(runs: list[RunResult], a: str, b: str) -> list[int]:
    return sorted({r.seed for r in runs if r.model == a} & {r.seed for r in runs if r.model == b})


def _paired(a: str, b: str, scenario: str, runs: list[RunResult],
            predictions: dict[tuple[str, int], dict[str, np.ndarray]], n_boot: int) -> dict[str, Any]:
    """Model a against model b in one scenario, on the seeds both have."""
    from scipy import stats

    seeds = _common_seeds(runs, a, b)
    result: dict[str, Any] = {"seeds": seeds}
    auc_of = {(r.model, r.seed): _auc_in(r, scenario) for r in runs}
    da = [auc_of[(a, s)] for s in seeds]
    db = [auc_of[(b, s)] for s in seeds]
    if len(seeds) >= 2 and None not in da and None not in db:
        diff = np.array(da) - np.array(db)
        p = float(stats.ttest_rel(da, db).pvalue) if np.std(diff) > 0 else (1.0 if diff.mean() == 0 else 0.0)
        result["seed_t_test"] = {"mean_diff": float(diff.mean()), "p_value": p}
    pairs = [(predictions.get((a, s)), predictions.get((b, s))) for s in seeds]
    names = next((r.scenario_names for r in runs if r.model == a), None) or []
    if seeds and scenario in names and all(pa is not None and pb is not None for pa, pb in pairs):
        first = pairs[0][0]
        assert first is not None
        rows = first["scenario"] == names.index(scenario) + 1  # saved arrays hold the dataset's 1-based index
        same = all(np.array_equal(p["user"], first["user"]) and np.array_equal(p["label"], first["label"])
                   for pair in pairs for p in pair if p is not None)
        if not same:
            result["bootstrap_note"] = "the runs' test rows differ: no row-by-row comparison"
        elif rows.any():
            score_a = np.stack([pa["prob"][rows] for pa, _ in pairs if pa is not None])
            score_b = np.stack([pb["prob"][rows] for _, pb in pairs if pb is not None])
            result["bootstrap"] = metrics.paired_bootstrap(first["label"][rows], score_a, score_b,
                                                           first["user"][rows], n_boot=n_boot)
    return result


def _auc_in(run: RunResult, scenario: str) -> float | None:
    """A run's AUC in a scenario; None where the scenario has no rows or no AUC (one class only)."""
    block = _metrics(run).by_scenario.get(scenario)
    return None if block is None or block.auc is None or math.isnan(block.auc) else block.auc


def _data_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    return {"name": manifest["name"], "scenarios": manifest["scenarios"], "protocol": manifest["protocol"],
            "after_cleaning": manifest["counts"]["after_cleaning"], "by_split": manifest["counts"]["by_split"],
            "history": manifest["history"], "notes": manifest.get("notes", [])}

