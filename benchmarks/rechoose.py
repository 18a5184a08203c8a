"""Makes a saved mist run's after-training choices on the validation ranking again with the current code (mist's
`rank_exposure: auto`, then `co_scale: auto`, in the order `mistrec train` makes them; with `--validation-rounds`
first the choices made on the validation rows, `cold_id`, `cold_scale`, `prior_tilt`, `warm_scale`, fitting
`prior_tilt`'s center on the training rows where the run was saved without it) and writes them into the run
(weights.pt's buffers, run.json's `result.selected`), removing its eval.json so that `mistrec benchmark` (and
benchmarks/transfer.py) evaluates it again. Training reads neither choice, so the run is then what training it
again with the current code gives, without the training. The run's earlier choices are kept in run.json under
`result.selected_before_rechoose`. `--settings prior_tilt=auto` loads the run with an after-training option it was
trained without and records it in run.json's model config; with `co_own=auto` the `co_items` table, saved at the
places training read, is made again deeper from the run's training rows (its saved places first, checked).

    python benchmarks/rechoose.py benchmarks/work/s31-syn/synthetic-transfer-4000u/runs/mist/seed-2022 ...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_settings

from mistrec.eval.evaluate import load_run_and_data
from mistrec.eval.ranking import ranking_choices
from mistrec.models.base import SelectsOnValidation
from mistrec.models.mist import Mist
from mistrec.train.artifact import json_text
from mistrec.train.distributed import Ranks
from mistrec.train.loop import TrainConfig, select_on_validation


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--validation-rounds", action="store_true",
                    help="first make the choices on the validation rows again (SelectsOnValidation)")
    ap.add_argument("--settings", help="KEY=VALUE,...: model settings that do not change the trained weights (an "
                    "after-training choice's, e.g. prior_tilt=auto), the run loaded with them and its run.json's "
                    "model config updated so that later loads build the same model")
    args = ap.parse_args()
    try:
        settings = parse_settings(args.settings)
    except ValueError as exc:
        ap.error(str(exc))
    torch.set_num_threads(1)
    for run in map(Path, args.runs):
        model, enc, _meta, ds = load_run_and_data(run, settings=settings)
        if isinstance(model, Mist) and model.co is not None and model.co.saved_places is not None:
            # loaded with a deeper table than it was saved with (`co_own`): the rest made from its training rows
            model.refit_co_table(enc.indexed(enc.rows(ds, "train")))
        chosen: dict[str, object] = {}
        if args.validation_rounds and isinstance(model, SelectsOnValidation):
            if isinstance(model, Mist) and model.tilt_center is not None and bool(torch.isnan(model.tilt_center)):
                ix = enc.indexed(enc.rows(ds, "train"))  # saved before `prior_tilt`: its center from the rows
                model.fit_tilt_center(ix.user, ix.label)
            chosen.update(select_on_validation(model, enc, enc.rows(ds, "valid"), TrainConfig(), Ranks(), again=True))
        chosen.update(ranking_choices(model, enc, ds))
        doc = json.loads((run / "run.json").read_text())
        before = doc["result"].get("selected", {})
        doc["result"].setdefault("selected_before_rechoose", {k: before.get(k) for k in chosen})
        doc["result"]["selected"] = {**before, **chosen}
        doc["model_config"].update(settings or {})
        torch.save(model.state_dict(), run / "weights.pt")
        (run / "run.json").write_text(json_text(doc))
        (run / "eval.json").unlink(missing_ok=True)
        print(run, {k: v for k, v in chosen.items() if k in ("rank_exposure", "prior_tilt")}, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
