"""One probe of mist's content fusion on the cold-item setting of benchmarks/cold_start.py (seed 0).

    python benchmarks/content_fusion_probe.py VARIANT 'MODEL_VALUES_JSON' TAG [THREADS]
    python benchmarks/content_fusion_probe.py oracle '{"item_id_dropout": 0.5, "content_fusion": "add"}' add05 1

VARIANT is a prepared directory of benchmarks/work/cold-start/cold-item-transfer-seed0 (prepared-VARIANT: run
benchmarks/cold_start.py --seeds 1 --only cold-item first; other text encoders or dimensions are prepared from its
raw data the same way). Trains mist with the model values given (10 epochs, seed 0) under /tmp/probe-runs and
prints the test AUC over the held-out items' rows (cold) and the rest (warm). The figures of the probes run on
2026-12-01 are in benchmarks/results/content_fusion_probes.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, auc_or_nan, mist_test_scores


def main() -> int:
    import torch

    variant, values, tag = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    base = REPO / "benchmarks" / "work" / "cold-start" / "cold-item-transfer-seed0"
    got = mist_test_scores(base / f"prepared-{variant}", Path(f"/tmp/probe-runs/{variant}-{tag}"), 10, 0, values)
    cold = got["new_item"]
    print(variant, tag, values, "cold", round(auc_or_nan(got["label"][cold], got["p"][cold]), 4), "warm",
          round(auc_or_nan(got["label"][~cold], got["p"][~cold]), 4), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
