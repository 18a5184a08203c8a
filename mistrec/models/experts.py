"""Multi-scenario baselines with shared and scenario-specific parts: SharedBottom, MMoE, PLE, STAR.

Each treats a scenario as a task head (Scenario-Wise-Rec's formulation); gates and experts follow the papers:
MMoE (Ma et al., KDD 2018), PLE (Tang et al., RecSys 2020), STAR (Sheng et al., CIKM 2021).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mistrec.batch import Batch
from mistrec.errors import ConfigError
from mistrec.features import FeatureSpec
from mistrec.models.base import GatedModel, Model, ModelConfig
from mistrec.models.layers import (
    MLP,
    FeatureEmbedding,
    ScenarioGroups,
    StarFCN,
    StarLinear,
    route,
)

__all__ = ["PLE", "STAR", "MMoE", "MMoEConfig", "PLEConfig", "SharedBottom", "SharedBottomConfig", "StarConfig"]

# Default sizes are those of the Scenario-Wise-Rec MovieLens script, so that comparisons are like for like.


@dataclass(frozen=True)
class SharedBottomConfig(ModelConfig):
    """Shared-bottom's settings: the shared bottom MLP and each scenario's tower."""

    bottom: tuple[int, ...] = (128,)
    tower: tuple[int, ...] = (8,)


@dataclass(frozen=True)
class MMoEConfig(ModelConfig):
    """MMoE's settings: experts, each expert's layers, and each scenario's tower."""

    n_experts: int = 3
    expert: tuple[int, ...] = (16,)
    tower: tuple[int, ...] = (8,)

    def validate(self) -> None:
        if self.n_experts < 1:
            raise ConfigError(f"The 'n_experts' parameter of MMoEConfig must be >= 1. Got {self.n_experts}.")


@dataclass(frozen=True)
class PLEConfig(ModelConfig):
    """PLE's settings: extraction levels, shared and per-scenario experts per level, expert and tower layers."""

    levels: int = 1
    n_shared: int = 1  # shared experts per level
    n_specific: int = 2  # experts per scenario per level
    expert: tuple[int, ...] = (16,)
    tower: tuple[int, ...] = (8,)

    def validate(self) -> None:
        for name in ("levels", "n_shared", "n_specific"):
            if getattr(self, name) < 1:
                raise ConfigError(f"The '{name}' parameter of PLEConfig must be >= 1. Got {getattr(self, name)}.")


class _Towers(nn.Module):
    """One small tower per scenario, all computed at once; each sample reads its own (see `route`)."""

    trained: torch.Tensor

    def __init__(self, d_in: int, hidden: tuple[int, ...], spec: FeatureSpec, dropout: float) -> None:
        super().__init__()
        self.towers = nn.ModuleList(MLP(d_in, hidden, dropout, out=1) for _ in range(spec.n_scenarios))
        self.register_buffer("trained", torch.tensor(spec.known_scenarios), persistent=False)

    def forward(self, per_scenario_input: torch.Tensor, scenario: torch.Tensor) -> torch.Tensor:
        # per_scenario_input: (B, S, D) or (B, D) shared by all towers
        if per_scenario_input.dim() == 2:
            outs = [t(per_scenario_input) for t in self.towers]
        else:
            outs = [t(per_scenario_input[:, s]) for s, t in enumerate(self.towers)]
        return route(torch.cat(outs, dim=-1), scenario, self.trained)  # (B,)


class SharedBottom(Model):
    """With conversions in the data, a second set of per-scenario towers on the shared bottom predicts them."""

    name = "shared_bottom"
    supports_conversion = True

    def __init__(self, spec: FeatureSpec, cfg: SharedBottomConfig) -> None:
        super().__init__()
        self.embed = FeatureEmbedding(spec, cfg.embedding_dim)
        self.bottom = MLP(self.embed.d_out, cfg.bottom, cfg.dropout)
        self.towers = _Towers(self.bottom.d_out, cfg.tower, spec, cfg.dropout)
        self.predicts_conversion = spec.has_conversion
        self.cvr_towers = (_Towers(self.bottom.d_out, cfg.tower, spec, cfg.dropout)
                           if spec.has_conversion else None)

    def forward(self, b: Batch) -> torch.Tensor:
        return self.towers(self.bottom(self.embed(b)), b.scenario)

    def forward_tasks(self, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cvr_towers is None:
            return super().forward_tasks(b)
        h = self.bottom(self.embed(b))
        return self.towers(h, b.scenario), self.cvr_towers(h, b.scenario)


class MMoE(GatedModel):
    """With conversions in the data, the conversion task has its own gate per scenario and its own towers over
    the same experts (MMoE's original multi-task form, per scenario)."""

    name = "mmoe"
    supports_conversion = True

    def __init__(self, spec: FeatureSpec, cfg: MMoEConfig) -> None:
        super().__init__()
        self.embed = FeatureEmbedding(spec, cfg.embedding_dim)
        d = self.embed.d_out
        self.experts = nn.ModuleList(MLP(d, cfg.expert, cfg.dropout) for _ in range(cfg.n_experts))
        self.gates = nn.Linear(d, spec.n_scenarios * cfg.n_experts)
        self.n_scenarios, self.n_experts = spec.n_scenarios, cfg.n_experts
        self.towers = _Towers(cfg.expert[-1], cfg.tower, spec, cfg.dropout)
        self.gate_columns = {"experts": [f"expert{k}" for k in range(cfg.n_experts)]}
        self.predicts_conversion = spec.has_conversion
        self.cvr_gates = nn.Linear(d, spec.n_scenarios * cfg.n_experts) if spec.has_conversion else None
        self.cvr_towers = (_Towers(cfg.expert[-1], cfg.tower, spec, cfg.dropout)
                           if spec.has_conversion else None)

    def _mix(self, gates: nn.Linear, x: torch.Tensor, experts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = gates(x).view(-1, self.n_scenarios, self.n_experts).softmax(-1)  # (B, S, K)
        return torch.einsum("bsk,bkh->bsh", g, experts), g  # (B, S, H)

    def _run(self, b: Batch, record: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """`record`, when given, receives each sample's own-scenario gate weights, (B, K)."""
        x = self.embed(b)
        experts = torch.stack([e(x) for e in self.experts], dim=1)  # (B, K, H)
        mixed, gates = self._mix(self.gates, x, experts)
        if record is not None:
            record["experts"] = gates[torch.arange(len(b)), b.scenario]
        return self.towers(mixed, b.scenario)

    def forward_tasks(self, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cvr_gates is None or self.cvr_towers is None:
            return super().forward_tasks(b)
        x = self.embed(b)
        experts = torch.stack([e(x) for e in self.experts], dim=1)
        return (self.towers(self._mix(self.gates, x, experts)[0], b.scenario),
                self.cvr_towers(self._mix(self.cvr_gates, x, experts)[0], b.scenario))


class _CGC(nn.Module):
    """One PLE extraction level: shared and per-scenario experts, a gate per scenario (and a shared gate)."""

    def __init__(self, d_in: int, cfg: PLEConfig, n_scenarios: int, last: bool) -> None:
        super().__init__()
        self.shared = nn.ModuleList(MLP(d_in, cfg.expert, cfg.dropout) for _ in range(cfg.n_shared))
        self.specific = nn.ModuleList(
            nn.ModuleList(MLP(d_in, cfg.expert, cfg.dropout) for _ in range(cfg.n_specific))
            for _ in range(n_scenarios))
        self.gates = nn.ModuleList(nn.Linear(d_in, cfg.n_specific + cfg.n_shared) for _ in range(n_scenarios))
        n_all = cfg.n_shared + n_scenarios * cfg.n_specific
        self.shared_gate = None if last else nn.Linear(d_in, n_all)

    def forward(self, xs: torch.Tensor, x_shared: torch.Tensor, weights: list[torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        # xs: (B, S, D) per-scenario inputs, x_shared: (B, D); `weights` receives each scenario's gate (B, Kp + Ks)
        shared = torch.stack([e(x_shared) for e in self.shared], dim=1)  # (B, Ks, H)
        outs, specific_all = [], []
        for s, gate in enumerate(self.gates):
            spec = torch.stack([e(xs[:, s]) for e in self.specific[s]], dim=1)  # type: ignore[attr-defined]  # (B, Kp, H)
            specific_all.append(spec)
            w = gate(xs[:, s]).softmax(-1).unsqueeze(-1)  # (B, Kp + Ks, 1)
            if weights is not None:
                weights.append(w.squeeze(-1))
            outs.append((torch.cat([spec, shared], dim=1) * w).sum(1))
        out_shared = x_shared
        if self.shared_gate is not None:
            everything = torch.cat([*specific_all, shared], dim=1)
            w = self.shared_gate(x_shared).softmax(-1).unsqueeze(-1)
            out_shared = (everything * w).sum(1)
        return torch.stack(outs, dim=1), out_shared  # (B, S, H), (B, H)


class PLE(GatedModel):
    """Progressive Layered Extraction (Tang et al., RecSys 2020): levels of shared and per-scenario experts
    mixed by per-scenario gates, then a tower per scenario."""

    name = "ple"

    def __init__(self, spec: FeatureSpec, cfg: PLEConfig) -> None:
        super().__init__()
        self.embed = FeatureEmbedding(spec, cfg.embedding_dim)
        d = self.embed.d_out
        self.levels = nn.ModuleList(
            _CGC(d if i == 0 else cfg.expert[-1], cfg, spec.n_scenarios, last=i == cfg.levels - 1)
            for i in range(cfg.levels))
        self.n_scenarios = spec.n_scenarios
        self.towers = _Towers(cfg.expert[-1], cfg.tower, spec, cfg.dropout)
        columns = [f"specific{k}" for k in range(cfg.n_specific)] + [f"shared{k}" for k in range(cfg.n_shared)]
        self.gate_columns = {f"level{i + 1}": columns for i in range(cfg.levels)}

    def _run(self, b: Batch, record: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """`record`, when given, receives each sample's own-scenario gate weights per level, (B, Kp + Ks)."""
        x = self.embed(b)
        xs, shared = x.unsqueeze(1).expand(-1, self.n_scenarios, -1), x
        for i, level in enumerate(self.levels):
            weights: list[torch.Tensor] | None = [] if record is not None else None
            xs, shared = level(xs, shared, weights)
            if record is not None and weights:
                record[f"level{i + 1}"] = torch.stack(weights, dim=1)[torch.arange(len(b)), b.scenario]
        return self.towers(xs, b.scenario)


@dataclass(frozen=True)
class StarConfig(ModelConfig):
    """STAR's settings: the star-topology network's layers and the auxiliary network's."""

    hidden: tuple[int, ...] = (128, 64, 32)
    aux_hidden: tuple[int, ...] = (32,)


class STAR(Model):
    """Partitioned normalisation -> star-topology FCN, plus the auxiliary network on the scenario embedding. With
    conversions in the data, a second star-topology output layer on the same FCN predicts them."""

    name = "star"
    supports_conversion = True

    def __init__(self, spec: FeatureSpec, cfg: StarConfig) -> None:
        super().__init__()
        self.embed = FeatureEmbedding(spec, cfg.embedding_dim)
        self.scenario = nn.Embedding(spec.n_scenarios, cfg.embedding_dim)
        nn.init.zeros_(self.scenario.weight)  # scenario 0 (unseen) contributes nothing to the auxiliary logit
        d = self.embed.d_out
        self.fcn = StarFCN(d, cfg.hidden, cfg.dropout, spec)
        self.aux = MLP(cfg.embedding_dim + d, cfg.aux_hidden, cfg.dropout, out=1)
        self.predicts_conversion = spec.has_conversion
        last = (d, *cfg.hidden)[-1]
        self.cvr_out = StarLinear(last, 1, spec.n_scenarios, spec.known_scenarios) if spec.has_conversion else None

    def _fcn(self, b: Batch) -> tuple[torch.Tensor, torch.Tensor, ScenarioGroups]:
        """The star-topology FCN's last hidden layer (scenario-sorted) and the auxiliary logit (B, 1)."""
        x = self.embed(b)
        h, groups = self.fcn.hidden(x, b.scenario)
        return h, self.aux(torch.cat([self.scenario(b.scenario), x], dim=-1)), groups

    def forward(self, b: Batch) -> torch.Tensor:
        h, aux, groups = self._fcn(b)
        return (groups.unsort(self.fcn.out(h, groups)) + aux).squeeze(-1)

    def forward_tasks(self, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cvr_out is None:
            return super().forward_tasks(b)
        h, aux, groups = self._fcn(b)
        click = (groups.unsort(self.fcn.out(h, groups)) + aux).squeeze(-1)
        return click, groups.unsort(self.cvr_out(h, groups)).squeeze(-1)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # runs saved before the FCN became one block (layers.StarFCN) keep their weights under norm., layers., out.
        for key in [k for k in state_dict if k.startswith(prefix) and
                    k[len(prefix):].split(".")[0] in ("norm", "layers", "out")]:
            state_dict[prefix + "fcn." + key[len(prefix):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args)
