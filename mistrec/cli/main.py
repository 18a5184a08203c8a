"""The `mistrec` command line: the only place that reads argv and turns errors into one-line messages."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mistrec.cli.parser import parser
from mistrec.cli.printing import (
    print_activity,
    print_benchmark,
    print_gain_by_activity,
    print_matrix,
    print_run,
    print_summary,
)
from mistrec.errors import MistrecError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    # Two cores on the machines this runs on: polars reads its thread count once, at import.
    os.environ.setdefault("POLARS_MAX_THREADS", "2")
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `train --nproc` runs the same command under torchrun
    try:
        commands = {"demo": _demo, "prepare": _prepare, "recipe": _recipe, "train": _train, "evaluate": _evaluate,
                    "benchmark": _benchmark, "recommend": _recommend, "serve": _serve, "index": _index,
                    "export": _export}
        return commands[args.command](args)
    except MistrecError as exc:
        one_line = " ".join(str(exc).splitlines())  # a value with a newline in it must not break the one line
        print(f"mistrec {args.command}: error: {one_line}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `mistrec ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"mistrec {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # not a mistake in the input: ours. The traceback, then one line that says so.
        import traceback

        from mistrec import __version__

        traceback.print_exc()
        one_line = " ".join(f"{type(exc).__name__}: {exc}".splitlines())
        print(f"mistrec {args.command}: internal error: {one_line}. This is a bug in mistrec {__version__}, not in "
              f"your input: please report it with the traceback above and the command you ran.", file=sys.stderr)
        return 1


def _prepare(args: argparse.Namespace) -> int:
    from mistrec.data import load_dataset_config, prepare

    cfg = load_dataset_config(args.config)
    protocol = None
    if any(v is not None for v in (args.protocol, args.seed, args.target, args.k, args.cold_fraction,
                                   args.cold_rest, args.cold_order)):
        protocol = cfg.protocol.with_overrides(name=args.protocol, seed=args.seed, target=args.target, k=args.k,
                                               cold_fraction=args.cold_fraction, cold_rest=args.cold_rest,
                                               cold_order=args.cold_order)
    if args.history_length is not None and args.history_length < 1:
        raise MistrecError(f"--history-length must be >= 1. Got {args.history_length}.")
    manifest = prepare(cfg, args.out, protocol=protocol, history_length=args.history_length, quiet=args.quiet,
                       force=args.force, parts=args.parts,
                       **({"shard_rows": args.shard_rows} if args.shard_rows is not None else {}))
    print_summary(manifest, Path(args.out))
    return 0


def _train_config(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:

    from mistrec.config import parse_config
    from mistrec.train import TrainConfig

    model_values: dict[str, Any] = {}
    train_values: dict[str, Any] = {}
    if args.config:
        file = _config_file(args.config, TrainYaml)
        model_values, train_values = dict(file.model or {}), dict(file.train or {})
    for flag, key in (("seed", "seed"), ("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"),
                      ("checkpoint_every", "checkpoint_every")):
        if getattr(args, flag) is not None:
            train_values[key] = getattr(args, flag)
    return model_values, parse_config(TrainConfig, train_values, "the train config")


@dataclass(frozen=True)
class TrainYaml:
    """`mistrec train --config`: the model's config and the train settings."""

    model: dict[str, Any] | None = None
    train: dict[str, Any] | None = None


@dataclass(frozen=True)
class BenchmarkYaml:
    """`mistrec benchmark --config`: the train settings of every model, and each model's config by name."""

    train: dict[str, Any] | None = None
    models: dict[str, dict[str, Any] | None] | None = None


F = TypeVar("F")


def _config_file(path_text: str, cls: type[F]) -> F:
    """A YAML config file read by the one config parser (mistrec.config.parse_config)."""
    import yaml

    from mistrec.config import parse_config

    path = Path(path_text)
    if not path.is_file():
        raise MistrecError(f"Config file not found: {path}.")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise MistrecError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_config(cls, raw, str(path))


def _train(args: argparse.Namespace) -> int:
    from mistrec.cli import launch
    from mistrec.eval.fit import fit_run
    from mistrec.train import distributed

    if args.launcher == "ray" and args.nproc is None:
        raise MistrecError("--launcher ray needs --nproc N: the number of Ray Train workers.")
    if args.nproc is not None and args.nproc < 1:
        raise MistrecError(f"--nproc must be >= 1. Got {args.nproc}.")
    if args.nproc is not None and not distributed.launched() and not distributed.ranks().distributed:
        start = launch.launch_ray if args.launcher == "ray" else launch.launch
        return start(args.nproc, launch.without_nproc(args.argv))  # the same command under torchrun or Ray
    # the machine's threads shared by the processes on it (torchrun's LOCAL_WORLD_SIZE) unless --threads says
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    _threads(args.threads if args.threads is not None else max(1, 2 // local))
    model_values, train_cfg = _train_config(args)
    scenarios = [s.strip() for s in args.train_scenarios.split(",") if s.strip()] if args.train_scenarios else None
    own_process = distributed.joins_group()  # torchrun's process (a Ray Train worker's group is Ray's)
    with distributed.process_group() as where:
        summary = fit_run(args.data, args.model, args.out, model_values=model_values, train_cfg=train_cfg,
                          quiet=args.quiet, train_scenarios=scenarios, init_from=args.init_from, force=args.force)
    if not where.main and own_process:
        # a worker rank of torchrun, done: it leaves as multiprocessing's children do, without the interpreter's
        # teardown, in which it aborted now and then on loaded cores ("terminate called without an active
        # exception", SIGABRT, a C++ thread still joinable at exit; docs/scale.md). Rank 0 has written the run
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    if not where.main:
        return 0  # a Ray Train worker: Ray ends the process
    print_run(summary)
    print(f"  run written to {args.out} (run.json, weights.pt, encoder, metrics.json)")
    return 0


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError:
        raise MistrecError(f"--k takes comma-separated ints such as 10,20. Got {text!r}.") from None
    if not ks or min(ks) < 1:
        raise MistrecError(f"--k takes ints >= 1. Got {text!r}.")
    return ks


def _threads(n: int) -> None:
    import torch

    if n < 1:
        raise MistrecError(f"--threads must be >= 1. Got {n}.")
    torch.set_num_threads(n)


def _evaluate(args: argparse.Namespace) -> int:
    from mistrec.eval.evaluate import evaluate_run, write_json

    _threads(args.threads)
    doc = evaluate_run(args.run, data=args.data, split=args.split, ks=_ks(args.k), ranking=not args.no_ranking,
                       sampled_negatives=args.sampled_negatives, quiet=args.quiet, also_sampled=args.also_sampled,
                       max_queries=args.max_queries)
    run = doc.run
    m = run.metrics
    assert m is not None
    k = _ks(args.k)[0]
    cols = ["auc", "gauc", "logloss", "ece"] + ([] if args.no_ranking else [f"ndcg@{k}", f"hr@{k}", "mrr"])
    print(f"{run.model} (seed {run.seed}) on {doc.dataset['name']}, {args.split} split, protocol {doc.protocol}")
    width = max(8, *(len(s) for s in m.by_scenario))
    print(f"  {'scenario':<{width}}  {'n':>8}  " + "  ".join(f"{c:>8}" for c in cols))
    undefined = []
    for name, v in [*m.by_scenario.items(), ("overall", m.overall)]:
        cells = "  ".join(_cell(v.get(c)) for c in cols)
        print(f"  {name:<{width}}  {v.n:>8,}  {cells}")
        undefined += [f"{c} in {name} {why}" for c, why in v.undefined().items() if c in cols]
    for line in undefined:  # say why, instead of a bare nan
        print(f"  n/a: {line}")
    if not args.no_ranking and run.eval_seconds is not None:
        print(f"  ranking: {m.overall.get('ranking_candidates') or '-'}, {run.eval_seconds['ranking']:.1f} s")
    if m.by_activity is not None:
        print_activity(m.by_activity, "auc" if args.no_ranking else f"ndcg@{k}")
    if args.json:
        write_json(doc, args.json)
        print(f"  written to {args.json}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from mistrec.serve.app import serve

    if not Path(args.run).is_dir():
        raise MistrecError(f"Run directory not found: {args.run}.")
    serve(args.run, args.db, args.host, args.port, args.api_key_env, args.workers, args.retrieval, args.retrieve,
          args.backend)
    return 0


def _index(args: argparse.Namespace) -> int:
    from mistrec.eval.index import build_index

    _threads(args.threads)
    print(f"Indexing {args.run}:")
    reports = build_index(args.run, args.data, kind=args.kind, recall=args.recall, flat_max=args.flat_max,
                          quiet=False)
    print(f"  {len(reports)} scenario indexes written to {Path(args.run) / 'index'} (index.json)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from mistrec.eval.export import export_run

    _threads(args.threads)
    doc = export_run(args.run, args.out, args.format)
    out = Path(args.out) if args.out else Path(args.run) / "export"
    for name, graph in doc["graphs"].items():
        worst = max(graph["parity_max_abs"].values())
        checked = (f"{doc['rank_inputs']['queries_checked']} test queries x {doc['rank_inputs']['candidates_checked']}"
                   " items" if name == "rank" else f"{doc['rows_checked']} test rows")
        print(f"  {name}: {out / graph['file']} (outputs {', '.join(graph['outputs'])}); ONNX Runtime against "
              f"PyTorch on {checked}, every scenario: max |diff| {worst:.1e}")
    print(f"  written with {out / 'export.json'}")
    return 0


def _cell(value: object) -> str:
    if not isinstance(value, float):
        return f"{'-':>8}"
    return f"{'n/a':>8}" if value != value else f"{value:>8.4f}"


def _recommend(args: argparse.Namespace) -> int:
    import json

    from mistrec.eval.explain import Recommender

    _threads(args.threads)
    rec = Recommender.load(args.run, data=args.data, backend=args.backend)
    if args.retrieval:
        from mistrec.eval.two_stage import Retriever

        rec.retriever = Retriever.load(args.retrieval, rec, args.retrieve)
    candidates = [c.strip() for c in args.candidates.split(",") if c.strip()] if args.candidates else None
    if args.slots:
        from mistrec.eval.slate import SlateFiller

        if args.describe or candidates:
            raise MistrecError("--slots fills a scenario of the data from its catalogue: drop --describe and "
                               "--candidates.")
        out = SlateFiller(rec, args.slot_category).fill(
            args.user, args.scenario, slots=args.slots, per_category=args.per_category, diversity=args.diversity,
            candidates=args.slot_candidates, explain=args.explain)
    else:
        out = rec.recommend(args.user, args.scenario, k=args.k, explain=args.explain, description=args.describe,
                            candidates=candidates)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if "slate" in out:
        from mistrec.cli.printing import print_slate

        print_slate(out, args.user, args.scenario)
        return 0
    if "new_scenario" in out:
        from mistrec.features.scenario_text import resolution_text

        print(f"New scenario {args.scenario}: {resolution_text(out['new_scenario'])}")
    head = (f"Top {args.k} in {args.scenario} for user {args.user} ({out['model']}, {out['history_events']} "
            "history events")
    print(head + (f"; cold start: {out['note']})" if out["cold_start"] else ")"))
    if "stages" in out:
        stage = out["stages"]["retrieval"]
        print(f"  retrieval ({stage['model']}): " + (stage["skipped"] if "skipped" in stage else
              f"{stage['retrieved']} of {stage['catalogue']:,} items, ranked by {out['model']}"))
    for item in out["items"]:
        score = "" if item["score"] is None else f"  p(click) {item['score']:.3f}"
        print(f"  {item['rank']:>2}. {item['item']}{score}")
        e = item.get("explanation")
        if not e:
            continue
        print(f"      {e.get('sentence') or e.get('note', '')}")
        for ev in e.get("events", [])[:3]:
            extra = "".join(f" {k} {ev[k]:.3f}" for k in ("attention", "integrated_gradients", "co_items") if k in ev)
            print(f"        {ev['time'][:10]} {ev['scenario']:<12} {ev['item']}{extra}")
    print(f"  ({out['elapsed_ms']:.0f} ms)")
    return 0


def _benchmark(args: argparse.Namespace) -> int:

    from mistrec.eval.benchmark import BenchmarkConfig, run_benchmark
    from mistrec.eval.evaluate import write_json

    if args.seeds < 1:
        raise MistrecError(f"--seeds must be >= 1. Got {args.seeds}.")
    if args.threads < 1:
        raise MistrecError(f"--threads must be >= 1. Got {args.threads}.")
    if args.bootstrap < 1:
        raise MistrecError(f"--bootstrap must be >= 1 (resamples of the paired tests). Got {args.bootstrap}.")
    _check_output_file(Path(args.json), "--json", args.force)
    if args.report:
        _check_output_file(Path(args.report), "--report", True)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise MistrecError("--models needs at least one model name.")
    train: dict[str, Any] = {}
    model_configs: dict[str, dict[str, Any]] = {}
    if args.config:
        file = _config_file(args.config, BenchmarkYaml)
        train = dict(file.train or {})
        model_configs = {str(name): dict(values or {}) for name, values in (file.models or {}).items()}
    for flag in ("epochs", "batch_size", "lr"):
        if getattr(args, flag) is not None:
            train[flag] = getattr(args, flag)
    out = Path(args.json)
    work = Path(args.work) if args.work else out.with_name(out.stem + ".runs")
    tracking = tuple(t for t, on in (("mlflow", args.mlflow), ("tensorboard", args.tensorboard)) if on)
    cfg = BenchmarkConfig(models=models, seeds=list(range(args.first_seed, args.first_seed + args.seeds)),
                          work_dir=work, train=train, model_configs=model_configs, threads=args.threads,
                          ranking=not args.no_ranking, ks=_ks(args.k), n_boot=args.bootstrap, tracking=tracking,
                          also_sampled=args.also_sampled, max_queries=args.max_queries)
    doc = run_benchmark(args.data, cfg, log=(lambda *_: None) if args.quiet else _flush_print,
                        progress=not args.quiet)
    write_json(doc, out)
    print_benchmark(doc)
    print(f"  JSON: {out}; runs: {work}")
    if args.report:
        from mistrec.eval.report import write_report

        write_report(doc, args.report)
        print(f"  report: {args.report}")
    failed = (doc.summary or {})["failed_runs"]
    return 1 if failed else 0


def _check_output_file(path: Path, flag: str, force: bool) -> None:
    """Before any work: the file can be written, and an existing one is replaced only when asked."""
    if path.is_dir():
        raise MistrecError(f"{flag} {path} is a directory: give a file name such as {path / 'benchmark.json'}.")
    if path.exists() and not force:
        raise MistrecError(f"{flag} {path} exists: pass --force to replace it (the runs in --work are kept and "
                           "resumed either way), or choose another file.")


def _flush_print(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line)  # one line per run, above the bar on a terminal, at once in a file
    sys.stdout.flush()


def _demo(args: argparse.Namespace) -> int:
    if args.scenario_set == "vr":
        from mistrec.cli.vr_demo import vr_demo

        return vr_demo(args)
    import shutil

    import numpy as np
    import torch

    from mistrec.data import PreparedDataset, generate, load_dataset_config, prepare
    from mistrec.data.synthetic import transfer_platform
    from mistrec.eval import BenchmarkConfig, benchmark_document, evaluate_run, write_json, write_report
    from mistrec.eval.evaluate import offdiagonal_spearman
    from mistrec.eval.fit import fit_run
    from mistrec.train import TrainConfig

    out = Path(args.out)
    t0 = time.perf_counter()
    data = generate(transfer_platform(strength=1.0, n_users=args.users, seed=args.seed))
    yaml_path = data.write(out / "raw")
    print(f"Synthetic transfer platform (docs/synthetic.md): {data.interactions.height:,} interactions, "
          f"{args.users:,} users, scenarios {', '.join(data.scenario_names)}; written as csv, positional tsv and "
          f"parquet to {out / 'raw'}")
    print("Planted transfer matrix T[target, source]: a user's clicks in the target follow this mix of their "
          "interests in the sources")
    print_matrix(data.scenario_names, data.transfer)
    manifest = prepare(load_dataset_config(yaml_path), out / "prepared", quiet=args.quiet, force=True)
    print_summary(manifest, out / "prepared")
    torch.set_num_threads(2)
    runs = []
    # mist against one model per scenario trained on that scenario alone, with the same training settings
    train = {"epochs": args.epochs, "batch_size": 1024, "lr": 3e-3}
    for name in ("mist", "isolated_dnn"):
        run_dir = out / "runs" / name / f"seed-{args.seed}"
        if run_dir.exists():
            shutil.rmtree(run_dir)  # the demo retrains from scratch each time
        summary = fit_run(out / "prepared", name, run_dir, train_cfg=TrainConfig(**train, seed=args.seed),
                          quiet=args.quiet)
        print_run(summary)
        doc = evaluate_run(run_dir, quiet=args.quiet)
        write_json(doc, run_dir / "eval.json")
        runs.append(doc.run)
    cfg = BenchmarkConfig(models=["mist", "isolated_dnn"], seeds=[args.seed], work_dir=out / "runs", train=train,
                          n_boot=300)
    bench = benchmark_document(PreparedDataset.load(out / "prepared"), runs, cfg)
    write_json(bench, out / "benchmark.json")
    write_report(bench, out / "report.html")
    print_benchmark(bench)
    print_gain_by_activity(bench)
    lso = runs[0].leave_source_out
    if lso:
        names = lso["scenarios"]
        order = [data.scenario_names.index(n) for n in names]
        planted = np.asarray(data.transfer)[np.ix_(order, order)]
        rho = offdiagonal_spearman(planted, lso["auc_drop"])
        print("What mist's scores owe each source: test AUC lost in the target when the source's events leave every "
              f"history (Spearman against the planted T off the diagonal: {rho:.2f}):")
        print_matrix(names, lso["auc_drop"], digits=3)
    print(f"Done in {time.perf_counter() - t0:.1f} s. Report: {(out / 'report.html').resolve()}")
    return 0


def _recipe(args: argparse.Namespace) -> int:
    from mistrec.data.recipes import RECIPES, write_recipe

    if args.name == "list":
        width = max(len(n) for n in RECIPES)
        for name, r in RECIPES.items():
            print(f"{name:<{width}}  {r.description}")
        return 0
    if not args.data or not args.out:
        raise MistrecError("mistrec recipe NAME needs --data (your local copy) and --out (the YAML to write).")
    options = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise MistrecError(f"--set takes KEY=VALUE. Got {item!r}.")
        options[key] = value
    path = write_recipe(args.name, Path(args.data), Path(args.out), **options)
    print(f"Wrote {path}. Next: mistrec prepare {path} --out DIR")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
