"""The layers' fast paths compute exactly what their textbook forms compute."""

from __future__ import annotations

import torch

from mistrec.models.layers import ActivationUnit, PartitionedNorm, ScenarioGroups, StarLinear, route


def test_activation_unit_equals_the_concatenated_form() -> None:
    torch.manual_seed(0)
    unit = ActivationUnit(8, (12, 6))
    e, q = torch.randn(5, 7, 8), torch.randn(5, 8)
    qq = q.unsqueeze(1).expand_as(e)
    naive = unit.rest(torch.relu(unit.first(torch.cat([e, qq, e - qq, e * qq], dim=-1)))).squeeze(-1)
    assert torch.allclose(unit(e, q), naive, atol=1e-6)


def test_star_linear_on_sorted_groups_equals_per_sample_weights() -> None:
    torch.manual_seed(0)
    layer = StarLinear(6, 4, n_scenarios=3)
    with torch.no_grad():
        layer.w.normal_()
        layer.b.normal_()
    x, s = torch.randn(20, 6), torch.randint(0, 3, (20,))
    groups = ScenarioGroups(s)
    fast = groups.unsort(layer(groups.sort(x), groups))
    w = layer.shared.weight.t()
    slow = torch.stack([x[i] @ (w * layer.w[s[i]]) + layer.shared.bias + layer.b[s[i]] for i in range(20)])
    assert torch.allclose(fast, slow, atol=1e-5)


def test_route_gives_unseen_scenarios_the_known_mean() -> None:
    out = torch.tensor([[9.0, 1.0, 3.0], [9.0, 1.0, 3.0]])
    assert route(out, torch.tensor([2, 0])).tolist() == [3.0, 2.0]


def test_partitioned_norm_uses_per_scenario_statistics_at_inference() -> None:
    torch.manual_seed(0)
    norm = PartitionedNorm(3, n_scenarios=3, momentum=1.0)
    x = torch.cat([torch.randn(50, 3) + 5, torch.randn(50, 3) - 5])
    s = torch.cat([torch.full((50,), 1), torch.full((50,), 2)])
    norm.train()
    norm(x, s)
    norm.eval()
    z = norm(x, s)
    assert z[:50].mean().abs() < 0.2 and z[50:].mean().abs() < 0.2  # each scenario centred on its own mean
    assert torch.isfinite(norm(x[:4], torch.zeros(4, dtype=torch.long))).all()  # unseen scenario: known means
