"""mist's exact full-catalogue scoring: many queries against one fixed set of candidates, without recomputing what
does not depend on the pair.

`Mist.forward` on a (user, candidate) row computes, in this order: the history's tokens, the attention of the
candidate's query over them, the per-source pools and the interest-level gate, the transfer read-out, and the
scenario-adaptive top on [features, u, u * q]. Ranking a catalogue crosses every query with every candidate, and
most of that work is the same across one of the two sides:

- the candidate side, once per catalogue and scenario: the query vector q, its bilinear attention key, the gate's
  query term, the read-out's mapped item W_t i, the item's bias and prior, and the item columns' part of the first
  layers of the top and the auxiliary network (those layers are affine: the partitioned normalisation, fixed in
  evaluation, folds into the first layer's weights);
- the query side, once per query: the tokens of its real events only (no padding), their transfer bias, their
  pools, and the user columns' part of the same first layers.

Per (query, candidate) pair what is left is the attention over the query's real events, its pools, the gate, the
read-out's dot products, [u, u * q] through the first layer, and the top's later layers. The scores are
`forward`'s on the crossed rows up to floating-point reassociation (tests/models/test_contract.py).

With `co_items` the item-to-item term is added per query by scattering its events' neighbour lists into the
catalogue's columns (mist_cooc.CoItems.scatter).

Used for the `star`, `mlp` and `none` tops and the trained scenarios; a model reading scenarios through a mix
(step 6) or with the `ple` top scores through `Mist.score_candidates`'s general path.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from mistrec.batch import Batch
from mistrec.models.layers import MLP, StarFCN
from mistrec.models.mist_parts import interest_shares

if TYPE_CHECKING:
    from mistrec.models.mist import Mist

__all__ = ["MistCatalogue", "supports_catalogue"]


def supports_catalogue(model: Mist) -> bool:
    """Whether `MistCatalogue` scores this model exactly (see the module's docstring)."""
    from mistrec.models.mist_tops import _MLPTop, _NoTop

    return (model.mix is None and not model.training and isinstance(model.top, StarFCN | _MLPTop | _NoTop)
            and model.cfg.interest_scope != "own_active")  # trains with the pools restricted per query: not here


class _Side:
    """One scenario's candidate-side terms (C rows)."""

    def __init__(self, model: Mist, items: Batch, s: int, item_x: torch.Tensor, candidate: torch.Tensor) -> None:
        m = model
        self.s = s
        self.q = candidate + m.scenario.weight[s]  # (C, E): the attention query and the top's u * q factor
        self.key = None  # the bilinear scorer's per-candidate key (W q + w) / sqrt(E)
        if m.cfg.scorer == "bilinear":
            scorer = cast(nn.Module, m.attention)
            self.key = scorer.query(self.q) * scorer.scale  # type: ignore[operator]
        first = cast(nn.Linear, m.interest_gate[0])
        w_v, w_q, w_k = first.weight.split(candidate.shape[-1], dim=1)
        self.w_v = w_v.t()
        self.gate_q = self.q @ w_q.t() + first.bias  # (C, G)
        pool_emb = (m.scenario.weight[:, None] + m.polarity.weight[None]).reshape(-1, candidate.shape[-1])
        self.gate_pool = pool_emb @ w_k.t()  # (K, G)
        self.gate_out = cast(nn.Linear, m.interest_gate[2])
        self.null = None if m.null_gate is None else m.null_gate[s].expand(len(candidate))  # (C,)
        self.mapped = None  # the read-out's W_t i (C, E) and its per-pool weights A[t] (K,)
        if m.match is not None and m.pool_weight is not None:
            self.mapped = candidate @ m.match[s].t()
            self.pool_weight = m.pool_weight[s]
        # the logit terms that depend on the candidate alone, item bias and prior (`offset`), split as a user new in
        # the scenario reads them (`cold_scale`, Mist._cold_item_terms): kept whole, and scaled with the network
        bias = candidate.new_zeros(len(candidate))
        if m.item_bias is not None:
            bias += m.item_bias.weight.view(-1, m.n_scenarios)[items.item, s]
        prior = m.prior[s, items.item] if m.prior is not None else torch.zeros_like(bias)
        self.kept, self.scaled = m._cold_item_terms(bias, prior)
        self.offset = self.kept + self.scaled
        self.prior = prior  # what `prior_tilt` scales for a new user (Mist.tilt_factors)
        # `cold_scale: auto`: the scale s for a user with no event in the scenario (Mist._scales at activity 0, as
        # the scales stand when the side is made), None where it is 1; and its form (`anchor`: s scales what the
        # history adds to the network's no-history logit; else the learned item terms and the network).
        # `warm_scale: auto`: the scale for a user with events there (Mist._scales at activity 1), the "scale" form
        scales = m._scales(torch.tensor([s, s]), torch.tensor([0, 1]))
        cold, warm = (1.0, 1.0) if scales is None else scales.tolist()
        self.cold = None if cold == 1.0 else cold
        self.warm = None if warm == 1.0 else warm
        self.anchor = self.cold is not None and m.cold_anchor is not None and bool(m.cold_anchor[s])
        # the "rate" form (logged labels): a new user's kept item term is the counted click rate instead
        self.cold_kept, self.cold_scaled = self.kept, self.scaled
        if self.cold is not None and m.cold_rated is not None and m.cold_rate is not None and bool(m.cold_rated[s]):
            self.cold_kept, self.cold_scaled = m._cold_item_terms(bias, prior, m.cold_rate[s, items.item])
        # the top: the first layer's pre-activation x M + c, split by input: features (the item's columns here,
        # the user's per query), u, u * q
        d_f = item_x.shape[1]
        self.top = _top_layers(m.top, s)
        self.first_item = self.first_u = None
        if self.top is not None:
            w, c, _ = self.top
            self.w_features, self.first_u = w[:d_f], w[d_f:]
            self.first_item = item_x @ self.w_features + c  # (C, H)
        self.aux_item = None
        if m.aux is not None:  # STAR's auxiliary network on [scenario(s), features]: its first layer split alike
            aux_first = cast(nn.Linear, m.aux[0])
            e = candidate.shape[-1]
            self.w_aux_features = aux_first.weight[:, e:].t()
            self.aux_item = item_x @ self.w_aux_features + (m.scenario.weight[s] @ aux_first.weight[:, :e].t()
                                                            + aux_first.bias)
            self.aux_rest = nn.Sequential(*list(m.aux)[1:])


    def subset(self, columns: torch.Tensor) -> _Side:
        """The same terms for the candidates at `columns` only (a retrieval stage's few hundred, per request)."""
        out = copy.copy(self)
        for name in ("q", "key", "gate_q", "mapped", "kept", "scaled", "cold_kept", "cold_scaled", "offset", "prior",
                     "first_item", "aux_item", "null"):
            value = getattr(self, name)
            if value is not None:
                setattr(out, name, value.index_select(0, columns))
        return out


def _top_layers(top: nn.Module, s: int) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]
                                                  ] | None:
    """The top's first layer as (M, c) and the rest as a function of its pre-activation; None for no top."""
    from mistrec.models.mist_tops import _MLPTop

    if isinstance(top, StarFCN):
        w, c, rest = top.split(s)

        def star_rest(h: torch.Tensor) -> torch.Tensor:
            for w_l, b_l in rest:
                h = torch.addmm(b_l, torch.relu_(h), w_l)  # h is this function's own: relu in place
            return h.squeeze(-1)

        return w, c, star_rest
    if isinstance(top, _MLPTop):
        mlp = cast(MLP, top.mlp)
        first = cast(nn.Linear, mlp[0])
        after = nn.Sequential(*list(mlp)[1:])
        return first.weight.t(), first.bias, lambda h: after(h).squeeze(-1)
    return None


class MistCatalogue:
    """Scores query batches against every row of `items` (C candidates): `scorer(queries)` is (U, C) logits, equal
    to `model(queries.cross(items))` viewed (U, C); `scorer(queries, columns)` the same for the candidates at
    `columns` only (a CandidateScorer). The candidate side is computed once per scenario asked for, so one
    instance serves every query batch of a full-catalogue ranking, and a service's every retrieved subset. `block`
    bounds the candidates scored at once per query (the (block, hidden) activations stay in the processor's
    cache)."""

    def __init__(self, model: Mist, items: Batch, block: int = 8192) -> None:
        if not supports_catalogue(model):
            raise ValueError("MistCatalogue needs mist in evaluation mode, without a scenario mix and with the star, "
                             "mlp or none top: use Mist.score_candidates")
        self.model, self.items, self.block = model, items, block
        m = model
        with torch.no_grad():
            self.candidate = m.embed.items(items, m.cfg.side_features)  # (C, E)
            self.item_columns = m.embed.item_columns()
            x = m.embed(items)  # (C, d_embed): only the item columns are kept
            self.item_x = x * self.item_columns
        self._sides: dict[int, _Side] = {}

    def side(self, s: int) -> _Side:
        if s not in self._sides:
            with torch.no_grad():
                self._sides[s] = _Side(self.model, self.items, s, self._pad(self.item_x), self.candidate)
        return self._sides[s]

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding columns -> the top's feature columns: the extra query-side ones (activity, per-scenario
        user) are zero on the candidate side."""
        d_extra = self.model.d_features - x.shape[1]
        return torch.cat([x, x.new_zeros(len(x), d_extra)], dim=1) if d_extra else x

    def __call__(self, queries: Batch, columns: torch.Tensor | None = None) -> torch.Tensor:
        m = self.model
        out, co = self.parts(queries, columns)
        if co is not None:  # `co_items`' term, weighted per row (`co_scale`)
            weight = m._co_weights(queries.scenario, queries.activity)
            out += co if weight is None else co * weight.unsqueeze(1)
        return out

    def parts(self, queries: Batch, columns: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The logits (U, C) in two parts: everything but `co_items`' term, and the term unweighted (None without
        it); `self(queries)` is the first plus the second times each row's `co_scale` weight. A choice among the
        term's weights ranks every weight from one scoring (mistrec.eval.ranking.choose_on_ranking)."""
        m = self.model
        out = torch.empty(len(queries), len(self.items) if columns is None else len(columns))
        co = torch.empty_like(out) if m.co is not None else None
        with torch.no_grad():
            user_x = m._features(queries)  # (U, D_f): the user columns of the embedding, activity, per-scenario user
            tilt = m.tilt_factors(queries)  # (U,) `prior_tilt`: each new user's prior factor minus 1
            user_x[:, :m.embed.d_out] *= ~self.item_columns
            hist = m.embed.history_items(queries, m.cfg.side_features)  # (U, L, E)
            tokens = m.tokens(queries, hist)
            pools = m._pool_index(queries)
            unread = m._interest_unread(queries)  # `interest_scope: auto`: the events each query's interest reads
            own = None if unread is None else queries.hist_mask & ~unread
            if co is not None:  # the item-to-item term's inputs (mist_cooc.py)
                co_items = self.items.item if columns is None else self.items.item[columns]
                liked = queries.hist_mask & (queries.hist_labels > 0)
                new = m._co_new(queries.scenario, queries.activity)  # the rows `co_shrink_new` damps
            subsets: dict[int, _Side] = {}  # with columns: each scenario's side cut once per call
            for i in range(len(queries)):
                s = int(queries.scenario[i])
                real = queries.hist_mask[i]
                if columns is None:
                    side = self.side(s)
                elif s not in subsets:
                    side = subsets[s] = self.side(s).subset(columns)
                else:
                    side = subsets[s]
                rest = self._score(side, user_x[i], tokens[i, real], hist[i, real], pools[i, real],
                                   queries.hist_scenarios[i, real], None if own is None else own[i, real])
                if int(queries.activity[i]) != 0:  # events in the scenario
                    out[i] = side.offset + rest if side.warm is None else side.kept + side.warm * (side.scaled + rest)
                elif side.cold is None:
                    out[i] = side.offset + rest
                elif side.anchor:  # new in the scenario, the "anchor" form: the no-history logit whole
                    none = torch.zeros_like(real)
                    anchor = self._score(side, user_x[i], tokens[i, none], hist[i, none], pools[i, none],
                                         queries.hist_scenarios[i, none])
                    out[i] = side.offset + anchor + side.cold * (rest - anchor)
                else:  # new in the scenario, the "scale" form (or "rate": the counted rate kept instead)
                    out[i] = side.cold_kept + side.cold * (side.cold_scaled + rest)
                if tilt is not None and float(tilt[i]) != 0.0:  # new in the scenario: the prior tilted
                    out[i] += tilt[i] * side.prior
                if co is not None:  # item-to-item: the query's events' neighbours added into their columns
                    assert m.co is not None
                    co[i] = m.co.scatter(queries.hist_items[i:i + 1], queries.hist_scenarios[i:i + 1],
                                         liked[i:i + 1], queries.scenario[i:i + 1], m.n_items, m.mix,
                                         None if new is None else new[i:i + 1])[0, co_items]
        return out, co

    def _score(self, side: _Side, user_x: torch.Tensor, e: torch.Tensor, items: torch.Tensor, pool: torch.Tensor,
               scenarios: torch.Tensor, own: torch.Tensor | None = None) -> torch.Tensor:
        """One query's network part of the logits (C,), everything but the item terms (`_Side.offset`): e (n, E)
        its real events' tokens, items (n, E) their item vectors, pool (n,) and scenarios (n,) their pools and
        scenarios; `own` (n,) bool, where the interest u reads only those events (`interest_scope: auto`, the
        query's own scenario's: Mist._interest_unread) and the transfer read-out every one."""
        m = self.model
        n, d = e.shape
        if own is not None and bool(own.all()):
            own = None  # the interest reads every event: as without it
        present, local = torch.unique(pool, return_inverse=True)  # the query's non-empty pools, each event's
        k = len(present)
        onehot = torch.zeros(n, k).scatter_(1, local.unsqueeze(1), 1.0)  # (n, k)
        if own is not None:  # the interest's own events: their pools, and their tokens in those pools' columns
            present_u, local_u = torch.unique(pool[own], return_inverse=True)
            k_u = len(present_u)
            values_u = (torch.zeros(len(local_u), k_u).scatter_(1, local_u.unsqueeze(1), 1.0).unsqueeze(-1)
                        * e[own].unsqueeze(1)).flatten(1)  # (n_u, k_u * E)
            gate_pool_u = side.gate_pool.index_select(0, present_u)
        readout = side.mapped is not None and n > 0
        din = m.cfg.weights == "din"
        # what the attention weights sum, in one (n, width) matrix: each event's token in its pool's columns, and
        # for the read-out (softmax weights) its item vector likewise and its pool's mass
        parts = [(onehot.unsqueeze(-1) * e.unsqueeze(1)).flatten(1)]
        if readout and not din:
            parts += [(onehot.unsqueeze(-1) * items.unsqueeze(1)).flatten(1), onehot]
        values = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        plain = None  # DIN's raw weights: the read-out's pools are plain means, the same for every candidate
        if readout and din:
            plain = (onehot.t() @ items) / onehot.sum(0).unsqueeze(1)  # (k, E)
        gate_pool = side.gate_pool.index_select(0, present)  # (k, G)
        bias = m.transfer[side.s].index_select(0, scenarios).unsqueeze(1) if m.cfg.transfer_bias else None
        pool_weight = side.pool_weight.index_select(0, present) if readout else None
        first_u = None  # the first layer's rows for [u, u * q], and the user's features' part as a last row
        if side.top is not None and side.first_u is not None:
            first_u = torch.cat([side.first_u, (user_x @ side.w_features).unsqueeze(0)])
        aux_user = None if side.aux_item is None else user_x @ side.w_aux_features
        scores = []
        for a in range(0, len(side.q), self.block):
            sl = slice(a, a + self.block)
            q = side.q[sl]
            c = len(q)
            transfer = None
            if n == 0:  # no history: no interest, no read-out
                u = q.new_zeros(c, d)
            else:
                # scores laid out (n, c): the softmax over the events then runs along the candidates' axis
                att_t = (e @ side.key[sl].t() if side.key is not None
                         else m.attention.cross(e.unsqueeze(0), q.unsqueeze(0))[0].t())  # type: ignore[operator]
                if bias is not None:
                    att_t = att_t + bias
                w = self._weights(att_t, local, k)  # (c, n), a transposed view
                summed = w @ values  # (c, width)
                if own is None:
                    u = self._interest(side, sl, summed[:, :k * d].view(c, k, d), gate_pool)
                elif k_u == 0:  # none of the interest's events in the history: no interest, as the forward
                    u = q.new_zeros(c, d)
                else:  # the softmax over the own events alone
                    v_u = (self._weights(att_t[own], local_u, k_u) @ values_u).view(c, k_u, d)
                    u = self._interest(side, sl, v_u, gate_pool_u)
                if readout:
                    assert side.mapped is not None and pool_weight is not None
                    if plain is not None:
                        terms = side.mapped[sl] @ plain.t()  # (c, k)
                    else:
                        mass = summed[:, 2 * k * d:]
                        means = summed[:, k * d:2 * k * d].view(c, k, d)
                        terms = (means * side.mapped[sl].unsqueeze(1)).sum(-1) / mass.clamp_min(1e-12)
                    transfer = terms @ pool_weight
            if side.top is not None and side.first_item is not None and first_u is not None:
                # [u, u * q, 1] @ [M_u; M_uq; the user's part]: the user's part added inside the one matmul
                pre = torch.addmm(side.first_item[sl], torch.cat([u, u * q, u.new_ones(c, 1)], dim=1), first_u)
                logit = side.top[2](pre)
            else:
                logit = q.new_zeros(c)
            if side.aux_item is not None and aux_user is not None:
                logit += side.aux_rest(torch.relu(side.aux_item[sl] + aux_user)).squeeze(-1)
            if transfer is not None:
                logit += transfer
            scores.append(logit)
        return torch.cat(scores)

    @staticmethod
    def _interest(side: _Side, sl: slice, v: torch.Tensor, gate_pool: torch.Tensor) -> torch.Tensor:
        """Step 4's u (c, E) from the pools' weighted sums v (c, k, E), every one with events, and their part of the
        gate's first layer (k, G)."""
        h = (v @ side.w_v).add_(side.gate_q[sl].unsqueeze(1)).add_(gate_pool)
        g = side.gate_out(torch.relu_(h)).squeeze(-1)  # (c, k)
        beta = (g.softmax(dim=-1) if side.null is None
                else interest_shares(g, g.new_ones(1, v.shape[1], dtype=torch.bool), side.null[sl]))
        u = v[:, 0] * beta[:, :1]  # sum_k beta_k v_k, k small: a few multiply-adds
        for j in range(1, v.shape[1]):
            u.addcmul_(v[:, j], beta[:, j:j + 1])
        return u

    def _weights(self, att_t: torch.Tensor, local: torch.Tensor, k: int) -> torch.Tensor:
        """Attention weights (c, n) from scores laid out (n, c): the softmax over every event, or within each pool
        (`softmax_scope: pool`; `local` (n,) each event's pool of k), or DIN's raw scores."""
        m = self.model
        if m.cfg.weights == "din":
            return att_t.t()
        if m.cfg.softmax_scope == "all":
            return att_t.softmax(dim=0).t()
        group = local.unsqueeze(1).expand_as(att_t)
        top = att_t.new_full((k, att_t.shape[1]), float("-inf")).scatter_reduce(0, group, att_t, "amax")
        ex = torch.exp(att_t - top.gather(0, group))
        total = att_t.new_zeros(k, att_t.shape[1]).scatter_add_(0, group, ex)
        return (ex / total.gather(0, group)).t()
