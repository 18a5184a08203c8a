"""Whose rows make a leave-source-out entry: one target's test rows scored with and without one source scenario's
events, split into users new in the target (no training event there) and users active there, for each saved mist
run of a benchmarks/transfer.py work directory (docs/benchmarks.md, "transfer_active on the transfer platform").

    python benchmarks/lso_rows.py --json OUT --target game_lobby --source home_feed \
        benchmarks/work/s40-own-syn/synthetic-transfer-4000u

`--split valid` or `train` scores those rows instead (their histories as training reads them). Per run and group:
the rows, the AUC with and without the source's events, and the Pearson correlation of the
score's shift (full - without, in logits) with the label (negative: the source's events lower the positives).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json


def one_run(run: Path, ds: Any, target: str, source: str, split: str = "test") -> dict[str, Any]:
    import torch

    from mistrec.metrics import auc
    from mistrec.train.artifact import load_run

    model, enc, _ = load_run(run)
    model.eval()
    rows = enc.rows(ds, split)
    names = list(enc.spec_.scenario_names)
    t, s = names.index(target) + 1, names.index(source) + 1
    idx = np.flatnonzero(enc.scenario_map_[rows.scenario] == t)
    with torch.no_grad():
        b = enc.batch(rows, idx)
        full = model(b).numpy()
        without = model(b.without_events(b.hist_mask & (b.hist_scenarios == s))).numpy()
    label, activity = rows.label[idx], b.activity.numpy()
    out: dict[str, Any] = {"run": str(run), "split": split}
    for group, mask in (("all", np.ones(len(idx), dtype=bool)), ("new", activity == 0), ("active", activity > 0)):
        y, f, w = label[mask], full[mask], without[mask]
        out[group] = {"rows": int(mask.sum()), "auc_full": auc(y, f), "auc_without": auc(y, w),
                      "shift_label_corr": float(np.corrcoef(f - w, y)[0, 1])}
    print(f"{run} {split}: " + "; ".join(f"{g} {out[g]['rows']} rows AUC {out[g]['auc_full']:.4f} -> "
                                 f"{out[g]['auc_without']:.4f}, corr {out[g]['shift_label_corr']:+.3f}"
                                 for g in ("all", "new", "active")), flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--seeds", default="2022,2023,2024")
    ap.add_argument("--split", default="test", help="the rows scored: test (default), valid or train")
    ap.add_argument("--runs", default="runs/mist", help="the mist runs' directory in each DIR")
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()

    import torch

    from mistrec.data.prepared import PreparedDataset

    torch.set_num_threads(1)
    out: dict[str, Any] = {"target": args.target, "source": args.source, "split": args.split, "dirs": {},
                           "context": context()}
    for d in args.dirs:
        ds = PreparedDataset.load(Path(d) / "prepared")
        out["dirs"][d] = [one_run(Path(d) / args.runs / f"seed-{seed}", ds, args.target, args.source, args.split)
                          for seed in args.seeds.split(",")]
    write_json(Path(args.json), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
