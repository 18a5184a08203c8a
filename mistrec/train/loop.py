"""One trainer for every neural model: BCE on clicks, Adam or AdamW, early stopping on the validation mean of
per-scenario AUC that restores the best weights, seeded, with a progress bar showing loss and AUC.

With conversions in the data and a model that predicts them, the second task is trained as in ESMM (Ma et al.,
SIGIR 2018): on every row, BCE of p(click) * p(conversion | click) against click-and-conversion, added to the
click loss with weight `conversion_weight`; rows whose conversion is unknown add only the click loss.

Batches come from pre-encoded arrays (`FeatureEncoder.batch`): no Python per sample in the hot loop.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from mistrec import metrics
from mistrec.data.negatives import FreshNegatives, ScenarioPools
from mistrec.errors import ConfigError
from mistrec.features import EncodedRows, FeatureEncoder
from mistrec.models.base import (
    Calibrates,
    ChoosesOnRanking,
    FitsDirectly,
    Model,
    Prepares,
    PreparesInChunks,
    SelectsOnValidation,
)
from mistrec.train.checkpoint import Checkpointer, random_states, set_random_states
from mistrec.train.distributed import Ranks, ranks
from mistrec.train.predict import predict, predict_tasks
from mistrec.train.step import Objective, Step, ctcvr_loss, ema_update, scenario_weights
from mistrec.train.stream import Scored, StreamedRows

# predict, predict_tasks and ctcvr_loss live in predict.py and step.py; named here too, where callers found them
__all__ = ["TrainConfig", "TrainResult", "ctcvr_loss", "predict", "predict_tasks", "seed_everything",
           "select_on_validation", "train"]


@dataclass(frozen=True)
class TrainConfig:
    """How the one trainer trains (docs/training.md): optimiser, learning rate and batch size (None: the model's
    own, `resolved`), decay, epochs with early stopping on the validation AUC, seed, scenario weighting or
    sampling, the conversion loss's weight and weight averaging."""

    optimizer: Literal["adam", "adamw"] = "adam"
    # None: the model's own setting (`Model.train_defaults`: mist trains at 3e-3 on batches of 1,024), else
    # DEFAULT_LR and DEFAULT_BATCH_SIZE; `resolved(model)` gives the values a run trains with
    lr: float | None = None
    weight_decay: float = 0.0
    lr_decay: float = 1.0  # the learning rate is multiplied by this after every epoch (1: constant)
    batch_size: int | None = None
    epochs: int = 10
    patience: int = 2  # epochs without a better validation AUC before stopping
    seed: int = 2022
    scenario_weights: Literal["none", "balanced"] = "none"  # loss weight per scenario ~ 1 / its training rows
    sampling: Literal["uniform", "balanced"] = "uniform"  # each scenario drawn equally often
    eval_batch_size: int = 16384
    conversion_weight: float = 1.0  # the conversion (CTCVR) loss's weight, when the data and model have that task
    # > 0: keep an exponential moving average of the weights (Polyak averaging; decay per step), validate it and
    # keep it as the trained model instead of the raw weights. 0: off.
    ema: float = 0.0
    # > 0: a checkpoint every this many optimisation steps, resumed by the same command after a kill
    # (mistrec.train.checkpoint; `mistrec train` keeps it in OUT.checkpoint/). 0: none.
    checkpoint_every: int = 0
    # read the prepared data a shard of whole users at a time instead of whole (mistrec.train.stream; pointwise
    # models in one stage), by this many DataLoader worker processes (0: the training process reads them; on 2
    # cores a worker competes with the training threads: one epoch of 1M rows took 89 s with 1, 69 s with 0)
    stream: bool = False
    stream_workers: int = 0
    # where the data's negatives were sampled when it was prepared (implicit data): "fixed" trains on that one
    # draw; "fresh" draws each training negative's item again every time its row enters a batch (mistrec.data.
    # negatives.FreshNegatives; docs/training.md, "Sampled negatives"). Logged negatives are never redrawn.
    negatives: Literal["fixed", "fresh"] = "fixed"

    def validate(self) -> None:
        checks = [
            (self.lr is None or self.lr > 0, "lr", "a number > 0"),
            (0 < self.lr_decay <= 1, "lr_decay", "a number in (0, 1]"),
            (self.batch_size is None or self.batch_size >= 1, "batch_size", "an int >= 1"),
            (self.epochs >= 1, "epochs", "an int >= 1"),
            (self.patience >= 1, "patience", "an int >= 1"),
            (self.conversion_weight >= 0, "conversion_weight", "a number >= 0"),
            (0.0 <= self.ema < 1.0, "ema", "a number in [0, 1) (0: off)"),
            (self.checkpoint_every >= 0, "checkpoint_every", "an int >= 0 (0: no checkpoints)"),
            (self.stream_workers >= 0, "stream_workers", "an int >= 0 (0: read in the training process)"),
        ]
        for ok, name, rule in checks:
            if not ok:
                raise ConfigError(f"The '{name}' parameter of TrainConfig must be {rule}. "
                                  f"Got {getattr(self, name)!r} instead.")

    def resolved(self, model: Model) -> TrainConfig:
        """The settings `model` trains with: the ones given, then the model's own, then the defaults."""
        own = model.train_defaults
        lr = self.lr if self.lr is not None else float(own.get("lr", DEFAULT_LR))
        batch_size = self.batch_size if self.batch_size is not None else int(own.get("batch_size", DEFAULT_BATCH_SIZE))
        return replace(self, lr=lr, batch_size=batch_size)

    @property
    def learning_rate(self) -> float:
        if self.lr is None:
            raise ValueError("TrainConfig.lr is unresolved: call resolved(model) first.")
        return self.lr

    @property
    def batch(self) -> int:
        if self.batch_size is None:
            raise ValueError("TrainConfig.batch_size is unresolved: call resolved(model) first.")
        return self.batch_size


DEFAULT_LR = 1e-3
DEFAULT_BATCH_SIZE = 4096


@dataclass
class TrainResult:
    """best_score: the validation mean of per-scenario AUC, or minus the training loss without validation rows."""

    best_epoch: int
    best_score: float
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    train_samples: int = 0
    selected: dict[str, Any] = field(default_factory=dict)  # what the validation rows settled (SelectsOnValidation)

    @property
    def samples_per_second(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "train_samples_per_second": round(self.samples_per_second, 1)}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _epoch_order(rng: np.random.Generator, scenario: np.ndarray, sampling: str) -> np.ndarray:
    if sampling == "uniform":
        return rng.permutation(len(scenario))
    counts = np.bincount(scenario)
    p = 1.0 / counts[scenario]
    return rng.choice(len(scenario), size=len(scenario), replace=True, p=p / p.sum())


def _fit_direct(model: Model, enc: FeatureEncoder, train_rows: EncodedRows, valid_rows: EncodedRows | None,
                cfg: TrainConfig) -> TrainResult:
    assert isinstance(model, FitsDirectly)
    start = time.perf_counter()
    model.fit_direct(enc.indexed(train_rows))
    if isinstance(model, Calibrates):  # scores -> probabilities, fitted on the training rows
        model.calibrate(enc, train_rows)
    seconds = time.perf_counter() - start
    record: dict[str, Any] = {"epoch": 0, "train_loss": float("nan"), "seconds": round(seconds, 3),
                              "fitted": "closed form"}
    score = float("nan")
    if valid_rows is not None and len(valid_rows):
        prob = predict(model, enc, valid_rows, cfg.eval_batch_size)
        overall, _, score = metrics.scenario_aucs(valid_rows.label, prob, valid_rows.scenario)
        record["valid_mean_scenario_auc"], record["valid_auc"] = score, overall
    return TrainResult(best_epoch=0, best_score=score, history=[record], train_seconds=seconds,
                       train_samples=len(train_rows))


def _run_epoch(steps: Iterable[Callable[[], tuple[float, int]]], n_batches: int, label: str, quiet: bool,
               position: _Position, on_step: Callable[[], None], where: Ranks) -> tuple[float, int]:
    """Takes the epoch's steps from `position.batch` on (a resumed epoch starts past its first batches), each
    returning this rank's summed loss and rows; returns the epoch's mean loss over every rank and the rows seen.
    `on_step` runs after every step."""
    bar = tqdm(steps, desc=label, disable=True if quiet else None, leave=False, initial=position.batch,
               total=n_batches)
    for take in bar:
        loss_sum, n = take()
        position.batch, position.total, position.seen = position.batch + 1, position.total + loss_sum, \
            position.seen + n
        on_step()
        if position.batch % 10 == 1:
            bar.set_postfix(loss=f"{position.total / max(position.seen, 1):.4f}")
    bar.close()
    total, seen = where.sum(position.total, position.seen)
    return total / max(seen, 1), int(seen)


@dataclass
class _Position:
    """Where a stage is: its epoch, the next batch of that epoch, and the epoch's loss so far (this rank's)."""

    epoch: int
    batch: int = 0
    total: float = 0.0
    seen: int = 0


def train(
    model: Model, enc: FeatureEncoder, train_rows: EncodedRows | StreamedRows,
    valid_rows: EncodedRows | StreamedRows | None, cfg: TrainConfig, quiet: bool = False,
    checkpoint: Checkpointer | None = None,
) -> TrainResult:
    """Trains `model` in place; with validation rows, stops early and restores the best epoch's weights.

    Models fitted in closed form (`fit_direct`) are fitted once; BPR models (`loss_kind == 'bpr'`) train on the
    positives, each against an item drawn from its scenario's training items. A model with several training
    stages (`Model.stages`: the cross-domain models' pre-training, then their transfer) gets each in turn, with
    its own optimiser over the parameters `begin_stage` leaves trainable, on the rows it returns, each stage
    stopped early and restored to its best epoch on the same validation rows.

    With `checkpoint`, writes one every `checkpoint.every` steps and first resumes from the one there (mistrec.
    train.checkpoint). Under torchrun the processes share the work (mistrec.train.distributed). `StreamedRows`
    are read a shard at a time (mistrec.train.stream).
    """
    cfg = cfg.resolved(model)
    seed_everything(cfg.seed)
    if isinstance(train_rows, StreamedRows):
        _check_streamable(model, cfg, checkpoint)
    elif isinstance(model, FitsDirectly):
        assert not isinstance(valid_rows, StreamedRows)
        return _fit_direct(model, enc, train_rows, valid_rows, cfg)
    where = ranks()
    # what models that derive structure from the rows are handed
    if isinstance(train_rows, StreamedRows):
        if isinstance(model, PreparesInChunks):  # a shard at a time: memory does not grow with the rows
            model.setup_chunks(train_rows.indexed_chunks())
        elif isinstance(model, Prepares):
            model.setup(train_rows.indexed())
        indexed = enc.indexed(_NO_ROWS)  # nothing else reads them: staged models are not streamed
    else:
        indexed = enc.indexed(train_rows)
        if isinstance(model, Prepares):
            model.setup(indexed)
    if where.distributed:  # dropout and other torch randomness per rank; the weights come from rank 0 (DDP)
        torch.manual_seed(cfg.seed + where.rank)
    rng = np.random.default_rng(cfg.seed)  # the epoch orders and negatives: alike on every rank
    result = TrainResult(best_epoch=0, best_score=float("-inf"))
    resume = checkpoint.load() if checkpoint is not None else None
    if checkpoint is not None and resume is not None and where.main:  # said even when quiet: not from the start
        tqdm.write(f"resuming from {checkpoint.path}: stage {resume['stage'] + 1}, epoch "
                   f"{resume['position']['epoch']}, after batch {resume['position']['batch']}", file=sys.stderr)
    for i, stage in enumerate(model.stages):
        if resume is not None and i < resume["stage"]:
            continue  # finished before the checkpoint: its result is in the checkpoint's weights and records
        rows = model.begin_stage(stage, indexed)
        state = resume if resume is not None and i == resume["stage"] else None
        _train_stage(model, enc, train_rows, valid_rows, cfg, rng, result, rows,
                     stage if len(model.stages) > 1 else None, quiet, _Saving(checkpoint, i, where), state)
    model.begin_stage(None, indexed)  # every parameter trainable again, the model in its final mode
    if isinstance(model, SelectsOnValidation) and valid_rows is not None and len(valid_rows):
        result.selected = select_on_validation(model, enc, valid_rows, cfg, where)
    if isinstance(model, Calibrates):  # ranking (BPR) scores -> probabilities, fitted on training rows
        assert isinstance(train_rows, EncodedRows)  # a calibrated model is not streamable (_check_streamable)
        model.calibrate(enc, train_rows)
    return result


@dataclass
class _Saving:
    """A stage's checkpointing: where to, which stage, and this rank (rank 0 writes)."""

    to: Checkpointer | None
    stage: int
    where: Ranks


def _train_stage(model: Model, enc: FeatureEncoder, train_rows: EncodedRows | StreamedRows,
                 valid_rows: EncodedRows | StreamedRows | None,
                 cfg: TrainConfig, rng: np.random.Generator, result: TrainResult, rows: np.ndarray | None,
                 stage: str | None, quiet: bool, saving: _Saving, state: dict[str, Any] | None) -> None:
    """The epochs of one stage (every epoch of a single-stage model): updates `result` in place. `state`: the
    checkpoint this stage resumes from."""
    bpr, where = model.loss_kind == "bpr", saving.where
    quiet = quiet or not where.main
    options = model.stage_options(stage) if stage is not None else {}
    batch_size, early = int(options.get("batch_size", cfg.batch)), bool(options.get("early_stopping", True))
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    # fused: one kernel over all parameters instead of a pass per operation, the same Adam to float rounding
    # (3e-8 after 33 steps): over mist's 5.3 M parameters at 200,000 users 9.8 ms against 44.3 ms a step, 2 threads
    # (benchmarks/optimizer_step.py); the part of a step that grows with the vocabulary
    opt = opt_cls([p for p in model.parameters() if p.requires_grad], lr=float(options.get("lr", cfg.learning_rate)),
                  weight_decay=cfg.weight_decay, fused=True)
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)
    objective: nn.Module = Objective(model, cfg.conversion_weight if model.predicts_conversion and not bpr else 0.0)
    if where.distributed:
        # unused parameters (a stage's frozen half, a head a batch does not reach) are found each step; buffers are
        # not broadcast per step (the content table would go with them): rank 0's statistics are the run's
        objective = DistributedDataParallel(objective, find_unused_parameters=True, forward_sync_buffers=False,
                                            gradient_as_bucket_view=True)
        # a (1, d) weight whose gradient comes transposed from a matmul: copied into its bucket, correct either way
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    streamed = train_rows if isinstance(train_rows, StreamedRows) else None
    in_memory = train_rows if isinstance(train_rows, EncodedRows) else _NO_ROWS
    # `negatives: fresh`: the sampled negatives among the rows drawn again at every step (pointwise losses only:
    # BPR and in-batch losses train on the positives; streamed training refuses it, `_check_streamable`)
    fresh = (FreshNegatives(in_memory.user, in_memory.item, in_memory.scenario, in_memory.label)
             if cfg.negatives == "fresh" and enc.spec_.sampled_negatives and model.loss_kind == "bce" else None)
    step = Step(model, enc, in_memory, opt, rng,
                 ScenarioPools(in_memory.scenario, in_memory.item) if bpr else None,
                 scenario_weights(in_memory.scenario if streamed is None else streamed.scenarios())
                 if cfg.scenario_weights == "balanced" else None, objective, where, fresh=fresh)
    if cfg.ema > 0:
        step.average = AveragedModel(model, multi_avg_fn=ema_update(cfg.ema), use_buffers=True)
    # what is validated and kept: the weights, or their moving average
    scored = model if step.average is None else cast(Model, step.average.module)
    pool = np.arange(len(in_memory)) if rows is None else np.asarray(rows)
    if bpr or model.loss_kind == "in_batch":  # trained on positives (against sampled or in-batch negatives)
        pool = pool[in_memory.label[pool] > 0]
    best_score, best_state, stale = float("-inf"), None, 0
    first = len(result.history) + 1
    position = _Position(first)
    if state is not None:  # where the checkpoint left this stage
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        schedule.load_state_dict(state["schedule"])
        if step.average is not None:
            step.average.load_state_dict(state["average"])
        result.history = json.loads(state["history"])
        result.best_epoch, result.best_score = state["best_epoch"], state["best_score_overall"]
        result.train_seconds, result.train_samples = state["train_seconds"], state["train_samples"]
        best_score, best_state, stale, first = state["best_score"], state["best_state"], state["stale"], state["first"]
        position, step.taken = _Position(**state["position"]), state["taken"]
    epoch_rng: Mapping[str, Any] = {}
    epoch_start = time.perf_counter()

    def on_step() -> None:  # a checkpoint every `every` steps
        if saving.to is None or step.taken % saving.to.every:
            return
        doc = {"stage": saving.stage, "position": dataclasses.asdict(position), "taken": step.taken,
               "first": first, "epoch_rng": epoch_rng, "rng": rng.bit_generator.state,
               "random": random_states(where),  # a collective: every rank takes part
               "model": model.state_dict(), "opt": opt.state_dict(), "schedule": schedule.state_dict(),
               "average": None if step.average is None else step.average.state_dict(),
               "history": json.dumps(result.history, default=_plain_number), "best_epoch": result.best_epoch,
               "best_score_overall": result.best_score,
               "train_seconds": result.train_seconds + time.perf_counter() - epoch_start,
               "train_samples": result.train_samples, "best_score": best_score, "best_state": best_state,
               "stale": stale}
        if where.main:
            saving.to.save(doc)

    for epoch in range(position.epoch, first + cfg.epochs):
        model.train()
        epoch_start = time.perf_counter()
        label = f"epoch {epoch}" if stage is None else f"{stage} epoch {epoch - first + 1}"
        if streamed is not None:  # shard by shard (checkpoints are refused before: no resume to handle)
            batches, n_batches = streamed.epoch(rng, epoch, cfg.seed, batch_size, where, model)
            position = _Position(epoch)
            steps: Iterable[Callable[[], tuple[float, int]]] = (
                partial(step.apply, b, None, len(b.label) * where.world) for b in batches)
        else:
            if state is not None:  # the resumed epoch's order: drawn from the generator as it was then
                rng.bit_generator.state = state["epoch_rng"]
            epoch_rng = rng.bit_generator.state
            order = pool[_epoch_order(rng, in_memory.scenario[pool], cfg.sampling)]
            if state is not None:  # and the rest as it was at the checkpoint
                rng.bit_generator.state = state["rng"]
                set_random_states(state["random"], where)
                state = None
            else:
                position = _Position(epoch)
            n_batches = math.ceil(len(order) / batch_size)
            steps = (partial(step, order[k * batch_size:(k + 1) * batch_size])
                     for k in range(position.batch, n_batches))
        loss, seen = _run_epoch(steps, n_batches, label, quiet, position, on_step, where)
        schedule.step()
        seconds = time.perf_counter() - epoch_start
        result.train_seconds += seconds
        result.train_samples += seen
        record = _epoch_record(scored, enc, valid_rows, cfg, epoch, loss, seconds, where)
        if stage is not None:
            record["stage"] = stage
        result.history.append(record)
        if not quiet:
            auc_txt = f", valid mean scenario AUC {record['valid_mean_scenario_auc']:.4f}" \
                if "valid_mean_scenario_auc" in record else ""
            if "valid_ctcvr_auc" in record:
                auc_txt += f", CVR AUC {record['valid_cvr_auc']:.4f}, CTCVR AUC {record['valid_ctcvr_auc']:.4f}"
            tqdm.write(f"{label}: loss {loss:.4f}{auc_txt} ({seconds:.1f} s)")
        score = record.get("valid_mean_scenario_auc", float("nan"))
        score = -loss if math.isnan(score) or not early else score  # no usable validation AUC: the loss decides
        if score > best_score:
            best_score, stale = score, 0
            result.best_score, result.best_epoch = score, epoch
            best_state = copy.deepcopy(scored.state_dict())
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)  # the best epoch's weights, not the last


def _plain_number(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"{type(x).__name__} in an epoch record")


def _epoch_record(model: Model, enc: FeatureEncoder, valid_rows: EncodedRows | StreamedRows | None,
                  cfg: TrainConfig, epoch: int, loss: float, seconds: float, where: Ranks) -> dict[str, Any]:
    """The epoch's record; on several ranks each scores a share of the validation rows and rank 0 computes the
    metrics, whose record every rank then gets (so they all stop at the same epoch)."""
    record: dict[str, Any] = {"epoch": epoch, "train_loss": loss, "seconds": round(seconds, 3)}
    if valid_rows is None or not len(valid_rows):
        return record
    scored = _score(model, enc, valid_rows, cfg.eval_batch_size, where)
    if scored is not None:  # rank 0
        if scored.cvr is not None:
            known = ~np.isnan(scored.conversion)
            record["valid_cvr_auc"], record["valid_ctcvr_auc"] = metrics.conversion_aucs(
                scored.label[known], scored.conversion[known], scored.click[known], scored.cvr[known])
        overall, per, mean = metrics.scenario_aucs(scored.label, scored.click, scored.scenario)
        record["valid_mean_scenario_auc"], record["valid_auc"] = mean, overall
        names = enc.spec_.scenario_names
        record["valid_by_scenario"] = {names[s - 1] if s > 0 else "<unknown>": v for s, v in per.items()}
    return cast(dict[str, Any], where.from_main(record))


def select_on_validation(model: SelectsOnValidation, enc: FeatureEncoder, valid_rows: EncodedRows | StreamedRows,
                         cfg: TrainConfig, where: Ranks, again: bool = False) -> dict[str, Any]:
    """The validation rows scored once per option of each of the model's rounds, each scenario's AUCs under each
    and its number of rows whose score the options move handed to the model to settle (rank 0 computes them, every
    rank settles alike), one round after the other. `again`: a saved model's choices made again (benchmarks/
    resettle.py, rechoose.py): every round is first put back in its trained state, as training leaves it before
    choosing, so that an earlier round is not scored with a later round's recorded choice in place; and so is a
    choice made after these on the validation ranking that moves the logits (mist's `co_scale`: training scores
    these rounds with the term's weight at 1, before choosing it)."""
    if again:
        names = enc.spec_.scenario_names
        for options in model.validation_rounds():  # with no AUCs the model's own rule keeps each first option
            model.settle(options, {}, {}, names)
        if isinstance(model, ChoosesOnRanking) and model.ranking_options():
            model.use_ranking_option(model.ranking_options()[0])  # the trained state, as the rounds find it
    record: dict[str, Any] = {}
    for options in model.validation_rounds():
        aucs: dict[str, dict[int, float]] = {}
        counts: dict[int, int] = {}
        clicks = []
        for option in options:
            model.use_option(option)
            scored = _score(cast(Model, model), enc, valid_rows, cfg.eval_batch_size, where)
            if scored is not None:  # rank 0
                aucs[option] = metrics.scenario_aucs(scored.label, scored.click, scored.scenario)[1]
                clicks.append(scored.click)
        if clicks:  # the rows whose score any option moves from the first's, per scenario
            assert scored is not None
            moved = np.zeros(len(clicks[0]), dtype=bool)
            for click in clicks[1:]:
                moved |= click != clicks[0]
            counts = {int(s): int(n) for s, n in zip(*np.unique(scored.scenario[moved], return_counts=True),
                                                     strict=True)}
        aucs, counts = where.from_main((aucs, counts))
        record.update(model.settle(options, aucs, counts, enc.spec_.scenario_names))
    return record


def _score(model: Model, enc: FeatureEncoder, rows: EncodedRows | StreamedRows, batch_size: int, where: Ranks
           ) -> Scored | None:
    """Every row's scores with its label, scenario, user and conversion, on rank 0 (None on the others): rows in
    memory in one contiguous slice per rank, streamed rows a share of the shards per rank."""
    if isinstance(rows, StreamedRows):
        return rows.score(model, where, batch_size)
    part = rows.subset(where.slice(len(rows))) if where.distributed else rows
    click, cvr = predict_tasks(model, enc, part, batch_size)
    if where.distributed:
        click_all = where.gather_rows(click, len(rows))
        cvr = where.gather_rows(cvr, len(rows)) if cvr is not None else None
        if click_all is None:
            return None
        click = click_all
    return Scored(click, cvr, rows.label, rows.scenario, rows.user, rows.conversion)


def _check_streamable(model: Model, cfg: TrainConfig, checkpoint: Checkpointer | None) -> None:
    """Streamed training covers models trained by steps on pointwise labels, in one stage, without checkpoints
    or scenario-balanced sampling; anything else is refused with what to do instead."""
    why = ("it is fitted in closed form" if isinstance(model, FitsDirectly) else
           "it trains in several stages" if len(model.stages) > 1 else
           f"it trains on {model.loss_kind} negatives drawn from the whole training split"
           if model.loss_kind != "bce" else
           "checkpoints are not written for streamed training yet" if checkpoint is not None else
           "scenario-balanced sampling draws from the whole training split" if cfg.sampling != "uniform" else
           "negatives: fresh draws from the whole training split" if cfg.negatives == "fresh" else None)
    if why is not None:
        raise ConfigError(f"{model.name} cannot be trained streamed: {why}. Train without stream: true (the "
                          "prepared data in memory).")


_NO_ROWS = Scored.concat([], conversion=False).rows()  # the rows a streamed stage keeps in memory: none
