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

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_dirs_and_seeds
from cold_scale_rules import parts


def one(root: Path, seed: int) -> list[dict[str, Any]]:
    from mistrec.data.prepared import PreparedDataset
    from mistrec.metrics import auc
    from mistrec.train.artifact import load_run
    from mistrec.train.predict import predict

    ds = PreparedDataset.load(root / "prepared")
    model, enc, _ = load_run(root / "runs" / "mist" / f"seed-{seed}")
    iso, iso_enc, _ = load_run(root / "runs" / "isolated_dnn" / f"seed-{seed}")
    rows = enc.rows(ds, "test")
    p = parts(model, enc, rows, no_history=True)
    p["items"] = p["prior"] + p["bias"]
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
    return run_dirs_and_seeds(__doc__.splitlines()[0], one)


if __name__ == "__main__":
    raise SystemExit(main())
