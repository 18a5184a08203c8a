"""Plain DNN baselines: the scenario as one more feature, and one fully separate network per scenario."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mistrec.batch import Batch
from mistrec.features import FeatureSpec
from mistrec.models.base import Model, ModelConfig
from mistrec.models.layers import MLP, FeatureEmbedding

__all__ = ["DNNConfig", "IsolatedDNN", "ScenarioDNN"]


@dataclass(frozen=True)
class DNNConfig(ModelConfig):
    """The per-scenario and shared DNNs' hidden layers."""

    hidden: tuple[int, ...] = (128, 64, 32)


class ScenarioDNN(Model):
    """One MLP over every feature, the target scenario's embedding among them."""

    name = "scenario_dnn"
    supports_conversion = True

    def __init__(self, spec: FeatureSpec, cfg: DNNConfig) -> None:
        super().__init__()
        self.embed = FeatureEmbedding(spec, cfg.embedding_dim, scenario=True)
        self.mlp = MLP(self.embed.d_out, cfg.hidden, cfg.dropout, out=1)
        # ESMM's layout: the conversion network has its own MLP over the shared embeddings
        self.predicts_conversion = spec.has_conversion
        self.cvr_mlp = MLP(self.embed.d_out, cfg.hidden, cfg.dropout, out=1) if spec.has_conversion else None

    def forward(self, b: Batch) -> torch.Tensor:
        return self.mlp(self.embed(b)).squeeze(-1)  # (B,)

    def forward_tasks(self, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cvr_mlp is None:
            return super().forward_tasks(b)
        x = self.embed(b)
        return self.mlp(x).squeeze(-1), self.cvr_mlp(x).squeeze(-1)


class IsolatedDNN(Model):
    """A separate network (embeddings included) per scenario: no parameter is shared, so training it on all
    scenarios at once equals training one model per scenario on that scenario's data alone. The transfer
    baseline: a multi-scenario model's gain over it is its transfer gain. A scenario unseen in training
    gets the mean of the scenario networks' logits."""

    name = "isolated_dnn"

    def __init__(self, spec: FeatureSpec, cfg: DNNConfig) -> None:
        super().__init__()
        self.nets = nn.ModuleList(
            nn.Sequential() if s == 0 else ScenarioDNN(spec, cfg) for s in range(spec.n_scenarios))
        self.trained = spec.known_scenarios

    def forward(self, b: Batch) -> torch.Tensor:
        out = b.label.new_zeros(len(b))
        for s in torch.unique(b.scenario).tolist():
            rows = b.scenario == s
            sub = b.subset(rows)
            if s == 0:
                out[rows] = torch.stack([self.nets[k](sub) for k in self.trained]).mean(0)
            else:
                out[rows] = self.nets[s](sub)
        return out

