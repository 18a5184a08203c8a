"""What the user id gives the users active in a scenario: each saved mist run of benchmarks/transfer.py work
directories scored on the validation and test rows as it is and with every row's user id hidden (the unknown user,
index 0, as a user new to the platform reads it), per scenario, for users with and without training events there
(docs/benchmarks.md, "The user id of the active users"). Evaluation only; nothing is chosen.

    python benchmarks/id_read_probe.py --json OUT [--lso] \
        benchmarks/work/s40-own-syn/synthetic-{transfer,identity}-4000u

With `--lso`, on a synthetic-transfer DIR also each run's leave-source-out matrix with every user id hidden, its
Spearman correlation with T and (`--reference FILE:DRAW`, benchmarks/lso_reference.py's JSON) with that reference.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json


def hidden_lso(run: Path, ds: Any, reference: dict[str, Any] | None) -> dict[str, Any]:
    """The run's leave-source-out matrix on the test rows with every user id hidden (the encoder maps every user to
    the unknown one), and its Spearman correlation with the planted T and, given one of `lso_reference.py`'s draws,
    with that reference."""
    from lso_reference import reordered, spearman
    from transfer import planted_spearman

    from mistrec.eval.evaluate import leave_source_out_matrix
    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(run)
    enc.user_map_ = np.zeros_like(enc.user_map_)
    m = leave_source_out_matrix(model, enc, enc.rows(ds, "test"))
    m["spearman_T"] = planted_spearman(m["scenarios"], np.asarray(m["auc_drop"]), 1.0)[0]
    line = f"against T {m['spearman_T']:.3f}"
    if reference is not None:
        m["spearman_reference"] = spearman(reference["reference"],
                                           reordered(m["auc_drop"], m["scenarios"], reference["scenarios"]))
        line += f", against the reference {m['spearman_reference']:.3f}"
    print(f"{run} ids hidden: leave-source-out Spearman {line}", flush=True)
    return m


def one_run(run: Path, ds: Any, splits: tuple[str, ...] = ("valid", "test")) -> dict[str, Any]:
    import torch

    from mistrec.metrics import auc
    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(run)
    model.eval()
    names = list(enc.spec_.scenario_names)
    out: dict[str, Any] = {"run": str(run)}
    for split in splits:
        rows = enc.rows(ds, split)
        full, hidden = np.empty(len(rows)), np.empty(len(rows))
        active = np.empty(len(rows), dtype=bool)
        with torch.no_grad():
            for lo in range(0, len(rows), 8192):
                idx = np.arange(lo, min(lo + 8192, len(rows)))
                b = enc.batch(rows, idx)
                full[idx] = model(b).numpy()
                hidden[idx] = model(dataclasses.replace(b, user=torch.zeros_like(b.user))).numpy()
                active[idx] = (b.activity > 0).numpy()
        scenario = enc.scenario_map_[rows.scenario]
        for s, name in enumerate(names, start=1):
            for group, mask in (("active", active), ("new", ~active)):
                m = (scenario == s) & mask
                if m.sum() < 100 or len(np.unique(rows.label[m])) < 2:
                    continue
                out.setdefault(split, {}).setdefault(name, {})[group] = {
                    "rows": int(m.sum()), "auc_with_id": auc(rows.label[m], full[m]),
                    "auc_without_id": auc(rows.label[m], hidden[m])}
    for split, by in out.items():
        if split == "run":
            continue
        print(f"{run} {split}: " + "; ".join(
            f"{name} {g} {v['auc_with_id']:.4f} -> {v['auc_without_id']:.4f}"
            for name, groups in by.items() for g, v in groups.items()), flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", default="2022,2023,2024")
    ap.add_argument("--splits", default="valid,test", help="the rows scored (train too: what the id fitted)")
    ap.add_argument("--lso", action="store_true", help="also, on a synthetic-transfer DIR, each run's leave-source-out "
                    "matrix with every user id hidden")
    ap.add_argument("--reference", help="with --lso: lso_reference.py's JSON and draw, FILE:DRAW (e.g. "
                    "benchmarks/results/lso_reference.json:0)")
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()

    import torch
    from lso_reference import reference_draw

    from mistrec.data.prepared import PreparedDataset

    torch.set_num_threads(1)
    reference = reference_draw(args.reference) if args.reference else None
    out: dict[str, Any] = {"dirs": {}, "reference": args.reference, "context": context()}
    for d in args.dirs:
        ds = PreparedDataset.load(Path(d) / "prepared")
        runs = [Path(d) / "runs" / "mist" / f"seed-{seed}" for seed in args.seeds.split(",")]
        out["dirs"][d] = [one_run(run, ds, tuple(args.splits.split(","))) for run in runs]
        if args.lso and Path(d).name.startswith("synthetic-transfer"):
            hidden = [hidden_lso(run, ds, reference) for run in runs]
            out.setdefault("leave_source_out_ids_hidden", {})[d] = {
                "per_seed": hidden, "scenarios": hidden[0]["scenarios"],
                "auc_drop_mean": np.mean([h["auc_drop"] for h in hidden], axis=0).tolist(),
                **{f"{k}_mean": float(np.mean([h[k] for h in hidden])) for k in ("spearman_T", "spearman_reference")
                   if k in hidden[0]}}
    write_json(Path(args.json), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
