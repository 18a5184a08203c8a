"""One optimisation step of the trainer: a batch's loss as a module (what DistributedDataParallel wraps), the
step itself, the weight average's update and the per-scenario loss weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from mistrec.batch import Batch
from mistrec.data.negatives import FreshNegatives, ScenarioPools
from mistrec.features import EncodedRows, FeatureEncoder
from mistrec.models.base import Model, ScoresPairs
from mistrec.train.distributed import Ranks

__all__ = ["Objective", "Step", "ctcvr_loss", "ema_update", "scenario_weights"]


def ctcvr_loss(click_logit: torch.Tensor, cvr_logit: torch.Tensor, click: torch.Tensor, conversion: torch.Tensor
               ) -> torch.Tensor:
    """ESMM's per-row loss: BCE of p(click) * p(conversion | click) against click * conversion, computed in log
    space (log p = logsigmoid(a) + logsigmoid(b)); 0 where the conversion is unknown (NaN)."""
    known = ~torch.isnan(conversion)
    target = click * torch.nan_to_num(conversion)
    log_p = F.logsigmoid(click_logit) + F.logsigmoid(cvr_logit)
    log_not = torch.log(-torch.expm1(log_p.clamp(max=-1e-7)))  # log(1 - p), stable for p near 0 and 1
    return torch.where(known, -(target * log_p + (1 - target) * log_not), torch.zeros_like(log_p))


class Objective(nn.Module):
    """A batch's per-row training loss as a module's forward: DistributedDataParallel synchronises the gradients
    of what its module's forward computes, so it wraps this, whichever of the model's methods the loss calls."""

    def __init__(self, model: Model, conversion_weight: float) -> None:
        super().__init__()
        self.model, self.conversion_weight = model, conversion_weight

    def forward(self, b: Batch, negatives: Batch | None) -> torch.Tensor:
        if negatives is not None:  # BPR's pairs: no per-row label loss to add rows to
            return self._loss(b, negatives)
        view, owner = self.model.training_view(b)  # one forward over the batch and the rows the model adds
        loss = self._loss(view, None)
        return loss if owner is None else loss.new_zeros(len(b)).index_add(0, owner, loss)

    def _loss(self, b: Batch, negatives: Batch | None) -> torch.Tensor:
        model = self.model
        if negatives is not None:  # BPR: each positive against its drawn item
            if isinstance(model, ScoresPairs):  # graph models propagate once for both
                pos, neg = model.score_pair(b, negatives)
            else:
                pos, neg = model(b), model(negatives)
            return -F.logsigmoid(pos - neg)
        if (custom := model.stage_loss(b)) is not None:  # a stage with its own objective (a mapping's distance)
            return custom
        if self.conversion_weight > 0:
            click, cvr = model.forward_tasks(b)
            return (F.binary_cross_entropy_with_logits(click, b.label, reduction="none")
                    + self.conversion_weight * ctcvr_loss(click, cvr, b.label, b.conversion))
        return F.binary_cross_entropy_with_logits(model(b), b.label, reduction="none")


@dataclass
class Step:
    """What one training step needs, fixed for a whole training stage."""

    model: Model
    enc: FeatureEncoder
    rows: EncodedRows
    opt: torch.optim.Optimizer
    rng: np.random.Generator
    sampler: ScenarioPools | None  # BPR negatives: the target scenario's training items
    weights: torch.Tensor | None
    objective: nn.Module  # Objective, wrapped in DistributedDataParallel on several ranks
    where: Ranks = field(default_factory=Ranks)
    average: AveragedModel | None = None  # the moving average of the weights, updated after every step
    fresh: FreshNegatives | None = None  # `negatives: fresh`: the rows' sampled negatives drawn again each step
    taken: int = 0  # optimisation steps taken in this training (counted across stages, for checkpoints)

    def __call__(self, idx: np.ndarray) -> tuple[float, int]:
        """One optimisation step on the global batch rows[idx], of which this rank computes its share; returns
        this rank's summed loss and row count."""
        history, side = self.model.reads_history, self.model.reads_history_side
        # every rank draws the whole batch's negatives from the generator they share, so it stays in step
        drawn = self.sampler.draw(self.rng, self.rows.scenario[idx]) if self.sampler is not None else None
        local = self.where.share(idx)
        items = None
        if self.fresh is not None:  # the same way: the whole batch's, from the shared generator
            r = self.rows
            items = self.where.share(self.fresh.redraw(self.rng, r.user[idx], r.item[idx], r.scenario[idx],
                                                       r.label[idx]))
        b = self.enc.batch(self.rows, local, history=history, history_side=side, items=items)
        negatives = None if drawn is None else self.enc.batch(self.rows, local, history=history, history_side=side,
                                                              items=self.where.share(drawn))
        return self.apply(b, negatives, len(idx))

    def apply(self, b: Batch, negatives: Batch | None, n_global: int) -> tuple[float, int]:
        """One optimisation step on this rank's batch `b` of a global batch of `n_global` rows."""
        model = self.model
        loss_each = self.objective(b, negatives)
        if self.weights is not None:
            loss_each = loss_each * self.weights[b.scenario]
        # the batch's mean; on N ranks each sums its rows over the global batch, times N (DDP averages over ranks)
        loss = loss_each.mean() if not self.where.distributed else \
            loss_each.sum() * (self.where.world / n_global)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.average is not None:
            self.average.update_parameters(model)
        self.taken += 1
        return float(loss_each.detach().sum()), len(b.label)


def ema_update(decay: float) -> Any:
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


def scenario_weights(scenario: np.ndarray) -> torch.Tensor:
    """`scenario_weights: balanced`: each scenario's loss weight, inversely proportional to its rows (mean 1 over
    the rows' scenarios present)."""
    counts = np.bincount(scenario).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)
