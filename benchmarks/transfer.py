"""Transfer where it matters: users who are sparse or new in a scenario, on shared-user data, against the
cross-domain literature (docs/benchmarks.md, "Transfer").

    python benchmarks/transfer.py --json benchmarks/results/transfer.json [--only DATASET:TARGET,...] [--seeds 3]

Datasets (`--only` names them as the JSON does, with the target domain or scenario after the colon):
- amazon-sport_cloth, amazon-sport_phone, amazon-electronic_cloth, amazon-electronic_phone (the DisenCDR pairs in
  ../shared/data/amazon-cdr-disencdr, recipe cdr-pair: every user in both domains, each user's two domains
  interleaved at random, the held-out event of each domain last):
  * cold-user: in each domain a random 20% of the users become cold (disjoint sets), all their rows there held out
    (half of those users validate, half test); everything else is training data (PTUPCDR's protocol, with
    validation users instead of selecting on test). The cold rows come after the user's events in the other domain
    (cold_order "last": the data have no time, and at the recipe's made-up positions a cold row's history would
    hold about half of them, where PTUPCDR's meta network and every model of user ids read all). One run serves
    both directions.
  * warm-full: leave-one-out per user and domain (the last training event validates), every test query ranked
    against the domain's full catalogue minus the user's seen items (a seeded sample of at most --max-queries
    users per domain on the larger pairs).
  * warm-sampled-999: the same runs, the same scores, each held-out item ranked among 999 sampled items the user
    has not interacted with, as the CDR papers do (labelled as sampled: such figures are not full-ranking ones).
- ml-1m-genre: the genre shelves, cold-user protocol on the sparsest shelf (family): 20% of its users cold, the
  rest split in time (so warm users are scored there too).
- synthetic-transfer and synthetic-identity: the transfer platform (docs/synthetic.md) at strength 1 and its
  identity control (strength 0, where nothing can transfer), temporal split; users new in a scenario are its
  activity group 0. Reported as warm-full (every user, full catalogue, split by activity). Generator seed 0;
  `--synthetic-seed N` draws the same platforms again (work directories `...-drawN`) to replicate on.

Every dataset runs `mistrec benchmark` with the same models, seeds and training settings (resumable under --work):
at most 20 epochs of batches of 1,024 at learning rate 3e-3 for every model (the cross-domain models' stages keep
their papers' own), the epoch chosen on the validation rows.
Rows: per (dataset, target, protocol, group, model) the means over seeds of AUC (sampled negatives for the Amazon
pairs, the data's labels elsewhere), NDCG@10 and HR@10, with the users in the group. Paired: mist against the best
other model (by the mean of the metric) in every (dataset, target, protocol, group), bootstrap over users on the
same rows or queries (1,000 resamples, the per-seed differences averaged).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED_DATA, THREADS, context, run_benchmark_cli, write_json

PAIRS = ("sport_cloth", "sport_phone", "electronic_cloth", "electronic_phone")
MODELS = "mist,isolated_dnn,popularity,most_popular,star,din,shared_bottom,emcdr,ptupcdr,bitgcf"
GROUPS = ("0", "1-2", "3-5", "6-20", ">20")
SAMPLED = 999
MAX_QUERIES = 3000  # warm protocols: ranked users per domain (--max-queries)


@dataclass
class Job:
    """One prepared dataset and its benchmark: which rows of the JSON it gives."""

    name: str  # the directory under --work
    dataset: str  # the JSON's dataset
    targets: tuple[str, ...]
    protocols: tuple[str, ...]  # the JSON protocols its runs give ("warm-sampled-999" from the same runs)
    groups: tuple[str, ...]
    planted: dict[str, float] = field(default_factory=dict)  # target -> planted_offdiag (synthetic data)
    sampled: bool = False
    max_queries: int | None = None

    def wanted(self, only: set[tuple[str, str]] | None) -> tuple[str, ...]:
        return tuple(t for t in self.targets if only is None or (self.dataset, t) in only)


def jobs(args: argparse.Namespace) -> list[Job]:
    out = []
    for pair in PAIRS:
        a, _, b = pair.partition("_")
        # "-last": the cold users' rows after their events in the other domain (protocol cold_order "last")
        out.append(Job(f"amazon-{pair}-cold-last", f"amazon-{pair}", (a, b), ("cold-user",), ("all", "0")))
        out.append(Job(f"amazon-{pair}-warm", f"amazon-{pair}", (a, b), ("warm-full", "warm-sampled-999"),
                       ("all", *GROUPS), sampled=True, max_queries=args.max_queries))
    out.append(Job("ml-1m-genre-cold", "ml-1m-genre", ("family",), ("cold-user",), ("all", *GROUPS)))
    from mistrec.data.synthetic import DEFAULT_TRANSFER, SCENARIOS, planted_offdiag

    for name, strength in (("synthetic-transfer", 1.0), ("synthetic-identity", 0.0)):
        t = (1 - strength) * np.eye(len(SCENARIOS)) + strength * DEFAULT_TRANSFER
        draw = f"-draw{args.synthetic_seed}" if args.synthetic_seed else ""  # seed 0: earlier runs' directories
        out.append(Job(f"{name}-{args.synthetic_users}u{draw}", name, SCENARIOS, ("warm-full",), ("all", *GROUPS),
                       planted=dict(zip(SCENARIOS, planted_offdiag(t).tolist(), strict=True))))
    return out


def prepare(job: Job, work: Path, args: argparse.Namespace) -> Path:
    """The job's prepared dataset (made once; later calls reuse it)."""
    from mistrec.data import ProtocolConfig, generate, load_dataset_config
    from mistrec.data import prepare as prepare_data
    from mistrec.data.recipes import write_recipe
    from mistrec.data.synthetic import transfer_platform

    root = work / job.name
    prepared = root / "prepared"
    if (prepared / "manifest.json").is_file():
        return prepared
    if job.dataset.startswith("amazon-"):
        pair = job.dataset.removeprefix("amazon-")
        cfg = load_dataset_config(write_recipe("cdr-pair", Path(args.amazon), root / "dataset.yaml", pair=pair))
        protocol = (ProtocolConfig(name="cold-user", target=",".join(job.targets), cold_fraction=0.2,
                                   cold_rest="train", cold_order="last", seed=2022)
                    if job.protocols == ("cold-user",) else cfg.protocol)
    elif job.dataset == "ml-1m-genre":
        cfg = load_dataset_config(write_recipe("ml-1m-genre", Path(args.ml1m), root / "dataset.yaml"))
        protocol = ProtocolConfig(name="cold-user", target="family", cold_fraction=0.2, seed=2022)
    else:
        strength = 1.0 if job.dataset == "synthetic-transfer" else 0.0
        data = generate(transfer_platform(strength=strength, n_users=args.synthetic_users, seed=args.synthetic_seed))
        cfg = load_dataset_config(data.write(root / "raw"))
        protocol = ProtocolConfig(name="temporal")
    prepare_data(cfg, prepared, protocol=protocol, history_length=50, quiet=True)
    return prepared


def run(job: Job, prepared: Path, work: Path, args: argparse.Namespace) -> Path:
    """`mistrec benchmark` for the job (resumable); returns its JSON."""
    out = work / job.name / "benchmark.json"
    cmd = [sys.executable, "-m", "mistrec", "benchmark", str(prepared), "--force", "--models", args.models, "--seeds",
           str(args.seeds), "--threads", THREADS, "--json", str(out), "--work", str(work / job.name / "runs"),
           "--k", "10", "--quiet"]
    if job.sampled:
        cmd += ["--also-sampled", str(SAMPLED)]
    if job.max_queries:
        cmd += ["--max-queries", str(job.max_queries)]
    cmd += ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--lr", str(args.lr)]
    if args.config:
        cmd += ["--config", args.config]
    code = run_benchmark_cli(cmd, out)
    if code != 0 and not out.is_file():
        raise SystemExit(f"{job.name}: mistrec benchmark failed (exit {code})")
    return out


def rows_and_tests(job: Job, bench: dict[str, Any], targets: tuple[str, ...], n_boot: int, typed: list[Any],
                   predictions: dict[tuple[str, int], dict[str, np.ndarray]]
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The JSON rows of one benchmark, and mist against the best other model in each (target, protocol, group).
    `typed`: the benchmark's runs as the comparisons read them; `predictions`: their saved test predictions."""
    from mistrec.eval.benchmark import compare_in_group, load_per_query_files

    runs = [r for r in bench["runs"] if "metrics" in r]
    models = list(dict.fromkeys(r["model"] for r in runs))
    per_query = load_per_query_files(typed)
    first = next(iter(predictions.values()))
    names = runs[0]["scenario_names"]
    rows, tests = [], []
    for protocol in job.protocols:
        sampled = protocol == "warm-sampled-999"
        view = f"{SAMPLED} sampled negatives" if sampled else "full catalogue"
        for target in targets:
            in_target = first["scenario"] == names.index(target) + 1
            for group in job.groups:
                g = None if group == "all" else group
                mask = in_target if g is None else in_target & (first["group"] == GROUPS.index(g))
                if not mask.any():
                    continue
                means: dict[str, dict[str, float]] = {}
                for m in models:
                    mine = [r for r in runs if r["model"] == m]
                    means[m] = {k: nan_mean([run_metric(r["metrics"], target, g, k, sampled) for r in mine])
                                for k in ("auc", "ndcg@10", "hr@10")}
                    rows.append({"dataset": job.dataset, "target": target, "protocol": protocol, "group": group,
                                 "model": m, "seeds": len(mine), "users": int(np.unique(first["user"][mask]).size),
                                 **means[m], "planted_offdiag": job.planted.get(target)})
                if "mist" not in models:
                    continue
                for metric in ("auc", "ndcg@10"):
                    others = [(v[metric], m) for m, v in means.items() if m != "mist" and not np.isnan(v[metric])]
                    if not others or np.isnan(means["mist"][metric]):
                        continue
                    best = max(others)[1]
                    test = compare_in_group(typed, predictions, per_query, "mist", best, target, g,
                                            "ndcg@10" if metric == "ndcg@10" else None, n_boot, view=view)
                    if metric not in test:
                        continue
                    tests.append({"dataset": job.dataset, "target": target, "protocol": protocol, "group": group,
                                  "metric": metric, "model": "mist", "best_other": best, "seeds": test["seeds"],
                                  **{k: test[metric][k] for k in ("diff", "ci_low", "ci_high", "p_value")}})
    return rows, tests


def seen_items(job: Job, typed: list[Any], predictions: dict[tuple[str, int], dict[str, np.ndarray]],
               prepared: Path, targets: tuple[str, ...], n_boot: int) -> list[dict[str, Any]]:
    """Cold-user AUC on the test rows whose item has a positive in the training rows (`auc_seen`), beside the AUC
    on every row, per (target, model), means over seeds; and mist against the best other model by `auc_seen`
    (paired bootstrap over users). Why: the pairs' held-out events include items that occur nowhere in training
    (the recipe keeps them; DisenCDR's test.txt drops them), such an item is in the sampler's pool only through
    held-out rows, so among the positives it is several times more common than among the sampled negatives, and a
    model that scores an unseen item at a neutral value gains AUC from that alone (docs/benchmarks.md)."""
    import polars as pl

    from mistrec import metrics

    if not predictions:
        return []
    rows = pl.read_parquet(prepared / "interactions.parquet", columns=["item", "label", "split"])
    seen = rows.filter((pl.col("split") == "train") & (pl.col("label") > 0))["item"].unique().to_numpy()
    first = next(iter(predictions.values()))
    names = typed[0].scenario_names or []
    known = np.isin(first["item"], seen)
    models = list(dict.fromkeys(m for m, _ in predictions))
    out = []
    for target in targets:
        in_target = first["scenario"] == names.index(target) + 1
        mask = in_target & known
        pos = in_target & (first["label"] > 0)
        neg = in_target & (first["label"] <= 0)
        shares = {"unseen_share_positives": float((pos & ~known).sum() / max(pos.sum(), 1)),
                  "unseen_share_negatives": float((neg & ~known).sum() / max(neg.sum(), 1))}
        means = {}
        for m in models:
            mine = [p for (model, _), p in predictions.items() if model == m]
            if not all(np.array_equal(p["label"], first["label"]) for p in mine):
                continue
            means[m] = nan_mean([metrics.auc(first["label"][mask], p["prob"][mask]) for p in mine])
            out.append({"dataset": job.dataset, "target": target, "protocol": "cold-user", "model": m,
                        "seeds": len(mine), "rows_seen": int(mask.sum()),
                        "auc": nan_mean([metrics.auc(first["label"][in_target], p["prob"][in_target]) for p in mine]),
                        "auc_seen": means[m], **shares})
        others = [(v, m) for m, v in means.items() if m != "mist"]
        if "mist" in means and others:
            best = max(others)[1]
            seeds = sorted({x for m, x in predictions if m == "mist"} & {x for m, x in predictions if m == best})
            if seeds:  # per-seed differences on the seeds both have, as compare_in_group pairs them
                a = np.stack([predictions[("mist", x)]["prob"][mask] for x in seeds])
                b = np.stack([predictions[(best, x)]["prob"][mask] for x in seeds])
                test = metrics.paired_bootstrap(first["label"][mask], a, b, first["user"][mask], n_boot=n_boot)
                out.append({"dataset": job.dataset, "target": target, "protocol": "cold-user", "paired": "auc_seen",
                            "model": "mist", "best_other": best,
                            **{k: test[k] for k in ("diff", "ci_low", "ci_high", "p_value")}})
    return out


def planted_spearman(names: list[str], drop: np.ndarray, strength: float) -> tuple[float, np.ndarray]:
    """A leave-source-out matrix's (scenarios `names`, AUC drops [target][source]) Spearman correlation with the
    synthetic platforms' planted matrix at `strength` over the off-diagonal entries, and that planted matrix in the
    same order."""
    from mistrec.data.synthetic import DEFAULT_TRANSFER, SCENARIOS
    from mistrec.eval.evaluate import offdiagonal_spearman

    order = [SCENARIOS.index(n) for n in names]
    planted = ((1 - strength) * np.eye(len(SCENARIOS)) + strength * DEFAULT_TRANSFER)[np.ix_(order, order)]
    return offdiagonal_spearman(planted, drop), planted


def leave_source_out(job: Job, bench: dict[str, Any]) -> dict[str, Any]:
    """On synthetic data: per mist run, the leave-source-out matrix its evaluation measured (the target's test AUC
    lost when a source scenario's events leave every history) and its Spearman correlation with the planted matrix
    over the off-diagonal entries; the mean over seeds."""
    strength = 1.0 if job.dataset == "synthetic-transfer" else 0.0
    per_seed = []
    for run in bench["runs"]:
        if run["model"] != "mist" or "leave_source_out" not in run:
            continue
        lso = run["leave_source_out"]
        names = lso["scenarios"]
        off = ~np.eye(len(names), dtype=bool)
        drop = np.asarray(lso["auc_drop"])
        rho, planted = planted_spearman(names, drop, strength)
        per_seed.append({"seed": run["seed"], "spearman": rho, "auc_drop": lso["auc_drop"], "scenarios": names,
                         "planted": planted.tolist(), "max_abs_offdiag_drop": float(np.abs(drop[off]).max())})
    spearman = [r["spearman"] for r in per_seed if not np.isnan(r["spearman"])]
    return {"spearman_mean": float(np.mean(spearman)) if spearman else None, "per_seed": per_seed}


def run_metric(m: dict[str, Any], target: str, group: str | None, key: str, sampled: bool) -> float:
    """A run's metric in the target (and group); ranking metrics from the sampled lists with `sampled` (AUC is the
    pointwise one either way)."""
    if sampled and key != "auc":
        m = m.get("sampled", {})
    block = m.get("by_scenario", {}).get(target, {}) if group is None else \
        m.get("by_activity", {}).get("by_scenario", {}).get(target, {}).get(group, {})
    value = block.get(key)
    return float(value) if isinstance(value, int | float) else float("nan")


def nan_mean(values: list[float]) -> float:
    v = [x for x in values if not np.isnan(x)]
    return float(np.mean(v)) if v else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--only", help="comma-separated DATASET:TARGET (e.g. amazon-sport_phone:phone); default: all")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--models", default=MODELS)
    # every model trains with the same settings; early stopping on the validation rows picks the epoch
    ap.add_argument("--epochs", type=int, default=20, help="maximum epochs (default 20)")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--config", help="a benchmark YAML (model configurations), passed to mistrec benchmark")
    ap.add_argument("--max-queries", type=int, default=MAX_QUERIES, help="warm protocols: ranked users per domain")
    ap.add_argument("--synthetic-users", type=int, default=4000)
    ap.add_argument("--synthetic-seed", type=int, default=0,
                    help="the synthetic platforms' generator seed (default 0, every committed figure's draw); another "
                         "seed is an independent draw of the same platforms (the same T), to replicate on")
    ap.add_argument("--bootstrap", type=int, default=1000)
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--cold-only", action="store_true", help="only the cold-user protocols (Amazon, ML-1M genre)")
    which.add_argument("--warm-only", action="store_true", help="only the warm protocols (Amazon, synthetic)")
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "transfer"))
    ap.add_argument("--amazon", default=str(SHARED_DATA / "amazon-cdr-disencdr"))
    ap.add_argument("--ml1m", default=str(SHARED_DATA / "ml-1m"))
    args = ap.parse_args()
    only = None
    if args.only:
        only = {tuple(x.strip().split(":", 1)) for x in args.only.split(",") if x.strip()}
        bad = [x for x in only if len(x) != 2]
        if bad:
            raise SystemExit(f"--only takes DATASET:TARGET entries. Got {args.only!r}.")
    from mistrec.eval.benchmark import load_prediction_files
    from mistrec.eval.results import BenchmarkResult

    work = Path(args.work)
    out = Path(args.json)
    doc: dict[str, Any] = {"rows": [], "paired": [], "models": args.models.split(","), "seeds": args.seeds,
                           "synthetic_seed": args.synthetic_seed, "benchmarks": {}, "context_before": context()}
    if out.is_file():  # several --only runs add to one file: rows of other (dataset, target)s are kept
        before = json.loads(out.read_text())
        if before.get("synthetic_seed", 0) != args.synthetic_seed:
            raise SystemExit(f"{out} holds rows of the synthetic draw {before.get('synthetic_seed', 0)}, not "
                             f"{args.synthetic_seed}: give another --json, so that the draws' rows are not mixed.")
        doc["rows"], doc["paired"] = before.get("rows", []), before.get("paired", [])
        doc["benchmarks"] = before.get("benchmarks", {})
    for job in jobs(args):
        if args.cold_only and "cold-user" not in job.protocols:
            continue
        if args.warm_only and "cold-user" in job.protocols:
            continue
        targets = job.wanted(only)
        if not targets:
            continue
        prepared = prepare(job, work, args)
        path = run(job, prepared, work, args)
        bench = json.loads(path.read_text())
        typed = BenchmarkResult.from_json(bench).ok_runs  # the same runs, as the comparisons read them
        predictions = load_prediction_files(typed)
        rows, tests = rows_and_tests(job, bench, targets, args.bootstrap, typed, predictions)
        keep = {(job.dataset, t, p) for t in targets for p in job.protocols}
        doc["rows"] = [r for r in doc["rows"] if (r["dataset"], r["target"], r["protocol"]) not in keep] + rows
        doc["paired"] = [r for r in doc["paired"] if (r["dataset"], r["target"], r["protocol"]) not in keep] + tests
        doc["benchmarks"][job.name] = {"json": str(path), "context": bench.get("context"),
                                       "load_average_before": bench.get("load_average_before"),
                                       "load_average_after": bench.get("load_average_after"),
                                       "runs": [{k: r.get(k) for k in ("model", "seed", "train_seconds", "best_epoch",
                                                                       "eval_seconds")} for r in bench["runs"]]}
        if job.dataset.startswith("amazon-") and "cold-user" in job.protocols:
            seen = seen_items(job, typed, predictions, prepared, targets, args.bootstrap)
            doc["seen_items"] = [r for r in doc.get("seen_items", [])
                                 if (r["dataset"], r["target"]) not in {(job.dataset, t) for t in targets}] + seen
        if job.dataset.startswith("synthetic-") and "mist" in args.models.split(","):
            doc.setdefault("leave_source_out", {})[job.dataset] = leave_source_out(job, bench)
        write_json(out, doc)
        print(f"{job.name}: {len(rows)} rows, {len(tests)} paired tests", flush=True)
    doc["context_after"] = context()
    write_json(out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
