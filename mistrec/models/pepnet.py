"""PEPNet (Chang et al., KDD 2023): parameter and embedding personalised network.

- Gate NU: 2 * sigmoid(MLP(x)), a scaling in (0, 2) around 1.
- EPNet: a gate from the scenario embedding and the (gradient-stopped) general embeddings rescales the
  embeddings per scenario.
- PPNet: gates from the personal priors (user and item id embeddings) and the gradient-stopped EPNet output
  rescale every hidden layer of the DNN.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from mistrec.batch import Batch
from mistrec.features import FeatureSpec
from mistrec.models.base import GatedModel, ModelConfig
from mistrec.models.layers import MLP, Dropout, FeatureEmbedding

__all__ = ["PEPNet", "PEPNetConfig"]


@dataclass(frozen=True)
class PEPNetConfig(ModelConfig):
    """PEPNet's settings: the MLP's layers and the gate networks' hidden size."""

    hidden: tuple[int, ...] = (128, 64, 32)
    gate_hidden: int = 64


class _GateNU(nn.Module):
    def __init__(self, d_in: int, d_out: int, hidden: int) -> None:
        super().__init__()
        self.mlp = MLP(d_in, (hidden,), out=d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * torch.sigmoid(self.mlp(x))


class PEPNet(GatedModel):
    """PEPNet (Chang et al., KDD 2023): an EPNet gate from the scenario scales the embeddings, PPNet gates from
    user and item priors scale every hidden layer."""

    name = "pepnet"

    def __init__(self, spec: FeatureSpec, cfg: PEPNetConfig) -> None:
        super().__init__()
        d = cfg.embedding_dim
        self.embed = FeatureEmbedding(spec, d)
        self.scenario = nn.Embedding(spec.n_scenarios, d)
        self.ep_gate = _GateNU(self.embed.d_out + d, self.embed.d_out, cfg.gate_hidden)
        dims = (self.embed.d_out, *cfg.hidden)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.pp_gates = nn.ModuleList(_GateNU(2 * d + self.embed.d_out, h, cfg.gate_hidden) for h in cfg.hidden)
        self.out = nn.Linear(dims[-1], 1)
        self.dropout = Dropout(cfg.dropout)
        self.gate_columns = {"mean_scaling": ["epnet", *(f"ppnet{k + 1}" for k in range(len(cfg.hidden)))]}

    def _run(self, b: Batch, record: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """`record`, when given, receives the mean scaling of each Gate NU (EPNet, then each PPNet layer), (B, G):
        1 is a gate that does nothing, 0 or 2 a saturated one."""
        general = self.embed(b)  # (B, F * E)
        scen = self.scenario(b.scenario)  # (B, E)
        ep = self.ep_gate(torch.cat([general.detach(), scen], dim=-1))
        personal_emb = general * ep  # EPNet
        priors = torch.cat([self.embed.user(b.user), self.embed.item(b.item), personal_emb.detach()], dim=-1)
        h = personal_emb
        scalings = [ep.mean(-1)]
        for layer, gate in zip(self.layers, self.pp_gates, strict=True):  # PPNet
            g = gate(priors)
            scalings.append(g.mean(-1))
            h = self.dropout(torch.relu(layer(h))) * g
        if record is not None:
            record["mean_scaling"] = torch.stack(scalings, dim=1)
        return self.out(h).squeeze(-1)
