"""What mist's `warm_scale: auto` changes on the Amazon warm protocol: each mist run of benchmarks/transfer.py's warm
work directories scored as the benchmark scored it (the scales its validation rows chose: the run's saved
predictions_test.npz and ranking_test.npz) and again at warm_scale 1 in every scenario, which is what `warm_scale:
off` gives with the same weights (training never reads the scale).

    python benchmarks/warm_scale_effect.py --json benchmarks/results/warm_scale_effect.json \
        --seeds 2022,2023,2024 benchmarks/work/transfer-s20w/amazon-PAIR-warm ...

Per (pair, domain) and seed: the chosen scale with its validation AUCs (run.json), test AUC, full-catalogue and
sampled-999 NDCG@10 at the chosen scales and at 1 (ranked exactly as `mistrec evaluate` ranked them: the same
sampled lists and query sample, their sizes read from the work directory's runs/benchmark-settings.json); per (pair,
domain) over the seeds given, paired bootstraps over users (AUC: `paired_bootstrap`; NDCG@10 per query:
`paired_bootstrap_mean`; 1,000 resamples, the per-seed differences averaged).
Check: the run's test rows scored now equal its saved predictions (the saved files are this code's scores). A seed
whose runs chose 1 everywhere is not scored again (the two variants are the same scores). The rule these figures
are read against: docs/benchmarks.md, "warm_scale".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, write_json


def ranking_settings(root: Path) -> tuple[int, int | None]:
    """The sampled list size and query sample the work directory's runs were ranked with (its benchmark settings)."""
    settings = json.loads((root / "runs" / "benchmark-settings.json").read_text())
    return int(settings["also_sampled"]), settings.get("max_queries")


VIEWS = ("full", "sampled")  # the two rankings: the full catalogue and the sampled lists


def views(sampled: int) -> dict[str, str]:
    """VIEWS' keys in per-query results, for sampled lists of `sampled` negatives."""
    return {"full": "full catalogue", "sampled": f"{sampled} sampled negatives"}


def one(root: Path, seed: int) -> dict[str, Any]:
    """One run's per-row and per-query figures, chosen and at 1, by domain."""
    from mistrec.data.prepared import PreparedDataset
    from mistrec.eval.evaluate import load_per_query
    from mistrec.eval.ranking import rank_full_catalogue
    from mistrec.metrics import auc
    from mistrec.train.artifact import load_run
    from mistrec.train.predict import predict

    run = root / "runs" / "mist" / f"seed-{seed}"
    doc = json.loads((run / "run.json").read_text())
    chosen = doc["result"]["selected"]["warm_scale"]
    model, enc, _ = load_run(run)
    warm: Any = getattr(model, "warm_scale", None)  # mist's buffer (saved with the weights)
    assert warm is not None
    names = enc.spec_.scenario_names
    ds = PreparedDataset.load(root / "prepared")
    rows = enc.rows(ds, "test")
    saved = np.load(run / "predictions_test.npz")
    per_query = load_per_query(run / "ranking_test.npz")
    assert np.array_equal(saved["user"], rows.user) and np.array_equal(saved["scenario"], rows.scenario)
    np.testing.assert_allclose(predict(model, enc, rows), saved["prob"], atol=1e-6)
    at_one: dict[str, Any] = {"prob": saved["prob"], "per_query": per_query}
    sampled, max_queries = ranking_settings(root)
    if bool((warm != 1).any()):
        warm.fill_(1.0)
        at_one = {"prob": predict(model, enc, rows),
                  "per_query": rank_full_catalogue(model, enc, ds, split="test", ks=(10,), also_sampled=sampled,
                                                   max_queries=max_queries).per_query}
    out = {}
    for s, name in enumerate(names, start=1):
        m = rows.scenario == s
        rec: dict[str, Any] = {"chosen": chosen[name]["chosen"], "valid_auc": chosen[name]["valid_auc"],
                               "label": rows.label[m], "user": rows.user[m],
                               "prob": {"chosen": saved["prob"][m], "one": at_one["prob"][m]}}
        rec["auc"] = {k: auc(rec["label"], v) for k, v in rec["prob"].items()}
        for key, view in views(sampled).items():
            a, b = per_query[view][name], at_one["per_query"][view][name]
            assert np.array_equal(a["user"], b["user"])  # the same queries, in the same order
            rec[key] = {"user": a["user"], "chosen": a["ndcg@10"], "one": b["ndcg@10"]}
        out[name] = rec
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--seeds", default="2022")
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    import torch

    from mistrec.metrics import paired_bootstrap, paired_bootstrap_mean

    torch.set_num_threads(int(THREADS))
    seeds = [int(s) for s in args.seeds.split(",")]
    results = []
    for root in map(Path, args.dirs):
        by_seed = {seed: one(root, seed) for seed in seeds}
        for name in by_seed[seeds[0]]:
            cells = [by_seed[seed][name] for seed in seeds]
            first = cells[0]
            assert all(np.array_equal(c[key]["user"], first[key]["user"]) for c in cells for key in VIEWS)
            assert all(np.array_equal(c["user"], first["user"]) for c in cells)
            rec: dict[str, Any] = {
                "pair": root.name, "domain": name, "seeds": seeds,
                "chosen": [c["chosen"] for c in cells], "valid_auc": [c["valid_auc"] for c in cells],
                "test_auc": {k: float(np.mean([c["auc"][k] for c in cells])) for k in ("chosen", "one")},
                "test_auc_by_seed": [c["auc"] for c in cells],
                "auc_paired": paired_bootstrap(first["label"], np.stack([c["prob"]["chosen"] for c in cells]),
                                               np.stack([c["prob"]["one"] for c in cells]), first["user"]),
            }
            for key in VIEWS:
                rec[f"ndcg@10_{key}"] = {k: float(np.mean([c[key][k].mean() for c in cells]))
                                         for k in ("chosen", "one")}
                rec[f"ndcg@10_{key}_paired"] = paired_bootstrap_mean(
                    np.stack([c[key]["chosen"] for c in cells]), np.stack([c[key]["one"] for c in cells]),
                    first[key]["user"])
            print(f"{root.name} {name}: scales {rec['chosen']}; test AUC {rec['test_auc']['chosen']:.4f} vs "
                  f"{rec['test_auc']['one']:.4f} at 1 (p {rec['auc_paired']['p_value']:.3f}); NDCG@10 full "
                  f"{rec['ndcg@10_full']['chosen']:.4f} vs {rec['ndcg@10_full']['one']:.4f} (p "
                  f"{rec['ndcg@10_full_paired']['p_value']:.3f}), sampled {rec['ndcg@10_sampled']['chosen']:.4f} vs "
                  f"{rec['ndcg@10_sampled']['one']:.4f} (p {rec['ndcg@10_sampled_paired']['p_value']:.3f})",
                  flush=True)
            results.append(rec)
    write_json(args.json, {"results": results, "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
