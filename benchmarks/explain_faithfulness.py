"""Are mist's explanations faithful? Checked on the synthetic platform, where the truth is planted.

    python benchmarks/explain_faithfulness.py --json benchmarks/results/explain_faithfulness.json --seeds 3
    python benchmarks/explain_faithfulness.py \
        --json benchmarks/results/explain_faithfulness_8000_balanced_history_only.json --seeds 3 \
        --users 8000 --balanced --lr 0.003 --epochs 12 --config benchmarks/configs/mist_history_only.yaml \
        --work benchmarks/work/explain-faithfulness-8000-balanced-history-only

Per seed, two mist runs on the synthetic platform (--users users, the planted transfer matrix T[target,
source], the temporal protocol; mist with its defaults or with the values of --config: mist_history_only.yaml
reads no user id, so the history carries all it knows of a user), each checking one planted truth:
1. the platform as generated (or with every scenario a quarter of each user's events, --balanced), for the
   transfer matrix;
2. the same platform with --triggers planted trigger -> target item pairs (a user clicks the target item in
   vr_showroom if and only if the trigger item from home_feed is in their history), for the causes.
They are apart because a model trained on the trigger pairs learns a home_feed -> vr_showroom association of
its own, which the matrix would mix with T. Then:

- spearman_leave_source_out: Spearman correlation between the planted T and the learned leave-source-out
  matrix (AUC of the target scenario minus its AUC with the source scenario's events dropped from every test
  history), over the 12 off-diagonal entries; the mean over seeds.
- spearman_attention: the same for mist's attention-based matrix (mean interest-level source share).
- top3_hit_rate: over the test cases whose click was caused by a trigger (the trigger is in the history),
  the share whose explanation (events ranked by integrated gradients) has the trigger event in its top 3.
- per seed, trigger_auc: whether mist learned the planted causes at all (AUC of its score for the target item,
  over the test cases with and without the trigger in their history; 0.5: not learned).
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
from synthetic_ceiling import BALANCED


def one_seed(seed: int, work: Path, users: int, epochs: int, triggers: int,
             model_values: dict[str, Any] | None, balanced: bool, lr: float) -> dict[str, Any]:
    import numpy as np
    import polars as pl
    from scipy.stats import spearmanr

    from mistrec import metrics
    from mistrec.data import SyntheticConfig, generate, load_dataset_config, prepare
    from mistrec.eval.evaluate import attention_transfer_matrix
    from mistrec.eval.explain import Recommender, leave_source_out_matrix
    from mistrec.eval.fit import fit_run
    from mistrec.train import TrainConfig, predict

    def trained(name: str, cfg: SyntheticConfig) -> tuple[Any, Recommender]:
        data = generate(cfg)
        root = work / f"seed-{seed}" / name
        if not (root / "run" / "run.json").is_file():
            yaml_path = data.write(root / "raw")
            prepare(load_dataset_config(yaml_path), root / "prepared", history_length=50, quiet=True)
            fit_run(root / "prepared", "mist", root / "run", model_values=model_values,
                    train_cfg=TrainConfig(epochs=epochs, batch_size=1024, lr=lr, seed=seed), quiet=True)
        return data, Recommender.load(root / "run")

    # 1. The transfer matrix, on the platform without planted triggers: the trigger pairs are home_feed ->
    # vr_showroom causes, so a model trained on them learns a home_feed -> vr_showroom association of its own
    # that the leave-source-out matrix would mix with the planted T.
    mix = BALANCED if balanced else {}
    data, rec = trained("transfer", SyntheticConfig(n_users=users, seed=seed, **mix))
    enc, ds = rec.enc, rec.ds
    rows = enc.rows(ds, "test")
    names = list(enc.spec_.scenario_names)
    order = [data.scenario_names.index(n) for n in names]  # planted matrix in the dataset's scenario order
    planted = data.transfer[np.ix_(order, order)]
    off = ~np.eye(len(names), dtype=bool)
    lso = leave_source_out_matrix(rec.model, enc, rows)
    attention = attention_transfer_matrix(rec.model, enc, rows)
    rho_lso = float(spearmanr(planted[off], np.asarray(lso["auc_drop"])[off]).statistic)
    rho_att = float(spearmanr(planted[off], np.asarray(attention["source_share"])[off]).statistic)
    test_auc = json.loads((work / f"seed-{seed}" / "transfer" / "run" / "metrics.json").read_text())["test"]

    # 2. The planted causes, on the same platform (same seed) with the trigger pairs.
    data, rec = trained("triggers", SyntheticConfig(n_users=users, triggers=triggers, seed=seed, **mix))
    enc, ds = rec.enc, rec.ds
    rows = enc.rows(ds, "test")
    item_vocab = ds.vocab["item_id"]
    target_idx = item_vocab.filter(pl.col("item_id").cast(pl.Utf8).is_in(data.triggers["target_item"].to_list())
                                   )["index"].to_numpy()
    trigger_rows = rows.subset(np.isin(rows.item, target_idx))  # the test cases' target events
    trigger_auc = float(metrics.auc(trigger_rows.label, predict(rec.model, enc, trigger_rows))) if len(
        trigger_rows) else float("nan")

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
            "transfer_run_test_auc": test_auc,
            "trigger_auc": trigger_auc, "top3_hits": hits, "top3_cases": used, "cases_trigger_not_in_history": skipped,
            "explain_ms": times, "leave_source_out": lso, "attention_share": attention["source_share"],
            "planted": planted.tolist(), "scenarios": names}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--triggers", type=int, default=5, help="planted trigger -> target pairs")
    ap.add_argument("--config", help="a YAML of mist's config values (default: mist's defaults)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--balanced", action="store_true",
                    help="every scenario a quarter of each user's events (see benchmarks/synthetic_ceiling.py)")
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work" / "explain-faithfulness"))
    args = ap.parse_args()
    import yaml

    model_values = yaml.safe_load(Path(args.config).read_text()) if args.config else None

    import numpy as np
    import torch

    torch.set_num_threads(int(THREADS))
    per_seed = [one_seed(seed, Path(args.work), args.users, args.epochs, args.triggers, model_values,
                         args.balanced, args.lr)
                for seed in range(args.seeds)]
    hits = sum(r["top3_hits"] for r in per_seed)
    cases = sum(r["top3_cases"] for r in per_seed)
    doc = {"users": args.users, "epochs": args.epochs, "lr": args.lr, "triggers": args.triggers,
           "spearman_leave_source_out": float(np.mean([r["spearman_leave_source_out"] for r in per_seed])),
           "spearman_attention": float(np.mean([r["spearman_attention"] for r in per_seed])),
           "top3_hit_rate": hits / cases if cases else float("nan"),
           "explain_ms_p50": statistics.median(t for r in per_seed for t in r["explain_ms"]),
           "seeds": args.seeds, "top3_cases": cases, "mist_config": model_values, "balanced": args.balanced,
           "per_seed": per_seed,
           "context": context()}
    write_json(args.json, doc)
    print(json.dumps({k: doc[k] for k in ("spearman_leave_source_out", "spearman_attention", "top3_hit_rate",
                                          "explain_ms_p50", "seeds", "top3_cases")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
