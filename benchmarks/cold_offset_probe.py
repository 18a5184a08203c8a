"""Can a per-user offset by the user's activity elsewhere lift cold users' AUC on the Amazon pairs, with no cost to
any ranking? Measured on the VALIDATION split's cold users only, from saved mist runs.

    python benchmarks/cold_offset_probe.py --json OUT.json benchmarks/work/s31-cold/amazon-PAIR-cold-last ...

A term that depends on the query alone, b * log(1 + the history's events), moves all of one query's candidates
together, so it changes no user's ranking (NDCG@10 exactly as before) and only how one user's rows compare with
another's: the pooled AUC. The thirty-second session's stack found "the rate times the user's activity elsewhere"
worth up to +0.003 AUC over the rate (docs/benchmarks.md, "The cold users' AUC: how far the data go"); `prior_tilt`
built it on the prior and cost NDCG@10. This asks the ranking-neutral form first, before building anything: for each
job's mist runs (every seed), each target domain's validation rows of users new there, the AUC change of the logit
plus b log1p(n) ("logit" form) and of log sigmoid(logit) plus b log1p(n) ("log-prob" form, a scaling of the
probability), for b on a grid around 0. The saved weights and their recorded after-training choices are used as they
are; the test split is not read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import context, write_json

from mistrec import metrics
from mistrec.eval.evaluate import load_run_and_data

LOGIT_B = (-0.4, -0.2, -0.1, -0.05, 0.05, 0.1, 0.2, 0.4)
LOGPROB_B = (-0.2, -0.1, -0.05, -0.02, 0.02, 0.05, 0.1, 0.2)


def probe_run(run: Path) -> list[dict[str, Any]]:
    """Per target scenario of one run: the validation new users' AUC, and its change under each offset."""
    model, enc, _, ds = load_run_and_data(run)
    rows = enc.rows(ds, "valid")
    model.eval()
    parts: dict[str, list[np.ndarray]] = {"logit": [], "n": [], "activity": [], "scenario": []}
    with torch.no_grad():
        for lo in range(0, len(rows), 8192):
            b = enc.batch(rows, np.arange(lo, min(lo + 8192, len(rows))), history_side=model.reads_history_side)
            parts["logit"].append(model(b).numpy())
            parts["n"].append(b.hist_mask.sum(1).numpy())
            parts["activity"].append(b.activity.numpy())
            parts["scenario"].append(b.scenario.numpy())
    logit, n, activity, scenario = (np.concatenate(parts[k]) for k in ("logit", "n", "activity", "scenario"))
    out = []
    for s, name in enumerate(enc.spec_.scenario_names, start=1):
        m = (scenario == s) & (activity == 0)
        if not m.any():
            continue
        y, z, x = rows.label[m], logit[m], np.log1p(n[m])
        base = metrics.auc(y, z)
        log_prob = -np.logaddexp(0.0, -z)
        # each user's share of positives among these rows: an offset can only trade users' rows when it is equal
        _, user = np.unique(rows.user[m], return_inverse=True)
        share = np.bincount(user, weights=y) / np.bincount(user)
        out.append({"run": str(run), "target": name, "rows": int(m.sum()), "valid_auc": base,
                    "users": len(share), "user_positive_share_min_max": [float(share.min()), float(share.max())],
                    "logit": {str(b): metrics.auc(y, z + b * x) - base for b in LOGIT_B},
                    "log_prob": {str(b): metrics.auc(y, log_prob + b * x) - base for b in LOGPROB_B}})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("jobs", nargs="+", help="cold-user job directories of benchmarks/transfer.py")
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = []
    for job in map(Path, args.jobs):
        for run in sorted((job / "runs" / "mist").glob("seed-*/")):
            for r in probe_run(run):
                results.append(r)
                best = max([*r["logit"].items(), *(("logprob " + k, v) for k, v in r["log_prob"].items())],
                           key=lambda kv: kv[1])
                print(f"{job.name} {run.name} {r['target']}: valid AUC {r['valid_auc']:.4f}, best offset "
                      f"{best[0]} {best[1]:+.4f}, users' positive share {r['user_positive_share_min_max']}",
                      flush=True)
    write_json(args.json, {"results": results, "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
