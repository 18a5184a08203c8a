"""What mist's item-to-item term adds to the network it was trained with: a trained run's validation and test AUC
(overall and per scenario) as trained, and with the term's weights W set to 0 after training (the same network,
the term removed). If the difference is small against the gap between that network and one trained without the
term, the network learned less around the term (docs/benchmarks.md, "co_items' W in two parts").

    python benchmarks/co_zero_probe.py --json OUT --prepared DIR RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, write_json


def probe(run: Path, prepared: Path) -> dict[str, Any]:
    import torch

    from mistrec.data.prepared import PreparedDataset
    from mistrec.metrics import scenario_aucs
    from mistrec.train.artifact import load_run
    from mistrec.train.loop import predict

    model, enc, _ = load_run(run)
    co = getattr(model, "co", None)
    if co is None:
        raise SystemExit(f"{run}: not a mist run with co_items")
    ds = PreparedDataset.load(prepared)
    out: dict[str, Any] = {"run": str(run)}
    for split in ("valid", "test"):
        rows = enc.rows(ds, split)
        with_term = predict(model, enc, rows)
        saved = {k: v.detach().clone() for k, v in co.named_parameters()}
        with torch.no_grad():
            for p in co.parameters():
                p.zero_()
        without = predict(model, enc, rows)
        with torch.no_grad():
            for k, p in co.named_parameters():
                p.copy_(saved[k])
        names = enc.spec_.scenario_names  # index i + 1 is names[i]; 0 is unknown
        auc, per = scenario_aucs(rows.label, with_term, rows.scenario)[:2]
        auc_zero, per_zero = scenario_aucs(rows.label, without, rows.scenario)[:2]
        out[split] = {"auc": auc, "auc_w_zero": auc_zero, "by_scenario": {
            names[s - 1] if 0 < s <= len(names) else str(s): {"auc": per[s], "auc_w_zero": per_zero[s]} for s in per}}
        print(run.name, split, f"{out[split]['auc']:.5f} with the term, {out[split]['auc_w_zero']:.5f} W = 0",
              flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--prepared", required=True)
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(THREADS))
    doc = {"runs": [probe(Path(r), Path(args.prepared)) for r in args.runs], "context": context()}
    write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
