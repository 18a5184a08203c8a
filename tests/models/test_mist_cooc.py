"""mist's item-to-item transfer (`co_items`, mistrec/models/mist_cooc.py): the table, leave-one-out in training, the
catalogue's scatter, and explanations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mistrec.data import PreparedDataset
from mistrec.features import FeatureEncoder
from mistrec.models import build_model
from mistrec.models.mist_cooc import CoItems
from tests.conftest import prepared_synthetic

# users 1-4 and their training positives: n(1) = 2, n(2) = 3, n(3) = 2, n(4) = 1; c(1, 2) = 2, c(1, 3) = 1,
# c(2, 3) = 1, c(3, 4) = 1
TAKEN = {1: (1, 2), 2: (1, 2, 3), 3: (3, 4), 4: (2,)}


def _fitted(k: int = 2, shrink: float = 0.0) -> CoItems:
    co = CoItems(n_items=5, n_scenarios=3, k=k, shrink=shrink)
    users = np.array([u for u, items in TAKEN.items() for _ in items])
    items = np.array([i for its in TAKEN.values() for i in its])
    half = len(users) // 2  # given in two chunks, as streamed training gives shards
    co.fit([(users[:half], items[:half]), (np.r_[users[half:], 1], np.r_[items[half:], 1])])  # (1, 1) twice
    return co


def test_the_table_keeps_each_items_nearest_by_cosine_and_never_itself() -> None:
    co = _fitted()
    assert co.users.tolist() == [0, 2, 3, 2, 1]  # a user who took an item twice counts once
    # item 3: cos with 4 = 1/sqrt(2), with 1 = 1/2, with 2 = 1/sqrt(6): the two nearest kept
    nbr, count = co.dense()
    assert nbr[3].tolist() == [4, 1] and count[3].tolist() == [1, 1]
    assert nbr[1].tolist() == [2, 3] and count[1].tolist() == [2, 1]
    assert nbr[4].tolist() == [3, 0]  # one neighbour; the empty slot is the unknown item with count 0
    assert all(i not in nbr[i].tolist() for i in range(1, 5))
    # only the filled places are held (item 4's one, none for the unknown item 0), after slot 0 (none)
    assert co.start.tolist() == [1, 1, 3, 5, 7, 8] and co.nbr.tolist() == [0, 2, 3, 1, 3, 4, 1, 3]
    cos = co._cosines(torch.tensor([1, 3]), None)
    torch.testing.assert_close(cos, torch.tensor([[2 / math.sqrt(6), 0.5], [1 / math.sqrt(2), 0.5]]))


def test_a_table_saved_dense_or_deeper_loads_as_the_table_a_fit_makes() -> None:
    # runs saved before 2026-12-06 hold the table as dense (n_items, k) arrays, empty places 0; a table made deeper
    # than the model reads (a `co_own` run loaded without it) keeps its first k places
    rng = np.random.default_rng(5)
    users, items = rng.integers(0, 30, 900), rng.integers(1, 60, 900)
    deep, shallow = CoItems(n_items=60, n_scenarios=2, k=20), CoItems(n_items=60, n_scenarios=2, k=6)
    deep.fit([(users, items)])
    shallow.fit([(users, items)])
    assert int(deep.start[-1]) - 1 < 60 * 20  # some items have fewer than 20 neighbours: not held
    nbr, count = deep.dense()
    old = {k: v for k, v in deep.state_dict().items() if k not in ("start", "depth")}
    old.update(nbr=nbr, count=count)
    loaded = CoItems(n_items=60, n_scenarios=2, k=20)
    loaded.load_state_dict(old)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), deep.state_dict().values(), strict=True))
    for state in (deep.state_dict(), old):
        cut = CoItems(n_items=60, n_scenarios=2, k=6)
        cut.load_state_dict(state)
        assert cut.saved_places is None
        assert all(torch.equal(cut.state_dict()[k], shallow.state_dict()[k]) for k in ("start", "nbr", "count"))
    hist, cand = torch.from_numpy(rng.integers(0, 60, (4, 7))), torch.from_numpy(rng.integers(0, 60, (4, 9)))
    assert torch.equal(loaded.pair_cosines(hist, cand, None), deep.pair_cosines(hist, cand, None))
    assert bool((deep.pair_cosines(hist, cand, None) != 0).any())


def test_a_shrink_damps_pairs_of_few_users_and_orders_the_table_by_the_damped_similarity() -> None:
    # lambda 3: cos(3, 4) = 1/sqrt(2) * 1/4 (one user), cos(3, 1) = 1/2 * 1/4, cos(3, 2) = 1/sqrt(6) * 1/4;
    # cos(1, 2) = 2/sqrt(6) * 2/5 (two users), cos(1, 3) = 1/2 * 1/4
    co = _fitted(shrink=3.0)
    assert co.dense()[0][3].tolist() == [4, 1] and co.dense()[0][1].tolist() == [2, 3]
    cos = co._cosines(torch.tensor([1, 3]), None)
    torch.testing.assert_close(cos, torch.tensor([[2 / math.sqrt(6) * 0.4, 0.125], [1 / math.sqrt(2) / 4, 0.125]]))
    # the training row's own user leaves the counts first, and the damping reads what is left: (2 - 1) / sqrt(1 * 2)
    # * 1 / (1 + 3) for (1, 2); nothing for (3, 4)
    with torch.no_grad():
        co.weight.fill_(1.0)
    hist, scen, liked = torch.tensor([[1, 3]]), torch.ones(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool)
    own = co.term(hist, scen, liked, torch.tensor([1]), torch.tensor([[2, 4]]), own=torch.tensor([True]))
    torch.testing.assert_close(own, torch.tensor([[1 / math.sqrt(2) / 4, 0.0]]))
    # a pair of one shared user that the plain cosine ranks first falls behind a pair of two: n(1) = 3, n(2) = 1,
    # n(3) = 5, c(1, 2) = 1, c(1, 3) = 2; plain 1/sqrt(3) against 2/sqrt(15), damped a quarter of it against 2/5
    rare = CoItems(n_items=4, n_scenarios=2, k=1, shrink=3.0)
    u = np.array([0, 0, 1, 1, 2, 2, 3, 4, 5])
    i = np.array([1, 2, 1, 3, 1, 3, 3, 3, 3])
    rare.fit([(u, i)])
    plain = CoItems(n_items=4, n_scenarios=2, k=1)
    plain.fit([(u, i)])
    assert plain.dense()[0][1].tolist() == [2] and rare.dense()[0][1].tolist() == [3]


def test_a_negative_shrink_is_refused_with_its_name() -> None:
    from mistrec.errors import ConfigError
    from mistrec.models.mist_config import MistConfig

    with pytest.raises(ConfigError, match="co_shrink"):
        MistConfig(co_shrink=-1.0).validate()
    with pytest.raises(ConfigError, match="co_shrink_new"):
        MistConfig(co_shrink_new=-1.0).validate()


def test_training_positives_leave_their_own_user_out() -> None:
    co = _fitted()
    with torch.no_grad():
        co.weight.fill_(1.0)  # W = 1 (fast: 0)
    hist = torch.tensor([[1, 3]])  # liked events of items 1 and 3, in scenario 1
    scen, liked, target = torch.ones(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool), torch.tensor([1])
    cand = torch.tensor([[2, 4]])
    # as a test row sees it: cos(1, 2) + cos(3, 2) [not kept: 2 is not among 3's two nearest] ; cos(3, 4)
    want = torch.tensor([[2 / math.sqrt(6), 1 / math.sqrt(2)]])
    torch.testing.assert_close(co.term(hist, scen, liked, target, cand), want)
    # a training positive's user is one of the co-users: (2 - 1) / sqrt(1 * 2) for (1, 2); (1 - 1) for (3, 4)
    own = co.term(hist, scen, liked, target, cand, own=torch.tensor([True]))
    torch.testing.assert_close(own, torch.tensor([[1 / math.sqrt(2), 0.0]]))
    # an event not liked (a logged negative) adds nothing and is not left out
    torch.testing.assert_close(co.term(hist, scen, torch.tensor([[False, True]]), target, cand),
                               torch.tensor([[0.0, 1 / math.sqrt(2)]]))
    # the scatter over every item gives the same columns
    torch.testing.assert_close(co.scatter(hist, scen, liked, target, 5)[:, [2, 4]], want)


def test_the_binary_search_finds_what_comparing_with_every_neighbour_finds() -> None:
    # a random table of 60 items, 7 neighbours each (the exported graph compares; training and scoring search)
    rng = np.random.default_rng(3)
    users, items = rng.integers(0, 40, 900), rng.integers(1, 60, 900)
    co = CoItems(n_items=60, n_scenarios=2, k=7, shrink=2.0)  # damped, as every path must damp alike
    co.fit([(users, items)])
    with torch.no_grad():
        co.weight.copy_(torch.randn(2, 2))
    hist = torch.from_numpy(rng.integers(0, 60, (5, 9)))
    scen = torch.from_numpy(rng.integers(1, 2, (5, 9)))
    liked = torch.from_numpy(rng.random((5, 9)) < 0.7)
    target, own = torch.tensor([1, 1, 0, 1, 1]), torch.tensor([True, False, True, False, True])
    for cand in (torch.from_numpy(rng.integers(0, 60, (5, 11))), torch.arange(60).unsqueeze(0)):
        searched = co.per_event(hist, scen, liked, target, cand, own)
        co.graph = True
        compared = co.per_event(hist, scen, liked, target, cand, own)
        scattered = co.term(hist, scen, liked, target, cand)  # the exported graph's sum: scattered into columns
        co.graph = False
        torch.testing.assert_close(searched, compared)
        torch.testing.assert_close(scattered, co.term(hist, scen, liked, target, cand))
        assert (compared != 0).sum() > 20  # the histories do reach candidates through the table
    co.fit([(users[:500], items[:500])])  # a new table: the search's sorted keys follow it
    co.graph = True
    compared = co.per_event(hist, scen, liked, target, cand)
    co.graph = False
    torch.testing.assert_close(co.per_event(hist, scen, liked, target, cand), compared)


def test_cross_scope_reads_only_other_scenarios_events() -> None:
    rng = np.random.default_rng(4)
    users, items = rng.integers(0, 30, 600), rng.integers(1, 40, 600)
    both, cross = CoItems(n_items=40, n_scenarios=3, k=6), CoItems(n_items=40, n_scenarios=3, k=6, cross_only=True)
    both.fit([(users, items)])
    cross.load_state_dict(both.state_dict())
    with torch.no_grad():
        cross.weight.copy_(torch.randn(3, 3))
        both.weight.copy_(cross.weight * (1 - torch.eye(3)))  # the same W with its diagonal at 0
    hist = torch.from_numpy(rng.integers(0, 40, (6, 8)))
    scen = torch.from_numpy(rng.integers(1, 3, (6, 8)))
    liked = torch.ones(6, 8, dtype=torch.bool)
    target, cand = torch.tensor([1, 2, 1, 2, 1, 2]), torch.from_numpy(rng.integers(0, 40, (6, 5)))
    out = cross.per_event(hist, scen, liked, target, cand, torch.ones(6, dtype=torch.bool))
    torch.testing.assert_close(out, both.per_event(hist, scen, liked, target, cand, torch.ones(6, dtype=torch.bool)))
    assert (out.transpose(1, 2)[scen == target.unsqueeze(1)] == 0).all() and (out != 0).sum() > 10
    out.sum().backward()
    assert (cross.weight.grad.diagonal() == 0).all() and cross.weight.grad.abs().sum() > 0
    # histories wholly in their row's scenario: nothing to read, and W learns nothing from them
    cross.weight.grad = None
    same = target.unsqueeze(1).expand(6, 8)
    assert (cross.term(hist, same, liked, target, cand) == 0).all()
    cross.graph = True  # as exported: the same zeros
    assert (cross.term(hist, same, liked, target, cand) == 0).all()
    cross.graph = False
    # a scenario described after training (index 3, mixing trained 1 and 2): its own logged events are not read, by
    # forward's per-event path and the catalogue's scatter alike; its other events read the mixed row of W
    mix = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0.5, 0.5]])
    new = torch.full((6,), 3)
    own_events = torch.full((6, 8), 3)
    assert (cross.per_event(hist, own_events, liked, new, cand, mix=mix) == 0).all()
    assert (cross.scatter(hist, own_events, liked, new, 40, mix) == 0).all()
    mixed = cross.per_event(hist, scen, liked, new, cand, mix=mix)
    torch.testing.assert_close(cross.scatter(hist, scen, liked, new, 40, mix).gather(1, cand), mixed.sum(-1))
    assert (mixed != 0).any()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_synthetic(tmp_path_factory.mktemp("cooc"), "random", history_length=20, protocol_seed=1,
                              n_users=400, events_per_user=40, seed=5)


@pytest.mark.parametrize("scope,k,shrink", [("all", 5, 0.0), ("cross", 50, 0.0), ("cross", 50, 3.0)])
def test_explanations_give_each_events_part_of_the_term(prepared: Path, scope: str, k: int, shrink: float) -> None:
    torch.manual_seed(0)
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": k, "co_scope": scope,
                                            "co_shrink": shrink}).eval()
    model.setup(enc.indexed(enc.rows(ds, "train")))
    assert model.co.shrink == shrink
    b = enc.batch(enc.rows(ds, "test"), np.arange(32))
    with torch.no_grad():
        model.co.weight.copy_(torch.randn_like(model.co.weight))
        out = model.explain(b)
        with_co = model(b)
        model.co.weight.zero_()
        without = model(b)
    assert out.event_co is not None and out.event_co.shape == b.hist_mask.shape
    assert (out.event_co[~b.hist_mask] == 0).all()
    assert out.event_co.abs().sum() > 0  # the fixture's histories reach their candidates through the table
    torch.testing.assert_close(out.event_co.sum(1), with_co - without)
    torch.testing.assert_close(out.logit, with_co)


def test_the_fast_part_of_w_learns_for_one_epoch_of_rows_then_stops() -> None:
    co = _fitted()
    co.fit([(np.array([1, 2, 2]), np.array([1, 2, 3]))], rows=10)
    assert int(co.fast_rows) == 10 and int(co.seen) == 0
    co.train()
    co.matrix().sum().backward()
    assert co.fast.grad is not None and co.weight.grad is not None
    torch.testing.assert_close(co.fast.grad, co.gain * co.weight.grad)  # W = gain * fast + weight
    co.fast.grad = co.weight.grad = None
    co.count_rows(6)
    co.matrix().sum().backward()
    assert co.fast.grad is not None  # 6 of 10 rows: still the first epoch
    co.fast.grad = co.weight.grad = None
    co.count_rows(4)
    co.matrix().sum().backward()
    assert co.fast.grad is None and co.weight.grad is not None  # Adam skips it from here on
    with torch.no_grad():
        co.fast.fill_(0.5)
    co.eval()  # evaluation reads both parts
    torch.testing.assert_close(co.matrix(), torch.full((3, 3), 0.5 * co.gain))


def test_weights_saved_with_one_part_load_as_the_fast_part() -> None:
    co = _fitted()
    old = {k: v for k, v in co.state_dict().items() if k not in ("fast", "seen", "fast_rows")}
    old["weight"] = torch.randn(3, 3)  # then W / gain
    loaded = _fitted()
    loaded.load_state_dict(old)
    torch.testing.assert_close(loaded.eval().matrix(), old["weight"] * loaded.gain)


def test_training_counts_the_rows_each_epoch(prepared: Path) -> None:
    from mistrec.train import TrainConfig, train

    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rows = enc.rows(ds, "train")
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 5})
    train(model, enc, rows, None, TrainConfig(epochs=2, batch_size=512, patience=5), quiet=True)
    assert int(model.co.fast_rows) == len(rows) and int(model.co.seen) == 2 * len(rows)
    assert model.co.fast.abs().sum() > 0 and model.co.weight.abs().sum() > 0


def test_residual_fit_trains_the_network_as_without_the_term(prepared: Path) -> None:
    import torch.nn.functional as F

    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rows = enc.rows(ds, "train")
    torch.manual_seed(0)
    res = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 5, "co_fit": "residual", "dropout": 0.0,
                                          "user_dropout": 0.0})
    torch.manual_seed(0)
    alone = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 0, "dropout": 0.0, "user_dropout": 0.0})
    alone.load_state_dict({k: v for k, v in res.state_dict().items() if not k.startswith("co.") and k != "co_scale"})
    res.setup(enc.indexed(rows))
    with torch.no_grad():
        res.co.weight.copy_(torch.randn_like(res.co.weight))
    b = enc.batch(rows, np.arange(64))
    res.train(), alone.train()
    loss = res.stage_loss(b)
    assert loss is not None and loss.shape == (64,)
    loss.sum().backward()
    F.binary_cross_entropy_with_logits(alone(b), b.label, reduction="sum").backward()
    network = {name: p for name, p in res.named_parameters() if not name.startswith("co.")}
    grads = dict(alone.named_parameters())
    assert network.keys() == grads.keys()
    assert {n for n, p in network.items() if p.grad is not None} == {n for n, p in grads.items() if p.grad is not None}
    for name, p in network.items():
        if p.grad is not None:
            torch.testing.assert_close(p.grad, grads[name].grad, msg=name)  # the network: as without the term
    assert res.co.weight.grad is not None and res.co.weight.grad.abs().sum() > 0
    joint = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 5, "co_fit": "joint"})
    assert joint.stage_loss(b) is None  # one BCE on the sum, in the trainer
    assert build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 5}).stage_loss(b) is not None  # auto


def test_a_damped_term_is_also_weighed_above_one_after_training(prepared: Path) -> None:
    from mistrec.models.mist_config import CO_SCALES, CO_SCALES_DAMPED

    enc = FeatureEncoder().fit(PreparedDataset.load(prepared))
    plain = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_shrink_new": 0.0, "co_own": "off"})
    damped = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_shrink": 3.0, "co_own": "off"})
    assert plain.ranking_options() == CO_SCALES
    assert damped.ranking_options() == CO_SCALES + CO_SCALES_DAMPED
    off = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_shrink": 3.0, "co_scale": "off"})
    assert off.ranking_options() == ()


def test_the_gate_divides_by_every_weight_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    # a best weight at p 0.01 passes the gate among CO_SCALES (0.05 / 3) and not among the damped term's seven
    # weights (0.05 / 6): more weights tried, a stricter gate
    from mistrec.models import mist as mist_module
    from mistrec.models.mist_config import CO_SCALES, CO_SCALES_DAMPED

    monkeypatch.setattr(mist_module, "paired_bootstrap_mean", lambda a, b, users: {"p_value": 0.01})
    users = np.arange(200)
    for options, kept in ((CO_SCALES, 0.5), (CO_SCALES + CO_SCALES_DAMPED, 1.0)):
        values = {o: np.full(200, 0.2 if o == 0.5 else 0.1) for o in options}
        record = mist_module.co_weight_choice(values, users)
        assert record["best"] == 0.5 and record["chosen"] == kept


def test_shrink_new_damps_the_new_users_rows_alike_on_every_path() -> None:
    # `shrink_new`: rows of users new in their scenario scored as a table damped by it, the others as the table is;
    # the binary search, the comparison with every neighbour (the exported graph) and the catalogue's scatter agree
    rng = np.random.default_rng(5)
    users, items = rng.integers(0, 40, 900), rng.integers(1, 60, 900)
    plain, new_only, damped = (CoItems(n_items=60, n_scenarios=2, k=7, shrink=s, shrink_new=n)
                               for s, n in ((0.0, None), (0.0, 3.0), (3.0, None)))
    plain.fit([(users, items)])
    with torch.no_grad():
        plain.weight.copy_(torch.randn(2, 2))
    new_only.load_state_dict(plain.state_dict())  # one table (kept by the plain cosine), three dampings
    damped.load_state_dict(plain.state_dict())
    hist = torch.from_numpy(rng.integers(0, 60, (6, 9)))
    scen = torch.from_numpy(rng.integers(0, 2, (6, 9)))
    liked = torch.from_numpy(rng.random((6, 9)) < 0.7)
    target, new = torch.tensor([1, 1, 0, 1, 0, 1]), torch.tensor([True, False, True, False, False, True])
    cand = torch.arange(60).unsqueeze(0).expand(6, -1)  # the whole catalogue
    want = torch.where(new[:, None, None], damped.per_event(hist, scen, liked, target, cand),
                       plain.per_event(hist, scen, liked, target, cand))
    got = new_only.per_event(hist, scen, liked, target, cand, new=new)
    torch.testing.assert_close(got, want)
    assert not torch.allclose(want[new], plain.per_event(hist, scen, liked, target, cand)[new])  # it does damp
    new_only.graph = True
    torch.testing.assert_close(new_only.per_event(hist, scen, liked, target, cand, new=new), want)
    torch.testing.assert_close(new_only.term(hist, scen, liked, target, cand, new=new), want.sum(-1))  # scatter
    new_only.graph = False
    torch.testing.assert_close(new_only.scatter(hist, scen, liked, target, 60, new=new).gather(1, cand), want.sum(-1))
    # without `new` (training) every row keeps `shrink`
    torch.testing.assert_close(new_only.per_event(hist, scen, liked, target, cand),
                               plain.per_event(hist, scen, liked, target, cand))


def _assert_catalogue_paths_agree(model, b, is_new: torch.Tensor, enc) -> None:  # type: ignore[no-untyped-def]
    """The catalogue's path and the general one score a few new and active users' queries as forward does."""
    queries = b.subset(torch.cat([torch.nonzero(is_new).squeeze(1)[:3], torch.nonzero(~is_new).squeeze(1)[:3]]))
    items = enc.item_batch(np.arange(1, enc.spec_.n_items))
    with torch.no_grad():
        want = model(queries.cross(items)).view(len(queries), -1)
        torch.testing.assert_close(model.score_candidates(queries, items), want, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model._score_crossed(queries, items), want, rtol=1e-4, atol=1e-5)


def test_k_new_reads_a_new_users_rows_as_the_shallower_table_on_every_path() -> None:
    # `k_new`: rows of users new in their scenario scored as a table fitted with k = k_new (its first places are
    # the same items: one order), the other rows as the deep table is; the binary search, the comparison with every
    # neighbour (the exported graph) and the catalogue's scatter agree; with shrink_new too
    rng = np.random.default_rng(7)
    users, items = rng.integers(0, 30, 1500), rng.integers(1, 60, 1500)
    for shrink_new in (None, 3.0):
        deep, shallow, cut = (CoItems(n_items=60, n_scenarios=2, k=k, shrink_new=shrink_new, k_new=k_new)
                              for k, k_new in ((20, None), (5, None), (20, 5)))
        deep.fit([(users, items)])
        shallow.fit([(users, items)])
        assert torch.equal(deep.dense()[0][:, :5], shallow.dense()[0])  # the deep table's first places: the shallow
        assert bool((deep.dense()[1][:, 5:] > 0).any())  # and it holds more
        with torch.no_grad():
            w = torch.randn(2, 2)
            for co in (deep, shallow):
                co.weight.copy_(w)
        cut.load_state_dict(deep.state_dict())
        hist = torch.from_numpy(rng.integers(0, 60, (6, 9)))
        scen = torch.from_numpy(rng.integers(0, 2, (6, 9)))
        liked = torch.from_numpy(rng.random((6, 9)) < 0.7)
        target, new = torch.tensor([1, 1, 0, 1, 0, 1]), torch.tensor([True, False, True, False, False, True])
        cand = torch.arange(60).unsqueeze(0).expand(6, -1)
        want = torch.where(new[:, None, None], shallow.per_event(hist, scen, liked, target, cand, new=new),
                           deep.per_event(hist, scen, liked, target, cand, new=new))
        assert not torch.allclose(want[new], deep.per_event(hist, scen, liked, target, cand, new=new)[new])
        torch.testing.assert_close(cut.per_event(hist, scen, liked, target, cand, new=new), want)
        cut.graph = True
        torch.testing.assert_close(cut.per_event(hist, scen, liked, target, cand, new=new), want)
        torch.testing.assert_close(cut.term(hist, scen, liked, target, cand, new=new), want.sum(-1))  # scatter
        cut.graph = False
        torch.testing.assert_close(cut.scatter(hist, scen, liked, target, 60, new=new).gather(1, cand),
                                   want.sum(-1))
        # without `new` (training) every row reads the whole table
        torch.testing.assert_close(cut.per_event(hist, scen, liked, target, cand),
                                   deep.per_event(hist, scen, liked, target, cand))


def test_co_items_new_is_checked_with_its_name() -> None:
    from mistrec.errors import ConfigError
    from mistrec.models.mist_config import MistConfig

    with pytest.raises(ConfigError, match="co_items_new"):
        MistConfig(co_items=50, co_items_new=60).validate()
    with pytest.raises(ConfigError, match="co_items_new"):
        MistConfig(co_items=50, co_items_new=0).validate()
    MistConfig(co_items=500, co_items_new=50).validate()
    MistConfig(co_items=0, co_items_new=50).validate()  # the term off: nothing to cut


def test_co_items_new_moves_only_new_users_scores_in_evaluation(prepared: Path) -> None:
    """mist with `co_items_new`: a row whose user has no training event in its scenario reads the first places of
    each item's table, a row of an active user all of them, per row and on the catalogue's paths; training reads all;
    the new users choose the term's weight among the larger weights too, the active users among CO_SCALES."""
    from mistrec.models import mist as mist_module
    from mistrec.models.mist_config import CO_SCALES, CO_SCALES_DAMPED

    torch.manual_seed(0)
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    values = {"embedding_dim": 8, "co_items": 12, "co_scope": "all", "co_shrink_new": 0.0}
    deep = build_model("mist", enc.spec_, values).eval()
    deep.setup(enc.indexed(enc.rows(ds, "train")))
    with torch.no_grad():
        for p in deep.parameters():
            p.add_(0.1 * torch.randn_like(p))
        deep.co.weight.copy_(torch.rand_like(deep.co.weight) + 0.5)
    cut = build_model("mist", enc.spec_, {**values, "co_items_new": 2}).eval()
    cut.load_state_dict(deep.state_dict())
    b = enc.batch(enc.rows(ds, "test"), np.arange(64))
    b = mist_module.Mist.made_new(b, torch.arange(64) % 2 == 0)
    is_new = b.activity == 0
    assert bool(is_new.any()) and bool((~is_new).any())
    with torch.no_grad():
        got, whole = cut(b), deep(b)
        torch.testing.assert_close(got[~is_new], whole[~is_new])
        assert not torch.allclose(got[is_new], whole[is_new])  # the cut moves the new users' scores
        # a new row's term is the deep table's cut to its first two places
        liked = b.hist_mask & (b.hist_labels > 0)
        new = cut._co_new(b.scenario, b.activity)
        term = cut.co.per_event(b.hist_items, b.hist_scenarios, liked, b.scenario, b.item.unsqueeze(1), None,
                                cut.mix, new)[:, 0].sum(1)
        two = CoItems(deep.co.users.shape[0], deep.co.fast.shape[0], k=2, shrink=deep.co.shrink)
        two.load_state_dict(deep.co.state_dict())  # the table cut to its first two places, as a fit with k = 2
        shallow = two.per_event(b.hist_items, b.hist_scenarios, liked, b.scenario, b.item.unsqueeze(1), None,
                                deep.mix, new)[:, 0].sum(1)
        torch.testing.assert_close(term[is_new], shallow[is_new])
    _assert_catalogue_paths_agree(cut, b, is_new, enc)
    cut.train()
    assert cut._co_new(b.scenario, b.activity) is None  # training: every row reads every place
    cut.eval()
    assert cut._kind_options("new") == CO_SCALES + CO_SCALES_DAMPED
    assert cut._kind_options("active") == CO_SCALES
    assert deep._kind_options("new") == CO_SCALES  # nothing cut, nothing damped


def test_co_shrink_new_moves_only_new_users_scores_in_evaluation(prepared: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """mist with `co_shrink_new`: a row whose user has no training event in its scenario scores as the same weights
    with every row damped (`co_shrink`), a row of an active user as without it, per row and on the catalogue's
    path; training never damps by it; the active users choose the term's weight among CO_SCALES, the new among the
    damped term's too."""
    from mistrec.models import mist as mist_module
    from mistrec.models.mist_config import CO_SCALES, CO_SCALES_DAMPED

    torch.manual_seed(0)
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    plain = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_shrink_new": 0.0, "co_own": "off"}).eval()
    plain.setup(enc.indexed(enc.rows(ds, "train")))
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(0.1 * torch.randn_like(p))
        plain.co.weight.copy_(torch.rand_like(plain.co.weight) + 0.5)
    new_only = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_shrink_new": 3.0, "co_own": "off"}).eval()
    damped = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_shrink": 3.0, "co_shrink_new": None,
                                           "co_own": "off"}).eval()
    new_only.load_state_dict(plain.state_dict())
    damped.load_state_dict(plain.state_dict())
    b = enc.batch(enc.rows(ds, "test"), np.arange(64))
    new = torch.arange(64) % 2 == 0  # half the rows as of users new in the scenario (their events there out)
    b = mist_module.Mist.made_new(b, new)
    assert bool((b.activity[new] == 0).all()) and bool((b.activity[~new] > 0).any())
    with torch.no_grad():
        got, want_new, want_active = new_only(b), damped(b), plain(b)
    is_new = b.activity == 0
    torch.testing.assert_close(got[is_new], want_new[is_new])
    torch.testing.assert_close(got[~is_new], want_active[~is_new])
    assert not torch.allclose(want_new[is_new], want_active[is_new])  # the damping moves the new users' scores
    _assert_catalogue_paths_agree(new_only, b, is_new, enc)
    new_only.train()
    assert new_only._co_new(b.scenario, b.activity) is None
    new_only.eval()
    # the weights each kind chooses among, and the choice: the weight 3 far ahead for both kinds
    assert new_only._kind_options("new") == CO_SCALES + CO_SCALES_DAMPED
    assert new_only._kind_options("active") == CO_SCALES
    assert damped._kind_options("active") == CO_SCALES + CO_SCALES_DAMPED
    monkeypatch.setattr(mist_module, "paired_bootstrap_mean", lambda a, b, users: {"p_value": 0.0})
    n = 400
    group = np.repeat([0, 2], n // 2)
    ndcg = {o: {s: {"user": np.arange(n), "group": group, "ndcg@10": np.full(n, 0.5 if o == 3.0 else 0.1 + 0.01 * o)}
                for s in new_only.known_scenarios} for o in new_only.ranking_options()}
    record = new_only.settle_ranking(ndcg, [f"s{s}" for s in range(1, enc.spec_.n_scenarios + 1)])["co_scale"]
    for kinds in record.values():
        assert kinds["new"]["chosen"] == 3.0
        assert kinds["active"]["chosen"] == 1.0 and set(kinds["active"]["valid_ndcg@10"]) == {"1", "0.5", "0.25", "0"}


def test_a_run_saved_before_co_shrink_new_loads_as_it_was_scored(prepared: Path, tmp_path: Path) -> None:
    """A run.json without `co_shrink_new` (saved before it existed) loads with it unset (`co_shrink`'s), so that its
    new users score as when it was evaluated; one with the key loads with its value. One without `co_own` loads
    without it, its table cut to the places the model then reads (the first `co_items`, as a fit to them gives)."""
    import json

    from mistrec.eval.fit import fit_run
    from mistrec.train import TrainConfig, load_run

    torch.set_num_threads(1)
    fit_run(prepared, "mist", tmp_path / "run", model_values={"embedding_dim": 8},
            train_cfg=TrainConfig(epochs=1, batch_size=512, lr=3e-3, seed=4), quiet=True)
    model, _, meta = load_run(tmp_path / "run")
    assert meta["model_config"]["co_shrink_new"] == 3.0 and model.co.shrink_new == 3.0
    assert model.co.own_rows and model.co.k == 500 and model.co.k_read == 50  # co_own: the default
    doc = json.loads((tmp_path / "run" / "run.json").read_text())
    del doc["model_config"]["co_shrink_new"]
    del doc["model_config"]["co_own"]
    (tmp_path / "run" / "run.json").write_text(json.dumps(doc))
    old, _, _ = load_run(tmp_path / "run")
    assert old.co.shrink_new == old.co.shrink == 0.0
    assert not old.co.own_rows and old.co.k == 50 and old.co.saved_places is None
    nbr, count = model.co.dense()
    assert all(torch.equal(a, b) for a, b in zip(old.co.dense(), (nbr[:, :50], count[:, :50]), strict=True))
    settled, _, _ = load_run(tmp_path / "run", settings={"co_shrink_new": 3.0})  # benchmarks/rechoose.py --settings
    assert settled.co.shrink_new == 3.0


def test_own_rows_read_the_active_rows_own_scenario_deeper_and_nothing_else() -> None:
    # `k_read` < k with `own_rows`: training and every row's other-scenario events read the table as one fitted to
    # k_read places would (bit for bit); in evaluation an active row's own scenario's liked events read all k places
    # at `own_weight`; a new user's row none of them; every path agrees, and `own_part` is that part at weight 1
    rng = np.random.default_rng(11)
    users, items = rng.integers(0, 30, 1500), rng.integers(1, 60, 1500)
    shallow = CoItems(n_items=60, n_scenarios=3, k=5, cross_only=True)
    deep = CoItems(n_items=60, n_scenarios=3, k=20, cross_only=True, k_read=5, own_rows=True)
    shallow.fit([(users, items)])
    deep.fit([(users, items)])
    assert torch.equal(deep.dense()[0][:, :5], shallow.dense()[0])
    with torch.no_grad():
        w = torch.randn(3, 3)
        shallow.weight.copy_(w)
        deep.weight.copy_(w)
    hist = torch.from_numpy(rng.integers(0, 60, (6, 9)))
    scen = torch.from_numpy(rng.integers(1, 3, (6, 9)))
    liked = torch.from_numpy(rng.random((6, 9)) < 0.8)
    target, new = torch.tensor([1, 2, 1, 2, 1, 2]), torch.tensor([True, False, False, True, False, False])
    cand = torch.arange(60).unsqueeze(0).expand(6, -1)
    own_rows = torch.tensor([True, True, True, True, True, True])  # leave-one-out rows, as training positives
    # training (no `new`): as the shallow table, bit for bit, on the binary search and on the graph's comparison
    for graph in (False, True):
        shallow.graph = deep.graph = graph
        assert torch.equal(deep.per_event(hist, scen, liked, target, cand, own_rows),
                           shallow.per_event(hist, scen, liked, target, cand, own_rows))
    shallow.graph = deep.graph = False
    # evaluation with own_weight 0: as the shallow table; the events of weight 0 are not read past the places the
    # others read (`_read_limits`), bit for bit as reading them all, which the exported graph's scatter does
    torch.testing.assert_close(deep.per_event(hist, scen, liked, target, cand, new=new),
                               shallow.per_event(hist, scen, liked, target, cand, new=new))
    with torch.no_grad():
        weights = deep._weights(target, scen, liked, None, new, False)
        read_to = int(deep._read_limits(target, scen, new, weights).max())
        assert read_to == 5 < int(deep._limits(target, scen, new).max())
        read = deep.scatter(hist, scen, liked, target, 60, new=new)
        deep.graph = True
        assert torch.equal(read, deep.scatter(hist, scen, liked, target, 60, new=new))
        deep.graph = False
        assert torch.equal(read, shallow.scatter(hist, scen, liked, target, 60, new=new))
    # where the weights learn (W's gradient is each event's cosine, its weight 0 or not), every limit stays
    learning = deep._weights(target, scen, liked, None, new, False)
    assert learning.requires_grad and torch.equal(deep._read_limits(target, scen, new, learning),
                                                  deep._limits(target, scen, new))
    with torch.no_grad():
        deep.own_weight.copy_(torch.tensor([0.0, 2.0, 3.0]))
    got = deep.per_event(hist, scen, liked, target, cand, new=new)
    own_event = (scen == target.unsqueeze(1)) & liked & ~new.unsqueeze(1)  # (U, L)
    assert bool(own_event.any())
    cross = shallow.per_event(hist, scen, liked, target, cand, new=new)
    torch.testing.assert_close(got[~own_event.unsqueeze(1).expand_as(got)],
                               cross[~own_event.unsqueeze(1).expand_as(got)])
    # an own event's part: its cosine through all 20 places (the deep table read whole) times own_weight[t]
    whole = CoItems(n_items=60, n_scenarios=3, k=20)
    whole.load_state_dict({k: v for k, v in deep.state_dict().items() if k != "own_weight"})
    cos = whole.pair_cosines(hist, cand, None)
    want = cos * (own_event * deep.own_weight[target].unsqueeze(1)).unsqueeze(1)
    mask = own_event.unsqueeze(1).expand_as(got)
    torch.testing.assert_close(got[mask], want[mask])
    assert bool((want[mask] != 0).any())
    assert not torch.equal(cos[mask], shallow.pair_cosines(hist, cand, None)[mask])  # read deeper than 5 places
    part = deep.per_event(hist, scen, liked, target, cand, new=new, own_part=True)
    torch.testing.assert_close(part.sum(-1), (cos * own_event.unsqueeze(1)).sum(-1))
    # the graph's comparison, the scatter (the exported graph's and the catalogue's) and own_part on each
    deep.graph = True
    torch.testing.assert_close(deep.per_event(hist, scen, liked, target, cand, new=new), got)
    torch.testing.assert_close(deep.term(hist, scen, liked, target, cand, new=new), got.sum(-1))
    torch.testing.assert_close(deep.term(hist, scen, liked, target, cand, new=new, own_part=True), part.sum(-1))
    deep.graph = False
    torch.testing.assert_close(deep.scatter(hist, scen, liked, target, 60, new=new).gather(1, cand), got.sum(-1))


def test_a_shallower_saved_table_is_refitted_deeper_and_checked() -> None:
    rng = np.random.default_rng(3)
    users, items = rng.integers(0, 30, 900), rng.integers(1, 60, 900)
    shallow = CoItems(n_items=60, n_scenarios=2, k=5, cross_only=True)
    shallow.fit([(users, items)], rows=77)
    deep = CoItems(n_items=60, n_scenarios=2, k=20, cross_only=True, k_read=5, own_rows=True)
    deep.load_state_dict(shallow.state_dict())
    assert deep.saved_places == 5 and bool((deep.dense()[0][:, 5:] == 0).all())
    assert float(deep.own_weight.abs().sum()) == 0
    deep.refit([(users, items)])
    fresh = CoItems(n_items=60, n_scenarios=2, k=20)
    fresh.fit([(users, items)])
    assert all(torch.equal(a, b) for a, b in zip(deep.dense(), fresh.dense(), strict=True))
    assert int(deep.fast_rows) == 77 and deep.saved_places is None
    other = CoItems(n_items=60, n_scenarios=2, k=20, cross_only=True, k_read=5, own_rows=True)
    other.load_state_dict(shallow.state_dict())
    with pytest.raises(ValueError, match="does not begin with the saved one"):
        other.refit([(rng.integers(0, 30, 900), rng.integers(1, 60, 900))])  # other rows: another table


def test_co_own_is_on_by_default_where_it_applies(prepared: Path) -> None:
    from mistrec.models.mist_config import MistConfig

    assert MistConfig().reads_own  # the default since 2026-12-06
    assert not MistConfig(co_scope="all").reads_own and not MistConfig(co_scale="off").reads_own  # no error either
    assert not MistConfig(co_items=0).reads_own and not MistConfig(co_own="off").reads_own
    assert not MistConfig(co_items=600).reads_own  # deeper than co_own_items: nothing to read deeper
    MistConfig(co_scope="all").validate()
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 4, "co_own_items": 9})
    assert model.co.own_rows and model.co.k == 9 and model.co.k_read == 4


def test_co_own_is_checked_with_its_name() -> None:
    from mistrec.errors import ConfigError
    from mistrec.models.mist_config import MistConfig

    with pytest.raises(ConfigError, match="co_own"):
        MistConfig(co_own="auto", co_scope="all").validate()
    with pytest.raises(ConfigError, match="co_own"):
        MistConfig(co_own="auto", co_scale="off").validate()
    with pytest.raises(ConfigError, match="co_own_items"):
        MistConfig(co_own="auto", co_items=50, co_own_items=20).validate()
    MistConfig(co_own="auto").validate()


def test_co_own_trains_as_without_and_chooses_its_weight_on_the_ranking(prepared: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """mist with `co_own: auto`: the same weights score every training row and, at w = 0, every evaluation row as
    without it; with w chosen the active users' rows move and the new users' do not; the ranking scorer's pair
    (c, w) is what the model scores after `use_ranking_option((c, w))`, on the catalogue's path and the general
    one; settle_ranking records and applies a pair."""
    from mistrec.models import mist as mist_module
    from mistrec.models.mist_config import CO_OWN_WEIGHTS, CO_SCALES

    torch.manual_seed(0)
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    values = {"embedding_dim": 8, "co_items": 4, "co_shrink_new": 0.0, "co_own": "off"}
    plain = build_model("mist", enc.spec_, values)
    plain.setup(enc.indexed(enc.rows(ds, "train")))
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(0.1 * torch.randn_like(p))
        plain.co.weight.copy_(torch.rand_like(plain.co.weight) + 0.5)
    deep = build_model("mist", enc.spec_, {**values, "co_own": "auto", "co_own_items": 16})
    deep.load_state_dict(plain.state_dict())  # the saved table is 4 places: padded, then made again
    assert deep.co.saved_places == 4
    b = enc.batch(enc.rows(ds, "test"), np.arange(64))
    with pytest.raises(ValueError, match="saved with 4 places"):  # the padded table is not read as if whole
        deep.eval()(b)
    deep.refit_co_table(enc.indexed(enc.rows(ds, "train")))
    assert deep.co.k == 16 and bool((deep.co.dense()[1][:, 4:] > 0).any())
    b = mist_module.Mist.made_new(b, torch.arange(64) % 4 == 0)
    is_new = b.activity == 0
    plain.train()
    deep.train()
    torch.manual_seed(1)
    a = plain(b)
    torch.manual_seed(1)
    assert torch.equal(deep(b), a)  # training: bit for bit
    plain.eval()
    deep.eval()
    with torch.no_grad():
        assert torch.equal(deep(b), plain(b))  # w = 0: bit for bit
        deep.use_ranking_option((1.0, 8.0))
        moved = deep(b)
        assert torch.equal(moved[is_new], plain(b)[is_new])  # a new user's row: bit for bit
        assert not torch.allclose(moved[~is_new], plain(b)[~is_new])
    assert deep._kind_options("new") == CO_SCALES
    pairs = tuple((c, w) for c in CO_SCALES if c > 0 for w in CO_OWN_WEIGHTS)
    assert deep._kind_options("active") == CO_SCALES + pairs
    queries = b.subset(torch.cat([torch.nonzero(is_new).squeeze(1)[:3], torch.nonzero(~is_new).squeeze(1)[:5]]))
    items = enc.item_batch(np.arange(1, enc.spec_.n_items))
    scorer = deep.ranking_scorer(items)  # made while the model holds (1, w 8): scores every option all the same
    columns = torch.tensor([0, 3, 7, 20])
    with torch.no_grad():
        scored, some = scorer(queries, None), scorer(queries, columns)
    assert bool((deep.co.own_weight[list(deep.known_scenarios)] == 8.0).all())  # the scorer changes nothing
    with torch.no_grad():
        for option, got, part in zip(deep.ranking_options(), scored, some, strict=True):
            deep.use_ranking_option(option)
            want = deep.ranking_scores(deep(queries.cross(items)).view(len(queries), -1), queries.scenario,
                                       items.item, queries)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(part, want[:, columns], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(deep.score_candidates(queries, items), deep._score_crossed(queries, items),
                                       rtol=1e-4, atol=1e-5)
    # the choice: the pair (0.5, 4) far ahead for the active users, the weight 1 kept for the new
    monkeypatch.setattr(mist_module, "paired_bootstrap_mean", lambda a, b, users: {"p_value": 0.0})
    n = 400
    group = np.repeat([0, 2], n // 2)
    ndcg = {o: {s: {"user": np.arange(n), "group": group,
                    "ndcg@10": np.where(group > 0, 0.5 if o == (0.5, 4.0) else 0.1, 0.2 if o == 1.0 else 0.1)}
                for s in deep.known_scenarios} for o in deep.ranking_options()}
    record = deep.settle_ranking(ndcg, [f"s{s}" for s in range(1, enc.spec_.n_scenarios + 1)])["co_scale"]
    for s, kinds in zip(deep.known_scenarios, record.values(), strict=True):
        assert kinds["active"]["chosen"] == [0.5, 4.0] and kinds["active"]["valid_ndcg@10"]["0.5+own4"] == 0.5
        assert kinds["new"]["chosen"] == 1.0 and "1+own1" not in kinds["new"]["valid_ndcg@10"]
        assert float(deep.co_scale[s, 1]) == 0.5 and float(deep.co.own_weight[s]) == 4.0
        assert float(deep.co_scale[s, 0]) == 1.0
