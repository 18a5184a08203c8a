"""Prepared data + model name -> a trained, evaluated, saved run: what `mistrec train` does."""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mistrec.data.atomic import atomic_dir, check_out
from mistrec.data.prepared import PreparedDataset
from mistrec.errors import ArtifactError, ConfigError
from mistrec.eval.pointwise import conversion_metrics, evaluate_rows
from mistrec.eval.ranking import ranking_choices
from mistrec.eval.results import Metrics
from mistrec.features import EncodedRows, FeatureEncoder
from mistrec.features.scenario_text import resolution_text
from mistrec.models import REGISTRY, build_model, conversion_models, model_config
from mistrec.models.base import Model
from mistrec.models.layers import attach_content
from mistrec.train.artifact import json_text, load_run, save_run
from mistrec.train.checkpoint import Checkpointer, fingerprint
from mistrec.train.distributed import Ranks, ranks
from mistrec.train.loop import TrainConfig, predict_tasks, seed_everything, train
from mistrec.train.stream import StreamedRows
from mistrec.train.warm import id_rows, warm_start

__all__ = ["fit_run"]


def fit_run(
    data: str | Path, name: str, out: str | Path, *, model_values: dict[str, Any] | None = None,
    train_cfg: TrainConfig | None = None, quiet: bool = False, train_scenarios: list[str] | None = None,
    init_from: str | Path | None = None, force: bool = False,
) -> dict[str, Any]:
    """Fits the encoder on the training split, trains model `name`, evaluates valid and test, saves the run.

    Args:
        data: a prepared directory.
        name: a registry name.
        out: the run directory to write.
        model_values: model config values (ignored with `init_from`, whose config is kept).
        train_cfg: the training configuration.
        quiet: no progress output.
        train_scenarios: train (and early-stop) on these scenarios' rows only: pre-training on source
            scenarios, or fine-tuning on a target. Test metrics always cover every scenario.
        init_from: a run directory on the same prepared data whose weights (and encoder) start the training:
            the fine-tuning half of pre-train -> fine-tune.
        force: replace a finished run already in `out` (otherwise an error, before any work). The run is
            written whole or not at all (mistrec.data.atomic): a killed training leaves `out` as it was.

    Returns the metrics written to OUT/metrics.json.
    """
    train_cfg = train_cfg or TrainConfig()
    out = Path(out)
    check_out(out, _is_run, "run", force)
    if init_from is not None and model_values:
        raise ConfigError("--init-from keeps the model config of the run it starts from: drop the model config.")
    if train_cfg.stream and train_scenarios:
        raise ConfigError("--train-scenarios is not supported with stream: true yet: train in memory.")
    ds = PreparedDataset.load(data, rows=not train_cfg.stream)
    if init_from is not None:
        model, enc, meta = load_run(init_from)
        if meta["model"] != name:
            raise ConfigError(f"--init-from {init_from} holds a {meta['model']} model, not {name}.")
        cfg = model_config(name, _plain(meta["model_config"]))
        if enc.dataset_fingerprint_ != ds.manifest["fingerprint"]:  # other data: carry the weights over by id
            model, enc = _warm_start(model, enc, meta, ds, name, cfg, train_cfg, init_from, quiet)
    else:
        cfg = model_config(name, model_values)  # fails on a bad name or key before any data is read
        enc = FeatureEncoder(**REGISTRY[name].model.encoder_args(cfg)).fit(ds)  # type: ignore[arg-type]
        if not quiet and ranks().main:  # say how each scenario without training rows is read
            for scenario, how in enc.scenario_resolution_.items():
                print(f"New scenario {scenario}: {resolution_text(how)}", file=sys.stderr)
        seed_everything(train_cfg.seed)
        model = build_model(name, enc.spec_, cfg)
        attach_content(model, enc.item_content_)
    train_cfg = train_cfg.resolved(model)  # the learning rate and batch size the run trains with, as saved
    rows: dict[str, EncodedRows | StreamedRows]
    if train_cfg.stream:  # read a shard at a time (mistrec.train.stream)
        rows = {split: StreamedRows(ds, enc, split, train_cfg.stream_workers) for split in ("train", "valid", "test")}
        fit_rows = dict(rows)
    else:
        in_memory = {split: enc.rows(ds, split) for split in ("train", "valid", "test")}
        rows = dict(in_memory)
        fit_rows = {split: _only(in_memory[split], enc.spec_.scenario_names, train_scenarios)
                    for split in ("train", "valid")}
    if enc.spec_.has_conversion and not model.predicts_conversion and not quiet:  # say what is not learned
        print(f"The data has conversions; {name} predicts clicks only (conversion: "
              f"{', '.join(conversion_models())}).", file=sys.stderr)
    where = ranks()
    saving = _checkpointer(out, name, cfg, train_cfg, ds, where, train_scenarios, init_from)
    t0 = time.perf_counter()
    result = train(model, enc, fit_rows["train"], fit_rows["valid"], train_cfg, quiet=quiet or not where.main,
                   checkpoint=saving)
    if not where.main:  # rank 0 evaluates and writes the run; the others' work is done
        return {"model": name, "rank": where.rank, "train": result.to_dict()}
    # mist's rank_exposure: auto, then co_scale: auto, on the validation users' ranking
    result.selected.update(ranking_choices(model, enc, ds, quiet, stream=train_cfg.stream))
    names = enc.spec_.scenario_names
    evaluated = {split: _evaluate(model, enc, r, names, train_cfg.eval_batch_size).to_json()
                 for split, r in rows.items()
                 if split != "train" and len(r)}
    summary = {
        "model": name, "seed": train_cfg.seed, "dataset": {"name": ds.manifest["name"],
                                                           "fingerprint": ds.manifest["fingerprint"]},
        "protocol": ds.manifest["protocol"]["name"], "train": result.to_dict(),
        "train_scenarios": train_scenarios or "all", "init_from": None if init_from is None else str(init_from),
        "wall_seconds": round(time.perf_counter() - t0, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": torch.get_num_threads(), **evaluated,
    }
    extra = {"data": str(Path(data).resolve()), "result": result.to_dict(), "train_scenarios": train_scenarios,
             "init_from": summary["init_from"]}
    with atomic_dir(out, is_result=_is_run, what="run", force=force) as tmp:
        save_run(tmp, name, model, cfg, train_cfg, enc, extra)
        (tmp / "metrics.json").write_text(json_text(summary))
    if saving is not None:
        saving.clear()  # the run is written: nothing left to resume
    return summary


def _checkpointer(out: Path, name: str, cfg: Any, train_cfg: TrainConfig, ds: PreparedDataset, where: Ranks,
                  train_scenarios: list[str] | None, init_from: str | Path | None) -> Checkpointer | None:
    """The run's checkpoints, in OUT.checkpoint/ beside the run (the run itself is written whole at the end), keyed
    to everything that must match for a restart to continue the same training."""
    if not train_cfg.checkpoint_every:
        return None
    key = fingerprint(model=name, model_config=asdict(cfg), train=asdict(replace(train_cfg, checkpoint_every=0)),
                      data=ds.manifest["fingerprint"], world=where.world, train_scenarios=train_scenarios,
                      init_from=None if init_from is None else str(Path(init_from).resolve()))
    return Checkpointer(out.parent / f"{out.name}.checkpoint", train_cfg.checkpoint_every, key)


def _warm_start(old: Model, old_enc: FeatureEncoder, meta: dict[str, Any], ds: PreparedDataset, name: str,
                cfg: Any, train_cfg: TrainConfig, init_from: str | Path, quiet: bool) -> tuple[Model, FeatureEncoder]:
    """A model for `ds` that starts from the weights of a run trained on other prepared data (mistrec.train.warm):
    the ids are matched through both datasets' vocabularies, so the run's prepared data must still be there."""
    old_data = Path(str(meta.get("data") or ""))
    if not (old_data / "manifest.json").is_file():
        raise ArtifactError(f"--init-from {init_from} was trained on other prepared data ({old_data}), which is not "
                            "there any more: warm start on new data matches users and items through it.")
    old_ds = PreparedDataset.load(old_data)
    if any("bucket" in d.vocab["user_id"].columns for d in (old_ds, ds)):
        raise ConfigError(f"--init-from {init_from}: warm start on other data matches users by id, row for row; with "
                          "hashed user ids (the dataset's `hashing:`) a row is a bucket shared by several users. "
                          "Train from the start on the new data.")
    enc = FeatureEncoder(**REGISTRY[name].model.encoder_args(cfg)).fit(ds)  # type: ignore[arg-type]
    seed_everything(train_cfg.seed)
    model = build_model(name, enc.spec_, cfg)
    report = warm_start(model, old.state_dict(), old_enc.spec_, enc.spec_, id_rows(old_ds, ds, "user_id"),
                        id_rows(old_ds, ds, "item_id"))
    attach_content(model, enc.item_content_)  # this data's content vectors, whatever the old run held
    if not quiet:
        print(f"Warm start from {init_from}, trained on other data: {report.summary()}", file=sys.stderr)
    return model, enc


def _is_run(path: Path) -> bool:
    return (path / "run.json").is_file()


def _evaluate(model: Model, enc: FeatureEncoder, rows: EncodedRows | StreamedRows, names: tuple[str, ...],
              batch_size: int) -> Metrics:
    """The click metrics; with a conversion head, the `conversion` block too."""
    if isinstance(rows, StreamedRows):
        scored = rows.score(model, Ranks(), batch_size)  # rank 0 alone: the other ranks have finished
        assert scored is not None
        click, cvr, rows = scored.click, scored.cvr, scored.rows()
    else:
        click, cvr = predict_tasks(model, enc, rows, batch_size)
    result = evaluate_rows(click, rows, names)
    return result if cvr is None else replace(result, conversion=conversion_metrics(click, cvr, rows, names))


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _only(rows: EncodedRows, names: tuple[str, ...], keep: list[str] | None) -> EncodedRows:
    """The rows of the named scenarios (all rows when `keep` is None)."""
    if keep is None:
        return rows
    unknown = [s for s in keep if s not in names]
    if unknown:
        raise ConfigError(f"Unknown scenario(s) {', '.join(unknown)} in --train-scenarios. Known scenarios: "
                          f"{', '.join(names)}.")
    return rows.subset(np.isin(rows.scenario, [names.index(s) + 1 for s in keep]))
