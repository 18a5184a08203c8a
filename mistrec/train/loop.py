"""One trainer for every neural model: BCE on clicks, Adam or AdamW, early stopping on the validation mean of
per-scenario AUC that restores the best weights, seeded, with a progress bar showing loss and AUC.

With conversions in the data and a model that predicts them, the second task is trained as in ESMM (Ma et al.,
SIGIR 2018): on every row, BCE of p(click) * p(conversion | click) against click-and-conversion, added to the
click loss with weight `conversion_weight`; rows whose conversion is unknown add only the click loss.

Batches come from pre-encoded arrays (`FeatureEncoder.batch`): no Python per sample in the hot loop.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from mistrec import metrics
from mistrec.data.negatives import ScenarioPools
from mistrec.errors import ConfigError
from mistrec.features import EncodedRows, FeatureEncoder
from mistrec.models.base import Calibrates, FitsDirectly, Model, Prepares, ScoresPairs

__all__ = ["TrainConfig", "TrainResult", "ctcvr_loss", "predict",
           "predict_tasks", "seed_everything", "train"]


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

    def validate(self) -> None:
        checks = [
            (self.lr is None or self.lr > 0, "lr", "a number > 0"),
            (0 < self.lr_decay <= 1, "lr_decay", "a number in (0, 1]"),
            (self.batch_size is None or self.batch_size >= 1, "batch_size", "an int >= 1"),
            (self.epochs >= 1, "epochs", "an int >= 1"),
            (self.patience >= 1, "patience", "an int >= 1"),
            (self.conversion_weight >= 0, "conversion_weight", "a number >= 0"),
            (0.0 <= self.ema < 1.0, "ema", "a number in [0, 1) (0: off)"),
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

    @property
    def samples_per_second(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "train_samples_per_second": round(self.samples_per_second, 1)}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def predict(model: Model, enc: FeatureEncoder, rows: EncodedRows, batch_size: int = 16384) -> np.ndarray:
    """Click probabilities for every row, in order (evaluation mode, no gradients)."""
    return _predict(model, enc, rows, batch_size, conversion=False)[0]


def predict_tasks(model: Model, enc: FeatureEncoder, rows: EncodedRows, batch_size: int = 16384
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """p(click) for every row, in order, and p(conversion | click) when the model has a conversion head (a model
    built on data with conversions, `Model.predicts_conversion`), else None."""
    return _predict(model, enc, rows, batch_size, conversion=model.predicts_conversion)


def _predict(model: Model, enc: FeatureEncoder, rows: EncodedRows, batch_size: int, conversion: bool
             ) -> tuple[np.ndarray, np.ndarray | None]:
    model.eval()
    click = np.empty(len(rows), dtype=np.float32)
    cvr = np.empty(len(rows), dtype=np.float32) if conversion else None
    with torch.no_grad():
        for lo in range(0, len(rows), batch_size):
            idx = np.arange(lo, min(lo + batch_size, len(rows)))
            b = enc.batch(rows, idx, history=model.reads_history, history_side=model.reads_history_side)
            if cvr is None:
                click[idx] = torch.sigmoid(model(b)).numpy()
            else:
                c, v = model.forward_tasks(b)
                click[idx], cvr[idx] = torch.sigmoid(c).numpy(), torch.sigmoid(v).numpy()
    return click, cvr


def ctcvr_loss(click_logit: torch.Tensor, cvr_logit: torch.Tensor, click: torch.Tensor, conversion: torch.Tensor
               ) -> torch.Tensor:
    """ESMM's per-row loss: BCE of p(click) * p(conversion | click) against click * conversion, computed in log
    space (log p = logsigmoid(a) + logsigmoid(b)); 0 where the conversion is unknown (NaN)."""
    known = ~torch.isnan(conversion)
    target = click * torch.nan_to_num(conversion)
    log_p = F.logsigmoid(click_logit) + F.logsigmoid(cvr_logit)
    log_not = torch.log(-torch.expm1(log_p.clamp(max=-1e-7)))  # log(1 - p), stable for p near 0 and 1
    return torch.where(known, -(target * log_p + (1 - target) * log_not), torch.zeros_like(log_p))


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


@dataclass
class _Step:
    """What one training step needs, fixed for a whole training run."""

    model: Model
    enc: FeatureEncoder
    rows: EncodedRows
    opt: torch.optim.Optimizer
    rng: np.random.Generator
    sampler: ScenarioPools | None  # BPR negatives: the target scenario's training items
    weights: torch.Tensor | None
    conversion_weight: float = 0.0  # > 0: the model's conversion head trains on the ESMM loss too
    average: AveragedModel | None = None  # the moving average of the weights, updated after every step

    def __call__(self, idx: np.ndarray) -> float:
        """One optimisation step on rows[idx]; returns the batch's mean loss."""
        model, history, side = self.model, self.model.reads_history, self.model.reads_history_side
        b = self.enc.batch(self.rows, idx, history=history, history_side=side)
        if self.sampler is not None:
            negatives = self.enc.batch(self.rows, idx, history=history, history_side=side,
                                       items=self.sampler.draw(self.rng, self.rows.scenario[idx]))
            if isinstance(model, ScoresPairs):  # graph models propagate once for both
                pos, neg = model.score_pair(b, negatives)
            else:
                pos, neg = model(b), model(negatives)
            loss_each = -F.logsigmoid(pos - neg)
        elif (custom := model.stage_loss(b)) is not None:  # a stage with its own objective (a mapping's distance)
            loss_each = custom
        elif self.conversion_weight > 0:
            click, cvr = model.forward_tasks(b)
            loss_each = (F.binary_cross_entropy_with_logits(click, b.label, reduction="none")
                         + self.conversion_weight * ctcvr_loss(click, cvr, b.label, b.conversion))
        else:
            loss_each = F.binary_cross_entropy_with_logits(model(b), b.label, reduction="none")
        loss = (loss_each * self.weights[b.scenario]).mean() if self.weights is not None else loss_each.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.average is not None:
            self.average.update_parameters(model)
        return float(loss.detach())


def _ema_update(decay: float) -> Any:
    """PyTorch's EMA update for the float parameters and buffers (moving statistics too); integer buffers (index
    lists such as the trained scenarios) are copied, not averaged through floats."""
    lerp = get_ema_multi_avg_fn(decay)

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        if averaged[0].is_floating_point():
            lerp(averaged, current, n)
        else:
            with torch.no_grad():
                for a, c in zip(averaged, current, strict=True):
                    a.copy_(c)

    return update


def _scenario_weights(rows: EncodedRows, mode: str) -> torch.Tensor | None:
    if mode != "balanced":
        return None
    counts = np.bincount(rows.scenario).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def _run_epoch(step: _Step, order: np.ndarray, batch_size: int, label: str, quiet: bool) -> tuple[float, int]:
    """Steps over `order` in batches; returns the mean loss and the samples seen."""
    n_batches = math.ceil(len(order) / batch_size)
    bar = tqdm(range(n_batches), desc=label, disable=True if quiet else None, leave=False)
    total, seen = 0.0, 0
    for k in bar:
        idx = order[k * batch_size:(k + 1) * batch_size]
        total += step(idx) * len(idx)
        seen += len(idx)
        if k % 10 == 0:
            bar.set_postfix(loss=f"{total / seen:.4f}")
    bar.close()
    return total / max(seen, 1), seen


def train(
    model: Model, enc: FeatureEncoder, train_rows: EncodedRows, valid_rows: EncodedRows | None,
    cfg: TrainConfig, quiet: bool = False,
) -> TrainResult:
    """Trains `model` in place; with validation rows, stops early and restores the best epoch's weights.

    Models fitted in closed form (`fit_direct`) are fitted once; BPR models (`loss_kind == 'bpr'`) train on the
    positives, each against an item drawn from its scenario's training items. A model with several training
    stages (`Model.stages`: the cross-domain models' pre-training, then their transfer) gets each in turn, with
    its own optimiser over the parameters `begin_stage` leaves trainable, on the rows it returns, each stage
    stopped early and restored to its best epoch on the same validation rows.
    """
    cfg = cfg.resolved(model)
    seed_everything(cfg.seed)
    if isinstance(model, FitsDirectly):
        return _fit_direct(model, enc, train_rows, valid_rows, cfg)
    indexed = enc.indexed(train_rows)  # what models that derive structure from the rows are handed
    if isinstance(model, Prepares):
        model.setup(indexed)
    rng = np.random.default_rng(cfg.seed)
    result = TrainResult(best_epoch=0, best_score=float("-inf"))
    for stage in model.stages:
        rows = model.begin_stage(stage, indexed)
        _train_stage(model, enc, train_rows, valid_rows, cfg, rng, result, rows,
                     stage if len(model.stages) > 1 else None, quiet)
    model.begin_stage(None, indexed)  # every parameter trainable again, the model in its final mode
    if isinstance(model, Calibrates):  # ranking (BPR) scores -> probabilities, fitted on training rows
        model.calibrate(enc, train_rows)
    return result


def _train_stage(model: Model, enc: FeatureEncoder, train_rows: EncodedRows, valid_rows: EncodedRows | None,
                 cfg: TrainConfig, rng: np.random.Generator, result: TrainResult, rows: np.ndarray | None,
                 stage: str | None, quiet: bool) -> None:
    """The epochs of one stage (every epoch of a single-stage model): updates `result` in place."""
    bpr = model.loss_kind == "bpr"
    options = model.stage_options(stage) if stage is not None else {}
    batch_size, early = int(options.get("batch_size", cfg.batch)), bool(options.get("early_stopping", True))
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls([p for p in model.parameters() if p.requires_grad], lr=float(options.get("lr", cfg.learning_rate)),
                  weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)
    step = _Step(model, enc, train_rows, opt, rng, ScenarioPools(train_rows.scenario, train_rows.item) if bpr else None,
                 _scenario_weights(train_rows, cfg.scenario_weights),
                 cfg.conversion_weight if model.predicts_conversion and not bpr else 0.0)
    if cfg.ema > 0:
        step.average = AveragedModel(model, multi_avg_fn=_ema_update(cfg.ema), use_buffers=True)
    # what is validated and kept: the weights, or their moving average
    scored = model if step.average is None else cast(Model, step.average.module)
    pool = np.arange(len(train_rows)) if rows is None else np.asarray(rows)
    if bpr or model.loss_kind == "in_batch":  # trained on positives (against sampled or in-batch negatives)
        pool = pool[train_rows.label[pool] > 0]
    best_score, best_state, stale = float("-inf"), None, 0
    first = len(result.history) + 1
    for epoch in range(first, first + cfg.epochs):
        model.train()
        start = time.perf_counter()
        order = pool[_epoch_order(rng, train_rows.scenario[pool], cfg.sampling)]
        label = f"epoch {epoch}" if stage is None else f"{stage} epoch {epoch - first + 1}"
        loss, seen = _run_epoch(step, order, batch_size, label, quiet)
        schedule.step()
        seconds = time.perf_counter() - start
        result.train_seconds += seconds
        result.train_samples += seen
        record = _epoch_record(scored, enc, valid_rows, cfg, epoch, loss, seconds)
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


def _epoch_record(model: Model, enc: FeatureEncoder, valid_rows: EncodedRows | None, cfg: TrainConfig,
                  epoch: int, loss: float, seconds: float) -> dict[str, Any]:
    record: dict[str, Any] = {"epoch": epoch, "train_loss": loss, "seconds": round(seconds, 3)}
    if valid_rows is not None and len(valid_rows):
        prob, cvr = predict_tasks(model, enc, valid_rows, cfg.eval_batch_size)
        if cvr is not None:
            known = ~np.isnan(valid_rows.conversion)
            record["valid_cvr_auc"], record["valid_ctcvr_auc"] = metrics.conversion_aucs(
                valid_rows.label[known], valid_rows.conversion[known], prob[known], cvr[known])
        overall, per, mean = metrics.scenario_aucs(valid_rows.label, prob, valid_rows.scenario)
        record["valid_mean_scenario_auc"], record["valid_auc"] = mean, overall
        names = enc.spec_.scenario_names
        record["valid_by_scenario"] = {names[s - 1] if s > 0 else "<unknown>": v for s, v in per.items()}
    return record
