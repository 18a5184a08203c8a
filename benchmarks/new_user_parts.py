"""What a mist run says to users with no event in a scenario, part by part, beside the isolated model
(docs/models.md, "cold_scale: auto"): the test rows of those users in each scenario of a benchmarks/transfer.py
work directory, scored by the parts of mist's logit.

    python benchmarks/new_user_parts.py --json benchmarks/results/new_user_parts_synthetic.json \
        --seeds 2022,2023,2024 benchmarks/work/transfer-synth-s19/synthetic-{identity,transfer}-4000u

Each DIR holds prepared/, runs/mist/seed-S and runs/isolated_dnn/seed-S. Per scenario with at least 100 such rows,
test AUC of: item_terms (the learned bias, and the counted prior where there is one), item_terms_co (plus
`co_items`' term), no_history (item terms + co + the network's logit with the user's history emptied: the
"anchor" form at 0), full (every part, the history read: either form at 1, the trained state), as_run (the run's
own scores, with the cold_scale it chose) and isolated_dnn's. The parts are computed with the run's cold_id choice.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, write_json


def parts(model: Any, enc: Any, rows: Any, batch_size: int = 8192) -> dict[str, Any]:
    """Each row's item terms, co term, network part with its history and without, and activity."""
    import numpy as np
    import torch

    out: dict[str, list[Any]] = {"items": [], "co": [], "rest": [], "rest_0": [], "activity": []}
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(rows), batch_size):
            b = enc.batch(rows, np.arange(lo, min(lo + batch_size, len(rows))), history=True,
                          history_side=model.reads_history_side)
            for key, batch in (("rest", b), ("rest_0", b.without_events(b.hist_mask))):
                batch, it = model._run(batch, None)
                out[key].append(model._network(*model._top_input(batch, it.u, it.q, it.transfer), batch).numpy())
            co = model._co_events(b)
            out["items"].append(model._item_terms(b).numpy())
            out["co"].append(np.zeros(len(b)) if co is None else co.sum(1).numpy())
            out["activity"].append(b.activity.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def one(root: Path, seed: int) -> list[dict[str, Any]]:
    from mistrec.data.prepared import PreparedDataset
    from mistrec.metrics import auc
    from mistrec.train.artifact import load_run
    from mistrec.train.predict import predict

    ds = PreparedDataset.load(root / "prepared")
    model, enc, _ = load_run(root / "runs" / "mist" / f"seed-{seed}")
    iso, iso_enc, _ = load_run(root / "runs" / "isolated_dnn" / f"seed-{seed}")
    rows = enc.rows(ds, "test")
    p = parts(model, enc, rows)
    as_run = predict(model, enc, rows)
    base = predict(iso, iso_enc, iso_enc.rows(ds, "test"))
    chosen = getattr(model, "cold_scale", None)
    anchored = getattr(model, "cold_anchor", None)
    out = []
    for s, name in enumerate(enc.spec_.scenario_names, start=1):
        m = (rows.scenario == s) & (p["activity"] == 0)
        y = rows.label[m]
        if m.sum() < 100 or len(set(y.tolist())) < 2:
            continue
        q = {k: v[m] for k, v in p.items()}
        rec = {"dir": root.name, "seed": seed, "scenario": name, "rows": int(m.sum()),
               "chosen": None if chosen is None else {"scale": float(chosen[s]),
                                                      "form": "anchor" if anchored is not None and bool(anchored[s])
                                                      else "scale"},
               "auc": {"item_terms": auc(y, q["items"]), "item_terms_co": auc(y, q["items"] + q["co"]),
                       "no_history": auc(y, q["items"] + q["co"] + q["rest_0"]),
                       "full": auc(y, q["items"] + q["co"] + q["rest"]), "as_run": auc(y, as_run[m]),
                       "isolated_dnn": auc(y, base[m])}}
        print(f"{root.name} seed {seed} {name} ({rec['rows']} rows): " + ", ".join(
            f"{k} {v:.4f}" for k, v in rec["auc"].items()), flush=True)
        out.append(rec)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", default="2022")
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(THREADS))
    results = [r for d in args.dirs for seed in args.seeds.split(",") for r in one(Path(d), int(seed))]
    write_json(args.json, {"results": results, "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
