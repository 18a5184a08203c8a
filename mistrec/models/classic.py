"""Classic baselines fitted in closed form on the training split: popularity, most-popular, item-kNN, SVD and NMF.

They live in the registry and the same trainer runs them: instead of gradient epochs, the trainer calls
`fit_direct(train_rows)` once, with the rows as model indices (`IndexedRows`). Their scores are turned into click
probabilities by a one-feature logistic calibration (Platt scaling, `ScoreModel`) fitted on training rows, so
AUC is theirs and LogLoss is comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from mistrec.batch import Batch
from mistrec.data.negatives import expected_rows
from mistrec.errors import ConfigError
from mistrec.features import FeatureSpec, IndexedRows
from mistrec.models.base import ModelConfig, ScoreModel

__all__ = ["SVD", "ClassicConfig", "ItemKNN", "MatrixFactorisation", "MostPopular", "NMFModel", "Popularity"]


@dataclass(frozen=True)
class ClassicConfig(ModelConfig):
    """Settings of the closed-form baselines (popularity, most_popular, item-kNN, SVD, NMF)."""

    per_scenario: bool = True  # popularity, most_popular: per scenario, or global
    prior: float = 10.0  # popularity: pseudo-count pulling rare items' click rate to the scenario's
    # popularity, where the training negatives were sampled: "expected" (the default since 2026-12-04, thirty-first
    # session), each item's negatives counted as their expectation under the sampler (data/negatives.expected_rows),
    # not the random number drawn for it, as mist's item prior counts them (`prior_negatives`); "counted", as drawn
    negatives: Literal["expected", "counted"] = "expected"
    neighbours: int = 100  # item-kNN: similar items kept per item
    factors: int = 32  # SVD / NMF rank
    seed: int = 0

    def validate(self) -> None:
        if self.neighbours < 1 or self.factors < 1:
            raise ConfigError("neighbours and factors must be >= 1.")


class _DirectModel(ScoreModel):
    """A model fitted in closed form (`_fit`), then Platt-calibrated (see ScoreModel)."""

    def fit_direct(self, rows: IndexedRows) -> None:
        raise NotImplementedError


class _ItemTable(_DirectModel):
    """A closed-form score per (scenario, item) (or one per item, `per_scenario: false`), counted from the training
    rows: popularity's rate, most_popular's count."""

    table: torch.Tensor

    def __init__(self, spec: FeatureSpec, cfg: ClassicConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.sampled_negatives = spec.sampled_negatives
        self.register_buffer("table", torch.zeros(spec.n_scenarios, spec.n_items))

    def _lookup(self, b: Batch) -> torch.Tensor:
        return self.table[b.scenario if self.cfg.per_scenario else torch.zeros_like(b.scenario), b.item]

    def _counts(self, rows: IndexedRows, expected: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Each (scenario, item)'s positive labels and rows (S, I); without `per_scenario`, all in row 0. With
        `expected` (and sampled negatives), the rows count each item's negatives as their expectation under the
        sampler, which draws per scenario (data/negatives.expected_rows)."""
        n_s, n_i = self.table.shape
        key = rows.scenario * n_i + rows.item
        clicks = np.bincount(key, weights=rows.label, minlength=n_s * n_i).reshape(n_s, n_i)
        shows = np.bincount(key, minlength=n_s * n_i).reshape(n_s, n_i).astype(np.float64)
        if expected and self.sampled_negatives:
            shows = expected_rows(clicks, shows)
        if not self.cfg.per_scenario:
            clicks, shows = (np.concatenate([a.sum(0, keepdims=True), np.zeros_like(a[1:])]) for a in (clicks, shows))
        return clicks, shows

    def _set(self, table: np.ndarray) -> None:
        """The fitted table; without `per_scenario`, row 0's values for every scenario."""
        if not self.cfg.per_scenario:
            table = np.repeat(table[:1], len(table), axis=0)
        self.table = torch.tensor(table, dtype=torch.float32)


class Popularity(_ItemTable):
    """Click rate of the item in the target scenario (or globally), smoothed towards the scenario's rate; where the
    negatives were sampled, each item's counted as their expectation under the sampler (`negatives: expected`)."""

    name = "popularity"

    def score(self, b: Batch) -> torch.Tensor:
        return torch.logit(self._lookup(b).clamp(1e-4, 1 - 1e-4))

    def fit_direct(self, rows: IndexedRows) -> None:
        clicks, shows = self._counts(rows, expected=self.cfg.negatives == "expected")
        base = clicks.sum(1, keepdims=True) / np.maximum(shows.sum(1, keepdims=True), 1)
        base = np.where(shows.sum(1, keepdims=True) > 0, base, rows.label.mean())
        self._set((clicks + self.cfg.prior * base) / (shows + self.cfg.prior))


class MostPopular(_ItemTable):
    """The item's count of training positives in the target scenario (or globally): the most-popular ranking of
    the recommendation libraries (RecBole's Pop), log(1 + count).

    `popularity` scores an item by its click rate, what a row's label asks; this scores it by how often it was
    taken, what a full-catalogue ranking asks where the rows are what users chose to rate or were shown (logged
    labels): on the MovieLens-1M genre shelves the count ranks the family shelf's test positives at NDCG@10 0.317
    against the rate's 0.161 (benchmarks/results/transfer.json; docs/benchmarks.md, "Popularity by count"). On
    implicit data with sampled negatives the two order the items nearly alike."""

    name = "most_popular"

    def score(self, b: Batch) -> torch.Tensor:
        return self._lookup(b)

    def fit_direct(self, rows: IndexedRows) -> None:
        self._set(np.log1p(self._counts(rows)[0]))  # the labels are 0/1: their sum counts the positives


class ItemKNN(_DirectModel):
    """Item-based kNN: score(u, i) = mean over u's liked history items j of cosine(i, j), with the item-item
    cosine from the training split's user x liked-item matrix, pruned to the top `neighbours` per item.

    The pruned similarities are kept sparse, as sorted (i * n_items + j) keys and values, so memory grows with
    items x neighbours, not items squared.
    """

    name = "itemknn"
    reads_history = True
    data_buffers = ("keys", "values")
    keys: torch.Tensor
    values: torch.Tensor

    def __init__(self, spec: FeatureSpec, cfg: ClassicConfig) -> None:
        super().__init__()
        self.cfg, self.n_items, self.n_users = cfg, spec.n_items, spec.n_users
        self.register_buffer("keys", torch.zeros(0, dtype=torch.long))
        self.register_buffer("values", torch.zeros(0))

    def similarity(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        if len(self.keys) == 0:
            return torch.zeros(i.shape)
        key = i * self.n_items + j
        pos = torch.searchsorted(self.keys, key).clamp(max=len(self.keys) - 1)
        return torch.where(self.keys[pos] == key, self.values[pos], 0.0)

    def score(self, b: Batch) -> torch.Tensor:
        liked = b.hist_mask & (b.hist_labels > 0)  # (B, L)
        s = self.similarity(b.item.unsqueeze(1).expand_as(b.hist_items), b.hist_items) * liked  # (B, L)
        return s.sum(1) / liked.sum(1).clamp(min=1)

    def fit_direct(self, rows: IndexedRows, chunk: int = 1024) -> None:
        n_items = self.n_items
        pos = rows.label > 0
        m = sp.csr_matrix((np.ones(int(pos.sum())), (rows.user[pos], rows.item[pos])), shape=(self.n_users, n_items))
        m.data[:] = 1.0  # repeated interactions count once
        norms = np.sqrt(np.asarray(m.sum(0))).ravel()
        mt = m.T.tocsr()
        k = min(self.cfg.neighbours, n_items - 1)
        keys, values = [], []
        for lo in range(0, n_items, chunk):  # chunks of items: memory stays chunk x n_items
            hi = min(lo + chunk, n_items)
            sim = (mt[lo:hi] @ m).toarray() / np.maximum(np.outer(norms[lo:hi], norms), 1e-12)  # (chunk, items)
            sim[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            val = np.take_along_axis(sim, top, axis=1)
            keep = val > 0
            keys.append(((np.arange(lo, hi)[:, None] * n_items) + top)[keep])
            values.append(val[keep])
        order_keys = np.concatenate(keys)
        order = np.argsort(order_keys)
        self.keys = torch.tensor(order_keys[order], dtype=torch.long)
        self.values = torch.tensor(np.concatenate(values)[order], dtype=torch.float32)


class MatrixFactorisation(_DirectModel):
    """TruncatedSVD (`svd`) of the training user x item matrix of labels in {-1 (seen, not liked), +1 (liked)},
    or NMF (`nmf`) of the liked-only matrix; score = user factors . item factors."""

    users: torch.Tensor
    items: torch.Tensor

    def __init__(self, spec: FeatureSpec, cfg: ClassicConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("users", torch.zeros(spec.n_users, cfg.factors))
        self.register_buffer("items", torch.zeros(spec.n_items, cfg.factors))

    def score(self, b: Batch) -> torch.Tensor:
        return (self.users[b.user] * self.items[b.item]).sum(-1)

    def fit_direct(self, rows: IndexedRows) -> None:
        from sklearn.decomposition import NMF, TruncatedSVD

        u, i = rows.user, rows.item
        shape = (self.users.shape[0], self.items.shape[0])
        k = min(self.cfg.factors, min(shape) - 1)
        if self.name == "svd":
            m = sp.csr_matrix((np.where(rows.label > 0, 1.0, -1.0), (u, i)), shape=shape)
            algo = TruncatedSVD(n_components=k, random_state=self.cfg.seed)
            users = algo.fit_transform(m)
            items = algo.components_.T
        else:
            pos = rows.label > 0
            m = sp.csr_matrix((np.ones(int(pos.sum())), (u[pos], i[pos])), shape=shape)
            nmf = NMF(n_components=k, init="nndsvda", random_state=self.cfg.seed, max_iter=200)
            users = nmf.fit_transform(m)
            items = nmf.components_.T
        self.users = torch.zeros(shape[0], self.cfg.factors)
        self.items = torch.zeros(shape[1], self.cfg.factors)
        self.users[:, :k] = torch.tensor(users, dtype=torch.float32)
        self.items[:, :k] = torch.tensor(items, dtype=torch.float32)


class SVD(MatrixFactorisation):
    """Truncated SVD of the training user x item matrix (MatrixFactorisation)."""

    name = "svd"


class NMFModel(MatrixFactorisation):
    """Non-negative matrix factorisation of the training user x item matrix (MatrixFactorisation)."""

    name = "nmf"

