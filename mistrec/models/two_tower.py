"""The retrieval model of two-stage recommendation: a user tower and an item tower scored by their dot product, so
that a catalogue's item vectors can be computed once and searched by inner product (an exact scan here, an
approximate nearest-neighbour index at scale).

- User tower: the user's id and features, the target scenario's embedding, and an attention pool over the
  scenario-tagged history with the target scenario as the query (tokens: the event's item vector plus its
  scenario's and its label's embeddings; a learned transfer bias B[target, source] added to each event's score,
  as in mist), through an MLP. The history is what lets retrieval transfer: a user with no event in the target
  scenario is placed by their events elsewhere.
- Item tower: the item's id and side features through an MLP.
- Training: sampled softmax over the batch's other positives of the same scenario (in-batch negatives), with the
  logQ correction of Yi et al. (RecSys 2019): each in-batch candidate's logit is lowered by the log of how often
  it is sampled as one (its share of the scenario's training positives), so that popular items, which are more
  often in-batch negatives, are not pushed down for it. A candidate that is the row's own item (the same item
  clicked by two rows of the batch) is not a negative. Logits are u . v / temperature.

The score is calibrated to a click probability after training (ScoreModel's Platt map), so AUC and LogLoss are
reported as for every other model; ranking and recall use the dot product itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mistrec.batch import Batch
from mistrec.errors import ConfigError
from mistrec.features import FeatureSpec, IndexedRows
from mistrec.models.base import CandidateScorer, ModelConfig, ScoreModel
from mistrec.models.layers import MLP, FeatureEmbedding

__all__ = ["TwoTower", "TwoTowerConfig"]


@dataclass(frozen=True)
class TwoTowerConfig(ModelConfig):
    """The two-tower retrieval model's settings: embedding size, tower layers (the last is the dot product's
    size), whether the user tower reads the history, the softmax temperature and the logQ correction."""

    embedding_dim: int = 32
    tower: tuple[int, ...] = (64, 32)
    history: bool = True  # the user tower attends over the scenario-tagged history (what transfers)
    # chosen by one-seed probes on the contract test's small synthetic data (test AUC 0.665 at 0.2, 0.657 at 0.3, 0.655
    # at 0.5, 0.603 at 0.1, 0.543 at 0.05; commit 9404f3f): not yet measured on real data
    temperature: float = 0.2
    normalize: bool = True  # both towers' outputs L2-normalised: the logit is a cosine / temperature
    logq: bool = True  # the sampled-softmax correction for how often an item is an in-batch negative

    def validate(self) -> None:
        if not self.temperature > 0:
            raise ConfigError(f"The 'temperature' parameter of TwoTowerConfig must be > 0. Got {self.temperature}.")


class TwoTower(ScoreModel):
    """Two towers (user with its scenario-tagged history, item with its side features), dot product, trained
    with in-batch sampled softmax and the logQ correction (the module's docstring)."""

    name = "two_tower"
    loss_kind = "in_batch"
    log_q: torch.Tensor

    def __init__(self, spec: FeatureSpec, cfg: TwoTowerConfig) -> None:
        super().__init__()
        d = cfg.embedding_dim
        self.cfg, self.n_scenarios = cfg, spec.n_scenarios
        self.embed = FeatureEmbedding(spec, d, init_std=0.1)
        self.reads_history = cfg.history
        self.reads_history_side = cfg.history and self.embed.has_item_side
        self.scenario = nn.Embedding(spec.n_scenarios, d)
        self.label = nn.Embedding(3, d, padding_idx=0)  # 0 padding, 1 not liked, 2 liked
        self.query = nn.Linear(d, d)  # the target scenario -> the attention's query
        self.transfer = nn.Parameter(torch.zeros(spec.n_scenarios, spec.n_scenarios))  # B[target, source]
        self.item_mask: torch.Tensor  # the embedding's columns that come from the item
        self.register_buffer("item_mask", self.embed.item_columns(), persistent=False)
        d_item = int(self.item_mask.sum())
        d_user = self.embed.d_out - d_item + d + (d if cfg.history else 0)
        self.user_tower = MLP(d_user, cfg.tower[:-1], cfg.dropout, out=cfg.tower[-1])
        self.item_tower = MLP(d_item, cfg.tower[:-1], cfg.dropout, out=cfg.tower[-1])
        # log of each (scenario, item)'s share of its scenario's training positives (setup); 0 until then
        self.register_buffer("log_q", torch.zeros(spec.n_scenarios, spec.n_items))

    def setup(self, rows: IndexedRows) -> None:
        """The logQ correction's sampling probabilities: each item's share of its scenario's training positives
        (one pseudo-count for items with none, so that every log is finite)."""
        n_s, n_i = self.log_q.shape
        pos = rows.label > 0
        counts = np.bincount(rows.scenario[pos] * n_i + rows.item[pos], minlength=n_s * n_i)
        share = (counts.reshape(n_s, n_i) + 1.0) / (counts.reshape(n_s, n_i) + 1.0).sum(1, keepdims=True)
        self.log_q = torch.from_numpy(np.log(share)).float()

    def user_vector(self, b: Batch) -> torch.Tensor:
        """(B, D): the user tower on the user's fields, the target scenario and (with `history`) the pool."""
        x = self.embed(b)[:, ~self.item_mask]  # the user's columns
        target = self.scenario(b.scenario)
        parts = [x, target]
        if self.cfg.history:
            parts.append(self._pool(b, target))
        out = self.user_tower(torch.cat(parts, dim=-1))
        return F.normalize(out, dim=-1) if self.cfg.normalize else out

    def _pool(self, b: Batch, target: torch.Tensor) -> torch.Tensor:
        """Attention over the history's tokens with the target scenario as the query: (B, E), zero without
        events."""
        items = self.embed.history_items(b, self.reads_history_side)  # (B, L, E)
        label = torch.where(b.hist_mask, (b.hist_labels > 0).long() + 1, 0)
        tokens = items + self.scenario(b.hist_scenarios) + self.label(label)
        q = self.query(target) * tokens.shape[-1] ** -0.5
        a = (tokens * q.unsqueeze(1)).sum(-1) + self.transfer.index_select(0, b.scenario).gather(1, b.hist_scenarios)
        w = a.masked_fill(~b.hist_mask, float("-inf")).softmax(dim=-1).nan_to_num(0.0)  # empty history -> 0
        return torch.bmm(w.unsqueeze(1), tokens).squeeze(1)

    def item_vector(self, b: Batch) -> torch.Tensor:
        """(B, D): the item tower on the item's id and side features."""
        out = self.item_tower(self.embed(b)[:, self.item_mask])
        return F.normalize(out, dim=-1) if self.cfg.normalize else out

    def score(self, b: Batch) -> torch.Tensor:
        return (self.user_vector(b) * self.item_vector(b)).sum(-1) / self.cfg.temperature

    def stage_loss(self, b: Batch) -> torch.Tensor:
        """In-batch sampled softmax (the rows are positives): each row's item against the other rows' items of
        its scenario, logits u . v / temperature - log q(item) with the logQ correction."""
        u, v = self.user_vector(b), self.item_vector(b)
        logits = u @ v.t() / self.cfg.temperature  # (B, B): row i's user against row j's item
        if self.cfg.logq:
            logits = logits - self.log_q[b.scenario, b.item].unsqueeze(0)
        same_item = b.item.unsqueeze(0) == b.item.unsqueeze(1)
        other_scenario = b.scenario.unsqueeze(0) != b.scenario.unsqueeze(1)
        eye = torch.eye(len(b), dtype=torch.bool)
        logits = logits.masked_fill((same_item & ~eye) | other_scenario, float("-inf"))
        return F.cross_entropy(logits, torch.arange(len(b)), reduction="none")

    def candidate_scorer(self, items: Batch, max_rows: int = 32768) -> CandidateScorer:
        """The item tower once for the whole catalogue, then one matrix product per query batch."""
        with torch.no_grad():
            vectors = self.item_vector(items)  # (C, D)
        a, c = self.calibration

        def score(queries: Batch, columns: torch.Tensor | None = None) -> torch.Tensor:
            chosen = vectors if columns is None else vectors.index_select(0, columns)
            with torch.no_grad():
                return (self.user_vector(queries) @ chosen.t() / self.cfg.temperature) * a + c

        return score

    def score_candidates(self, queries: Batch, items: Batch) -> torch.Tensor:
        return self.candidate_scorer(items)(queries)
