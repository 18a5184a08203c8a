"""A trained run's test AUC with the current code's after-training choices (`SelectsOnValidation`: mist's cold_id
and cold_scale), made again on its validation rows: what training it again would give where training itself has
not changed and is deterministic, without the training. Nothing in the run directory is written.

    python benchmarks/resettle.py --json benchmarks/results/resettle_ml1m_age.json \
        benchmarks/work/ml-1m-age/ml-1m-age/benchmark-runs-mist_co_cross/mist/seed-2022

Per run: the choices recorded when it was trained and the ones made now, and test AUC per scenario and overall
(mistrec.metrics.scenario_aucs) with the recorded buffers as loaded by the current code and with the new choices.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import THREADS, context, write_json


def one(run: Path) -> dict[str, Any]:
    import warnings

    from mistrec import metrics
    from mistrec.data.prepared import PreparedDataset
    from mistrec.models.base import SelectsOnValidation
    from mistrec.train.artifact import load_run
    from mistrec.train.distributed import Ranks
    from mistrec.train.loop import TrainConfig, select_on_validation
    from mistrec.train.predict import predict

    doc = json.loads((run / "run.json").read_text())
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        model, enc, _ = load_run(run)
    ds = PreparedDataset.load(Path(doc["data"]))
    test, valid = enc.rows(ds, "test"), enc.rows(ds, "valid")
    names = enc.spec_.scenario_names

    def scored() -> dict[str, Any]:
        overall, per, _ = metrics.scenario_aucs(test.label, predict(model, enc, test), test.scenario)
        return {"overall": overall, "by_scenario": {names[s - 1]: v for s, v in per.items() if s > 0}}

    before = scored()
    assert isinstance(model, SelectsOnValidation)
    selected = select_on_validation(model, enc, valid, TrainConfig(), Ranks(), again=True)
    after = scored()
    print(f"{run}: test AUC {before['overall']:.5f} as loaded -> {after['overall']:.5f} with the choices made now",
          flush=True)
    return {"run": str(run), "load_warnings": [str(w.message) for w in said],
            "selected_recorded": doc["result"].get("selected", {}), "selected_now": selected,
            "test_auc_as_loaded": before, "test_auc_now": after}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(THREADS))
    write_json(args.json, {"results": [one(Path(r)) for r in args.runs], "context": context()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
