"""Helpers shared by the benchmark scripts: timed child processes with their own peak RSS, and context
(load average, threads, versions) recorded next to every timing."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MISTREC_SHARED_DATA", REPO.parent / "shared" / "data"))
THREADS = os.environ.get("MISTREC_BENCH_THREADS", "2")  # 1 when two benchmarks share the 2 cores


def thread_env() -> dict[str, str]:
    """Thread counts set explicitly: on a 2-core box another job's threads distort timings badly."""
    env = dict(os.environ)
    env.update({"POLARS_MAX_THREADS": THREADS, "OMP_NUM_THREADS": THREADS, "MKL_NUM_THREADS": THREADS,
                "OPENBLAS_NUM_THREADS": THREADS})
    return env


# Run in a fresh interpreter between this process and the command: a child's peak RSS (ru_maxrss) counts the
# memory it had before its exec, and a child forked from a large process (this one, after generating 10M rows)
# starts with that process's peak: a 2 GB parent gave `python -c pass` a peak of 1,934 MB against 26 MB.
_LAUNCH = """import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "wall": time.perf_counter() - start,
                  "maxrss_kb": usage.ru_maxrss}))
"""


def timed_child(argv: list[str]) -> dict[str, float]:
    """Runs one command; returns its wall time and its own peak RSS (from wait4 in a small launcher process, so that
    neither this process's memory nor a parent's peak is counted)."""
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCH, *argv], env=thread_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = proc.communicate()
    if proc.returncode != 0 or not out.strip():
        raise SystemExit(f"benchmark command failed ({' '.join(argv)}):\n{err.decode()}")
    done = json.loads(out.decode().strip().splitlines()[-1])
    if done["code"] != 0:
        raise SystemExit(f"benchmark command failed ({' '.join(argv)}):\n{err.decode()}")
    return {"wall_seconds": round(done["wall"], 3), "peak_rss_mb": round(done["maxrss_kb"] / 1024, 1)}


class PeakRss:
    """This process's resident memory (MB) and its peak since the last `reset`, sampled by a daemon thread every
    `every` seconds (psutil)."""

    def __init__(self, every: float = 0.2) -> None:
        import threading

        import psutil

        self._proc, self._every = psutil.Process(), every
        self.peak = self.now()
        threading.Thread(target=self._poll, daemon=True).start()

    def now(self) -> float:
        return float(self._proc.memory_info().rss) / 2**20

    def reset(self) -> float:
        """Starts a new peak from the memory now; returns it."""
        self.peak = self.now()
        return self.peak

    def final(self) -> float:
        """The peak, with one last sample."""
        self.peak = max(self.peak, self.now())
        return self.peak

    def _poll(self) -> None:
        while True:
            self.peak = max(self.peak, self.now())
            time.sleep(self._every)


def context() -> dict[str, Any]:
    import polars

    return {
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "threads": int(THREADS),
        "python": sys.version.split()[0],
        "polars": polars.__version__,
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    """Writes a benchmark result as strict JSON (an undefined figure, such as the AUC of a group with one class, is
    null, not NaN), creating its folder."""
    from mistrec.train.artifact import json_text

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json_text(doc))


# the choices among a saved run's `result.selected` figures: every `chosen`, `form` and `kept` (prior_tilt_guard's)
CHOICE_KEYS = ("chosen", "form", "kept")


def flat(value: Any, path: str = "") -> dict[str, Any]:
    """A nested dict as {"a.b.c": leaf}."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flat(inner, f"{path}.{key}" if path else str(key)))
        return out
    return {path: value}


def run_choices(run_dir: str | Path) -> dict[str, Any]:
    """A saved run's after-training choices (run.json's `result.selected`, flattened, the CHOICE_KEYS only)."""
    selected = flat(json.loads((Path(run_dir) / "run.json").read_text())["result"].get("selected", {}))
    return {k: v for k, v in selected.items() if k.rsplit(".", 1)[-1] in CHOICE_KEYS}


def run_benchmark_cli(cmd: list[str], json_path: str | Path) -> int:
    """Runs a `mistrec benchmark` command (with the explicit thread counts) and records the machine's context
    next to its figures in the JSON it wrote; returns its exit code."""
    import json

    code = subprocess.run(cmd, env=thread_env(), check=False).returncode
    if Path(json_path).is_file():
        doc = json.loads(Path(json_path).read_text())
        doc["context"] = context()
        write_json(json_path, doc)
    return code


def prepared_ml1m(work: Path, recipe: str, data: Path) -> Path:
    """MovieLens-1M prepared under work/ml-1m-RECIPE/prepared (once; later calls reuse it): age groups with the
    random 8:1:1 split (seed 2022, the published benchmarks' setting), genre shelves with the temporal protocol;
    L = 50."""
    from mistrec.data import ProtocolConfig, load_dataset_config, prepare
    from mistrec.data.recipes import write_recipe

    root = work / f"ml-1m-{recipe}"
    prepared = root / "prepared"
    if not (prepared / "manifest.json").is_file():
        cfg = write_recipe(f"ml-1m-{recipe}", data, root / "dataset.yaml")
        protocol = ProtocolConfig(name="random", seed=2022) if recipe == "age" else ProtocolConfig(name="temporal")
        prepare(load_dataset_config(cfg), prepared, protocol=protocol, history_length=50)
    return prepared


def auc_or_nan(label: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(label, p)) if 0 < label.sum() < len(label) else float("nan")


def paired_auc_over_users(a: dict[str, Any], b: dict[str, Any], mask: np.ndarray, seed: int, n_boot: int = 1000
                          ) -> dict[str, Any]:
    """AUC(a) - AUC(b) over the rows in `mask` (the same rows in both), with a bootstrap over users: `a` and `b` are
    dicts of per-row arrays ('p', 'label', 'user') of the same rows in the same order."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(mask)
    order = idx[np.argsort(a["user"][idx], kind="stable")]
    users, starts = np.unique(a["user"][order], return_index=True)
    by_user = np.split(order, starts[1:])
    diffs = []
    for _ in range(n_boot):
        pick = np.concatenate([by_user[j] for j in rng.integers(0, len(users), size=len(users))])
        y = a["label"][pick]
        if 0 < y.sum() < len(y):
            diffs.append(roc_auc_score(y, a["p"][pick]) - roc_auc_score(y, b["p"][pick]))
    d = np.asarray(diffs)
    return {"gain": auc_or_nan(a["label"][mask], a["p"][mask]) - auc_or_nan(b["label"][mask], b["p"][mask]),
            "ci95": [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))],
            "p_value": float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean()))), "users": len(users)}


def mist_test_scores(prepared: Path, run: Path, epochs: int, seed: int,
                     model_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """Trains mist on `prepared` into `run` (once: a finished run is reused; the defaults but epochs, seed and
    `model_values`) and
    returns its test rows' click probabilities with what figures group them by: label, user, scenario (indices),
    whether the item has no training row (`new_item`), the user's training events in the row's scenario before it
    (`activity`), the scenario names and the training seconds (0 when reused)."""
    from mistrec.data.prepared import PreparedDataset
    from mistrec.eval.fit import fit_run
    from mistrec.train import TrainConfig
    from mistrec.train.artifact import load_run
    from mistrec.train.loop import predict

    t0 = time.perf_counter()
    if not (run / "metrics.json").is_file():
        fit_run(prepared, "mist", run, model_values=model_values, train_cfg=TrainConfig(epochs=epochs, seed=seed),
                quiet=True, force=True)
    seconds = time.perf_counter() - t0
    model, enc, _ = load_run(run)
    ds = PreparedDataset.load(prepared)
    rows = enc.rows(ds, "test")
    trained = ds.vocab["item_id"].filter(ds.vocab["item_id"]["train_count"] > 0)["index"].to_numpy()
    return {"p": predict(model, enc, rows), "label": rows.label, "user": rows.user, "scenario": rows.scenario,
            "new_item": ~np.isin(rows.item, trained),
            "activity": rows.events.counts_before(rows.user, rows.scenario, rows.timestamp),
            "names": ds.scenarios, "seconds": seconds}


def run_dirs_and_seeds(description: str, one: Any, seeds: str = "2022",
                       flags: tuple[tuple[str, dict[str, Any]], ...] = ()) -> int:
    """The main of a probe over benchmarks/transfer.py work directories: --json OUT [--seeds S,S] DIR...; `one(dir,
    seed, **flags)` returns that run's records (`flags`: argparse options, (name, add_argument keywords), handed to
    `one` by their dest); writes {"results": [...], "context"} at THREADS torch threads."""
    import argparse

    import torch

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", default=seeds)
    actions = [ap.add_argument(name, **kw) for name, kw in flags]
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(int(THREADS))
    extra = {a.dest: getattr(args, a.dest) for a in actions}
    results = [r for d in args.dirs for seed in args.seeds.split(",") for r in one(Path(d), int(seed), **extra)]
    write_json(args.json, {"results": results, "context": context()})
    return 0


def ranking_at_10(by_scenario: dict[str, dict[str, Any]], prefix: str = "") -> dict[str, dict[str, float]]:
    """NDCG@10 and HR@10 per scenario of a ranking's metrics (`RankingResult.metrics["by_scenario"]`, or its
    "sampled" block's), the keys prefixed."""
    return {s: {f"{prefix}{k}": float(m[k]) for k in ("ndcg@10", "hr@10")} for s, m in by_scenario.items()}


def mist_choosing(root: Path, seed: int, settings: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """A benchmarks/transfer.py work directory's saved mist run (runs/mist/seed-S), loaded with `co_scale: auto` (and
    `settings`) and in evaluation mode, and its encoder: the weights as trained, the term's weights at 1 until a
    choice is made."""
    from mistrec.models.mist import Mist
    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(root / "runs" / "mist" / f"seed-{seed}", {"co_scale": "auto", **(settings or {})})
    assert isinstance(model, Mist) and model.co_scale is not None, "a mist run with co_items"
    model.eval()
    return model, enc


def train_seconds(root: Path, model: str, seed: int) -> float:
    """A run's training seconds as its benchmark.json recorded them (timed when it was trained, at that load)."""
    runs = json.loads((root / "benchmark.json").read_text())["runs"]
    return float(next(r["train_seconds"] for r in runs if r["model"] == model and r["seed"] == seed))


def parse_settings(text: str | None) -> dict[str, Any] | None:
    """`KEY=VALUE,...` (a script's --settings: model settings a saved run is loaded with), each value read as YAML
    (a list's commas stay in it: `interest_from=[6,21]`); None for None. Raises ValueError on a piece without "="."""
    if text is None:
        return None
    import re

    import yaml

    pairs = [p.split("=", 1) for p in re.split(r",(?=\s*[A-Za-z_]\w*=)", text) if p]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"settings take KEY=VALUE,... Got {text!r}.")
    return {k.strip(): yaml.safe_load(v) for k, v in pairs}


def tried_weights(text: str | None) -> tuple[float, ...] | None:
    """A probe's --weights of mist's `co_items` term (comma-separated, the trained state 1 first) as the tuple a
    model's `ranking_options` returns; None for None. Raises ValueError when 1 is not first."""
    if not text:
        return None
    weights = tuple(float(w) for w in text.split(","))
    if weights[0] != 1.0:
        raise ValueError(f"--weights must start with 1 (the trained state). Got {text!r}.")
    return weights


def co_matrix(model: Any) -> list[list[float]]:
    """mist's learned weights W (S, S) of its `co_items` term, as the term reads them in evaluation."""
    import torch

    with torch.no_grad():
        return [[round(float(x), 4) for x in row] for row in model.co.matrix()]
