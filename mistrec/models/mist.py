"""mist: Multi-scenario Interest Transfer through attention over a scenario-tagged behaviour history.

For candidate item i in target scenario s and history H = [(item_j, scenario_j, gap_j, label_j)]:

1. behaviour tokens     e_j = item(item_j) + side(item_j) + scenario(scenario_j) + gap(gap_j) + label(label_j),
                        side(.) the sum of the item's side-feature embeddings (category, genres, numbers)
2. self-attention       optional masked Transformer encoder layers over the tokens
3. target attention     a_j = ActivationUnit(e_j, q) + B[s, scenario_j], q = item(i) + side(i) + scenario(s)
                        (`scorer: bilinear`: e_j . (W q + w) / sqrt(E) instead of the activation unit);
                        B is the learned scenario-to-scenario transfer bias; masked softmax over j (or DIN's
                        unnormalised weights)
4. per-source interests v_k = sum over events of source k of w_j e_j (liked and not-liked events pooled
                        apart with `polarity_pools`); combined by interest-level attention (MiNet, Ouyang et
                        al., CIKM 2020): beta_k = softmax_k(MLP([v_k, q, emb(k)])), u = sum_k beta_k v_k, so
                        each source scenario's share (beta summed over its pools) is explicit
5. scenario-adaptive top  on [features, u, u * q]: partitioned normalisation (each scenario's own statistics),
                        then STAR-style shared x specific layers, or PLE-style gated shared and scenario experts (a
                        config choice)
6. new scenario         with `new_scenarios: text`, a scenario with no training rows that the scenarios table
                        describes in words is read as a mix of the trained scenarios, weighted by how alike their
                        descriptions are (features.scenario_text): its embedding, transfer-bias row and column are
                        the mix of theirs and its top's logit the mix of their tops' logits. Otherwise (the
                        default), and for index 0 (unknown): zero scenario embedding, zero transfer bias, the
                        trained scenarios' mean STAR weights and normalisation statistics

With conversions in the data a second scenario-adaptive top over the same input predicts p(conversion | click)
(`forward_tasks`, trained as ESMM: docs/training.md).

`explain(batch)` (the Explains capability) returns the logits with the event weights, the per-source attention
mass, the interest-level source shares and the transfer read-out's terms, for explanations.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mistrec.batch import Batch
from mistrec.errors import ConfigError
from mistrec.features import FeatureSpec, IndexedRows
from mistrec.metrics import paired_bootstrap_mean
from mistrec.models.base import (
    RANKED_WITH_EXPOSURE,
    RANKED_WITHOUT_TILT,
    CandidateScorer,
    Explanation,
    Model,
    ModelConfig,
    RankingOption,
)
from mistrec.models.layers import (
    MLP,
    ActivationUnit,
    BilinearScorer,
    FeatureEmbedding,
    SumScorer,
    grouped_softmax,
)
from mistrec.models.mist_config import (
    ACTIVE_ID_OPTIONS,
    ACTIVITY_BOUNDS,
    CO_CHOICE_P,
    CO_CHOICE_QUERIES,
    CO_OWN_WEIGHTS,
    CO_SCALES,
    CO_SCALES_DAMPED,
    COLD_SCALES,
    INTEREST_ALL,
    MIN_CHOICE_QUERIES,
    MIN_CHOICE_ROWS,
    PRIOR_TILTS,
    MistConfig,
)
from mistrec.models.mist_cooc import CoItems
from mistrec.models.mist_parts import ItemCounts, interest_shares
from mistrec.models.mist_rank import MistCatalogue, supports_catalogue
from mistrec.models.mist_tops import mixed_rows, top_network

__all__ = ["Mist", "MistConfig", "co_weight_choice"]

def _scale_of(option: str) -> float:
    """The scale of a `cold_scale` option ("scale 0.75" -> 0.75, "anchor 0.5" -> 0.5)."""
    return float(option.split(" ", 1)[1])


def _own_from(option: str) -> int:
    """The training events from which an `interest_scope: auto` option reads the own pools only ("interest own 6" ->
    6; "interest all" -> 0, none)."""
    return 0 if option == INTEREST_ALL else int(option.rsplit(" ", 1)[1])


def interest_options(cfg: MistConfig) -> tuple[str, ...]:
    """`interest_scope: auto`'s options: every pool first (the trained state), then one per `interest_from` k."""
    return (INTEREST_ALL, *(f"interest own {k}" for k in cfg.interest_from))


class Mist(Model):
    """Multi-scenario Interest Transfer (docs/models.md, steps 1-6): attention over the user's scenario-tagged
    history, conditioned on the target scenario and the candidate, pooled per source scenario and weighed by
    interest-level attention, read out bilinearly per source, then a scenario-adaptive top. Explains its scores
    (`explain`) and scores many candidates per history at once (`score_candidates`)."""

    name = "mist"
    # with the defaults above, mist learns the transfer read-out within 20 epochs at this rate and batch size and
    # not at the trainer's (1e-3, 4,096: users new in a scenario then stay at the isolated model's AUC on the
    # synthetic transfer platform; docs/models.md)
    train_defaults: ClassVar[dict[str, Any]] = {"lr": 3e-3, "batch_size": 1024}
    reads_history = True
    supports_conversion = True
    bmm_pools = 32  # pooling by one bmm up to this many pools (scenarios x polarities), by index_add above it
    mix: torch.Tensor | None  # (S, S) new scenarios' weights over the trained ones (step 6), None without any
    mixed: torch.Tensor | None  # (S,) bool: the scenarios read through the mix
    activity_bounds: torch.Tensor
    prior: torch.Tensor | None
    read_cold_id: torch.Tensor | None
    hide_active_id: torch.Tensor | None  # (S,) bool: `active_id: auto`'s choice per scenario
    own_interest_from: torch.Tensor | None  # (S,) long: `interest_scope: auto`'s choice per scenario (0: none)
    cold_scale: torch.Tensor | None
    cold_anchor: torch.Tensor | None
    cold_rate: torch.Tensor | None
    cold_rated: torch.Tensor | None
    warm_scale: torch.Tensor | None
    prior_tilt: torch.Tensor | None  # (S,) `prior_tilt: auto`'s b per scenario
    tilt_ranked: torch.Tensor | None  # (S,) bool: whether the ranking carries the tilt (`prior_tilt_guard`)
    tilt_center: torch.Tensor | None  # () its center, fitted on the training rows
    co_scale: torch.Tensor | None  # (S, 2) `co_items`' weight per scenario, for users new there and active there
    exposure: torch.Tensor | None  # (S, I) `rank_exposure`: log of each item's share of the scenario's training rows
    exposed: torch.Tensor | None  # (S,) `rank_exposure: auto`: whether the scenario's ranking adds the exposure
    # ChoosesOnRanking and ChoosesExposure: `co_scale: auto` and `rank_exposure: auto` rank at most this many a scenario
    ranking_queries = CO_CHOICE_QUERIES
    graph_anchor: bool | None = None  # a copy for export (eval.export): whether its graph computes `_anchor`
    graph_tilt: bool | None = None  # likewise: whether its graph computes `prior_tilt`'s term
    graph_own: bool | None = None  # likewise: whether its graph restricts interests to own pools (`interest_scope`)

    @classmethod
    def encoder_args(cls, cfg: ModelConfig) -> dict[str, object]:
        c = cast(MistConfig, cfg)
        return {"new_scenarios": c.new_scenarios, "text_encoder": c.text_encoder,
                "text_temperature": c.text_temperature}

    def __init__(self, spec: FeatureSpec, cfg: MistConfig) -> None:
        super().__init__()
        d = cfg.embedding_dim
        self.cfg, self.n_scenarios, self.n_items = cfg, spec.n_scenarios, spec.n_items
        # step 6's mix comes with the spec (saved with the encoder), so it is not part of the weights
        mix = torch.tensor(spec.scenario_mix, dtype=torch.float32) if spec.scenario_mix else None
        self.register_buffer("mix", mix, persistent=False)
        self.register_buffer("mixed", None if mix is None else mixed_rows(mix), persistent=False)
        self.known_scenarios = spec.known_scenarios
        self.embed = FeatureEmbedding(spec, d, init_std=cfg.init_std or 0.01, id_dropout=cfg.item_id_dropout,
                                      content_fusion=cfg.content_fusion, content_dropout=cfg.content_dropout)
        self.reads_history_side = cfg.side_features and self.embed.has_item_side
        self.scenario = nn.Embedding(spec.n_scenarios, d, padding_idx=0)  # row 0: unknown scenario, stays zero
        self.gap = nn.Embedding(spec.gap_buckets, d, padding_idx=0)
        self.label = nn.Embedding(3, d, padding_idx=0)  # 0 padding, 1 negative, 2 positive event
        if cfg.init_std:
            for emb in (self.scenario, self.gap, self.label):
                nn.init.normal_(emb.weight, std=cfg.init_std)
                with torch.no_grad():
                    emb.weight[0] = 0.0  # the padding row
        self.value = nn.Linear(1, d, bias=False)  # the standardised graded value, as a direction in token space
        self.encoder = None
        if cfg.self_attention_layers:
            layer = nn.TransformerEncoderLayer(d, cfg.heads, dim_feedforward=4 * d, dropout=cfg.dropout,
                                               batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, cfg.self_attention_layers, enable_nested_tensor=False)
        self.attention: nn.Module = (ActivationUnit(d, cfg.attention_hidden) if cfg.scorer == "mlp"
                                     else SumScorer(d, cfg.attention_hidden) if cfg.scorer == "sum"
                                     else BilinearScorer(d))
        self.transfer = nn.Parameter(torch.zeros(spec.n_scenarios, spec.n_scenarios))  # B[target, source]
        # A[target, source], for rows whose user is active in the target (`transfer_active`)
        self.transfer_active = (nn.Parameter(torch.zeros(spec.n_scenarios, spec.n_scenarios))
                                if cfg.transfer_active else None)
        self.interest_gate = MLP(3 * d, (32,), out=1)
        self.n_pools = 2 if cfg.polarity_pools else 1
        self.polarity = nn.Embedding(self.n_pools, d)  # tells the interest gate which pool it reads
        # the gate's logit for "no source" per target scenario (`null_interest`; mist_parts.interest_shares)
        self.null_gate = nn.Parameter(torch.zeros(spec.n_scenarios)) if cfg.null_interest else None
        self.user_scenario = None
        if cfg.user_per_scenario:
            self.user_scenario = nn.Embedding(spec.n_users * spec.n_scenarios, d)
            nn.init.normal_(self.user_scenario.weight, std=0.01)
        self.activity = nn.Embedding(len(ACTIVITY_BOUNDS) + 1, d) if cfg.activity_embedding else None
        self.item_bias = nn.Embedding(spec.n_items * spec.n_scenarios, 1) if cfg.item_bias else None
        self.match: nn.Parameter | None = None
        self.pool_weight: nn.Parameter | None = None
        if cfg.transfer_head:  # W_t = I and A = 0 at the start: the read-out adds nothing until it is learned
            self.match = nn.Parameter(torch.eye(d).repeat(spec.n_scenarios, 1, 1))
            self.pool_weight = nn.Parameter(torch.zeros(spec.n_scenarios, spec.n_scenarios * self.n_pools))
        prior = cfg.item_prior if cfg.item_prior is not None else spec.sampled_negatives
        self.register_buffer("prior", torch.zeros(spec.n_scenarios, spec.n_items) if prior else None)
        # `prior_negatives: expected`: the prior counts an item's sampled negatives as their expectation
        self.expected_negatives = cfg.prior_negatives == "expected" and spec.sampled_negatives
        if self.item_bias is not None:
            nn.init.zeros_(self.item_bias.weight)
        self.register_buffer("activity_bounds", torch.tensor(ACTIVITY_BOUNDS), persistent=False)
        # `cold_id: auto`: per scenario, whether its new users read their id in evaluation (chosen on validation
        # after training, `settle`; saved with the weights)
        self.register_buffer("read_cold_id", torch.zeros(spec.n_scenarios, dtype=torch.bool)
                             if cfg.cold_id == "auto" else None)
        # `active_id: auto`: per scenario, whether the rows of its active users read the unknown user instead of their
        # id in evaluation (chosen on validation after training, `settle`; saved with the weights)
        self.register_buffer("hide_active_id", torch.zeros(spec.n_scenarios, dtype=torch.bool)
                             if cfg.active_id == "auto" else None)
        # `interest_scope: auto`: per scenario, the training events from which a user's interest reads the scenario's
        # own pools only in evaluation, 0 for none (chosen on validation after training, `settle`; saved with the
        # weights)
        self.register_buffer("own_interest_from", torch.zeros(spec.n_scenarios, dtype=torch.long)
                             if cfg.interest_scope == "auto" else None)
        # `cold_scale: auto`: per scenario, the share s of the learned part of the logit a user new there gets, and
        # which part: with `cold_anchor` False the item bias and the network (the "scale" form), with it True what
        # the user's history adds to the network's no-history logit (the "anchor" form) (chosen on validation,
        # `settle`; saved with the weights)
        self.register_buffer("cold_scale", torch.ones(spec.n_scenarios) if cfg.cold_scale == "auto" else None)
        self.register_buffer("cold_anchor", torch.zeros(spec.n_scenarios, dtype=torch.bool)
                             if cfg.cold_scale == "auto" else None)
        # `cold_rate` (with `cold_scale: auto`, on logged labels: no counted prior in training): the "rate" form's
        # base, the logit of each (scenario, item)'s smoothed click rate in the training rows (as the popularity
        # baseline's, fitted before training, never read in training), and per scenario whether its new users read
        # that form (`settle`)
        rated = cfg.cold_rate and cfg.cold_scale == "auto" and not prior
        self.register_buffer("cold_rate", torch.zeros(spec.n_scenarios, spec.n_items) if rated else None)
        self.register_buffer("cold_rated", torch.zeros(spec.n_scenarios, dtype=torch.bool) if rated else None)
        # `prior_tilt: auto` (with the counted prior and `cold_scale: auto`): per scenario, b of a new user's prior
        # times 1 + b (log(1 + history events) - tilt_center) (chosen on validation, `settle`; saved with the weights);
        # tilt_center is fitted on the training rows (`setup`; NaN until then)
        tilted = cfg.prior_tilt == "auto" and prior and cfg.cold_scale == "auto"
        self.register_buffer("prior_tilt", torch.zeros(spec.n_scenarios) if tilted else None)
        self.register_buffer("tilt_center", torch.tensor(float("nan")) if tilted else None)
        # per scenario, whether the ranking's scores carry the tilt the click probability has (`prior_tilt_guard:
        # ranking`: the guard takes it out of the ranking alone, `ranking_scores`); True until the guard says
        self.register_buffer("tilt_ranked", torch.ones(spec.n_scenarios, dtype=torch.bool) if tilted else None)
        self._tilt_chosen: torch.Tensor | None = None  # GuardsOnRanking: the tilt as the validation rows chose it
        self.history_length = spec.history_length
        # `warm_scale: auto`: per scenario, the share s of the learned part of the logit (the "scale" form) a user with
        # at least one event there gets (chosen on validation, `settle`; saved with the weights)
        self.register_buffer("warm_scale", torch.ones(spec.n_scenarios) if cfg.warm_scale == "auto" else None)
        # set by the cold_scale round's options while `settle`'s validation rows are scored: every row is scored as
        # its user would be new in its scenario (the scenario's events leave the history, activity 0)
        self.as_new = False
        # `co_items`: item-to-item transfer through the training positives' co-occurrence (mist_cooc.py)
        own = cfg.reads_own  # the table deeper than training reads, for the active users' own scenario
        self.co = (CoItems(spec.n_items, spec.n_scenarios, cfg.co_own_items if own else cfg.co_items,
                           cross_only=cfg.co_scope == "cross", gain=cfg.co_gain, shrink=cfg.co_shrink,
                           shrink_new=cfg.co_shrink_new, k_new=cfg.co_items_new, k_read=cfg.co_items, own_rows=own)
                   if cfg.co_items else None)
        # `co_scale: auto`: per scenario, the weight of `co_items`' term for its users new there ([s, 0]) and active
        # there ([s, 1]) (chosen on the validation queries' ranking after training, `settle_ranking`; saved with the
        # weights)
        self.register_buffer("co_scale", torch.ones(spec.n_scenarios, 2)
                             if cfg.co_scale == "auto" and self.co is not None else None)
        # `rank_exposure: auto` on logged labels: the log of each (scenario, item)'s share of the training rows, which
        # a full-catalogue ranking adds to log P(click | shown) (`ranking_scores`; counted in `setup`)
        exposed = cfg.rank_exposure == "auto" and not spec.sampled_negatives
        self.register_buffer("exposure", torch.zeros(spec.n_scenarios, spec.n_items) if exposed else None)
        # per scenario, whether its ranking adds the exposure: chosen on the validation queries' ranking after
        # training (mistrec.eval.ranking.choose_exposure; saved with the weights); all on until then
        self.register_buffer("exposed", torch.ones(spec.n_scenarios, dtype=torch.bool) if exposed else None)
        if self.co is not None and cfg.co_fit == "residual" and spec.has_conversion:
            raise ConfigError("mist's co_fit: residual trains the click logit only; these data have conversions, "
                              "whose head it would leave untrained: use co_fit: joint, or auto (joint here).")
        # `co_fit: auto`: residual unless the data have conversions
        self.co_residual = cfg.co_fit == "residual" or (cfg.co_fit == "auto" and not spec.has_conversion)
        self.d_features = d_features = self.embed.d_out + d * (int(cfg.user_per_scenario) + int(cfg.activity_embedding))
        # features, interest u, u * q. Not the target scenario's embedding: it is constant within a scenario's
        # rows, so the top's per-scenario normalisation makes it 0 in training and amplified noise at inference
        # (the moving mean lags the embedding by a little, over a variance of ~0); the scenario reaches the top
        # through its scenario-specific weights and statistics, and the auxiliary network.
        d_top = d_features + 2 * d
        self.top: nn.Module = top_network(d_top, cfg, spec)
        self.aux = MLP(d + d_features, (32,), cfg.dropout, out=1) if cfg.auxiliary and cfg.top == "star" else None
        # the second task (conversion, ESMM): its own scenario-adaptive top over the same tokens and interests
        self.predicts_conversion = spec.has_conversion
        self.cvr_top: nn.Module | None = None
        if spec.has_conversion:
            self.cvr_top = top_network(d_top, cfg, spec)

    @property
    def n_indices(self) -> int:
        """Scenario indices the model reads: its S trained ones and unknown, plus those described after
        training (`add_mixed_scenario`), which have no parameters of their own."""
        return self.n_scenarios if self.mix is None else self.mix.shape[0]

    @property
    def reads_scenario_mix(self) -> bool:
        return self.mix is not None

    def add_mixed_scenario(self, weights: torch.Tensor) -> int:
        """Step 6 for a scenario described after training: a new row of the mix, (S,) weights over the trained
        scenarios (the encoder's `describe_scenario`). Returns its index. Existing indices score as before."""
        s = self.n_scenarios
        if weights.shape != (s,) or not bool(weights.sum() > 0) or bool((weights < 0).any()):
            raise ConfigError(f"A new scenario's weights must be {s} non-negative numbers, not all 0. Got "
                              f"shape {tuple(weights.shape)}.")
        base = self.mix
        if base is None:  # identity rows for the trained scenarios, zero (the shared path) for the rest
            base = torch.zeros(s, s, device=self.transfer.device)
            known = torch.tensor(self.known_scenarios, dtype=torch.long, device=base.device)
            base[known, known] = 1.0
        self.mix = torch.cat([base, weights.to(base.device, base.dtype).view(1, s)])
        self.mixed = mixed_rows(self.mix)
        return self.mix.shape[0] - 1

    def tokens(self, b: Batch, items: torch.Tensor | None = None) -> torch.Tensor:
        """1-2. Behaviour tokens, optionally contextualised by self-attention: (B, L, E). `items`: the events' item
        vectors (`embed.history_items`), when already computed."""
        # scenario + gap + label embeddings, looked up at once in their (S x G x 3)-row sum table: one
        # index_select over the B x L events instead of three (the same numbers).
        labels = self.label.weight if self.cfg.history_labels else torch.zeros_like(self.label.weight)
        table = self._scenarios()[:, None, None] + self.gap.weight[None, :, None] + labels[None, None]
        label = torch.where(b.hist_mask, (b.hist_labels > 0).long() + 1, 0)
        context = (b.hist_scenarios * self.gap.num_embeddings + b.hist_gaps) * 3 + label  # (B, L)
        d = table.shape[-1]
        if items is None:
            items = self.embed.history_items(b, self.cfg.side_features)
        e = items + table.view(-1, d).index_select(0, context.reshape(-1)).view(*context.shape, d)
        if self.cfg.history_values:
            # e + value * w, the Linear(1, E) as one fused multiply-add (a matmul with an inner size of 1 is slow):
            # zero where padded, values are 0 there
            e = torch.addcmul(e, b.hist_values.unsqueeze(-1), self.value.weight.view(-1))
        if self.encoder is not None:
            # A row with no event would make the encoder's softmax 0/0: let it attend to its padding, then zero.
            pad = ~b.hist_mask
            pad[:, -1] &= b.hist_mask.any(dim=1)
            e = self.encoder(e, src_key_padding_mask=pad) * b.hist_mask.unsqueeze(-1)
        return e

    def attend(self, e: torch.Tensor, q: torch.Tensor, b: Batch) -> torch.Tensor:
        """3. Target-scenario-aware attention weights over the events: (B, L), zero on padding."""
        return self._weights(self.attention(e, q), b)

    def _weights(self, a: torch.Tensor, b: Batch) -> torch.Tensor:
        """Activation-unit scores (B, L), or (B, C, L) for C candidates per history -> attention weights: plus the
        transfer bias B[s, scenario_j], then the masked softmax (or DIN's masked raw scores)."""
        mask = b.hist_mask if a.dim() == 2 else b.hist_mask.unsqueeze(1)
        if self.cfg.transfer_bias:
            transfer = self.transfer if self.mix is None else self.mix @ self.transfer @ self.mix.t()
            bias = transfer.index_select(0, b.scenario).gather(1, b.hist_scenarios)  # (B, L)
            if self.transfer_active is not None:  # plus A[s, scenario_j] where the user is active in s
                active = self.transfer_active if self.mix is None else self.mix @ self.transfer_active @ self.mix.t()
                bias = bias + active.index_select(0, b.scenario).gather(1, b.hist_scenarios) * (
                    b.activity > 0).unsqueeze(1).to(bias.dtype)
            a = a + (bias if a.dim() == 2 else bias.unsqueeze(1))
        if self.cfg.weights == "din":
            return a * mask
        if self.cfg.softmax_scope == "all":
            return a.masked_fill(~mask, float("-inf")).softmax(dim=-1).nan_to_num(0.0)  # empty rows -> 0
        pool = self._pool_index(b)
        return grouped_softmax(a, pool if a.dim() == 2 else pool.unsqueeze(1).expand_as(a),
                               mask.expand_as(a), self.n_indices * self.n_pools)

    def _pool_index(self, b: Batch) -> torch.Tensor:
        """Each event's pool, scenario * P + polarity (liked / not liked with `polarity_pools`): (B, L)."""
        polarity = (b.hist_labels > 0).long() if self.n_pools == 2 else torch.zeros_like(b.hist_scenarios)
        return b.hist_scenarios * self.n_pools + polarity

    def pool(self, e: torch.Tensor, w: torch.Tensor, q: torch.Tensor, b: Batch) -> tuple[torch.Tensor, ...]:
        """4. Per-source (and per-polarity) pooled interests, combined by interest-level attention.

        Returns the interest u (B, E), the attention mass per source (B, S) and each pool's share (B, S, P).
        """
        n, s_count, p = len(b), self.n_indices, self.n_pools
        k = s_count * p
        pool = self._pool_index(b)  # (B, L); padding has w = 0, so it adds nothing wherever it lands
        if k <= self.bmm_pools:  # few pools: each event's weight in its pool's column of a (B, L, K) matrix; a bmm
            onehot = w.new_zeros(*w.shape, k).scatter_(2, pool.unsqueeze(-1), w.unsqueeze(-1))  # (B, L, K)
            v = torch.bmm(onehot.transpose(1, 2), e)  # (B, S * P, E)
            mass = onehot.sum(1).view(n, s_count, p).sum(-1)  # (B, S)
        else:  # many pools: one index_add into B x S x P slots (the (B, L, K) matrix would outgrow the tokens)
            slot = (torch.arange(n, device=w.device).unsqueeze(1) * k + pool).reshape(-1)  # (B * L,)
            v = e.new_zeros(n * k, e.shape[-1]).index_add(0, slot, (w.unsqueeze(-1) * e).reshape(-1, e.shape[-1]))
            v = v.view(n, k, -1)
            mass = w.new_zeros(n * k).index_add(0, slot, w.reshape(-1)).view(n, s_count, p).sum(-1)
        counts = torch.zeros(n, k, device=w.device).scatter_add_(1, pool, b.hist_mask.to(w.dtype))
        present = counts > 0  # (B, S * P) pools with at least one event
        beta = interest_shares(self._gate(v, q), present, self._null(b.scenario))  # (B, S * P)
        u = torch.einsum("bk,bke->be", beta, v)  # (B, E)
        return u, mass, beta.view(n, s_count, p)

    def _cold(self, b: Batch) -> Batch:
        """Training only: `cold_rows` of the rows with other scenarios' events in their history, shown as a user
        new in the row's scenario (its events there removed from the history, activity 0)."""
        if not (self.training and self.cfg.cold_rows > 0):
            return b
        own = b.hist_mask & (b.hist_scenarios == b.scenario.unsqueeze(1))
        elsewhere = (b.hist_mask & ~own).any(1)
        picked = elsewhere & (torch.rand(len(b), device=b.user.device) < self.cfg.cold_rows)
        if not bool(picked.any()):
            return b
        return self.made_new(b, picked)

    def _source_out(self, b: Batch) -> Batch:
        """Training only: `source_rows` of the rows with another scenario's events in their history lose every event
        of one such scenario, drawn uniformly among the ones the history holds (the row's own scenario stays); with
        `event_dropout` each other scenario's event leaves the history with that probability."""
        if not (self.training and (self.cfg.source_rows > 0 or self.cfg.event_dropout > 0)):
            return b
        other = b.hist_mask & (b.hist_scenarios != b.scenario.unsqueeze(1))  # (B, L)
        if self.cfg.event_dropout > 0:
            b = b.without_events(other & (torch.rand(other.shape, device=other.device) < self.cfg.event_dropout))
            other = b.hist_mask & (b.hist_scenarios != b.scenario.unsqueeze(1))
        if self.cfg.source_rows <= 0:
            return b
        held = (F.one_hot(b.hist_scenarios.clamp_max(self.n_scenarios - 1), self.n_scenarios).bool()
                & other.unsqueeze(-1)).any(1)  # (B, S): the other scenarios the history holds
        held[:, 0] = False  # the unknown scenario is no source to leave out
        picked = held.any(1) & (torch.rand(len(b), device=b.user.device) < self.cfg.source_rows)
        if not bool(picked.any()):
            return b
        draw = torch.rand(held.shape, device=b.user.device).masked_fill(~held, -1.0).argmax(1)  # (B,)
        return b.without_events(other & picked.unsqueeze(1) & (b.hist_scenarios == draw.unsqueeze(1)))

    def training_view(self, b: Batch) -> tuple[Batch, torch.Tensor | None]:
        """`blank_rows`, in training: a share of the rows once more at the batch's end, blank (no history, the
        unknown user, activity 0: what the "anchor" form's reference reads), their loss summed into their row's; the
        rows themselves train as they are. One forward over both, so that the top's per-scenario batch statistics
        (`PartitionedNorm`) are those of the mixed batch, not of a batch of blank rows alone."""
        if not (self.training and self.cfg.blank_rows > 0):
            return b, None
        rows = (torch.rand(len(b), device=b.user.device) < self.cfg.blank_rows).nonzero().squeeze(1)
        owner = torch.cat([torch.arange(len(b), device=b.user.device), rows])
        return b.concat(self.blanked(b.subset(rows))), owner

    @staticmethod
    def blanked(b: Batch) -> Batch:
        """The rows with no history, the unknown user and activity 0."""
        out = b.without_events(b.hist_mask)
        return dataclasses.replace(out, user=torch.zeros_like(out.user), activity=torch.zeros_like(out.activity))

    def _features(self, b: Batch) -> torch.Tensor:
        if self.cfg.user_dropout >= 1.0:  # ids never trained: never read them, in evaluation either
            b = dataclasses.replace(b, user=torch.zeros_like(b.user))
        elif self.training and self.cfg.user_dropout > 0:
            hidden = torch.rand(len(b), device=b.user.device) < self.cfg.user_dropout
            b = dataclasses.replace(b, user=b.user.masked_fill(hidden, 0))
        if self.cfg.cold_id != "keep":  # new in the scenario: read through the history alone
            cold = b.activity < self.cfg.cold_below
            if self.read_cold_id is not None and not self.training:  # auto: where validation chose the id
                # a scenario added after training (add_mixed_scenario) lies past the buffer: hide the id there (an
                # `&`, not a where: ONNX Runtime has no Where over booleans)
                n = len(self.read_cold_id)
                cold = cold & ~(self.read_cold_id.index_select(0, b.scenario.clamp_max(n - 1)) & (b.scenario < n))
            b = dataclasses.replace(b, user=b.user.masked_fill(cold, 0))
        if self.hide_active_id is not None and not self.training:  # `active_id: auto`, where validation chose hiding
            n = len(self.hide_active_id)  # a scenario added after training lies past the buffer: the id read there
            hidden = ((b.activity >= self.cfg.cold_below) & (b.scenario < n)
                      & self.hide_active_id.index_select(0, b.scenario.clamp_max(n - 1)))
            b = dataclasses.replace(b, user=b.user.masked_fill(hidden, 0))
        x = self.embed(b)
        if self.activity is not None:
            bucket = torch.bucketize(b.activity, self.activity_bounds, right=True)
            x = torch.cat([x, self.activity(bucket)], dim=-1)
        if self.user_scenario is None:
            return x
        if self.mix is None:
            per_scenario = self.user_scenario(b.user * self.n_scenarios + b.scenario)
        else:  # a new scenario's user vector: the mix of the user's trained scenarios' vectors
            table = self.user_scenario.weight.view(-1, self.n_scenarios, self.cfg.embedding_dim)  # (U, S, E)
            per_scenario = torch.einsum("bs,bse->be", self.mix.index_select(0, b.scenario),
                                        table.index_select(0, b.user))
        return torch.cat([x, per_scenario], dim=-1)

    def validation_rounds(self) -> tuple[tuple[str, ...], ...]:
        """SelectsOnValidation: `cold_id: auto` (users new in a scenario hidden from their id, or reading it), then
        `cold_scale: auto` (which part of the logit a user new in the scenario gets scaled, and by how much: "scale
        s" for each s of COLD_SCALES, "anchor s" for each s below 1, and with `cold_rate` on logged labels "rate s"
        for each s below 1; docs/models.md, "cold_scale: auto"), then `prior_tilt: auto` (how a new user's prior
        leans on their events elsewhere: "tilt b" for each b of PRIOR_TILTS; off by default), then `warm_scale: auto`
        (the share of the learned part of the logit a user with events in the scenario gets: "warm s" for each s of
        COLD_SCALES; docs/models.md, "warm_scale: auto")."""
        rounds: tuple[tuple[str, ...], ...] = ()
        if self.read_cold_id is not None:
            rounds += (("hide", "keep"),)
        if self.hide_active_id is not None:
            rounds += (ACTIVE_ID_OPTIONS,)
        if self.own_interest_from is not None:
            rounds += (interest_options(self.cfg),)
        if self.cold_scale is not None:
            below = COLD_SCALES[1:]
            rates = tuple(f"rate {s:g}" for s in below) if self.cold_rated is not None else ()
            rounds += (tuple(f"scale {s:g}" for s in COLD_SCALES) + tuple(f"anchor {s:g}" for s in below) + rates,)
        if self.prior_tilt is not None:
            rounds += (tuple(f"tilt {b:g}" for b in PRIOR_TILTS),)
        if self.warm_scale is not None:
            rounds += (tuple(f"warm {s:g}" for s in COLD_SCALES),)
        return rounds

    def use_option(self, option: str) -> None:
        """Puts every scenario in the option's state. The cold_scale round's options also score every row as its
        user would be new in its scenario (`as_new`), so that the round's validation AUCs are those of new users,
        on all of the scenario's validation rows instead of the few of its users who are new there; the warm_scale
        round's score the rows as they are."""
        if option.startswith("warm "):
            assert self.warm_scale is not None
            self.warm_scale.fill_(_scale_of(option))
            self.as_new = False
        elif option.startswith("tilt "):
            assert self.prior_tilt is not None and self.tilt_center is not None
            if bool(torch.isnan(self.tilt_center)):
                raise RuntimeError("prior_tilt's center is not fitted: call fit_tilt_center on the training rows.")
            self.prior_tilt.fill_(_scale_of(option))
            self.as_new = True
        elif option.startswith(("scale ", "anchor ", "rate ")):
            assert self.cold_scale is not None and self.cold_anchor is not None
            self.cold_scale.fill_(_scale_of(option))
            self.cold_anchor.fill_(option.startswith("anchor "))
            if self.cold_rated is not None:
                self.cold_rated.fill_(option.startswith("rate "))
            self.as_new = True
        elif option.startswith("interest "):
            assert self.own_interest_from is not None
            self.own_interest_from.fill_(_own_from(option))
            self.as_new = False
        elif option in ACTIVE_ID_OPTIONS:
            assert self.hide_active_id is not None
            self.hide_active_id.fill_(option == ACTIVE_ID_OPTIONS[1])
            self.as_new = False
        else:
            assert self.read_cold_id is not None
            self.read_cold_id.fill_(option == "keep")
            self.as_new = False

    def settle(self, options: tuple[str, ...], aucs: dict[str, dict[int, float]], moved: dict[int, int],
               scenario_names: Sequence[str]) -> dict[str, Any]:
        """Each trained scenario keeps the round's option with the highest validation AUC, the earlier one on a tie
        (NaN never wins), where the options move the scores of at least MIN_CHOICE_ROWS of its validation rows;
        with fewer, the round's first option, the trained state (cold_id: hidden; cold_scale, warm_scale: 1;
        prior_tilt: 0)."""
        name = ("cold_id" if options == ("hide", "keep") else "active_id" if options == ACTIVE_ID_OPTIONS
                else "interest_scope" if options[0] == INTEREST_ALL
                else "warm_scale" if options[0].startswith("warm ") else "prior_tilt" if options[0].startswith("tilt ")
                else "cold_scale")
        self.use_option(options[0])  # every scenario, the unknown one included, back to the trained state first
        self.as_new = False  # and rows scored as they are again
        record: dict[str, Any] = {}
        for s in self.known_scenarios:
            by = {option: aucs.get(option, {}).get(s, float("nan")) for option in options}
            rows = moved.get(s, 0)
            best = options[0]
            for option in options[1:] if rows >= MIN_CHOICE_ROWS else ():
                if by[option] > by[best]:
                    best = option
            if name == "cold_id":
                assert self.read_cold_id is not None
                self.read_cold_id[s] = best == "keep"
                record[scenario_names[s - 1]] = {"valid_auc_hide": by["hide"], "valid_auc_keep": by["keep"],
                                                 "rows_moved": rows, "chosen": best}
            elif name == "active_id":
                assert self.hide_active_id is not None
                self.hide_active_id[s] = best == ACTIVE_ID_OPTIONS[1]
                record[scenario_names[s - 1]] = {"valid_auc_keep": by[ACTIVE_ID_OPTIONS[0]],
                                                 "valid_auc_hide": by[ACTIVE_ID_OPTIONS[1]], "rows_moved": rows,
                                                 "chosen": best.removeprefix("active ")}
            elif name == "interest_scope":
                assert self.own_interest_from is not None
                self.own_interest_from[s] = _own_from(best)
                record[scenario_names[s - 1]] = {
                    "valid_auc": {o.removeprefix("interest "): v for o, v in by.items()}, "rows_moved": rows,
                    "chosen": best.removeprefix("interest ")}
            elif name == "prior_tilt":
                assert self.prior_tilt is not None and self.tilt_ranked is not None
                self.prior_tilt[s] = _scale_of(best)
                self.tilt_ranked[s] = True  # a new choice: the guard weighs it afresh
                record[scenario_names[s - 1]] = {"valid_auc": {o.removeprefix("tilt "): v for o, v in by.items()},
                                                 "rows_moved": rows, "chosen": _scale_of(best)}
            elif name == "warm_scale":
                assert self.warm_scale is not None
                self.warm_scale[s] = _scale_of(best)
                record[scenario_names[s - 1]] = {"valid_auc": {o.removeprefix("warm "): v for o, v in by.items()},
                                                 "rows_moved": rows, "chosen": _scale_of(best)}
            else:
                assert self.cold_scale is not None and self.cold_anchor is not None
                self.cold_scale[s] = _scale_of(best)
                self.cold_anchor[s] = best.startswith("anchor ")
                if self.cold_rated is not None:
                    self.cold_rated[s] = best.startswith("rate ")
                record[scenario_names[s - 1]] = {"valid_auc": {o.removeprefix("scale "): v for o, v in by.items()},
                                                 "rows_moved": rows, "chosen": _scale_of(best),
                                                 "form": best.split(" ", 1)[0]}
        return {name: record}

    def _null(self, scenario: torch.Tensor) -> torch.Tensor | None:
        """The "no source" logit of each row's target scenario (B,), None without `null_interest`."""
        if self.null_gate is None:
            return None
        table = self.null_gate if self.mix is None else self.mix @ self.null_gate
        return table.index_select(0, scenario)

    def _gate(self, v: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Interest-level attention logits MLP([v_k, q, emb(k)]) for pools v (..., K, E) and queries (..., E),
        with the first layer split by input (v W_v + q W_q + emb W_k): the query's and the pool's parts once
        each instead of once per (sample, pool), and no (..., K, 3E) concatenation."""
        first, last = cast(nn.Linear, self.interest_gate[0]), cast(nn.Linear, self.interest_gate[2])
        w_v, w_q, w_k = first.weight.split(v.shape[-1], dim=1)
        pool_emb = (self._scenarios()[:, None] + self.polarity.weight[None]).reshape(-1, v.shape[-1])  # (K, E)
        h = (v @ w_v.t()).add_((q @ w_q.t()).unsqueeze(-2)).add_(pool_emb @ w_k.t() + first.bias)  # in place: mm's
        # backward reads its inputs, not its output
        return last(torch.relu(h)).squeeze(-1)  # the gate is [Linear, ReLU, Linear]: no dropout in it

    def _interest(self, b: Batch, tokens: torch.Tensor | None) -> _Interest:
        """Steps 1-4: the query q (B, E), event weights w (B, L), interest u (B, E), source mass, pool shares, and
        the transfer read-out's per-pool terms (step 4b)."""
        items = self.embed.history_items(b, self.cfg.side_features)  # (B, L, E): the events' item vectors
        if self.training and self.cfg.history_dropout > 0:
            items = F.dropout(items, self.cfg.history_dropout)
        e = self.tokens(b, items) if tokens is None else tokens  # (B, L, E)
        candidate = self.embed.items(b, self.cfg.side_features)  # (B, E)
        q = candidate + self._scenarios().index_select(0, b.scenario)  # (B, E)
        scores = self.attention(e, q)
        w = self._weights(scores, b)  # (B, L): step 3, as `attend`
        own = self._interest_view(b)  # `interest_scope`: what the interest reads
        w_interest = None if own is b else self._weights(scores, own)
        u, mass, share = self.pool(e, w if w_interest is None else w_interest, q, own)  # (B, E), (B, S), (B, S, P)
        terms = None
        if self.match is not None:
            pool = self._pool_index(b).clamp_max(self.n_scenarios * self.n_pools - 1)
            onehot = w.new_zeros(*w.shape, self.n_scenarios * self.n_pools).scatter_(
                2, pool.unsqueeze(-1), b.hist_mask.unsqueeze(-1).to(w.dtype))  # (B, L, K)
            terms = self._transfer_terms(w.unsqueeze(1), onehot, items, candidate.unsqueeze(1), b.scenario)[:, 0]
        return _Interest(q, w, u, mass, share, terms, w_interest)

    def _interest_view(self, b: Batch) -> Batch:
        """The history step 4's interest reads: the batch itself, or without the events `_interest_unread` names."""
        unread = self._interest_unread(b)
        return b if unread is None else b.without_events(unread)

    def _interest_unread(self, b: Batch) -> torch.Tensor | None:
        """(B, L) bool, the events the interest does not read, or None where it reads every event: with
        `interest_scope: own_active` the other scenarios' events of the rows whose user is active in their scenario
        (the attention's softmax then runs over their own events; the transfer read-out and `co_items` read the whole
        history still), in training only on `own_active_rows` of those rows; with `interest_scope: auto`, in
        evaluation, on the rows whose user has at least their scenario's chosen number of training events there
        (`own_interest_from`)."""
        if self.cfg.interest_scope == "own_active":
            active = b.activity >= self.cfg.cold_below
            if self.training and self.cfg.own_active_rows < 1.0:  # a share of the active rows, drawn per row
                active = active & (torch.rand(len(b), device=b.user.device) < self.cfg.own_active_rows)
        elif self.own_interest_from is not None and not self.training:  # `auto`: from the events validation chose
            if self.graph_own is False:  # a copy for export whose scenarios all read every pool
                return None
            n = len(self.own_interest_from)  # a scenario added after training lies past the buffer: every pool there
            start = self.own_interest_from.index_select(0, b.scenario.clamp_max(n - 1))
            active = (start > 0) & (b.activity >= start) & (b.scenario < n)
            # nothing restricted: the batch itself, every operation as trained (a copy for export knows before
            # tracing, `graph_own`: the tracer cannot branch on the values)
            if self.graph_own is None and not bool(active.any()):
                return None
        else:
            return None
        return b.hist_mask & (b.hist_scenarios != b.scenario.unsqueeze(1)) & active.unsqueeze(1)

    def _transfer_terms(self, w: torch.Tensor, onehot: torch.Tensor, items: torch.Tensor, candidate: torch.Tensor,
                        scenario: torch.Tensor) -> torch.Tensor:
        """Step 4b for U histories against C candidates each: w (U, C, L) attention weights, onehot (U, L, K) each
        event's pool, items (U, L, E) the events' item vectors, candidate (U, C, E), scenario (U,) the targets.
        Returns each pool's term A[t, k] v_k . (W_t i), (U, C, K): v_k the weighted mean of pool k's item vectors
        (zero, and no term, for a pool with no event)."""
        n, c, _ = w.shape
        k = onehot.shape[-1]
        weights = w if self.cfg.weights == "softmax" else torch.ones_like(w)  # DIN's raw weights: plain means
        summed = torch.bmm(weights, (onehot.unsqueeze(-1) * items.unsqueeze(2)).flatten(2)).view(n, c, k, -1)
        mass = torch.bmm(weights, onehot)  # (U, C, K): zero for an empty pool, whose term is masked below
        v = summed / mass.clamp_min(1e-12).unsqueeze(-1)
        assert self.match is not None and self.pool_weight is not None
        match: torch.Tensor = self.match
        pool_weight: torch.Tensor = self.pool_weight
        if self.mix is not None:  # new scenarios: the mix of the trained ones' metrics and weights
            match = torch.einsum("ts,sde->tde", self.mix, match)
            pool_weight = self.mix @ pool_weight
        mapped = torch.einsum("ucd,ued->uce", candidate, match.index_select(0, scenario))  # W_t i: (U, C, E)
        present = (onehot.sum(1) > 0).unsqueeze(1)  # (U, 1, K)
        return torch.einsum("ucke,uce->uck", v, mapped) * pool_weight.index_select(0, scenario).unsqueeze(1) * present

    def forward_tasks(self, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cvr_top is None:
            return super().forward_tasks(b)
        b, it = self._run(b, None)
        x, aux = self._top_input(b, it.u, it.q, it.transfer)
        click = self._click(x, aux, b, self._anchor(b, it.u, it.q))
        return self._with_co(click, b), self._route(self.cvr_top, x, b.scenario)

    def forward(self, b: Batch, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B,). `tokens` replaces the behaviour tokens (B, L, E) of step 1-2: attribution methods
        (integrated gradients) move along a path of token embeddings."""
        b, it = self._run(b, tokens)
        return self._with_co(self._head(b, it.u, it.q, it.transfer), b)

    def stage_loss(self, b: Batch) -> torch.Tensor | None:
        """`co_fit: residual` (and auto without conversions), in training: per-row BCE of the network's logit (as
        without the term) plus BCE of the network's logit, held fixed, with the term added (W learns what the
        network leaves)."""
        if self.co is None or not self.co_residual or not self.training:
            return None
        b, it = self._run(b, None)
        net = self._head(b, it.u, it.q, it.transfer)
        events = self._co_events(b)
        assert events is not None
        return (F.binary_cross_entropy_with_logits(net, b.label, reduction="none")
                + F.binary_cross_entropy_with_logits(net.detach() + events.sum(1), b.label, reduction="none"))

    def _co_events(self, b: Batch) -> torch.Tensor | None:
        """(B, L) each liked event's part of `co_items`' term for its row's candidate (leave-one-out on training
        positives in training, mist_cooc.py); None without the term."""
        if self.co is None:
            return None
        liked = b.hist_mask & (b.hist_labels > 0)
        own = (b.label > 0) if self.training else None
        if self.training:
            # the rows of known users: `blank_rows`' added views read the unknown user (index 0), which no training
            # row has (the encoder's ids are the training split's), and are not rows of the epoch
            self.co.count_rows(int((b.user != 0).sum()))
        return self.co.per_event(b.hist_items, b.hist_scenarios, liked, b.scenario, b.item.unsqueeze(1), own,
                                 self.mix, self._co_new(b.scenario, b.activity))[:, 0]

    def _co_new(self, scenario: torch.Tensor, activity: torch.Tensor) -> torch.Tensor | None:
        """(B,) bool: the rows whose `co_items` cosines `co_shrink_new` damps and `co_items_new` cuts, those of users
        new in a trained scenario (`_new_here`; evaluation only); None in training, where every row keeps
        `co_shrink` and all places."""
        return None if self.training else self._new_here(scenario, activity)

    def _new_here(self, scenario: torch.Tensor, activity: torch.Tensor) -> torch.Tensor:
        """(B,) bool: the rows whose user has no training event in the row's scenario, a trained one; a scenario
        described after training lies past the trained ones and reads what they learned as it is (`cold_scale`,
        `co_shrink_new`)."""
        return (scenario < self.n_scenarios) & (activity == 0)

    def _with_co(self, logit: torch.Tensor, b: Batch) -> torch.Tensor:
        """The logits (B,) with `co_items`' term of each row's history and candidate (weighted by `co_scale`)."""
        events = self._co_events(b)
        if events is None:
            return logit
        weight = self._co_weights(b.scenario, b.activity)
        return logit + (events.sum(1) if weight is None else events.sum(1) * weight)

    def _co_weights(self, scenario: torch.Tensor, activity: torch.Tensor) -> torch.Tensor | None:
        """`co_scale: auto` in evaluation: each row's weight of `co_items`' term (B,), its scenario's for a user new
        there (activity 0) or active there, 1 in a scenario added after training. None where nothing is weighted
        (training, off)."""
        if self.co_scale is None or self.training:
            return None
        n = len(self.co_scale)
        s = scenario.clamp_max(n - 1)
        weight = self.co_scale[s, (activity != 0).long()]
        return torch.where(scenario < n, weight, torch.ones_like(weight))

    def ranking_options(self) -> tuple[RankingOption, ...]:
        """ChoosesOnRanking: `co_scale: auto`'s weights c of `co_items`' term (CO_SCALES, the trained state first, and
        with `co_shrink`, `co_shrink_new` or `co_items_new` CO_SCALES_DAMPED after them), and with `co_own: auto`
        the pairs (c, w) of each non-zero c of CO_SCALES and w of CO_OWN_WEIGHTS, c * (cross + w * own) (the active
        users' own-scenario part at the weight w); none when off."""
        if self.co_scale is None:
            return ()
        co = self.co
        options: tuple[RankingOption, ...] = (
            CO_SCALES + CO_SCALES_DAMPED if co is not None and (co.shrink or co.shrink_new or co.k_new < co.k_read)
            else CO_SCALES)
        if co is not None and co.own_rows:
            options += tuple((c, w) for c in CO_SCALES if c > 0 for w in CO_OWN_WEIGHTS)
        return options

    def _kind_options(self, kind: str) -> tuple[RankingOption, ...]:
        """The weights a kind of user ("new" in the scenario, "active" there) chooses among: `ranking_options`, but
        CO_SCALES for the active users where only the new users' term is damped (`co_shrink_new`), and the pairs
        of `co_own` for the active users only (a new user has no event in the scenario to read)."""
        options = self.ranking_options()
        weights = tuple(o for o in options if not isinstance(o, tuple))
        if kind == "new":
            return weights
        return ((weights if self.co is not None and self.co.shrink else CO_SCALES)
                + tuple(o for o in options if isinstance(o, tuple)))

    def use_ranking_option(self, option: RankingOption) -> None:
        """Every scenario's users, new there and active there, at the weight `option` (a pair: c, and the active
        users' own-scenario part at w; a weight alone: that part at 0)."""
        assert self.co_scale is not None
        c, w = _weights_of(option)
        self.co_scale.fill_(c)
        if self.co is not None and self.co.own_weight is not None:
            self.co.own_weight.fill_(w)

    def _use_choice(self, s: int, kind: int, chosen: Any) -> None:
        """Scenario s's choice for a kind of user (0 new, 1 active): `co_scale[s, kind]`, and for the active users
        `co_own`'s weight (a pair's w, else 0). `chosen` as a record holds it: a weight, or a pair as a list."""
        assert self.co_scale is not None
        c, w = _weights_of(chosen)
        self.co_scale[s, kind] = c
        if kind == 1 and self.co is not None and self.co.own_weight is not None:
            self.co.own_weight[s] = w

    def settle_ranking(self, ndcg: dict[RankingOption, dict[int, dict[str, Any]]], scenario_names: Sequence[str]
                       ) -> dict[str, Any]:
        """`ndcg[option][s]`: scenario s's validation queries ranked at that weight, per query its "user", activity
        "group" (0 for a user with no training event in the scenario) and "ndcg@10". Per scenario and kind of user
        (new there: group 0; active there: the other groups), the weight `co_weight_choice` chooses among its
        kind's options (`_kind_options`)."""
        options = self.ranking_options()
        assert self.co_scale is not None and options
        self.use_ranking_option(options[0])
        record: dict[str, Any] = {}
        for s in self.known_scenarios:
            by_kind = {}
            ranked = {option: ndcg[option][s] for option in options if s in ndcg.get(option, {})}
            for k, kind in enumerate(("new", "active")):
                mine_options = self._kind_options(kind)
                values: dict[RankingOption, np.ndarray] = {option: np.zeros(0) for option in mine_options}
                users = np.zeros(0, dtype=np.int64)
                if ranked:  # the same queries under every option (choose_on_ranking's seeded sample)
                    group = next(iter(ranked.values()))["group"]
                    mine = group == 0 if kind == "new" else group > 0
                    values = {o: q["ndcg@10"][mine] for o, q in ranked.items() if o in mine_options}
                    users = next(iter(ranked.values()))["user"][mine]
                choice = co_weight_choice(values, users)
                self._use_choice(s, k, choice["chosen"])
                by_kind[kind] = choice
            record[scenario_names[s - 1]] = by_kind
        return {"co_scale": record}

    def guard_states(self) -> tuple[str, ...]:
        """GuardsOnRanking: `prior_tilt: auto`'s choice weighed on the validation ranking, "tilted" (as the validation
        rows' AUC chose it) then "untilted" (b = 0), where it tilts some scenario and `co_scale: auto` ranks; ()
        otherwise. AUC over a new user's rows rewards leaning on popular items; the tilt also reorders the user's
        own candidates, which on electronic_phone's electronic cost full-catalogue NDCG@10 (docs/benchmarks.md,
        "prior_tilt guarded by the ranking")."""
        if self.prior_tilt is None or not bool(self.prior_tilt.any()) or not self.ranking_options():
            return ()
        assert self.tilt_ranked is not None
        self._tilt_chosen = self.prior_tilt.clone()
        self.tilt_ranked.fill_(True)  # both states ranked by what the probability says, the guard weighs afresh
        return ("tilted", "untilted")

    def use_guard_state(self, state: str) -> None:
        """Every scenario's tilt as chosen on the validation rows ("tilted") or none ("untilted")."""
        assert self.prior_tilt is not None and self._tilt_chosen is not None, "guard_states() first"
        self.prior_tilt.copy_(self._tilt_chosen if state == "tilted" else torch.zeros_like(self._tilt_chosen))

    def settle_guard(self, records: dict[str, dict[str, Any]], scenario_names: Sequence[str]) -> dict[str, Any]:
        """`records[state]`: `settle_ranking`'s record made in that state. Per scenario whose tilt is not 0, the
        tilt is kept unless the untilted state's new users (group 0), at the weight of `co_items`' term chosen for
        them there, rank their validation queries higher in mean NDCG@10 than the tilted state's at its own (a tie,
        or no such queries, keeps it: the ranking cannot tell); the scenario then takes that state's `co_scale`
        choices. Where the tilt is not kept, `prior_tilt_guard: ranking` takes it out of the ranking's scores only
        (`tilt_ranked`), `both` out of the click probability too. Returns the kept states' `co_scale` record and,
        per tilted scenario, `prior_tilt_guard`'s (`kept`: whether the ranking keeps the tilt; `in_probability`:
        whether the click probability does)."""
        assert self.prior_tilt is not None and self.co_scale is not None and self._tilt_chosen is not None
        assert self.tilt_ranked is not None
        chosen, self._tilt_chosen = self._tilt_chosen, None
        self.prior_tilt.copy_(chosen)
        by_state = {state: record.get("co_scale", {}) for state, record in records.items()}
        co: dict[str, Any] = {}
        guard: dict[str, Any] = {}
        for s in self.known_scenarios:
            name = scenario_names[s - 1]
            tilted, untilted = by_state["tilted"].get(name), by_state["untilted"].get(name)
            keep = True
            if float(chosen[s]) != 0.0 and tilted is not None and untilted is not None:
                with_tilt, without = _chosen_ndcg(tilted["new"]), _chosen_ndcg(untilted["new"])
                keep = not without > with_tilt  # NaN on either side: the ranking cannot tell, the tilt stays
                in_probability = keep or self.cfg.prior_tilt_guard == "ranking"
                guard[name] = {"tilt": float(f"{float(chosen[s]):g}"), "valid_ndcg@10_tilted": with_tilt,
                               "valid_ndcg@10_untilted": without, "kept": keep, "in_probability": in_probability}
                if not in_probability:  # `both`: out of the probability, so out of the ranking
                    self.prior_tilt[s] = 0.0
                elif not keep:  # `ranking`: out of the ranking's scores alone
                    self.tilt_ranked[s] = False
            kept = tilted if keep else untilted
            if kept is not None:
                self._use_choice(s, 0, kept["new"]["chosen"])
                self._use_choice(s, 1, kept["active"]["chosen"])
                co[name] = kept
        return {"co_scale": co, "prior_tilt_guard": guard}

    def _run(self, b: Batch, tokens: torch.Tensor | None) -> tuple[Batch, _Interest]:
        """Steps 1-4 on the batch as training shows it (`cold_rows`; not along an attribution path), or, while the
        cold_scale round is scored (`as_new`), as every row's user would be new in its scenario."""
        if tokens is None:
            b = self._source_out(self._cold(b))
        if self.as_new and not self.training:
            b = self.made_new(b)
        return b, self._interest(b, tokens)

    @staticmethod
    def made_new(b: Batch, rows: torch.Tensor | None = None) -> Batch:
        """The rows as their users would be new in the row's scenario: its events out of the history (the other
        scenarios' stay), activity 0; every row, or the rows where `rows` (B,) is True (`cold_rows` in training)."""
        own = b.hist_mask & (b.hist_scenarios == b.scenario.unsqueeze(1))
        if rows is None:
            return dataclasses.replace(b.without_events(own), activity=torch.zeros_like(b.activity))
        out = b.without_events(own & rows.unsqueeze(1))
        return dataclasses.replace(out, activity=out.activity.masked_fill(rows, 0))

    def explain(self, b: Batch, tokens: torch.Tensor | None = None) -> Explanation:
        """The logits with the event weights, source attention mass and shares, and the transfer read-out's
        terms per source scenario (Explains)."""
        b, it = self._run(b, tokens)
        logit = self._head(b, it.u, it.q, it.transfer)
        co = self._co_events(b)  # each liked event's part of the item-to-item term, in logit units
        if co is not None:
            weight = self._co_weights(b.scenario, b.activity)
            if weight is not None:  # as it enters the logit (`co_scale`)
                co = co * weight.unsqueeze(1)
            logit = logit + co.sum(1)
        # each event's weight in the interest u: its attention weight times its pool's interest-level share
        effective = (it.w if it.w_interest is None else it.w_interest) * it.share.flatten(1).gather(
            1, self._pool_index(b))
        terms = None if it.terms is None else it.terms.view(len(b), self.n_scenarios, self.n_pools).sum(-1)
        scale = self._scales(b.scenario, b.activity)
        if terms is not None and scale is not None:  # each term as it enters the logit (`cold_scale`, `warm_scale`)
            terms = terms * scale.unsqueeze(1)
        return Explanation(logit=logit, event_weights=it.w, event_effect=effective, source_mass=it.mass,
                           source_share=it.share.sum(-1), pool_share=it.share, transfer_terms=terms, event_co=co)

    def _head(self, b: Batch, u: torch.Tensor, q: torch.Tensor, transfer: torch.Tensor | None = None,
              events: torch.Tensor | None = None) -> torch.Tensor:
        """5-6. The scenario-adaptive top on [features, u, u * q] (+ STAR's auxiliary network on [scenario(s),
        features], + the transfer read-out's logit term): one logit per row of b, safe for new and unknown
        scenarios. `events`: each row's history events, where b is given without its history (`prior_tilt`)."""
        x, aux = self._top_input(b, u, q, transfer)
        return self._click(x, aux, b, self._anchor(b, u, q), events)

    def _network(self, x: torch.Tensor, aux: torch.Tensor | None, b: Batch) -> torch.Tensor:
        """The network's part of the logit (B,): the top on x, plus the terms outside it (`_top_input`)."""
        rest = self._route(self.top, x, b.scenario)
        return rest if aux is None else rest + aux

    def _anchor(self, b: Batch, u: torch.Tensor, q: torch.Tensor) -> torch.Tensor | None:
        """The "anchor" form's reference (B,): the network's part of the logit had the user no history (no
        interest, no read-out term), on the rows that read it (`_anchored_rows`; zero on the others); None where
        no row reads it (and in training). A graph being exported computes it on every row where any scenario
        chose the form (`graph_anchor`, set before tracing: the tracer cannot branch on the buffer's values)."""
        if self.cold_anchor is None or self.training:
            return None
        if self.graph_anchor is not None:
            return self._network(*self._top_input(b, torch.zeros_like(u), q), b) if self.graph_anchor else None
        rows = self._anchored_rows(b)
        if not bool(rows.any()):
            return None
        sub = b.subset(rows)
        out = u.new_zeros(len(b))
        out[rows] = self._network(*self._top_input(sub, u.new_zeros(len(sub), u.shape[1]), q[rows]), sub)
        return out

    def _anchored_rows(self, b: Batch) -> torch.Tensor:
        """(B,) bool: the rows of users with no event in a scenario that chose the "anchor" form."""
        assert self.cold_anchor is not None
        s, new = self._new_rows(b.scenario, b.activity)
        return self.cold_anchor.index_select(0, s) & new

    def _rated_rows(self, b: Batch) -> torch.Tensor | None:
        """(B,) bool: the rows of users with no event in a scenario that chose the "rate" form; None in training
        and where the form does not exist (a counted prior in training, or `cold_scale: off`)."""
        if self.cold_rated is None or self.training:
            return None
        s, new = self._new_rows(b.scenario, b.activity)
        return self.cold_rated.index_select(0, s) & new

    def _new_rows(self, scenario: torch.Tensor, activity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's index into the cold_scale buffers and whether `cold_scale` applies to it: a user with no
        event in a trained scenario (a scenario added after training lies past the buffers and is not scaled)."""
        assert self.cold_scale is not None and len(self.cold_scale) == self.n_scenarios
        return scenario.clamp_max(self.n_scenarios - 1), self._new_here(scenario, activity)

    def _click(self, x: torch.Tensor, aux: torch.Tensor | None, b: Batch, anchor: torch.Tensor | None = None,
               events: torch.Tensor | None = None) -> torch.Tensor:
        rest = self._network(x, aux, b)
        scale = self._scales(b.scenario, b.activity)
        if scale is None:
            return self._item_terms(b) + rest
        # the "scale" form (a user new in the scenario, `cold_scale`; one with events there, `warm_scale`): the item's
        # base rate whole, what was learned from the active users (learned item terms and network) scaled
        bias, prior = self._bias_term(b), self._prior_term(b)
        kept, learned = self._cold_item_terms(bias, prior)
        rated = self._rated_rows(b)
        if rated is not None:  # the "rate" form, on the new users' rows of the scenarios that chose it
            assert self.cold_rate is not None
            s = b.scenario.clamp_max(len(self.cold_rate) - 1)
            rate_kept, rate_learned = self._cold_item_terms(bias, prior, self.cold_rate[s, b.item])
            kept, learned = torch.where(rated, rate_kept, kept), torch.where(rated, rate_learned, learned)
        tilt = self._tilt_term(b, prior, events)
        if tilt is not None:  # `prior_tilt`: a new user's prior leaning on their events elsewhere
            kept = kept + tilt
        logit = torch.addcmul(kept, scale, learned + rest)
        if anchor is None:
            return logit
        # the "anchor" form, on the new users' rows of the scenarios that chose it: the item terms and the network's
        # no-history logit whole, what the user's history adds to it scaled
        anchored = kept + learned + anchor + scale * (rest - anchor)
        return torch.where(self._anchored_rows(b), anchored, logit)

    def _cold_item_terms(self, bias: torch.Tensor, prior: torch.Tensor, rate: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """`cold_scale`'s split of the item terms for a user new in the scenario: (kept whole, scaled with the
        network). With the counted prior (implicit data) the prior is the item's base rate and the learned bias a
        correction fitted on active users; without one the learned bias is the base rate, or, in the "rate" form
        (`rate`: the counted click rate's logit, `cold_rate`), the counted rate is, and the learned bias's distance
        from it is scaled. The one place the rule lives: `_click` and the catalogue path (mist_rank) both call
        it."""
        if rate is not None:
            return rate, bias - rate
        if self.prior is None:
            return bias, torch.zeros_like(bias)
        return prior, bias

    def tilt_factors(self, b: Batch, events: torch.Tensor | None = None) -> torch.Tensor | None:
        """`prior_tilt: auto` in evaluation: each row's factor of the prior minus 1 (B,), b (log(1 + n) - center) for
        a user new in a trained scenario (n the events in its history, or `events` where b comes without it), clamped
        so the prior's factor is >= 0; 0 for the others. None where nothing is tilted (training, off, every b 0).
        The one place the rule lives: `_click` and the catalogue path (mist_rank) both call it."""
        if self.prior_tilt is None or self.training:
            return None
        # a copy for export knows before tracing (`graph_tilt`): the tracer cannot branch on the buffer's values
        if not (self.graph_tilt if self.graph_tilt is not None else bool(self.prior_tilt.any())):
            return None
        assert self.tilt_center is not None
        s, new = self._new_rows(b.scenario, b.activity)
        n = (b.hist_mask.sum(1) if events is None else events).to(torch.float32)
        factor = (self.prior_tilt.index_select(0, s) * (torch.log1p(n) - self.tilt_center)).clamp_min(-1.0)
        return torch.where(new, factor, torch.zeros_like(factor))

    def _tilt_term(self, b: Batch, prior: torch.Tensor, events: torch.Tensor | None = None) -> torch.Tensor | None:
        """What `prior_tilt` adds to each row's logit (B,): its factor minus 1 times its prior; None where nothing."""
        factors = self.tilt_factors(b, events)
        return None if factors is None else factors * prior

    def fit_tilt_center(self, users: np.ndarray, label: np.ndarray) -> None:
        """`prior_tilt`'s center from the training rows: the mean over the users with a training positive of
        log(1 + their positives), at most the history length (what a history holds)."""
        if self.tilt_center is None:
            return
        counts = np.bincount(users[label > 0])
        counts = np.minimum(counts[counts > 0], self.history_length)
        self.tilt_center.fill_(float(np.log1p(counts).mean()) if len(counts) else 0.0)

    def _scales(self, scenario: torch.Tensor, activity: torch.Tensor) -> torch.Tensor | None:
        """`cold_scale: auto` and `warm_scale: auto` in evaluation: each row's scale s of the part of its logit it
        applies to (`_click`) (B,), on every item: the scenario's `cold_scale` for a user with no event there yet
        (activity 0), its `warm_scale` for one with events there, 1 in a scenario added after training. None where
        nothing is scaled (training, both off)."""
        buffers = [t for t in (self.cold_scale, self.warm_scale) if t is not None]
        if not buffers or self.training:
            return None
        n = len(buffers[0])
        s, known = scenario.clamp_max(n - 1), scenario < n
        one = torch.ones_like(scenario, dtype=torch.float32)
        cold = self.cold_scale.index_select(0, s) if self.cold_scale is not None else one
        warm = self.warm_scale.index_select(0, s) if self.warm_scale is not None else one
        return torch.where(known, torch.where(activity == 0, cold, warm), one)

    def _item_terms(self, b: Batch) -> torch.Tensor:
        """The logit's item terms (B,): the item's bias and prior in the row's scenario (zero without them)."""
        return self._bias_term(b) + self._prior_term(b)

    def _bias_term(self, b: Batch) -> torch.Tensor:
        """The item's learned bias in the row's scenario (B,) (zero without `item_bias`)."""
        logit = b.item.new_zeros(len(b), dtype=torch.float32)
        if self.item_bias is not None:
            # the item's bias in every trained scenario (B, S): its own scenario's, or for a scenario described
            # after training (an index past the table) their mean
            biases = self.item_bias.weight.view(-1, self.n_scenarios).index_select(0, b.item)
            if self.mix is not None and bool((b.scenario < self.mix.shape[0]).all()):
                # scenarios read as a mix of the trained ones (step 6): the mix of their biases
                logit = logit + (biases * self.mix.index_select(0, b.scenario)).sum(1)
            else:
                known = b.scenario < self.n_scenarios
                own = biases.gather(1, torch.where(known, b.scenario, 0).unsqueeze(1)).squeeze(1)
                logit = logit + torch.where(known, own, biases.mean(1))
        return logit

    def _prior_term(self, b: Batch) -> torch.Tensor:
        """The item's counted prior in the row's scenario (B,) (zero without `item_prior`)."""
        if self.prior is None:
            return b.item.new_zeros(len(b), dtype=torch.float32)
        # a scenario described after training (an index past the table) has no prior of its own: the shared one
        scenario = torch.where(b.scenario < self.prior.shape[0], b.scenario, torch.zeros_like(b.scenario))
        return self.prior[scenario, b.item]

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # saved before `prior_tilt` (2026-12-05, thirty-second session), or with it off and loaded with it on: no tilt,
        # and no center (NaN: `fit_tilt_center` before the choice is made again, benchmarks/rechoose.py)
        if self.prior_tilt is not None and prefix + "prior_tilt" not in state_dict:
            state_dict[prefix + "prior_tilt"] = torch.zeros_like(self.prior_tilt)
            state_dict[prefix + "tilt_center"] = torch.tensor(float("nan"))
        # saved before `prior_tilt_guard` (2026-12-05, thirty-eighth session): the ranking carried whatever tilt the
        # run kept (its guard, if any, had taken a refused tilt out of the probability too)
        if self.tilt_ranked is not None and prefix + "tilt_ranked" not in state_dict:
            state_dict[prefix + "tilt_ranked"] = torch.ones_like(self.tilt_ranked)
        # saved before `active_id` (2026-12-06, forty-third session), or with it off and loaded with it on: every
        # active user reads their id, as that run scored them
        if self.hide_active_id is not None and prefix + "hide_active_id" not in state_dict:
            state_dict[prefix + "hide_active_id"] = torch.zeros_like(self.hide_active_id)
        # saved before `interest_scope: auto` (2026-12-06, forty-fourth session), or with it off and loaded with it
        # on: every interest reads every pool, as that run scored them
        if self.own_interest_from is not None and prefix + "own_interest_from" not in state_dict:
            state_dict[prefix + "own_interest_from"] = torch.zeros_like(self.own_interest_from)
        # saved before `rank_exposure` (2026-12-04, thirtieth session), or with it off and loaded with it on: no
        # counted shares, zeros, which rank as the logit does (log P(click | shown) orders as the logit)
        if self.exposure is not None and prefix + "exposure" not in state_dict:
            state_dict[prefix + "exposure"] = torch.zeros_like(self.exposure)
        # saved before the choice per scenario (2026-12-04, thirty-first session): the exposure in every scenario,
        # as that run ranked
        if self.exposed is not None and prefix + "exposed" not in state_dict:
            state_dict[prefix + "exposed"] = torch.ones_like(self.exposed)
        # saved without the "rate" form (before 2026-12-04's twenty-fourth session, or without `cold_rate` and
        # loaded with it, benchmarks/option_effect.py --settings): none of its scenarios chose it, and no counted rate
        # (zeros until `fit_rate` counts it again from the training rows)
        if self.cold_rated is not None and self.cold_rate is not None and prefix + "cold_rated" not in state_dict:
            state_dict[prefix + "cold_rated"] = torch.zeros_like(self.cold_rated)
            state_dict[prefix + "cold_rate"] = torch.zeros_like(self.cold_rate)
        # saved without `co_scale` (before 2026-12-04's twenty-sixth session, or with it off and loaded with it on,
        # benchmarks/option_effect.py --settings): the term whole for every user, as a weight of 1 gives
        if self.co_scale is not None and prefix + "co_scale" not in state_dict:
            state_dict[prefix + "co_scale"] = torch.ones_like(self.co_scale)
        # saved before 2026-12-03's twentieth session: no `warm_scale` (users with events in a scenario got the whole
        # logit, as a warm_scale of 1 gives them)
        if self.warm_scale is not None and prefix + "warm_scale" not in state_dict:
            state_dict[prefix + "warm_scale"] = torch.ones_like(self.warm_scale)
        # saved before 2026-12-03's nineteenth session: no `cold_anchor` (every scenario had the "scale" form), and
        # the scale applied to users with fewer than `cold_below` events in the scenario, not only to those with none
        scales = state_dict.get(prefix + "cold_scale")
        if scales is not None and prefix + "cold_anchor" not in state_dict:
            state_dict[prefix + "cold_anchor"] = torch.zeros(len(scales), dtype=torch.bool)
            if bool((scales != 1).any()) and prefix + "known_items" not in state_dict:
                warnings.warn("This mist run chose its cold_scale when the scale also applied to users with 1 or 2 "
                              "events in a scenario (before the nineteenth session, 2026-12-03); it now applies to "
                              "users with none there only, so scores of users with 1 or 2 events differ from its "
                              "recorded metrics: train it again.", stacklevel=2)
        # saved before 2026-12-03's eighteenth session: `known_items` limited `cold_scale` to items with a training
        # positive in the scenario, the bias not scaled; the scale now applies to every item and the bias too
        if state_dict.pop(prefix + "known_items", None) is not None:
            scales = state_dict.get(prefix + "cold_scale")
            if scales is not None and bool((scales != 1).any()):
                warnings.warn("This mist run chose its cold_scale when the scale applied only to items with a training"
                              " positive (before 2026-12-03); it now scales every item's learned part for users new in"
                              " a scenario, so its scores for them differ from its recorded metrics: train it again.",
                              stacklevel=2)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def setup(self, rows: IndexedRows) -> None:
        """Fits, on the training rows before training, the item prior (`item_prior`) and `co_items`' table."""
        self.setup_chunks([rows])

    def refit_co_table(self, rows: IndexedRows) -> None:
        """A loaded run's `co_items` table made again from its training rows at this model's depth, where it was
        saved shallower (a run trained without `co_own`, loaded with it: benchmarks/rechoose.py --settings
        co_own=auto); the saved places must come first in it (CoItems.refit). Nothing else changes."""
        assert self.co is not None
        liked = rows.label > 0
        self.co.refit([(rows.user[liked], rows.item[liked])])

    def setup_chunks(self, chunks: Iterable[IndexedRows]) -> None:
        """`setup` from the training rows a chunk at a time (streamed training: a shard at a time): the prior is a
        sum over the rows (ItemCounts); `co_items`' table keeps the positives' (user, item) pairs, 16 bytes each,
        until it is fitted."""
        if self.prior is None and self.co is None and self.cold_rate is None and self.exposure is None:
            return
        counts = ItemCounts(self.n_scenarios, self.n_items)
        positives: list[tuple[Any, Any]] = []
        liked_users: list[np.ndarray] = []  # `prior_tilt`'s center: each training positive's user
        n_rows = 0
        for rows in chunks:
            n_rows += len(rows.label)
            counts.add(rows)
            if self.tilt_center is not None:
                liked_users.append(rows.user[rows.label > 0])
            if self.co is not None:
                liked = rows.label > 0
                positives.append((rows.user[liked], rows.item[liked]))
        if self.co is not None:
            self.co.fit(positives, rows=n_rows)
        if self.prior is not None:
            self.prior = counts.prior(self.cfg.prior_strength, expected_negatives=self.expected_negatives)
        if self.tilt_center is not None:
            users = np.concatenate(liked_users) if liked_users else np.zeros(0, dtype=np.int64)
            self.fit_tilt_center(users, np.ones(len(users)))
        if self.cold_rate is not None:
            self.cold_rate = counts.prior(self.cfg.prior_strength)
        if self.exposure is not None:
            self.exposure = counts.exposure()

    def ranking_scores(self, logits: torch.Tensor, scenario: torch.Tensor, items: torch.Tensor,
                       queries: Batch | None = None) -> torch.Tensor:
        """OrdersRanking: with `rank_exposure` (logged labels), log P(click | shown) + log P(shown) (U, C), P(shown)
        the item's share of the scenario's training rows (a scenario described after training: every scenario's),
        in the scenarios whose validation ranking chose it (`exposed`); with `prior_tilt_guard: ranking` (implicit
        data), the logits less the tilt's term for the new users of the scenarios whose ranking refused the tilt the
        probability keeps (`tilt_ranked`; `queries` needed: the term is each query's); else the logits themselves
        (the very tensor: callers tell the cases apart by identity)."""
        term = self._refused_tilt(scenario, items, queries)
        return self._exposed_order(logits if term is None else logits - term, scenario, items)

    def _exposed_order(self, logits: torch.Tensor, scenario: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """`ranking_scores`' last step, `rank_exposure`'s: log P(click | shown) + log P(shown) in the scenarios that
        chose it; the very tensor elsewhere."""
        if self.exposure is None or self.exposed is None:
            return logits
        scenario = torch.where(scenario < self.exposure.shape[0], scenario, torch.zeros_like(scenario))
        on = self.exposed[scenario]
        if not bool(on.any()):
            return logits
        exposure = self.exposure[scenario.view(-1, 1), items.view(1, -1)]
        return F.logsigmoid(logits) + exposure * on.view(-1, 1)  # off rows: log P(click), the logit's order

    def ranking_reasons(self, scenario: torch.Tensor, queries: Batch | None = None) -> list[tuple[str, ...]]:
        """OrdersRanking: per query, what `ranking_scores` did to its logits: RANKED_WITHOUT_TILT where its scenario's
        ranking refused the tilt and the query's user is new there with a tilt to leave out, RANKED_WITH_EXPOSURE
        where its scenario chose `rank_exposure`; () where neither (the ranking is the logit's)."""
        none = torch.zeros(scenario.shape, dtype=torch.bool)
        untilted = self._refused_factors(scenario, queries)
        exposed = none if self.exposure is None or self.exposed is None else self.exposed[
            torch.where(scenario < self.exposure.shape[0], scenario, torch.zeros_like(scenario))]
        return [((RANKED_WITHOUT_TILT,) if u else ()) + ((RANKED_WITH_EXPOSURE,) if e else ())
                for u, e in zip((none if untilted is None else untilted != 0).tolist(), exposed.tolist(), strict=True)]

    def _refused_factors(self, scenario: torch.Tensor, queries: Batch | None) -> torch.Tensor | None:
        """The tilt factors (U,) that the ranking leaves out: each query's `tilt_factors` where its scenario's ranking
        refused the tilt, 0 elsewhere; None where nothing is left out (training, no refusal, no new user)."""
        if self.tilt_ranked is None or bool(self.tilt_ranked.all()) or self.training:
            return None
        inside = scenario < self.tilt_ranked.shape[0]
        refused = ~self.tilt_ranked[torch.where(inside, scenario, torch.zeros_like(scenario))] & inside
        if not bool(refused.any()):
            return None
        if queries is None:
            raise ValueError("mist's ranking scores need the queries (ranking_order(..., queries=)): a scenario's "
                             "ranking leaves out the tilt its click probability has (prior_tilt_guard: ranking).")
        factors = self.tilt_factors(queries)
        if factors is None:
            return None
        factors = torch.where(refused, factors, torch.zeros_like(factors))
        return factors if bool(factors.any()) else None

    def _refused_tilt(self, scenario: torch.Tensor, items: torch.Tensor, queries: Batch | None
                      ) -> torch.Tensor | None:
        """`ranking_scores`' first step: `prior_tilt`'s term (U, C) (factor x the item's prior) on the queries of new
        users in scenarios whose ranking refused the tilt (`tilt_ranked` False), which the ranking subtracts from
        the logits; None where there is nothing to subtract."""
        factors = self._refused_factors(scenario, queries)
        if factors is None:
            return None
        assert self.prior is not None
        s = torch.where(scenario < self.prior.shape[0], scenario, torch.zeros_like(scenario))
        return factors.unsqueeze(1) * self.prior[s.view(-1, 1), items.view(1, -1)]

    def fit_rate(self, rows: IndexedRows) -> None:
        """Counts the "rate" form's base (`cold_rate`) from the training rows again: for a run saved without it and
        loaded with `cold_rate`, whose weights it does not touch (benchmarks/option_effect.py --settings)."""
        if self.cold_rate is not None:
            self.cold_rate = ItemCounts(self.n_scenarios, self.n_items).add(rows).prior(self.cfg.prior_strength)

    def _scenarios(self) -> torch.Tensor:
        """The scenario embedding table (S, E), new scenarios' rows mixed from the trained ones' (step 6)."""
        return self.scenario.weight if self.mix is None else self.mix @ self.scenario.weight

    def _route(self, top: nn.Module, x: torch.Tensor, scenario: torch.Tensor) -> torch.Tensor:
        """A scenario-adaptive top's logits (B,); a new scenario's rows take the mix of the trained scenarios'
        logits (each of its rows through each trained top it mixes, weighted), step 6."""
        if self.mixed is None or self.mix is None:
            return cast(torch.Tensor, top(x, scenario))
        new = self.mixed.index_select(0, scenario)
        if not bool(new.any()):
            return cast(torch.Tensor, top(x, scenario))
        rows = new.nonzero().squeeze(1)
        weights = self.mix.index_select(0, scenario.index_select(0, rows))  # (N, S)
        sources = (weights.sum(0) > 0).nonzero().squeeze(1)  # the trained scenarios any of them mixes
        k, n = len(sources), len(rows)
        x_all = torch.cat([x, x.index_select(0, rows).repeat(k, 1)])
        s_all = torch.cat([scenario.masked_fill(new, 0), sources.repeat_interleave(n)])
        out = top(x_all, s_all)
        mixed = (out[len(x):].view(k, n) * weights.index_select(1, sources).t()).sum(0)
        return out[:len(x)].index_put((rows,), mixed)

    def _top_input(self, b: Batch, u: torch.Tensor, q: torch.Tensor, transfer: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The top's input [features, u, u * q] and the logit terms outside it (B,): STAR's auxiliary network's and
        the transfer read-out's (None without either)."""
        features = self._features(b)
        scen = self._scenarios().index_select(0, b.scenario)
        aux = None if self.aux is None else self.aux(torch.cat([scen, features], dim=-1)).squeeze(-1)
        if transfer is not None:
            aux = transfer if aux is None else aux + transfer
        return torch.cat([features, u, u * q], dim=-1), aux

    def candidate_scorer(self, items: Batch, max_rows: int = 32768) -> CandidateScorer:
        """Scores query batches against `items`, the candidate side computed once (mist_rank.MistCatalogue),
        where that path applies; otherwise `score_candidates` in blocks."""
        if supports_catalogue(self):
            return MistCatalogue(self, items)
        return super().candidate_scorer(items, max_rows)

    def score_candidates(self, queries: Batch, items: Batch) -> torch.Tensor:
        """(U, C) logits, equal to `forward` on the crossed batch: through mist_rank.MistCatalogue where it
        applies, else the general path below."""
        if supports_catalogue(self):
            return MistCatalogue(self, items)(queries)
        return self._score_crossed(queries, items)

    def ranking_scorer(self, items: Batch) -> Callable[[Batch, torch.Tensor | None], list[torch.Tensor]]:
        """ChoosesOnRanking: scores query batches against `items` (or the rows `columns` of it) under every option
        of `ranking_options()` at once, (U, C) scores each, ordered as a ranking orders them (`ranking_scores`):
        `co_items`' term is computed once and added at each weight to the rest, which is the same for every weight
        (`co_scale` is the term's weight alone); with `co_own` its own-scenario part too, apart, so that a pair (c, w)
        scores c * (cross + w * own) whatever w the model holds now. The model is not changed."""
        options = self.ranking_options()
        catalogue = MistCatalogue(self, items) if supports_catalogue(self) else None
        own_weight = None if self.co is None else self.co.own_weight

        def score(queries: Batch, columns: torch.Tensor | None = None) -> list[torch.Tensor]:
            # `co` without the own-scenario part (`own` holds it apart), the model's weights put back after
            with torch.no_grad(), self._without_own():
                if catalogue is not None:
                    rest, co = catalogue.parts(queries, columns)
                else:
                    rest, co = self._crossed_parts(queries, items if columns is None else items.subset(columns))
            with torch.no_grad():
                chosen = items.item if columns is None else items.item[columns]
                own = None if own_weight is None else self._own_part(queries, chosen, columns is None)
            assert co is not None, "options without co_items' term"
            # `ranking_scores` for every weight, the refused tilt's term made once and subtracted as it does
            term = self._refused_tilt(queries.scenario, chosen, queries)
            out = []
            for option in options:
                c, w = _weights_of(option)
                if w:  # `co_own`'s pair
                    assert own is not None
                    logits = rest + (co + own * w) * c
                else:
                    logits = rest + co * c
                out.append(self._exposed_order(logits if term is None else logits - term, queries.scenario, chosen))
            return out
        return score

    @contextmanager
    def _without_own(self) -> Iterator[None]:
        """`co_own`'s weights at 0 inside, as they were after (nothing without `co_own`)."""
        own_weight = None if self.co is None else self.co.own_weight
        if own_weight is None:
            yield
            return
        held = own_weight.clone()
        own_weight.zero_()
        try:
            yield
        finally:
            own_weight.copy_(held)

    def _own_part(self, queries: Batch, items: torch.Tensor, whole: bool) -> torch.Tensor:
        """(U, C) `co_own`'s part of `co_items`' term against the candidate items `items` (C,) at the weight 1: each
        active row's liked events of its own scenario through the whole table (0 for a new user's rows). `whole`
        (the items are the catalogue): by the catalogue's scatter (U x n_items, not U x C x L); else per event
        against the few candidates."""
        assert self.co is not None
        liked = queries.hist_mask & (queries.hist_labels > 0)
        new = self._co_new(queries.scenario, queries.activity)
        if not whole:
            return self.co.term(queries.hist_items, queries.hist_scenarios, liked, queries.scenario,
                                items.unsqueeze(0), mix=self.mix, new=new, own_part=True)
        columns = self.co.scatter(queries.hist_items, queries.hist_scenarios, liked, queries.scenario, self.n_items,
                                  self.mix, new, own_part=True)
        return columns.index_select(1, items)

    def _score_crossed(self, queries: Batch, items: Batch) -> torch.Tensor:
        """The general path of `score_candidates` (any top, scenario mixes; the exported graph's): `_crossed_parts`
        with `co_items`' term weighted per row (`co_scale`)."""
        out, co = self._crossed_parts(queries, items)
        if co is None:
            return out
        weight = self._co_weights(queries.scenario, queries.activity)
        return out + (co if weight is None else co * weight.unsqueeze(1))

    def _crossed_parts(self, queries: Batch, items: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The general path's logits (U, C) in two parts: all but `co_items`' term, and the term unweighted (None
        without it). Each query's history tokens, event projections and pools are built once for all its
        candidates, one query at a time (its (C, L, H) attention block then stays in the processor's cache); the
        top network runs once over all U x C rows."""
        n, c = len(queries), len(items)
        hist = self.embed.history_items(queries, self.cfg.side_features)  # (U, L, E)
        e = self.tokens(queries, hist)  # (U, L, E)
        candidate = self.embed.items(items, self.cfg.side_features)  # (C, E)
        q = candidate.unsqueeze(0) + self._scenarios().index_select(0, queries.scenario).unsqueeze(1)  # (U, C, E)
        parts = [self._cross_interest(e[i:i + 1], q[i:i + 1], queries.subset(slice(i, i + 1)), hist[i:i + 1],
                                      candidate) for i in range(n)]
        u = torch.cat([p[0] for p in parts])  # (U * C, E)
        transfer = None if self.match is None else torch.cat([p[1] for p in parts])  # type: ignore[misc]
        events = queries.hist_mask.sum(1).repeat_interleave(c)  # each crossed row's query's (`prior_tilt`)
        out = self._head(queries.cross(items, history=False), u, q.reshape(n * c, -1), transfer, events).view(n, c)
        if self.co is None:
            return out, None
        liked = queries.hist_mask & (queries.hist_labels > 0)
        return out, self.co.term(queries.hist_items, queries.hist_scenarios, liked, queries.scenario,
                                 items.item.unsqueeze(0), mix=self.mix,
                                 new=self._co_new(queries.scenario, queries.activity))

    def _cross_interest(self, e: torch.Tensor, q: torch.Tensor, b: Batch, items: torch.Tensor,
                        candidate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Steps 3-4 (and 4b) for U histories (U, L, E) against C queries each (U, C, E): the interests (U * C, E)
        and the transfer read-out's logit terms (U * C,) (None without it)."""
        n, c = q.shape[:2]
        scores = self.attention.cross(e, q)  # type: ignore[operator]  # (U, C, L)
        w = self._weights(scores, b)  # (U, C, L)
        k = self.n_indices * self.n_pools
        onehot = F.one_hot(self._pool_index(b), k).to(e.dtype) * b.hist_mask.unsqueeze(-1)  # (U, L, K)
        own = self._interest_view(b)  # as `_interest`: what the interest reads
        w_u, onehot_u = (w, onehot) if own is b else (
            self._weights(scores, own), F.one_hot(self._pool_index(own), k).to(e.dtype) * own.hist_mask.unsqueeze(-1))
        v = torch.bmm(w_u, (onehot_u.unsqueeze(-1) * e.unsqueeze(2)).flatten(2)).view(n, c, k, -1)  # (U, C, K, E)
        present = (onehot_u.sum(1) > 0).unsqueeze(1)  # (U, 1, K)
        null = self._null(b.scenario)
        beta = interest_shares(self._gate(v, q), present, None if null is None else null.unsqueeze(1).expand(n, c))
        u = torch.einsum("uck,ucke->uce", beta, v).reshape(n * c, -1)
        if self.match is None:
            return u, None
        k_t = self.n_scenarios * self.n_pools  # the read-out's pools: trained scenarios only (no history elsewhere)
        terms = self._transfer_terms(w, onehot[..., :k_t], items, candidate.unsqueeze(0).expand(n, -1, -1),
                                     b.scenario)
        return u, terms.sum(-1).reshape(n * c)


def _chosen_ndcg(choice: dict[str, Any]) -> float:
    """A `co_weight_choice` record's validation NDCG@10 at the weight it chose (NaN without queries)."""
    value = choice["valid_ndcg@10"][option_key(choice["chosen"])]
    return float("nan") if value is None else float(value)


def co_weight_choice(values: dict[RankingOption, np.ndarray], users: np.ndarray) -> dict[str, Any]:
    """`co_scale: auto`'s rule for one kind of user in one scenario: `values[option]` the validation queries'
    NDCG@10 at each weight (CO_SCALES' order, the trained state first; the same queries, of `users`, under every
    weight). With at least MIN_CHOICE_QUERIES queries, the weight with the highest mean (the earlier on a tie; NaN
    never wins), kept only if a paired bootstrap over the users puts it ahead of the first with a p-value below
    CO_CHOICE_P divided by the weights tried against it; otherwise the first. Returns the record: the means, the
    number of queries, the best weight, its p-value (None where the best is the first) and the choice."""
    options = list(values)
    n = len(users)
    means = {o: float(np.mean(v)) if n else float("nan") for o, v in values.items()}
    best = options[0]
    for option in options[1:] if n >= MIN_CHOICE_QUERIES else ():
        if means[option] > means[best]:
            best = option
    test = None if best == options[0] else paired_bootstrap_mean(values[best], values[options[0]], users)
    chosen = best if test is not None and test["p_value"] < CO_CHOICE_P / (len(options) - 1) else options[0]
    return {"valid_ndcg@10": {option_key(o): v for o, v in means.items()}, "queries": n, "best": _recorded(best),
            "p_value": None if test is None else test["p_value"], "chosen": _recorded(chosen)}


def option_key(option: Any) -> str:
    """A `co_scale: auto` option as its record names it: the weight c ("0.5"), or `co_own`'s pair ("0.5+own4")."""
    if isinstance(option, (tuple, list)):
        return f"{option[0]:g}+own{option[1]:g}"
    return f"{option:g}"


def _weights_of(option: Any) -> tuple[float, float]:
    """An option (or a record's choice) as its two weights: c of `co_items`' term and w of `co_own`'s part (0 for a
    weight alone)."""
    if isinstance(option, (tuple, list)):
        return float(option[0]), float(option[1])
    return float(option), 0.0


def _recorded(option: RankingOption) -> float | list[float]:
    """An option as a record holds it (JSON): a weight, or a pair as a list."""
    return list(option) if isinstance(option, tuple) else option


@dataclass
class _Interest:
    """What steps 1-4 give the head: query, event weights, interest, source mass and pool shares, and the
    transfer read-out's terms per pool (B, K) (None without it)."""

    q: torch.Tensor
    w: torch.Tensor
    u: torch.Tensor
    mass: torch.Tensor
    share: torch.Tensor
    terms: torch.Tensor | None
    w_interest: torch.Tensor | None = None  # the weights u was pooled with, where not w (`interest_scope`)

    @property
    def transfer(self) -> torch.Tensor | None:
        return None if self.terms is None else self.terms.sum(-1)
