"""Building blocks shared by the models: MLPs, the feature embedding, DIN's activation unit, scenario routing,
partitioned normalisation and STAR's star-topology linear layer."""

from __future__ import annotations

import torch
from torch import nn

from mistrec.batch import Batch
from mistrec.features import FeatureSpec

__all__ = ["MLP", "ActivationUnit", "FeatureEmbedding", "PartitionedNorm", "StarLinear", "route"]


class MLP(nn.Sequential):
    """Linear -> activation -> dropout blocks; `out` adds a final linear layer without activation."""

    def __init__(self, d_in: int, hidden: tuple[int, ...], dropout: float = 0.0, out: int | None = None) -> None:
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(d_in, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
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
    """

    def __init__(self, spec: FeatureSpec, dim: int, scenario: bool = False) -> None:
        super().__init__()
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
            nn.init.normal_(emb.weight, std=0.01)

    def forward(self, b: Batch) -> torch.Tensor:
        fields = [self.user(b.user), self.item(b.item)]
        fields += [emb(b.user_cat[:, j]) for j, emb in enumerate(self.user_cat)]
        fields += [emb(b.item_cat[:, j]) for j, emb in enumerate(self.item_cat)]
        fields += [bag(b.item_seq[:, j]) for j, bag in enumerate(self.item_seq)]
        if self.user_num is not None:
            fields.append(self.user_num(b.user_num))
        if self.item_num is not None:
            fields.append(self.item_num(b.item_num))
        if self.scenario is not None:
            fields.append(self.scenario(b.scenario))
        return torch.cat(fields, dim=-1)  # (B, F * E)


class ActivationUnit(nn.Module):
    """DIN's local activation unit: score(event, query) from [e, q, e - q, e * q] (Zhou et al., KDD 2018)."""

    def __init__(self, dim: int, hidden: tuple[int, ...] = (64, 32)) -> None:
        super().__init__()
        self.mlp = MLP(4 * dim, hidden, out=1)

    def forward(self, events: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        q = query.unsqueeze(1).expand_as(events)  # (B, L, E)
        return self.mlp(torch.cat([events, q, events - q, events * q], dim=-1)).squeeze(-1)  # (B, L)


def route(per_scenario: torch.Tensor, scenario: torch.Tensor) -> torch.Tensor:
    """Picks each sample's own scenario output from (B, S, ...) outputs; index 0 (a scenario unseen in
    training) takes the mean over the known scenarios instead of an untrained head."""
    known = per_scenario[:, 1:].mean(dim=1)
    own = per_scenario.gather(1, scenario.view(-1, *([1] * (per_scenario.dim() - 1))).expand(
        -1, 1, *per_scenario.shape[2:])).squeeze(1)
    unseen = (scenario == 0).view(-1, *([1] * (own.dim() - 1)))
    return torch.where(unseen, known, own)


class PartitionedNorm(nn.Module):
    """STAR's partitioned normalisation (Sheng et al., CIKM 2021): batch statistics during training, moving
    statistics per scenario at inference, and a shared scale/shift times a scenario-specific one."""

    mean: torch.Tensor
    var: torch.Tensor

    def __init__(self, dim: int, n_scenarios: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))
        self.gamma_s = nn.Parameter(torch.ones(n_scenarios, dim))
        self.beta_s = nn.Parameter(torch.zeros(n_scenarios, dim))
        self.register_buffer("mean", torch.zeros(n_scenarios, dim))
        self.register_buffer("var", torch.ones(n_scenarios, dim))
        self.momentum, self.eps = momentum, eps

    def forward(self, x: torch.Tensor, scenario: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean, var = x.mean(dim=0), x.var(dim=0, unbiased=False)
            with torch.no_grad():  # each scenario's moving statistics from its own samples
                counts = torch.bincount(scenario, minlength=self.mean.shape[0]).clamp(min=1).unsqueeze(1)
                s_mean = torch.zeros_like(self.mean).index_add_(0, scenario, x) / counts
                s_var = torch.zeros_like(self.var).index_add_(0, scenario, (x - s_mean[scenario]) ** 2) / counts
                present = torch.bincount(scenario, minlength=self.mean.shape[0]) > 0
                m = self.momentum
                self.mean[present] = (1 - m) * self.mean[present] + m * s_mean[present]
                self.var[present] = (1 - m) * self.var[present] + m * s_var[present]
            z = (x - mean) / torch.sqrt(var + self.eps)
        else:
            # A scenario unseen in training (index 0) has no statistics of its own: use the known ones' mean.
            mean = torch.where((scenario == 0).unsqueeze(1), self.mean[1:].mean(0), self.mean[scenario])
            var = torch.where((scenario == 0).unsqueeze(1), self.var[1:].mean(0), self.var[scenario])
            z = (x - mean) / torch.sqrt(var + self.eps)
        return z * (self.gamma * self.gamma_s[scenario]) + (self.beta + self.beta_s[scenario])


class StarLinear(nn.Module):
    """STAR's star-topology layer: scenario s uses W_shared * W_s (element-wise) and b_shared + b_s.
    Scenario 0 (unseen in training) uses the shared weights alone (W_0 stays all ones, b_0 zeros)."""

    def __init__(self, d_in: int, d_out: int, n_scenarios: int) -> None:
        super().__init__()
        self.shared = nn.Linear(d_in, d_out)
        self.w = nn.Parameter(torch.ones(n_scenarios, d_in, d_out))
        self.b = nn.Parameter(torch.zeros(n_scenarios, d_out))

    def forward(self, x: torch.Tensor, scenario: torch.Tensor) -> torch.Tensor:
        out = x.new_empty(x.shape[0], self.shared.out_features)
        w_shared = self.shared.weight.t()  # (in, out)
        for s in torch.unique(scenario).tolist():  # one matmul per scenario present, not per sample
            rows = scenario == s
            out[rows] = x[rows] @ (w_shared * self.w[s]) + self.shared.bias + self.b[s]
        return out
