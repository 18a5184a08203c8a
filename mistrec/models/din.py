"""DIN (Zhou et al., KDD 2018): target attention over the behaviour history, blind to scenarios."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mistrec.batch import Batch
from mistrec.features import FeatureSpec
from mistrec.models.base import Model, ModelConfig
from mistrec.models.layers import MLP, ActivationUnit, FeatureEmbedding

__all__ = ["DIN", "DINConfig"]


@dataclass(frozen=True)
class DINConfig(ModelConfig):
    """DIN's settings: the top MLP, the activation unit's layers, and whether side features join the items."""

    hidden: tuple[int, ...] = (128, 64, 32)
    attention_hidden: tuple[int, ...] = (36,)  # the DIN paper's activation unit
    side_features: bool = True  # behaviours and the candidate add their side-feature embeddings (DIN's cate_id)


class DIN(Model):
    """Deep Interest Network (Zhou et al., KDD 2018): the activation unit weighs each history event against
    the candidate, and the weighted sum joins the features in an MLP."""

    name = "din"
    reads_history = True

    def __init__(self, spec: FeatureSpec, cfg: DINConfig) -> None:
        super().__init__()
        self.embed = FeatureEmbedding(spec, cfg.embedding_dim)
        self.attention = ActivationUnit(cfg.embedding_dim, cfg.attention_hidden)
        self.side = cfg.side_features
        self.reads_history_side = self.side and self.embed.has_item_side
        self.mlp = MLP(self.embed.d_out + cfg.embedding_dim, cfg.hidden, cfg.dropout, out=1)

    def forward(self, b: Batch) -> torch.Tensor:
        events = self.embed.history_items(b, self.side)  # (B, L, E), item embeddings shared with the candidate's
        query = self.embed.items(b, self.side)  # (B, E)
        # DIN keeps the activation unit's raw outputs as weights (no softmax), so intensity is preserved.
        w = self.attention(events, query) * b.hist_mask  # (B, L)
        interest = torch.einsum("bl,ble->be", w, events)  # (B, E)
        return self.mlp(torch.cat([self.embed(b), interest], dim=-1)).squeeze(-1)

    def score_candidates(self, queries: Batch, items: Batch) -> torch.Tensor:
        """(U, C) logits equal to `forward` on the crossed rows, the history attended once per query."""
        n, c = len(queries), len(items)
        events = self.embed.history_items(queries, self.side)  # (U, L, E)
        query = self.embed.items(items, self.side).unsqueeze(0).expand(n, -1, -1)  # (U, C, E)
        w = self.attention.cross(events, query) * queries.hist_mask.unsqueeze(1)  # (U, C, L)
        interest = torch.bmm(w, events).reshape(n * c, -1)  # (U * C, E)
        crossed = queries.cross(items, history=False)
        return self.mlp(torch.cat([self.embed(crossed), interest], dim=-1)).view(n, c)
