"""mist's options for how the other scenarios' events are read, all off by default: `source_rows` (in training a
share of the rows lose one other scenario's events, as leave-source-out shows a history), `event_dropout` (in
training each other scenario's event leaves with a probability) and `transfer_active` (a second transfer bias for
users active in the target), and `interest_scope: own_active` (an active user's attention interest from their own
scenario's events). Evaluation reads every history whole; off, training is as without them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mistrec.data import PreparedDataset
from mistrec.errors import ConfigError
from mistrec.features import FeatureEncoder
from mistrec.models import build_model
from tests.conftest import prepared_synthetic


def _model_and_batch(tmp_path: Path, share: float):  # type: ignore[no-untyped-def]
    ds = PreparedDataset.load(prepared_synthetic(tmp_path, n_users=120, seed=3))
    enc = FeatureEncoder().fit(ds)
    values = {"embedding_dim": 8, "co_items": 0}
    model = build_model("mist", enc.spec_, {**values, "source_rows": share})
    plain = build_model("mist", enc.spec_, values)
    plain.load_state_dict(model.state_dict())
    return model, plain, enc.batch(enc.rows(ds, "train"), np.arange(512))


def test_a_picked_row_loses_every_event_of_one_other_scenario_and_keeps_its_own(tmp_path: Path) -> None:
    model, _, b = _model_and_batch(tmp_path, 1.0)
    model.train()
    torch.manual_seed(0)
    out = model._source_out(b)
    own = b.hist_mask & (b.hist_scenarios == b.scenario.unsqueeze(1))
    assert torch.equal(out.hist_mask & own, own)  # the row's own scenario's events stay
    assert torch.equal(out.activity, b.activity) and torch.equal(out.label, b.label)
    removed = b.hist_mask & ~out.hist_mask
    others = b.hist_mask & ~own
    for r in range(len(b)):
        held = set(b.hist_scenarios[r][others[r]].tolist())
        gone = set(b.hist_scenarios[r][removed[r]].tolist())
        if not held:
            assert not gone  # nothing of another scenario to leave out
            continue
        assert len(gone) == 1 and gone <= held  # one scenario, and all of its events
        (s,) = gone
        assert not (out.hist_mask[r] & (out.hist_scenarios[r] == s)).any()
    picked = removed.any(1)
    assert int(picked.sum()) == int(others.any(1).sum()) > 100
    # every held scenario is drawn: over many draws each scenario a row holds is left out at some point
    first = int(others.any(1).nonzero()[0])
    drawn = {int(b.hist_scenarios[first][(b.hist_mask & ~model._source_out(b).hist_mask)[first]][0])
             for _ in range(200)}
    assert drawn == set(b.hist_scenarios[first][others[first]].tolist())


def test_a_share_picks_that_share_and_evaluation_reads_the_history_whole(tmp_path: Path) -> None:
    model, plain, b = _model_and_batch(tmp_path, 0.3)
    model.train()
    torch.manual_seed(1)
    others = (b.hist_mask & (b.hist_scenarios != b.scenario.unsqueeze(1))).any(1)
    picked = (b.hist_mask & ~model._source_out(b).hist_mask).any(1)
    assert abs(float(picked.sum()) / float(others.sum()) - 0.3) < 0.08
    model.eval()
    plain.eval()
    assert model._source_out(b) is b
    with torch.no_grad():
        assert torch.equal(model(b), plain(b))


def test_source_rows_is_checked_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="source_rows"):
        _model_and_batch(tmp_path, 1.5)


def test_transfer_active_moves_only_the_rows_of_users_active_in_the_target(tmp_path: Path) -> None:
    ds = PreparedDataset.load(prepared_synthetic(tmp_path, n_users=120, seed=3))
    enc = FeatureEncoder().fit(ds)
    values = {"embedding_dim": 8, "co_items": 0}
    model = build_model("mist", enc.spec_, {**values, "transfer_active": True}).eval()
    plain = build_model("mist", enc.spec_, values).eval()
    state = model.state_dict()
    plain.load_state_dict({k: v for k, v in state.items() if k != "transfer_active"})
    b = enc.batch(enc.rows(ds, "test"), np.arange(256))
    active = b.activity > 0
    assert bool(active.any()) and bool((~active).any())
    with torch.no_grad():
        assert torch.equal(model(b), plain(b))  # A starts at zero: the model as without it
        model.transfer_active.copy_(torch.randn_like(model.transfer_active))
        moved = model(b)
    assert torch.equal(moved[~active], plain(b)[~active])
    assert not torch.allclose(moved[active], plain(b)[active])
    with pytest.raises(ConfigError, match="transfer_active"):
        build_model("mist", enc.spec_, {**values, "transfer_active": True, "transfer_bias": False})


def test_event_dropout_drops_that_share_of_the_other_scenarios_events_and_keeps_the_rows_own(tmp_path: Path) -> None:
    ds = PreparedDataset.load(prepared_synthetic(tmp_path, n_users=120, seed=3))
    enc = FeatureEncoder().fit(ds)
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 0, "event_dropout": 0.3}).train()
    b = enc.batch(enc.rows(ds, "train"), np.arange(2048))
    torch.manual_seed(2)
    out = model._source_out(b)
    own = b.hist_mask & (b.hist_scenarios == b.scenario.unsqueeze(1))
    others = b.hist_mask & ~own
    assert torch.equal(out.hist_mask & own, own) and torch.equal(out.activity, b.activity)
    gone = others & ~out.hist_mask
    assert not (out.hist_mask & ~b.hist_mask).any()
    assert abs(float(gone.sum()) / float(others.sum()) - 0.3) < 0.02
    assert model.eval()._source_out(b) is b
    with pytest.raises(ConfigError, match="event_dropout"):
        build_model("mist", enc.spec_, {"event_dropout": 1.0})


def test_off_they_leave_training_as_it_was_and_draw_no_random_number(tmp_path: Path) -> None:
    ds = PreparedDataset.load(prepared_synthetic(tmp_path, n_users=120, seed=3))
    enc = FeatureEncoder().fit(ds)
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 0}).train()
    assert model.transfer_active is None and "transfer_active" not in model.state_dict()
    b = enc.batch(enc.rows(ds, "train"), np.arange(256))
    state = torch.get_rng_state()
    assert model._source_out(b) is b
    assert torch.equal(torch.get_rng_state(), state)  # the default's training draws stay where they were


def test_history_dropout_moves_training_scores_only_and_is_checked(tmp_path: Path) -> None:
    ds = PreparedDataset.load(prepared_synthetic(tmp_path, n_users=120, seed=3))
    enc = FeatureEncoder().fit(ds)
    values = {"embedding_dim": 8, "co_items": 0, "dropout": 0.0}
    model = build_model("mist", enc.spec_, {**values, "history_dropout": 0.5})
    plain = build_model("mist", enc.spec_, values)
    plain.load_state_dict(model.state_dict())
    b = enc.batch(enc.rows(ds, "train"), np.arange(256))
    with torch.no_grad():
        assert torch.equal(model.eval()(b), plain.eval()(b))  # evaluation reads the vectors whole
        torch.manual_seed(4)
        first = model.train()(b)
        torch.manual_seed(4)
        plain.train()
        assert not torch.allclose(first, plain(b))
    with pytest.raises(ConfigError, match="history_dropout"):
        build_model("mist", enc.spec_, {"history_dropout": 1.0})


def test_interest_scope_own_active_reads_an_active_users_own_pools_only(tmp_path: Path) -> None:
    """`interest_scope: own_active`: the interest u of a row whose user is active in its scenario does not move
    when the other scenarios' events leave the history (they still reach the transfer read-out), a new user's does;
    with "all" an active user's interest moves too."""
    ds = PreparedDataset.load(prepared_synthetic(tmp_path, n_users=120, seed=3))
    enc = FeatureEncoder().fit(ds)
    values = {"embedding_dim": 8, "co_items": 0}
    model = build_model("mist", enc.spec_, {**values, "interest_scope": "own_active"}).eval()
    plain = build_model("mist", enc.spec_, values).eval()
    plain.load_state_dict(model.state_dict())
    b = enc.batch(enc.rows(ds, "train"), np.arange(512))
    others = b.hist_mask & (b.hist_scenarios != b.scenario.unsqueeze(1))
    out = b.without_events(others)
    active = (b.activity >= model.cfg.cold_below) & others.any(1)
    new = (b.activity < model.cfg.cold_below) & others.any(1)
    assert int(active.sum()) > 20 and int(new.sum()) > 20
    with torch.no_grad():
        u, u_out = model._interest(b, None).u, model._interest(out, None).u
        p, p_out = plain._interest(b, None).u, plain._interest(out, None).u
        terms, terms_out = model._interest(b, None).terms, model._interest(out, None).terms
    torch.testing.assert_close(u[active], u_out[active], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(u[new], u_out[new])
    assert not torch.allclose(p[active], p_out[active])
    # the transfer read-out still reads them: with its per-source weights away from their zero start, an active
    # row's terms move when the other scenarios' events leave
    assert model.pool_weight is not None
    with torch.no_grad():
        model.pool_weight.add_(1.0)
        terms, terms_out = model._interest(b, None).terms, model._interest(out, None).terms
        model.pool_weight.sub_(1.0)
    assert terms is not None and terms_out is not None
    assert not torch.allclose(terms[active], terms_out[active])
    # and the model with "all" is the default: the same weights, the same interest for a new user
    torch.testing.assert_close(u[new], p[new], rtol=1e-5, atol=1e-6)
    # the explanation's event effects are the interest's: for an active row, those of the default model reading
    # the row without the other scenarios' events, and 0 on those events
    with torch.no_grad():
        effect = model.explain(b).event_effect
        alone = plain.explain(out).event_effect
    assert float(effect[active][others[active]].abs().max()) == 0.0
    torch.testing.assert_close(effect[active], alone[active], rtol=1e-5, atol=1e-6)


def test_own_active_rows_reads_a_share_of_the_active_rows_own_pools_in_training_only(tmp_path: Path) -> None:
    """`own_active_rows: p`: in training about p of the active rows read their own pools only (their interest as
    the default model's without the other scenarios' events), the rest every pool; in evaluation every active row
    reads its own pools only; off (1.0) no random draw is made."""
    ds = PreparedDataset.load(prepared_synthetic(tmp_path, n_users=120, seed=3))
    enc = FeatureEncoder().fit(ds)
    values = {"embedding_dim": 8, "co_items": 0, "interest_scope": "own_active"}
    model = build_model("mist", enc.spec_, {**values, "own_active_rows": 0.5})
    b = enc.batch(enc.rows(ds, "train"), np.arange(512))
    others = b.hist_mask & (b.hist_scenarios != b.scenario.unsqueeze(1))
    active = (b.activity >= model.cfg.cold_below) & others.any(1)
    model.train()
    torch.manual_seed(0)
    view = model._interest_view(b)
    kept = (view.hist_mask & others).any(1)  # the rows whose interest still reads another scenario
    share = float((~kept[active]).float().mean())
    assert 0.35 < share < 0.65  # about half of the active rows lose the other scenarios
    assert kept[~active & others.any(1)].all()  # new users' rows never
    model.eval()
    assert not (model._interest_view(b).hist_mask & others)[active].any()
    whole = build_model("mist", enc.spec_, values).train()
    state = torch.get_rng_state()
    whole._interest_view(b)
    assert torch.equal(state, torch.get_rng_state())
    with pytest.raises(ConfigError, match="own_active_rows"):
        build_model("mist", enc.spec_, {**values, "own_active_rows": 1.5})
    with pytest.raises(ConfigError, match="interest_scope"):  # a share of nothing: refused, not ignored
        build_model("mist", enc.spec_, {"embedding_dim": 8, "own_active_rows": 0.5})


def test_interest_scope_own_active_ranks_as_its_forward(tmp_path: Path) -> None:
    """Full-catalogue ranking of an own_active model (the crossed forward: MistCatalogue declines it) scores each
    query as the per-row forward does, on queries of active users with other scenarios' events (where the scope
    engages) and of new users; and those active queries score otherwise than under "all"."""
    ds = PreparedDataset.load(prepared_synthetic(tmp_path, n_users=120, seed=3))
    enc = FeatureEncoder().fit(ds)
    rows = enc.rows(ds, "test")
    b = enc.batch(rows, np.arange(len(rows)))
    others = (b.hist_mask & (b.hist_scenarios != b.scenario.unsqueeze(1))).any(1)
    active = ((b.activity >= 3) & others).nonzero().squeeze(1)[:4]
    new = ((b.activity < 3) & others).nonzero().squeeze(1)[:2]
    assert len(active) == 4 and len(new) == 2
    queries = enc.batch(rows, torch.cat([active, new]).numpy())
    items = enc.item_batch(np.arange(1, 30))
    torch.manual_seed(0)
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 0, "interest_scope": "own_active"}).eval()
    plain = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 0}).eval()
    with torch.no_grad():
        for p in model.parameters():  # away from the zero / one initialisations, so every term counts
            p.add_(0.1 * torch.randn_like(p))
        plain.load_state_dict(model.state_dict())
        got = model.score_candidates(queries, items)
        want = model(queries.cross(items)).view(len(queries), -1)
        whole = plain.score_candidates(queries, items)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(got[:4], whole[:4], rtol=1e-4, atol=1e-5)  # the scope engages on active queries
    torch.testing.assert_close(got[4:], whole[4:], rtol=1e-4, atol=1e-5)  # and not on new ones


def test_interest_from_sets_the_thresholds_validation_chooses_among(tmp_path: Path) -> None:
    """`interest_from` lists the thresholds `interest_scope: auto` offers (every pool first); under "own 6" a row of a
    user with fewer than 6 events in its scenario is scored as with every pool; a list not increasing is refused."""
    ds = PreparedDataset.load(prepared_synthetic(tmp_path, n_users=120, seed=3))
    enc = FeatureEncoder().fit(ds)
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 0, "interest_scope": "auto",
                                           "interest_from": [6, 21]}).eval()
    assert ("interest all", "interest own 6", "interest own 21") in model.validation_rounds()
    rows = enc.rows(ds, "test")
    b = enc.batch(rows, np.arange(len(rows)))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        model.use_option("interest all")
        whole = model(b)
        model.use_option("interest own 6")
        own = model(b)
    below = b.activity < 6
    others = (b.hist_mask & (b.hist_scenarios != b.scenario.unsqueeze(1))).any(1)
    assert bool((below & others).any()) and bool((~below & others).any())
    assert torch.equal(own[below], whole[below])
    assert not torch.allclose(own[~below & others], whole[~below & others])
    with pytest.raises(ConfigError, match="interest_from"):
        build_model("mist", enc.spec_, {"interest_scope": "auto", "interest_from": [21, 6]})
