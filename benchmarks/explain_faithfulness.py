"""Are mist's explanations faithful? Checked on the synthetic platform, where the truth is planted.

    python benchmarks/explain_faithfulness.py --json benchmarks/results/explain_faithfulness.json --seeds 3

Per seed: synthetic data (2,000 users, the planted transfer matrix T[target, source], and 10 planted
trigger -> target item pairs: a user clicks the target item in vr_showroom if and only if the trigger item
from home_feed is in their history), the temporal protocol, mist trained with its defaults. Then:

- spearman_leave_source_out: Spearman correlation between the planted T and the learned leave-source-out
  matrix (AUC of the target scenario minus its AUC with the source scenario's events dropped from every test
  history; the trigger rows left out), over the 12 off-diagonal entries; the mean over seeds.
- spearman_attention: the same for mist's attention-based matrix (mean interest-level source share).
- top3_hit_rate: over the test cases whose click was caused by a trigger (the trigger is in the history),
  the share whose explanation (events ranked by integrated gradients) has the trigger event in its top 3.
- explain_ms_p50: median wall time of `Recommender.recommend(user, scenario, k=10, explain=True)` over 30
  users (attention, leave-source-out per item, integrated gradients with 32 steps, the sentence), 2 threads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, THREADS, context, write_json


def one_seed(seed: int, work: Path, users: int, epochs: int, triggers: int) -> dict[str, Any]:
    import numpy as np
    import polars as pl
    from scipy.stats import spearmanr

    from mistrec.data import SyntheticConfig, generate, load_dataset_config, prepare
    from mistrec.eval.evaluate import attention_transfer_matrix
    from mistrec.eval.explain import Recommender, leave_source_out_matrix
    from mistrec.train import TrainConfig, fit_run

    cfg = SyntheticConfig(n_users=users, triggers=triggers, seed=seed)
    data = generate(cfg)
    root = work / f"seed-{seed}"
    if not (root / "run" / "run.json").is_file():
        yaml_path = data.write(root / "raw")
        prepare(load_dataset_config(yaml_path), root / "prepared", history_length=50, quiet=True)
        fit_run(root / "prepared", "mist", root / "run", train_cfg=TrainConfig(epochs=epochs, batch_size=1024,
                                                                              seed=seed), quiet=True)
    rec = Recommender.load(root / "run")
    enc, ds = rec.enc, rec.ds
    rows = enc.rows(ds, "test")
    planted_items = set(data.triggers["trigger_item"].to_list()) | set(data.triggers["target_item"].to_list())
    item_vocab = ds.vocab["item_id"]
    planted_idx = item_vocab.filter(pl.col("item_id").cast(pl.Utf8).is_in(list(planted_items)))["index"].to_numpy()
    rows = rows.subset(~np.isin(rows.item, planted_idx))
    names = list(enc.spec_.scenario_names)
    order = [data.scenario_names.index(n) for n in names]  # planted matrix in the dataset's scenario order
    planted = data.transfer[np.ix_(order, order)]
    off = ~np.eye(len(names), dtype=bool)
    lso = leave_source_out_matrix(rec.model, enc, rows)
    attention = attention_transfer_matrix(rec.model, enc, rows)
    rho_lso = float(spearmanr(planted[off], np.asarray(lso["auc_drop"])[off]).statistic)
    rho_att = float(spearmanr(planted[off], np.asarray(attention["source_share"])[off]).statistic)

    cases = data.triggers.filter(pl.col("triggered") & (pl.col("role") == "test"))
    hits, used, skipped = 0, 0, 0
    for case in cases.iter_rows(named=True):
        explained = rec.explain_items(case["user_id"], case["target_scenario"], [case["target_item"]],
                                      at=case["target_time"], top_events=3)[0]
        # a trigger that fell into valid/test, or out of the window, is in no history: not a test case
        if case["trigger_item"] not in rec.history_items(case["user_id"], at=case["target_time"]):
            skipped += 1
            continue
        used += 1
        hits += any(e["item"] == case["trigger_item"] for e in explained.get("events", [])[:3])

    users_sample = ds.vocab["user_id"]["value"].to_list()[:31]
    times = []
    for i, user in enumerate(users_sample):
        start_t = time.perf_counter()
        rec.recommend(user, "vr_showroom", k=10, explain=True)
        if i:  # the first call loads Captum
            times.append(1000 * (time.perf_counter() - start_t))
    return {"seed": seed, "spearman_leave_source_out": rho_lso, "spearman_attention": rho_att,
            "top3_hits": hits, "top3_cases": used, "cases_trigger_not_in_history": skipped,
            "explain_ms": times, "leave_source_out": lso, "attention_share": attention["source_share"],
            "planted": planted.tolist(), "scenarios": names}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--triggers", type=int, default=5, help="planted trigger -> target pairs")
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "explain-faithfulness"))
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(int(THREADS))
    per_seed = [one_seed(seed, Path(args.work), args.users, args.epochs, args.triggers) for seed in range(args.seeds)]
    hits = sum(r["top3_hits"] for r in per_seed)
    cases = sum(r["top3_cases"] for r in per_seed)
    doc = {"spearman_leave_source_out": float(np.mean([r["spearman_leave_source_out"] for r in per_seed])),
           "spearman_attention": float(np.mean([r["spearman_attention"] for r in per_seed])),
           "top3_hit_rate": hits / cases if cases else float("nan"),
           "explain_ms_p50": statistics.median(t for r in per_seed for t in r["explain_ms"]),
           "seeds": args.seeds, "top3_cases": cases, "per_seed": per_seed, "context": context()}
    write_json(args.json, doc)
    print(json.dumps({k: doc[k] for k in ("spearman_leave_source_out", "spearman_attention", "top3_hit_rate",
                                          "explain_ms_p50", "seeds", "top3_cases")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
