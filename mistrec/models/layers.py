"""Building blocks shared by the models: MLPs, the feature embedding, DIN's activation unit, scenario routing,
partitioned normalisation and STAR's star-topology linear layer."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mistrec.batch import Batch
from mistrec.features import FeatureSpec

__all__ = ["MLP", "ActivationUnit", "BilinearScorer", "Dropout", "FeatureEmbedding", "PartitionedNorm",
           "ScenarioGroups", "StarLinear", "attach_content", "grouped_softmax", "lookup", "route",
           "with_trained_mean"]


def lookup(table: nn.Embedding, idx: torch.Tensor) -> torch.Tensor:
    """table(idx) through index_select: the same values, but on the CPU its backward (an index_add) is 4-6x
    faster than nn.Embedding's sort-based one for B x L history indices (measured: 3 ms vs 14 ms for
    4096 x 50 lookups into 3,707 x 16). For one index per sample nn.Embedding is the faster of the two."""
    return table.weight.index_select(0, idx.reshape(-1)).view(*idx.shape, table.embedding_dim)


class Dropout(nn.Module):
    """Inverted dropout with the mask drawn as uniform > p: the same distribution as nn.Dropout, 30% faster
    forward and backward on the CPU here ((4096, 128): 2.5 ms against 3.6 ms), where bernoulli_ dominated the
    small top networks' step. Identity in evaluation mode and at p = 0."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1). Got {p}.")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * ((torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p)))


class MLP(nn.Sequential):
    """Linear -> activation -> dropout blocks; `out` adds a final linear layer without activation."""

    def __init__(self, d_in: int, hidden: tuple[int, ...], dropout: float = 0.0, out: int | None = None) -> None:
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(d_in, h), nn.ReLU()]
            if dropout > 0:
                layers.append(Dropout(dropout))
            d_in = h
        if out is not None:
            layers.append(nn.Linear(d_in, out))
        super().__init__(*layers)
        self.d_out = out if out is not None else d_in


class FeatureEmbedding(nn.Module):
    """Embeds every non-history input of a Batch into one vector per sample.

    Args:
        spec: the feature sizes.
        dim: embedding size of every field.
        scenario: whether the target scenario is one of the fields.
        init_std: standard deviation of the id and category embeddings' initial values.
        id_dropout: with content vectors (spec.item_content_dim), the share of items whose id embedding is
            replaced, in training, by the unknown item's: what the model learns to do for an item it has never
            seen (whose id is that unknown index), from its content alone (DropoutNet, Volkovs et al. 2017).
        content_fusion: "add" (the id embedding v plus the projected content c = W x + b) or "gate" (a learned
            per-dimension gate, g = sigmoid(W_g [v; c] + b_g), g * v + (1 - g) * c).
        content_dropout: dropout on the content vector x before its projection, in training.

    The fused vector is every item's, candidate items and history events alike (so attention can match a new item
    to past behaviour by what it is). The content table is a buffer of the model (`attach_content`), saved with
    its weights. The defaults (add, id dropout 0.5) were measured against the gate and 0.1 on the planted
    platform (docs/models.md, "Content vectors").
    """

    # for export: history_items embeds each event's side features in place (not once per distinct item), and the
    # multi-valued bags are gathered means, not nn.EmbeddingBag, which the ONNX exporter lowers to a loop over bags
    per_event = False
    item_content: torch.Tensor  # (n_items, D) buffer, with content vectors only

    def __init__(self, spec: FeatureSpec, dim: int, scenario: bool = False, init_std: float = 0.01,
                 id_dropout: float = 0.5, content_fusion: str = "add", content_dropout: float = 0.0) -> None:
        super().__init__()
        self.content_dim = spec.item_content_dim
        self.id_dropout = id_dropout
        if content_fusion not in ("add", "gate"):
            raise ValueError(f"content_fusion must be add or gate. Got {content_fusion!r}.")
        self.content_gate: nn.Linear | None = None
        if self.content_dim:
            self.register_buffer("item_content", torch.zeros(spec.n_items, self.content_dim))
            self.content_proj = nn.Linear(self.content_dim, dim)
            self.content_drop = Dropout(content_dropout)
            self.content_gate = nn.Linear(2 * dim, dim) if content_fusion == "gate" else None
        self.user = nn.Embedding(spec.n_users, dim)
        self.item = nn.Embedding(spec.n_items, dim)
        self.user_cat = nn.ModuleList(nn.Embedding(n, dim) for n in spec.user_cat)
        self.item_cat = nn.ModuleList(nn.Embedding(n, dim) for n in spec.item_cat)
        self.item_seq = nn.ModuleList(nn.EmbeddingBag(n, dim, mode="mean", padding_idx=0) for n in spec.item_seq)
        self.user_num = nn.Linear(spec.n_user_num, dim) if spec.n_user_num else None
        self.item_num = nn.Linear(spec.n_item_num, dim) if spec.n_item_num else None
        self.scenario = nn.Embedding(spec.n_scenarios, dim) if scenario else None
        n_fields = 2 + len(spec.user_cat) + len(spec.item_cat) + len(spec.item_seq)
        n_fields += int(self.user_num is not None) + int(self.item_num is not None) + int(scenario)
        self.d_out = n_fields * dim
        for emb in (self.user, self.item, *self.user_cat, *self.item_cat):
            nn.init.normal_(emb.weight, std=init_std)

    def item_vectors(self, idx: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """The items' vectors (..., E) of model indices `idx` and dataset indices `key` (the content rows): the id
        embedding, or with content vectors its fusion with the projected content (and, in training, `id_dropout`)."""
        if not self.content_dim:
            return lookup(self.item, idx)
        if self.training and self.id_dropout > 0:
            idx = idx.masked_fill(torch.rand(idx.shape, device=idx.device) < self.id_dropout, 0)
        v = lookup(self.item, idx)
        c = self.content_proj(self.content_drop(self.item_content.index_select(0, key.reshape(-1)).view(
            *key.shape, -1)))
        if self.content_gate is None:
            return v + c
        g = torch.sigmoid(self.content_gate(torch.cat([v, c], dim=-1)))
        return g * v + (1 - g) * c

    def forward(self, b: Batch) -> torch.Tensor:
        fields = [self.user(b.user), self.item_vectors(b.item, b.item_key)]
        fields += [emb(b.user_cat[:, j]) for j, emb in enumerate(self.user_cat)]
        fields += [emb(b.item_cat[:, j]) for j, emb in enumerate(self.item_cat)]
        fields += [self._bag(cast(nn.EmbeddingBag, bag), b.item_seq[:, j]) for j, bag in enumerate(self.item_seq)]
        if self.user_num is not None:
            fields.append(self.user_num(b.user_num))
        if self.item_num is not None:
            fields.append(self.item_num(b.item_num))
        if self.scenario is not None:
            fields.append(self.scenario(b.scenario))
        return torch.cat(fields, dim=-1)  # (B, F * E)

    def _bag(self, bag: nn.EmbeddingBag, idx: torch.Tensor) -> torch.Tensor:
        """The mean of each row's non-padding values' embeddings, (N, E) for idx (N, S); zero for a row of padding
        only: `bag(idx)`, or with `per_event` the same numbers as gathers and sums (one graph op each)."""
        if not self.per_event:
            return cast(torch.Tensor, bag(idx))
        present = (idx != 0).to(bag.weight.dtype)  # padding_idx 0
        total = (bag.weight.index_select(0, idx.reshape(-1)).view(*idx.shape, -1) * present.unsqueeze(-1)).sum(-2)
        return total / present.sum(-1, keepdim=True).clamp_min(1.0)

    def item_columns(self) -> torch.Tensor:
        """(d_out,) bool: the output columns that come from the sample's item (its id and side features), the rest
        from its user (and scenario). A candidate's columns and a query's are computed apart when ranking."""
        e = self.item.embedding_dim
        fields = [False, True] + [False] * len(self.user_cat) + [True] * (len(self.item_cat) + len(self.item_seq))
        fields += [False] * int(self.user_num is not None) + [True] * int(self.item_num is not None)
        fields += [False] * int(self.scenario is not None)
        return torch.tensor(fields).repeat_interleave(e)

    @property
    def has_item_side(self) -> bool:
        return bool(len(self.item_cat) or len(self.item_seq) or self.item_num is not None)

    def items(self, b: Batch, side: bool) -> torch.Tensor:
        """The sample items as vectors, (B, E): the id embedding, plus the side features' (`item_side`) with
        `side`: the attention query of a history model, in the same space as `history_items`."""
        v = self.item_vectors(b.item, b.item_key)
        extra = self.item_side(b.item_cat, b.item_seq, b.item_num) if side else None
        return v if extra is None else v + extra

    def history_items(self, b: Batch, side: bool) -> torch.Tensor:
        """The history's items as vectors, (B, L, E): the id embedding (looked up with `lookup`), plus the side
        features' with `side`. With side features each distinct item of the batch is embedded once (a B x L
        history names a few thousand items, so the multi-valued bags and their backward shrink ~50x) and the
        events gather the sums: one (B, L, E) gather and one backward scatter instead of two of each."""
        side = side and self.has_item_side
        if not (side or self.content_dim):
            return lookup(self.item, b.hist_items)
        if self.per_event:  # every event embedded where it is: no data-dependent shapes (exported graphs)
            v = self.item_vectors(b.hist_items, b.hist_item_key)
            extra = self.item_side(b.hist_item_cat, b.hist_item_seq, b.hist_item_num) if side else None
            return v if extra is None else v + extra
        # the dataset index names the item (a new one too, whose model index is 0)
        keys = b.hist_item_key.reshape(-1)
        uniq, inverse = torch.unique(keys, return_inverse=True)
        # one position of each distinct item (any will do: an item's side features are the same wherever it is)
        first = torch.empty_like(uniq).scatter_(0, inverse, torch.arange(len(keys), device=keys.device))
        v = self.item_vectors(b.hist_items.reshape(-1)[first], uniq)
        if side:
            n = b.hist_items.dim()
            extra = self.item_side(b.hist_item_cat.flatten(0, n - 1)[first], b.hist_item_seq.flatten(0, n - 1)[first],
                                   b.hist_item_num.flatten(0, n - 1)[first])
            assert extra is not None
            v = v + extra
        return v.index_select(0, inverse).view(*b.hist_items.shape, -1)

    def item_side(self, cat: torch.Tensor, seq: torch.Tensor, num: torch.Tensor) -> torch.Tensor | None:
        """The sum of an item's side-feature embeddings, (..., E), for items with leading shape (...): cat
        (..., Fi), seq (..., Fs, S), num (..., Ni), the same tables as the sample item's fields. None without
        side features. Behaviour tokens and attention queries add it to the item id's embedding (as DIN embeds
        a behaviour by its goods and category ids), so the history speaks of items through what they are."""
        if not self.has_item_side:
            return None
        lead = cat.shape[:-1]
        out = None
        for j, emb in enumerate(self.item_cat):
            v = lookup(cast(nn.Embedding, emb), cat[..., j])
            out = v if out is None else out + v
        for j, bag in enumerate(self.item_seq):
            v = self._bag(cast(nn.EmbeddingBag, bag), seq[..., j, :].reshape(-1, seq.shape[-1])).view(*lead, -1)
            out = v if out is None else out + v
        if self.item_num is not None:
            v = self.item_num(num)
            out = v if out is None else out + v
        return out


def attach_content(model: nn.Module, table: np.ndarray | None) -> None:
    """Copies the items' content vectors (n_items, D) (`FeatureEncoder.item_content_`) into every FeatureEmbedding
    of a freshly built model that reads them; a loaded model has them in its state already."""
    for m in model.modules():
        if isinstance(m, FeatureEmbedding) and m.content_dim:
            if table is None or table.shape != tuple(m.item_content.shape):
                got = None if table is None else table.shape
                raise ValueError(f"content table of shape {got} for a model built for {tuple(m.item_content.shape)}")
            m.item_content.copy_(torch.from_numpy(table))


def grouped_softmax(a: torch.Tensor, group: torch.Tensor, mask: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Softmax of scores a (..., L) within each group of positions: group (..., L) in [0, n_groups), positions
    where mask (..., L) is False get 0, and so does a group with no position. Each group's weights sum to 1.

    Example:
        >>> a = torch.tensor([[0.0, 0.0, 1.0]])
        >>> grouped_softmax(a, torch.tensor([[0, 1, 1]]), torch.ones(1, 3, dtype=torch.bool), 2)[0, 0]
        tensor(1.)
    """
    neg = torch.finfo(a.dtype).min
    a = a.masked_fill(~mask, neg)
    # the shift by each group's max changes no weight (so no gradient through it) and keeps exp() finite
    top = a.new_full((*a.shape[:-1], n_groups), neg).scatter_reduce(-1, group, a.detach(), "amax")
    ex = torch.exp(a - top.gather(-1, group)) * mask
    total = a.new_zeros(top.shape).scatter_add(-1, group, ex)
    return ex / total.gather(-1, group).clamp_min(torch.finfo(a.dtype).tiny)


class ActivationUnit(nn.Module):
    """DIN's local activation unit: score(event, query) = MLP([e, q, e - q, e * q]) (Zhou et al., KDD 2018).

    The first layer W [e, q, e - q, e * q] is computed as e (W_e + W_d + diag(q) W_p)^T + (W_q - W_d) q + b: the
    same numbers, with one (E x H) matrix per sample applied to its L events by a batched matmul: the query's part
    once per sample, no (B, L, 4E) concatenation and no (B, L, E) product e * q (2.3x faster forward and backward
    than two (B x L, E) matmuls on 4096 x 50 events).
    """

    def __init__(self, dim: int, hidden: tuple[int, ...] = (36,)) -> None:
        super().__init__()
        self.first = nn.Linear(4 * dim, hidden[0])
        self.rest = MLP(hidden[0], hidden[1:], out=1)
        self.dim = dim

    def forward(self, events: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        w_e, w_q, w_d, w_p = self.first.weight.split(self.dim, dim=1)  # each (H, E)
        per_sample = query @ (w_q - w_d).t() + self.first.bias  # (B, H)
        m = (w_e + w_d).t().unsqueeze(0) + query.unsqueeze(-1) * w_p.t().unsqueeze(0)  # (B, E, H)
        h = torch.baddbmm(per_sample.unsqueeze(1), events, m)  # (B, L, H)
        return self.rest(torch.relu(h)).squeeze(-1)  # (B, L)

    def cross(self, events: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Scores of U histories (U, L, E) against C queries each (U, C, E): (U, C, L), the same numbers as
        `forward` on the U x C crossed rows, without a (U, C, L, E) tensor.

        The first layer's pre-activation for (query c, event l, unit h) is
        q_c . (e_l * W_p[h]) + (e_l W_e'^T)[h] + (q_c W_q'^T + b)[h]: one batched matmul of [q_c, 1] with
        [e_l * W_p[h], (e_l W_e'^T)[h]] gives the first two terms, the third is added in place."""
        n, length, _ = events.shape
        w_e, w_q, w_d, w_p = self.first.weight.split(self.dim, dim=1)
        hidden = w_p.shape[0]
        per_event = events @ (w_e + w_d).t()  # (U, L, H)
        per_query = query @ (w_q - w_d).t() + self.first.bias  # (U, C, H)
        key = torch.cat([events.unsqueeze(2) * w_p, per_event.unsqueeze(-1)], dim=-1)  # (U, L, H, E + 1)
        left = torch.cat([query, query.new_ones(*query.shape[:2], 1)], dim=-1)  # (U, C, E + 1)
        h = torch.bmm(left, key.reshape(n, length * hidden, -1).transpose(1, 2)).view(n, -1, length, hidden)
        h.add_(per_query.unsqueeze(2))
        return self.rest(torch.relu_(h)).squeeze(-1)  # (U, C, L)


class BilinearScorer(nn.Module):
    """A cheaper target-attention score: score(event, query) = e . (W q + w) / sqrt(E), a bilinear form plus a
    query-independent term per event. Per event one E-dimensional multiply-add instead of DIN's (E x H) layer
    and its (B, L, H) activations, the largest part of mist's step on B x L = 204,800 events."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, dim)  # W and w (its bias)
        self.scale = dim ** -0.5

    def forward(self, events: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        k = self.query(query) * self.scale  # (B, E)
        return (events * k.unsqueeze(1)).sum(-1)  # (B, L); a multiply-sum: its backward beats bmm's with N = 1

    def cross(self, events: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Scores of U histories (U, L, E) against C queries each (U, C, E): (U, C, L)."""
        return torch.bmm(self.query(query) * self.scale, events.transpose(1, 2))


class SumScorer(nn.Module):
    """Both target-attention scores added: BilinearScorer(e, q) + ActivationUnit(e, q). The activation unit's last
    layer starts at zero, so the score starts as the bilinear form's and the unit adds only what training finds
    for it (`scorer: sum`; docs/benchmarks.md, "Both scorers in one model")."""

    def __init__(self, dim: int, hidden: tuple[int, ...] = (36,)) -> None:
        super().__init__()
        self.bilinear = BilinearScorer(dim)
        self.unit = ActivationUnit(dim, hidden)
        last = self.unit.rest[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, events: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        return self.bilinear(events, query) + self.unit(events, query)

    def cross(self, events: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """Scores of U histories (U, L, E) against C queries each (U, C, E): (U, C, L)."""
        return self.bilinear.cross(events, query) + self.unit.cross(events, query)


def with_trained_mean(table: torch.Tensor, dim: int, trained: torch.Tensor) -> torch.Tensor:
    """`table` indexed by scenario along `dim`, with row 0 (a scenario unseen in training, never updated) replaced
    by the mean of the trained scenarios' rows (indices `trained`): every shared path reads this."""
    mean = table.index_select(dim, trained).mean(dim, keepdim=True)
    return torch.cat([mean, table.narrow(dim, 1, table.shape[dim] - 1)], dim=dim)


def route(per_scenario: torch.Tensor, scenario: torch.Tensor, trained: torch.Tensor) -> torch.Tensor:
    """Picks each sample's own scenario output from (B, S, ...) outputs; index 0 (a scenario unseen in
    training) takes the mean over the trained scenarios (indices `trained`) instead of an untrained head."""
    table = with_trained_mean(per_scenario, 1, trained)
    index = scenario.view(-1, *([1] * (table.dim() - 1))).expand(-1, 1, *table.shape[2:])
    return table.gather(1, index).squeeze(1)


class PartitionedNorm(nn.Module):
    """STAR's partitioned normalisation (Sheng et al., CIKM 2021): each scenario's batch statistics during
    training, its moving statistics at inference, and a shared scale/shift times a scenario-specific one.

    STAR trains on mini-batches drawn from one scenario at a time, so its batch statistics are that scenario's;
    our batches mix scenarios, so each scenario's rows are normalised by their own rows' statistics
    (`per_scenario_batch_stats`). Normalising by the whole mixed batch instead would train on other statistics
    than the per-scenario moving ones used at inference: a feature that is constant within a scenario (its
    embedding) would carry information in training and none, or noise, at inference."""

    per_scenario_batch_stats = True  # False: the whole batch's statistics in training (the earlier behaviour)

    mean: torch.Tensor
    var: torch.Tensor
    trained: torch.Tensor

    def __init__(self, dim: int, n_scenarios: int, momentum: float = 0.1, eps: float = 1e-5,
                 trained: Sequence[int] | None = None) -> None:
        """`trained`: the scenarios with training rows, whose statistics index 0 averages (default: all but 0)."""
        super().__init__()
        self.register_buffer("trained", torch.tensor(list(range(1, n_scenarios)) if trained is None else
                                                     list(trained), dtype=torch.int64), persistent=False)
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))
        self.gamma_s = nn.Parameter(torch.ones(n_scenarios, dim))
        self.beta_s = nn.Parameter(torch.zeros(n_scenarios, dim))
        self.register_buffer("mean", torch.zeros(n_scenarios, dim))
        self.register_buffer("var", torch.ones(n_scenarios, dim))
        self.momentum, self.eps = momentum, eps

    def forward(self, x: torch.Tensor, scenario: torch.Tensor,
                slices: list[tuple[int, int, int]] | None = None) -> torch.Tensor:
        """x (B, dim); `slices` (scenario, start, end) when x is already ordered by scenario (ScenarioGroups)."""
        if self.training:
            with torch.no_grad():  # each scenario's moving statistics from its own samples
                n_rows = torch.bincount(scenario, minlength=self.mean.shape[0])
                counts = n_rows.clamp(min=1).unsqueeze(1)
                s_mean = torch.zeros_like(self.mean).index_add_(0, scenario, x) / counts
                s_var = torch.zeros_like(self.var).index_add_(0, scenario, (x - s_mean[scenario]) ** 2) / counts
                present = n_rows > 0
                m = self.momentum
                self.mean[present] = (1 - m) * self.mean[present] + m * s_mean[present]
                self.var[present] = (1 - m) * self.var[present] + m * s_var[present]
            # (x - batch mean) / sqrt(batch variance + eps), through batch_norm's fused kernel (15x faster forward
            # and backward than the same formula in separate tensor operations, measured on (4096, 208))
            z = (self._per_scenario(x, scenario, slices) if self.per_scenario_batch_stats
                 else F.batch_norm(x, None, None, training=True, eps=self.eps))
        else:
            # One affine map per scenario, z * scale[s] + shift[s], looked up once per sample.
            scale, shift = self.affine()
            return torch.addcmul(shift.index_select(0, scenario), x, scale.index_select(0, scenario))
        # index_select, not [scenario]: its backward is an index_add, not a slow accumulating index_put
        return z * (self.gamma * self.gamma_s.index_select(0, scenario)) + (self.beta + self.beta_s.index_select(
            0, scenario))


    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Evaluation mode's map x * scale[s] + shift[s]: (scale, shift), each (S, dim). A scenario unseen in
        training (index 0) has no statistics of its own: it uses the trained ones' mean."""
        mean = with_trained_mean(self.mean, 0, self.trained)
        var = with_trained_mean(self.var, 0, self.trained)
        scale = (self.gamma * self.gamma_s) / torch.sqrt(var + self.eps)  # (S, dim)
        return scale, self.beta + self.beta_s - mean * scale

    def _per_scenario(self, x: torch.Tensor, scenario: torch.Tensor,
                      slices: list[tuple[int, int, int]] | None) -> torch.Tensor:
        """Each scenario's rows normalised by their own batch statistics (a lone row: zeros, its variance is 0)."""
        groups = None
        if slices is None:
            groups = ScenarioGroups(scenario)
            x, slices = groups.sort(x), groups.slices
        parts = [F.batch_norm(x[a:b], None, None, training=True, eps=self.eps) if b - a > 1
                 else torch.zeros_like(x[a:b]) for _, a, b in slices]
        if not parts:  # an empty batch
            return x
        z = torch.cat(parts) if len(parts) > 1 else parts[0]
        return z if groups is None else groups.unsort(z)


class ScenarioGroups:
    """A batch's samples ordered by scenario, so that per-scenario layers work on contiguous slices: one matmul
    per scenario present, and no masked assignment (whose backward is a slow scatter on the CPU)."""

    def __init__(self, scenario: torch.Tensor) -> None:
        self.order = torch.argsort(scenario, stable=True)
        self.inverse = torch.argsort(self.order)
        counts = torch.bincount(scenario).tolist()
        ends = list(itertools.accumulate(counts))
        self.slices = [(s, end - n, end) for s, (n, end) in enumerate(zip(counts, ends, strict=True)) if n]
        self.scenario = scenario[self.order]  # sorted

    def sort(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(0, self.order)

    def unsort(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(0, self.inverse)


class StarLinear(nn.Module):
    """STAR's star-topology layer: scenario s uses W_shared * W_s (element-wise) and b_shared + b_s.
    Scenario 0 (unseen in training) uses the mean of the trained scenarios' W_s and b_s (`trained`), as the
    other models' shared paths average their trained scenarios; W_shared alone (W_0 = 1) is a network no
    scenario was trained through."""

    shared_path_mean = True  # False: scenario 0 uses W_shared alone (the earlier behaviour)
    trained: torch.Tensor

    def __init__(self, d_in: int, d_out: int, n_scenarios: int, trained: Sequence[int] | None = None) -> None:
        super().__init__()
        self.shared = nn.Linear(d_in, d_out)
        self.w = nn.Parameter(torch.ones(n_scenarios, d_in, d_out))
        self.b = nn.Parameter(torch.zeros(n_scenarios, d_out))
        self.register_buffer("trained", torch.tensor(list(range(1, n_scenarios)) if trained is None else
                                                     list(trained), dtype=torch.int64), persistent=False)

    def _specific(self, s: int) -> tuple[torch.Tensor, torch.Tensor]:
        if s == 0 and self.shared_path_mean:
            return self.w.index_select(0, self.trained).mean(0), self.b.index_select(0, self.trained).mean(0)
        return self.w[s], self.b[s]

    def weights(self, s: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Scenario s's layer as x @ W + b: (W (in, out), b (out,))."""
        w, bias = self._specific(s)
        return self.shared.weight.t() * w, bias + self.shared.bias

    def all_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every scenario's layer at once, as `_specific` gives each: W (S, in, out) and b (S, out)."""
        w: torch.Tensor = self.w
        b: torch.Tensor = self.b
        if self.shared_path_mean:
            w, b = with_trained_mean(w, 0, self.trained), with_trained_mean(b, 0, self.trained)
        return self.shared.weight.t().unsqueeze(0) * w, b + self.shared.bias

    def forward(self, x: torch.Tensor, groups: ScenarioGroups) -> torch.Tensor:
        """x: (B, in), already in `groups` order."""
        w_shared = self.shared.weight.t()  # (in, out)
        parts = []
        for s, a, b in groups.slices:
            w, bias = self._specific(s)
            parts.append(x[a:b] @ (w_shared * w) + bias)
        return torch.cat(parts) + self.shared.bias  # (B, out)


class StarFCN(nn.Module):
    """STAR's scenario-adaptive network (Sheng et al., CIKM 2021): partitioned normalisation, then star-topology
    layers (shared weights times each scenario's own) with ReLU and dropout, then a star-topology output layer.
    Used by STAR on the embedded features and by mist's `top: star` on [features, u, u * q]."""

    def __init__(self, d_in: int, hidden: Sequence[int], dropout: float, spec: FeatureSpec) -> None:
        super().__init__()
        n, known = spec.n_scenarios, spec.known_scenarios
        self.norm = PartitionedNorm(d_in, n, trained=known)
        dims = (d_in, *hidden)
        self.layers = nn.ModuleList(StarLinear(a, b, n, known) for a, b in itertools.pairwise(dims))
        self.out = StarLinear(dims[-1], 1, n, known)
        self.dropout = Dropout(dropout)

    def hidden(self, x: torch.Tensor, scenario: torch.Tensor) -> tuple[torch.Tensor, ScenarioGroups]:
        """The last hidden layer, its rows sorted by scenario, and the grouping that sorted them."""
        groups = ScenarioGroups(scenario)
        h = self.norm(groups.sort(x), groups.scenario, groups.slices)
        for layer in self.layers:
            h = self.dropout(torch.relu(layer(h, groups)))
        return h, groups

    gathered = False  # evaluation through `forward_gathered` (set on a copy for export: no data-dependent shapes)

    def forward(self, x: torch.Tensor, scenario: torch.Tensor) -> torch.Tensor:
        if self.gathered and not self.training:
            return self.forward_gathered(x, scenario)
        h, groups = self.hidden(x, scenario)
        return groups.unsort(self.out(h, groups)).squeeze(-1)

    def forward_gathered(self, x: torch.Tensor, scenario: torch.Tensor) -> torch.Tensor:
        """Evaluation mode's logits without sorting rows by scenario: each layer for every scenario, each row
        taking its own (S times the work of `forward`, no data-dependent shapes: what a traced or exported graph
        needs). The same numbers as `forward` in evaluation mode."""
        scale, shift = self.norm.affine()
        h = torch.addcmul(shift.index_select(0, scenario), x, scale.index_select(0, scenario))
        index = scenario.view(-1, 1, 1)
        layers = [cast(StarLinear, layer) for layer in (*self.layers, self.out)]
        for i, layer in enumerate(layers):
            w, b = layer.all_weights()
            out = torch.einsum("bi,sio->bso", h, w) + b.unsqueeze(0)  # (B, S, out)
            h = out.gather(1, index.expand(-1, 1, out.shape[-1])).squeeze(1)
            if i < len(layers) - 1:
                h = torch.relu(h)
        return h.squeeze(-1)

    def split(self, s: int) -> tuple[torch.Tensor, torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Evaluation mode, rows of scenario s: the first layer's pre-activation as x @ M + c with the partitioned
        normalisation folded in (M (in, hidden[0]), c), and every later layer's (W, b), the output layer last.
        The logit is then relu(... relu(relu(x M + c) W_1 + b_1) ...) W_out + b_out."""
        scale, shift = self.norm.affine()
        layers = [cast(StarLinear, layer) for layer in (*self.layers, self.out)]
        w, b = layers[0].weights(s)
        return scale[s].unsqueeze(1) * w, shift[s] @ w + b, [layer.weights(s) for layer in layers[1:]]
