"""`interest_scope: auto`'s options on the validation rows by activity group: for each saved mist run of DIR (loaded
with `interest_scope: auto`, its other after-training choices as saved), each scenario's validation AUC in the groups
3-5, 6-20 and >20 under every pool and under each own-pools option, as the change from every pool. What a choice per
group would have seen (docs/benchmarks.md, "interest_scope: auto"); evaluation only.

    python benchmarks/interest_valid_groups.py --json benchmarks/results/interest_valid_groups_draw0.json \
        benchmarks/work/s40-own-syn/synthetic-transfer-4000u
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json

GROUPS = ((3, 6, "3-5"), (6, 21, "6-20"), (21, None, ">20"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", default="2022,2023,2024")
    ap.add_argument("dir")
    args = ap.parse_args()

    import torch

    from mistrec.data.prepared import PreparedDataset
    from mistrec.metrics import auc
    from mistrec.models.mist import Mist, interest_options
    from mistrec.train.artifact import load_run
    from mistrec.train.predict import predict

    torch.set_num_threads(1)
    root = Path(args.dir)
    ds = PreparedDataset.load(root / "prepared")
    out: dict[str, Any] = {"dir": str(root), "runs": [], "context_before": context()}
    for seed in map(int, args.seeds.split(",")):
        model, enc, _ = load_run(root / "runs" / "mist" / f"seed-{seed}", {"interest_scope": "auto"})
        assert isinstance(model, Mist)
        valid = enc.rows(ds, "valid")
        activity = enc.batch(valid, np.arange(len(valid))).activity.numpy()
        options = interest_options(model.cfg)
        prob = {}
        for option in options:
            model.use_option(option)
            prob[option] = predict(model, enc, valid)
        rec: dict[str, Any] = {"seed": seed, "by_scenario": {}}
        for s, name in enumerate(enc.spec_.scenario_names, start=1):
            for lo, hi, group in GROUPS:
                m = (valid.scenario == s) & (activity >= lo) & (activity < (hi or np.inf))
                if m.sum() < 50:
                    continue
                base = auc(valid.label[m], prob[options[0]][m])
                change = {o.removeprefix("interest "): auc(valid.label[m], prob[o][m]) - base for o in options[1:]}
                rec["by_scenario"].setdefault(name, {})[group] = {"rows": int(m.sum()), "auc_all": base,
                                                                   "change": change}
                print(f"seed {seed} {name} {group} ({int(m.sum())} rows): "
                      + ", ".join(f"{o} {v:+.4f}" for o, v in change.items()), flush=True)
        out["runs"].append(rec)
    out["context_after"] = context()
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
