"""SAR-Net (Shen et al., CIKM 2021): a scenario-aware ranking network for many scenarios.

- Cross-scenario behaviour extract layer, two attention modules over the history: an item attention
  (target item vs. behaviour items) and a scenario attention (target scenario vs. each behaviour's
  scenario); the interest transfer vector is sum_j a_item_j * a_scenario_j * e_j.
- Scenario-specific transform: x * beta_s + gamma_s.
- Mixture of experts: scenario-specific linear experts (one weight vector per scenario and expert) and
  shared linear experts, each on batch-normalised inputs, mixed by a softmax gate. (The paper's debias
  net needs a per-sample fairness coefficient, which our data does not carry.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mistrec.batch import Batch
from mistrec.errors import ConfigError
from mistrec.features import FeatureSpec
from mistrec.models.base import GatedModel, ModelConfig
from mistrec.models.layers import ActivationUnit, FeatureEmbedding, lookup, with_trained_mean

__all__ = ["SARNet", "SARNetConfig"]


@dataclass(frozen=True)
class SARNetConfig(ModelConfig):
    """SAR-Net's settings: shared and per-scenario experts, and the attention unit's layers."""

    n_shared: int = 8  # the Scenario-Wise-Rec MovieLens setting
    n_specific: int = 2
    attention_hidden: tuple[int, ...] = (36,)

    def validate(self) -> None:
        if self.n_shared < 1 or self.n_specific < 1:
            raise ConfigError("SARNetConfig needs n_shared >= 1 and n_specific >= 1.")


def _masked_softmax(a: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return a.masked_fill(~mask, float("-inf")).softmax(dim=1).nan_to_num(0.0)


class SARNet(GatedModel):
    """SAR-Net (Shen et al., CIKM 2021): scenario-aware attention over the history, then shared and
    scenario-specific experts mixed by a gate."""

    name = "sarnet"
    reads_history = True
    trained: torch.Tensor

    def __init__(self, spec: FeatureSpec, cfg: SARNetConfig) -> None:
        super().__init__()
        d = cfg.embedding_dim
        self.embed = FeatureEmbedding(spec, d)
        self.scenario = nn.Embedding(spec.n_scenarios, d)
        self.register_buffer("trained", torch.tensor(spec.known_scenarios), persistent=False)
        self.item_attention = ActivationUnit(d, cfg.attention_hidden)
        self.scenario_attention = ActivationUnit(d, cfg.attention_hidden)
        dim = self.embed.d_out + 3 * d  # features, transfer vector, target item, target scenario
        self.beta = nn.Parameter(torch.ones(spec.n_scenarios, dim))
        self.gamma = nn.Parameter(torch.zeros(spec.n_scenarios, dim))
        self.norm = nn.BatchNorm1d(dim)
        self.specific_w = nn.Parameter(torch.randn(cfg.n_specific, spec.n_scenarios, dim) * dim**-0.5)
        self.specific_b = nn.Parameter(torch.zeros(cfg.n_specific, spec.n_scenarios))
        self.shared = nn.Linear(dim, cfg.n_shared)
        self.gate = nn.Linear(dim, cfg.n_specific + cfg.n_shared)
        self.gate_columns = {"experts": [f"specific{k}" for k in range(cfg.n_specific)] +
                             [f"shared{k}" for k in range(cfg.n_shared)]}

    def _run(self, b: Batch, record: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """`record`, when given, receives the expert gate weights, (B, Ks + Kh)."""
        events = lookup(self.embed.item, b.hist_items)  # (B, L, E)
        target = self.embed.item(b.item)  # (B, E)
        scen = self.scenario(b.scenario)  # (B, E)
        a_item = _masked_softmax(self.item_attention(events, target), b.hist_mask)  # (B, L)
        a_scen = _masked_softmax(self.scenario_attention(lookup(self.scenario, b.hist_scenarios), scen), b.hist_mask)
        transfer = torch.einsum("bl,ble->be", a_item * a_scen, events)  # (B, E)
        x = torch.cat([self.embed(b), transfer, target, scen], dim=-1)
        beta, gamma = (with_trained_mean(t, 0, self.trained) for t in (self.beta, self.gamma))
        w, bias = (with_trained_mean(t, 1, self.trained) for t in (self.specific_w, self.specific_b))
        x = self.norm(x * beta[b.scenario] + gamma[b.scenario])  # (B, D)
        specific = torch.einsum("bd,kbd->bk", x, w[:, b.scenario]) + bias[:, b.scenario].t()
        experts = torch.cat([specific, self.shared(x)], dim=-1)  # (B, Ks + Kh)
        gate = self.gate(x).softmax(dim=-1)
        if record is not None:
            record["experts"] = gate
        return (experts * gate).sum(-1)
