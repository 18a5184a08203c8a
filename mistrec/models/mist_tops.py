"""mist's scenario-adaptive top networks (step 5, `top:`): STAR's network (the default), PLE's gated experts, one
shared MLP, or none. Each maps the top's input (B, D) and the target scenarios (B,) to logits (B,)."""

from __future__ import annotations

import torch
from torch import nn

from mistrec.features import FeatureSpec
from mistrec.models.layers import MLP, PartitionedNorm, StarFCN, route
from mistrec.models.mist_config import MistConfig

__all__ = ["mixed_rows", "top_network"]


def mixed_rows(mix: torch.Tensor) -> torch.Tensor:
    """(S', ) bool: the indices read through the mix (S' x S): rows with weights that are not their own
    identity row (new scenarios in the data, and every row past S: those described after training)."""
    s = mix.shape[1]
    own = torch.zeros(mix.shape[0], dtype=torch.bool, device=mix.device)
    own[:s] = mix[:s].diagonal() != 0
    return ~own & (mix.sum(1) > 0)


def top_network(d_in: int, cfg: MistConfig, spec: FeatureSpec) -> nn.Module:
    """The top that `cfg.top` names."""
    if cfg.top == "star":
        return StarFCN(d_in, cfg.hidden, cfg.dropout, spec)
    return {"ple": _PLETop, "mlp": _MLPTop, "none": _NoTop}[cfg.top](d_in, cfg, spec)


class _NoTop(nn.Module):
    """No network on top: the logit is the transfer read-out and the item terms alone."""

    def __init__(self, d_in: int, cfg: MistConfig, spec: FeatureSpec) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor, scenario: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(len(x))


class _MLPTop(nn.Module):
    """One MLP for every scenario (DIN's top): the scenario reaches it through the inputs only."""

    def __init__(self, d_in: int, cfg: MistConfig, spec: FeatureSpec) -> None:
        super().__init__()
        self.mlp = MLP(d_in, cfg.hidden, cfg.dropout, out=1)

    def forward(self, x: torch.Tensor, scenario: torch.Tensor) -> torch.Tensor:
        return self.mlp(x).squeeze(-1)


class _PLETop(nn.Module):
    """Gated mixture of shared experts and one expert per scenario, then a tower per scenario."""

    trained: torch.Tensor

    def __init__(self, d_in: int, cfg: MistConfig, spec: FeatureSpec) -> None:
        super().__init__()
        n_scenarios = spec.n_scenarios
        self.norm = PartitionedNorm(d_in, n_scenarios, trained=spec.known_scenarios)
        self.register_buffer("trained", torch.tensor(spec.known_scenarios), persistent=False)
        self.shared = nn.ModuleList(MLP(d_in, cfg.hidden, cfg.dropout) for _ in range(cfg.n_experts))
        self.specific = nn.ModuleList(MLP(d_in, cfg.hidden, cfg.dropout) for _ in range(n_scenarios))
        self.gates = nn.Linear(d_in, n_scenarios * (cfg.n_experts + 1))
        self.towers = nn.ModuleList(MLP(cfg.hidden[-1], cfg.tower, cfg.dropout, out=1) for _ in range(n_scenarios))
        self.n_scenarios, self.n_experts = n_scenarios, cfg.n_experts

    def forward(self, x: torch.Tensor, scenario: torch.Tensor) -> torch.Tensor:
        h = self.norm(x, scenario)
        shared = torch.stack([e(h) for e in self.shared], dim=1)  # (B, K, H)
        specific = torch.stack([e(h) for e in self.specific], dim=1)  # (B, S, H)
        gates = self.gates(h).view(-1, self.n_scenarios, self.n_experts + 1).softmax(-1)  # (B, S, K + 1)
        mixed = torch.einsum("bsk,bkh->bsh", gates[..., :-1], shared) + gates[..., -1:] * specific  # (B, S, H)
        logits = torch.cat([t(mixed[:, s]) for s, t in enumerate(self.towers)], dim=-1)  # (B, S)
        return route(logits, scenario, self.trained)
