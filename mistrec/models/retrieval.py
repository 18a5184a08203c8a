"""Retrieval-style baselines trained with BPR (Rendle et al., UAI 2009) on positives against negatives drawn
from the target scenario's training items: BPR-MF, LightGCN (He et al., SIGIR 2020)
propagating over the full training user-item graph (small enough to fit on one machine here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mistrec.batch import Batch
from mistrec.errors import ConfigError
from mistrec.features import FeatureSpec, IndexedRows
from mistrec.models.base import ModelConfig, ScoreModel

__all__ = ["BPRMF", "GAT", "LightGCN", "RetrievalConfig"]


@dataclass(frozen=True)
class RetrievalConfig(ModelConfig):
    """Settings of the BPR-trained retrieval models (BPR-MF, LightGCN, GAT): embedding size, propagation layers and
    attention heads."""

    embedding_dim: int = 32
    layers: int = 3  # lightgcn, gat: propagation layers
    heads: int = 2  # gat: attention heads (averaged)

    def validate(self) -> None:
        if self.layers < 0:
            raise ConfigError(f"The 'layers' parameter of RetrievalConfig must be >= 0. Got {self.layers}.")


class _BPRModel(ScoreModel):
    """A ranking score trained with BPR, Platt-calibrated after training (see ScoreModel)."""

    loss_kind = "bpr"


class BPRMF(_BPRModel):
    """Matrix factorisation trained with BPR (Rendle et al., UAI 2009): user . item, per scenario's negatives."""

    name = "bpr_mf"

    def __init__(self, spec: FeatureSpec, cfg: RetrievalConfig) -> None:
        super().__init__()
        self.user = nn.Embedding(spec.n_users, cfg.embedding_dim)
        self.item = nn.Embedding(spec.n_items, cfg.embedding_dim)
        self.bias = nn.Embedding(spec.n_items, 1)
        for emb in (self.user, self.item):
            nn.init.normal_(emb.weight, std=0.1)
        nn.init.zeros_(self.bias.weight)

    def score(self, b: Batch) -> torch.Tensor:
        return (self.user(b.user) * self.item(b.item)).sum(-1) + self.bias(b.item).squeeze(-1)


class _GraphModel(_BPRModel):
    """A model over the training user-item graph (users 0..U-1, items U..U+I-1), built by `setup` from the
    training positives; `propagate()` gives every node's final embedding, once per step for a pair of batches."""

    data_buffers = ("edges", "weights")
    edges: torch.Tensor
    weights: torch.Tensor

    def __init__(self, spec: FeatureSpec, cfg: RetrievalConfig) -> None:
        super().__init__()
        self.n_users, self.n_items, self.layers = spec.n_users, spec.n_items, cfg.layers
        self.embedding = nn.Embedding(spec.n_users + spec.n_items, cfg.embedding_dim)
        nn.init.normal_(self.embedding.weight, std=0.1)
        self.register_buffer("edges", torch.zeros(2, 0, dtype=torch.long))
        self.register_buffer("weights", torch.zeros(0))

    def propagate(self) -> torch.Tensor:
        raise NotImplementedError

    def _score(self, e: torch.Tensor, b: Batch) -> torch.Tensor:
        return (e[b.user] * e[self.n_users + b.item]).sum(-1)

    def score(self, b: Batch) -> torch.Tensor:
        return self._score(self.propagate(), b)

    def score_pair(self, pos: Batch, neg: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.propagate()  # one propagation for the positives and their negatives
        return self._score(e, pos), self._score(e, neg)

    def setup(self, rows: IndexedRows) -> None:
        pos = rows.label > 0
        u = rows.user[pos]
        i = rows.item[pos] + self.n_users
        pairs = np.unique(np.stack([u, i]), axis=1)
        src = np.concatenate([pairs[0], pairs[1]])
        dst = np.concatenate([pairs[1], pairs[0]])
        degree = np.bincount(src, minlength=self.n_users + self.n_items).astype(np.float64)
        w = 1.0 / np.sqrt(degree[src] * degree[dst])
        self.edges = torch.tensor(np.stack([src, dst]), dtype=torch.long)
        self.weights = torch.tensor(w, dtype=torch.float32)


class LightGCN(_GraphModel):
    """Embeddings propagated over the symmetric-normalised training user-item graph and averaged over layers:
    e^(k+1) = D^-1/2 A D^-1/2 e^(k); score = e_u . e_i."""

    name = "lightgcn"

    def _adjacency(self) -> torch.Tensor:
        # built once per graph: the edges only change in setup or when a run is loaded
        key = (self.edges.data_ptr(), self.edges.shape[1])
        if getattr(self, "_adj_key", None) != key:
            n = self.n_users + self.n_items
            coo = torch.sparse_coo_tensor(self.edges, self.weights, (n, n), check_invariants=True).coalesce()
            self._adj, self._adj_key = coo, key
        return self._adj

    def propagate(self) -> torch.Tensor:
        adj = self._adjacency()
        e = self.embedding.weight
        layers = [e]
        for _ in range(self.layers):
            e = torch.sparse.mm(adj, e)
            layers.append(e)
        return torch.stack(layers).mean(0)  # (U + I, D)



class GAT(_GraphModel):
    """Graph attention (Velickovic et al., ICLR 2018) over the training user-item graph, full graph on the CPU
    with torch-geometric's GATConv (no compiled extras needed); layer outputs averaged as in LightGCN."""

    name = "gat"

    def __init__(self, spec: FeatureSpec, cfg: RetrievalConfig) -> None:
        super().__init__(spec, cfg)
        from torch_geometric.nn import GATConv

        d = cfg.embedding_dim
        self.convs = nn.ModuleList(GATConv(d, d, heads=cfg.heads, concat=False, add_self_loops=True)
                                   for _ in range(cfg.layers))

    def propagate(self) -> torch.Tensor:
        e = self.embedding.weight
        layers = [e]
        for i, conv in enumerate(self.convs):
            e = conv(e, self.edges)
            if i < len(self.convs) - 1:
                e = torch.nn.functional.elu(e)
            layers.append(e)
        return torch.stack(layers).mean(0)  # (U + I, D)
