"""The `mistrec` command line: the only place that reads argv and turns errors into one-line messages."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mistrec.errors import MistrecError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from mistrec import __version__
    from mistrec.data.config import PROTOCOLS

    p = argparse.ArgumentParser(prog="mistrec", description="Multi-scenario Interest Transfer for RECommendation.")
    p.add_argument("--version", action="version", version=f"mistrec {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="synthetic multi-scenario data -> prepare -> summary")
    demo.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    demo.add_argument("--users", type=int, default=2000, help="synthetic users (default: 2000)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bar")

    prep = sub.add_parser("prepare", help="dataset YAML -> prepared directory (clean, encode, split, histories)")
    prep.add_argument("config", help="the dataset YAML file")
    prep.add_argument("--out", required=True, help="the prepared directory to write")
    prep.add_argument("--protocol", choices=PROTOCOLS, help="split protocol (default: the YAML's, else temporal)")
    prep.add_argument("--seed", type=int, help="seed of the split and of negative sampling")
    prep.add_argument("--target", help="target scenario (cold-user, kshot, leave-scenario-out)")
    prep.add_argument("--k", type=float, help="kshot: percent of the target scenario's training rows kept")
    prep.add_argument("--history-length", type=int, help="L, events per history (default: the YAML's, else 50)")
    prep.add_argument("--quiet", action="store_true", help="no progress bar")

    rec = sub.add_parser("recipe", help="write a dataset YAML for a public dataset on your disk")
    rec.add_argument("name", help="recipe name, or 'list'")
    rec.add_argument("--data", help="your local copy of the dataset (file or directory)")
    rec.add_argument("--out", help="the YAML file to write")
    rec.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe option")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # Two cores on the machines this runs on: polars reads its thread count once, at import.
    os.environ.setdefault("POLARS_MAX_THREADS", "2")
    args = _parser().parse_args(argv)
    try:
        return {"demo": _demo, "prepare": _prepare, "recipe": _recipe}[args.command](args)
    except MistrecError as exc:
        print(f"mistrec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `mistrec ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"mistrec {args.command}: interrupted", file=sys.stderr)
        return 130


def _prepare(args: argparse.Namespace) -> int:
    from mistrec.data import load_dataset_config, prepare

    cfg = load_dataset_config(args.config)
    protocol = None
    if any(v is not None for v in (args.protocol, args.seed, args.target, args.k)):
        protocol = cfg.protocol.with_overrides(name=args.protocol, seed=args.seed, target=args.target, k=args.k)
    if args.history_length is not None and args.history_length < 1:
        raise MistrecError(f"--history-length must be >= 1. Got {args.history_length}.")
    manifest = prepare(cfg, args.out, protocol=protocol, history_length=args.history_length, quiet=args.quiet)
    _print_summary(manifest, Path(args.out))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from mistrec.data import SyntheticConfig, generate, load_dataset_config, prepare

    out = Path(args.out)
    t0 = time.perf_counter()
    data = generate(SyntheticConfig(n_users=args.users, seed=args.seed))
    yaml_path = data.write(out / "raw")
    print(f"Synthetic platform: {data.interactions.height:,} interactions, {args.users:,} users, "
          f"scenarios {', '.join(data.scenario_names)}; written as csv, positional tsv and parquet to {out / 'raw'}")
    print("Planted transfer matrix T[target, source] (what the models must recover):")
    _print_matrix(data.scenario_names, data.transfer)
    manifest = prepare(load_dataset_config(yaml_path), out / "prepared", quiet=args.quiet)
    _print_summary(manifest, out / "prepared")
    print(f"Done in {time.perf_counter() - t0:.1f} s. Results: {out.resolve()}")
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


def _print_matrix(names: Sequence[str], m: object) -> None:
    import numpy as np

    arr = np.asarray(m)
    width = max(len(n) for n in names)
    print(" " * (width + 2) + "  ".join(f"{n[:11]:>11}" for n in names))
    for name, row in zip(names, arr, strict=True):
        print(f"  {name:<{width}}" + "  ".join(f"{v:>11.2f}" for v in row))


def _print_summary(manifest: dict[str, Any], out: Path) -> None:
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
    for note in manifest["notes"]:
        print(f"  note: {note}")
    print(f"  written to {out} (manifest.json has the cleaning report and fingerprints)")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
