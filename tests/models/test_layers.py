"""The layers' fast paths compute exactly what their textbook forms compute."""

from __future__ import annotations

import pytest
import torch

from mistrec.models.layers import (
    ActivationUnit,
    PartitionedNorm,
    ScenarioGroups,
    StarLinear,
    SumScorer,
    grouped_softmax,
    route,
)


def test_activation_unit_equals_the_concatenated_form() -> None:
    torch.manual_seed(0)
    unit = ActivationUnit(8, (12, 6))
    e, q = torch.randn(5, 7, 8), torch.randn(5, 8)
    qq = q.unsqueeze(1).expand_as(e)
    naive = unit.rest(torch.relu(unit.first(torch.cat([e, qq, e - qq, e * qq], dim=-1)))).squeeze(-1)
    assert torch.allclose(unit(e, q), naive, atol=1e-6)
    e.requires_grad_(), q.requires_grad_()
    g = torch.randn(5, 7)
    got = torch.autograd.grad((unit(e, q) * g).sum(), [e, q, unit.first.weight])
    qq = q.unsqueeze(1).expand_as(e)
    naive = unit.rest(torch.relu(unit.first(torch.cat([e, qq, e - qq, e * qq], dim=-1)))).squeeze(-1)
    want = torch.autograd.grad((naive * g).sum(), [e, q, unit.first.weight])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_the_sum_scorer_starts_as_the_bilinear_form_and_learns_the_unit() -> None:
    """`scorer: sum` is the bilinear score at initialisation (the unit's last layer at zero), its gradient reaches
    the unit's last layer, once the unit has weights its part is read, and the crossed scores (the ranking path's)
    are the per-row scores."""
    torch.manual_seed(0)
    both = SumScorer(8, (12, 6))
    e, q = torch.randn(5, 7, 8), torch.randn(5, 8)
    torch.testing.assert_close(both(e, q), both.bilinear(e, q))
    last = both.unit.rest[-1]
    assert isinstance(last, torch.nn.Linear)
    (grad,) = torch.autograd.grad(both(e, q).square().sum(), [last.weight])
    assert grad.abs().sum() > 0  # the unit's part can leave zero
    with torch.no_grad():
        last.weight.normal_()
    assert not torch.allclose(both(e, q), both.bilinear(e, q))  # with weights, the unit's part is read
    queries = torch.randn(5, 3, 8)  # 3 queries per history
    crossed = both.cross(e, queries)  # (5, 3, 7)
    rows = torch.stack([both(e, queries[:, c]) for c in range(3)], dim=1)
    torch.testing.assert_close(crossed, rows, rtol=1e-5, atol=1e-6)


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
    w_s = torch.cat([layer.w[1:].mean(0, keepdim=True), layer.w[1:]])  # scenario 0: the trained ones' mean
    b_s = torch.cat([layer.b[1:].mean(0, keepdim=True), layer.b[1:]])
    slow = torch.stack([x[i] @ (w * w_s[s[i]]) + layer.shared.bias + b_s[s[i]] for i in range(20)])
    assert torch.allclose(fast, slow, atol=1e-5)


def test_route_gives_unseen_scenarios_the_known_mean() -> None:
    out = torch.tensor([[9.0, 1.0, 3.0], [9.0, 1.0, 3.0]])
    assert route(out, torch.tensor([2, 0]), torch.tensor([1, 2])).tolist() == [3.0, 2.0]


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


def test_partitioned_norm_training_normalises_each_scenario_by_its_own_batch_statistics() -> None:
    """Training mode: each scenario's rows (x - their mean) / sqrt(their variance + eps), as STAR's one-scenario
    mini-batches would, then gamma * gamma_s and beta + beta_s; a scenario with one row in the batch gives 0; the
    same with rows given in scenario order and their slices."""
    torch.manual_seed(0)
    norm = PartitionedNorm(4, n_scenarios=4)
    with torch.no_grad():
        for p in norm.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = (3 * torch.randn(41, 4) + 2).requires_grad_()
    s = torch.cat([torch.randint(0, 3, (40,)), torch.tensor([3])])[torch.randperm(41)]
    got = norm.train()(x, s)
    z = torch.zeros_like(x)
    for k in range(4):
        rows = s == k
        if rows.sum() > 1:
            z[rows] = (x[rows] - x[rows].mean(0)) / torch.sqrt(x[rows].var(0, unbiased=False) + norm.eps)
    want = z * norm.gamma * norm.gamma_s[s] + norm.beta + norm.beta_s[s]
    torch.testing.assert_close(got, want)
    assert torch.equal(got[s == 3], (norm.beta + norm.beta_s[3]).expand(1, 4))
    g = torch.randn(41, 4)
    torch.testing.assert_close(torch.autograd.grad((got * g).sum(), x)[0], torch.autograd.grad((want * g).sum(), x)[0])
    groups = ScenarioGroups(s)
    sorted_out = norm(groups.sort(x), groups.scenario, groups.slices)
    torch.testing.assert_close(groups.unsort(sorted_out), got)


def test_partitioned_norm_without_per_scenario_statistics_is_batch_normalisation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PartitionedNorm, "per_scenario_batch_stats", False)
    torch.manual_seed(0)
    norm = PartitionedNorm(4, n_scenarios=3).train()
    x, s = 3 * torch.randn(40, 4) + 2, torch.randint(0, 3, (40,))
    z = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + norm.eps)
    torch.testing.assert_close(norm(x, s), z * norm.gamma * norm.gamma_s[s] + norm.beta + norm.beta_s[s])


def test_grouped_softmax_is_a_softmax_within_each_group() -> None:
    torch.manual_seed(0)
    a = (10 * torch.randn(3, 4, 7)).requires_grad_()  # large scores: the per-group shift must keep exp finite
    group = torch.randint(0, 3, (3, 4, 7))
    mask = torch.rand(3, 4, 7) > 0.3
    got = grouped_softmax(a, group, mask, 3)
    want = torch.zeros_like(got)
    for i in range(3):
        for j in range(4):
            for g in range(3):
                sel = (group[i, j] == g) & mask[i, j]
                if sel.any():
                    want[i, j, sel] = a[i, j, sel].softmax(0)
    torch.testing.assert_close(got, want)
    assert (got[~mask] == 0).all()
    (got * torch.randn_like(got)).sum().backward()
    assert torch.isfinite(a.grad).all() and (a.grad[~mask] == 0).all()


def test_history_side_features_equal_the_per_event_embeddings() -> None:
    """history_items embeds each distinct history item once and gathers back: the same as embedding every event,
    and its gradients reach the id table as a per-event lookup's do."""
    from types import SimpleNamespace

    from mistrec.features import FeatureSpec
    from mistrec.models.layers import FeatureEmbedding

    torch.manual_seed(0)
    spec = FeatureSpec(n_users=3, n_items=30, n_scenarios=2, user_cat=(), item_cat=(5, 4), item_seq=(7,),
                       n_user_num=0, n_item_num=2, history_length=6, scenario_names=("a",))
    emb = FeatureEmbedding(spec, 8)
    cat = torch.randint(0, 4, (30, 2))
    seq = torch.randint(0, 7, (30, 1, 3))
    num = torch.randn(30, 2)
    cat[0], seq[0], num[0] = 0, 0, 0.0  # item 0: padding / unknown
    items = torch.randint(0, 30, (4, 6))
    b = SimpleNamespace(hist_items=items, hist_item_key=items, hist_item_cat=cat[items], hist_item_seq=seq[items],
                        hist_item_num=num[items])
    got = emb.history_items(b, side=True)  # type: ignore[arg-type]
    side = emb.item_side(cat[items], seq[items], num[items])
    assert side is not None
    want = emb.item(items) + side
    assert got.shape == (4, 6, 8)
    torch.testing.assert_close(got, want)
    weights = torch.randn(4, 6, 8)
    (g_got,) = torch.autograd.grad((got * weights).sum(), emb.item.weight)
    (g_want,) = torch.autograd.grad((want * weights).sum(), emb.item.weight)
    torch.testing.assert_close(g_got, g_want)
    torch.testing.assert_close(emb.history_items(b, side=False), emb.item(items))  # type: ignore[arg-type]


def test_dropout_keeps_the_mean_and_drops_the_share_asked() -> None:
    from mistrec.models.layers import Dropout

    torch.manual_seed(0)
    x = torch.ones(200_000)
    drop = Dropout(0.2)
    y = drop.train()(x)
    assert abs(float((y == 0).float().mean()) - 0.2) < 0.005  # the share dropped
    assert abs(float(y.mean()) - 1.0) < 0.01  # survivors scaled by 1 / (1 - p): the mean is kept
    assert torch.equal(drop.eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)
    with pytest.raises(ValueError, match="dropout must be in"):
        Dropout(1.0)
