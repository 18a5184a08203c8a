"""One contract over every registry entry, on small synthetic data with a planted signal:
output shape, loss goes down, save -> load gives bit-identical scores, the signal is learned."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from mistrec.batch import Batch
from mistrec.data import PreparedDataset
from mistrec.eval.activity import ActivityCounts
from mistrec.eval.fit import fit_run
from mistrec.eval.ranking import SCREEN_CANDIDATES, choose_on_ranking, rank_full_catalogue, ranking_choices
from mistrec.features import FeatureEncoder
from mistrec.metrics import auc, logloss
from mistrec.models import REGISTRY, build_model
from mistrec.models.base import (
    RANKED_WITH_EXPOSURE,
    RANKED_WITHOUT_TILT,
    Calibrates,
    Explains,
    FitsDirectly,
    GuardsOnRanking,
    ReportsGates,
)
from mistrec.models.mist import Mist, interest_options
from mistrec.models.mist_config import (
    ACTIVE_ID_OPTIONS,
    CO_CHOICE_P,
    CO_OWN_WEIGHTS,
    CO_SCALES,
    CO_SCALES_DAMPED,
    COLD_SCALES,
    MIN_CHOICE_QUERIES,
    MIN_CHOICE_ROWS,
)
from mistrec.train import TrainConfig, load_run, predict
from tests.conftest import prepared_implicit, prepared_synthetic


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("contract")
    return prepared_synthetic(root, "random", history_length=20, protocol_seed=1, n_users=400, events_per_user=40,
                              seed=5)


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} in a JSON file: not valid JSON")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_model_contract(name: str, prepared: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rows = enc.rows(ds, "train")
    model = build_model(name, enc.spec_, {"embedding_dim": 8})
    batch = enc.batch(rows, np.arange(64))
    assert model(batch).shape == (64,)

    summary = fit_run(prepared, name, tmp_path / "run", model_values={"embedding_dim": 8},
                      train_cfg=TrainConfig(epochs=6, batch_size=512, lr=3e-3, patience=6, seed=3), quiet=True)
    loaded, enc2, meta = load_run(tmp_path / "run")
    for written in ("run.json", "metrics.json"):  # strict JSON: a closed-form model's NaN loss is null, not NaN
        json.loads((tmp_path / "run" / written).read_text(), parse_constant=_no_constant)
    if not isinstance(loaded, FitsDirectly):
        # a staged model (EMCDR: mf then map) trains a different loss per stage: each stage must go down
        history = summary["train"]["history"]
        for stage in dict.fromkeys(h.get("stage") for h in history):
            losses = [h["train_loss"] for h in history if h.get("stage") == stage]
            assert losses[-1] < losses[0], (stage, losses)
    if isinstance(loaded, FitsDirectly | Calibrates):
        # closed-form and ranking models are calibrated: their training LogLoss beats the base-rate prediction
        train_rows = enc2.rows(ds, "train")
        prior = np.full(len(train_rows), train_rows.label.mean())
        assert logloss(train_rows.label, predict(loaded, enc2, train_rows)) < logloss(train_rows.label, prior)
    test_auc = summary["test"]["overall"]["auc"]
    # clearly above chance (0.5); the click models reach about 0.7 here, the BPR ranking models about 0.62
    assert test_auc > 0.6, f"{name} did not learn the planted signal: test AUC {test_auc:.3f}"

    assert meta["model"] == name
    test_rows = enc2.rows(ds, "test")
    again = predict(loaded, enc2, test_rows)
    loaded2, enc3, _ = load_run(tmp_path / "run")
    assert np.array_equal(again, predict(loaded2, enc3, test_rows))  # bit-identical across loads
    assert auc(test_rows.label, again) == pytest.approx(test_auc, abs=0)  # the saved weights are the evaluated ones


def test_unseen_scenario_and_ids_never_index_error(prepared: Path) -> None:
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rows = enc.rows(ds, "test")
    batch = enc.batch(rows, np.arange(32))
    batch.scenario[:] = 0  # a scenario never seen in training
    batch.item[:5] = 0
    for name in REGISTRY:
        model = build_model(name, enc.spec_, {"embedding_dim": 8}).eval()
        with torch.no_grad():
            out = model(batch)
        assert torch.isfinite(out).all(), name


@pytest.mark.parametrize("scope", ["pool", "all"])
def test_mist_explains_with_weights_and_source_shares(scope: str, prepared: Path) -> None:
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    batch = enc.batch(enc.rows(ds, "test"), np.arange(16))
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, "self_attention_layers": 1, "softmax_scope": scope})
    assert isinstance(model, Explains)
    out = model.eval().explain(batch)
    w, share = out.event_weights, out.source_share
    has = batch.hist_mask.any(dim=1)
    if scope == "all":  # one softmax over the history
        assert torch.allclose(w[has].sum(dim=1), torch.ones(int(has.sum())), atol=1e-5)
    else:  # one softmax per pool (source scenario x polarity): each present pool's weights sum to one
        pool = (batch.hist_scenarios * 2 + (batch.hist_labels > 0).long()) * batch.hist_mask
        sums = torch.zeros(len(batch), 2 * enc.spec_.n_scenarios).scatter_add(1, pool, w)
        present = torch.zeros_like(sums, dtype=torch.bool).scatter(1, pool, batch.hist_mask)
        assert torch.allclose(sums[present], torch.ones(int(present.sum())), atol=1e-5)
        assert (sums[~present] == 0).all()
        # so each event's effect (its weight x its pool's interest-level share) is its weight in the interest
        # u, a convex combination of the tokens
        assert torch.allclose(out.event_effect[has].sum(dim=1), torch.ones(int(has.sum())), atol=1e-5)
    assert (w[~batch.hist_mask] == 0).all()
    assert torch.allclose(share[has].sum(dim=1), torch.ones(int(has.sum())), atol=1e-5)
    # a source scenario with no event in the history gets no share
    present = torch.zeros_like(share, dtype=torch.bool)
    present.scatter_(1, batch.hist_scenarios * batch.hist_mask, batch.hist_mask)
    assert (share[~present] == 0).all()


@pytest.mark.parametrize("name,values", [(n, {}) for n in sorted(REGISTRY)] + [
    ("mist", {"weights": "din"}), ("mist", {"polarity_pools": False, "top": "ple"}),
    ("mist", {"self_attention_layers": 1, "history_values": False}), ("mist", {"user_per_scenario": True}),
    ("mist", {"softmax_scope": "pool", "user_dropout": 0.5, "init_std": 0.1}), ("mist", {"scorer": "bilinear"}),
    ("mist", {"scorer": "bilinear", "transfer_head": True, "item_bias": True, "user_dropout": 1.0}),
    ("mist", {"transfer_head": True, "top": "none", "weights": "din", "softmax_scope": "pool"}),
    ("mist", {"transfer_head": True, "polarity_pools": False, "top": "mlp", "activity_embedding": True}),
    ("mist", {"cold_id": "hide", "cold_below": 3, "user_dropout": 0.5, "item_prior": True}),
    ("mist", {"null_interest": True, "softmax_scope": "pool"}), ("mist", {"cold_id": "auto"}),
    ("mist", {"co_items": 5}), ("mist", {"co_items": 3, "top": "ple"}), ("mist", {"scorer": "sum"})])
def test_candidate_scores_equal_the_crossed_forward(name: str, values: dict, prepared: Path) -> None:
    """Full-catalogue ranking scores (one query against many items) are the per-row model's scores."""
    torch.manual_seed(0)
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    queries = enc.batch(enc.rows(ds, "test"), np.arange(5))
    # a query with no history at all, one with a few events, the rest whole
    drop = torch.zeros_like(queries.hist_mask)
    drop[0] = True
    drop[1, :-3] = True
    queries = queries.without_events(drop)
    items = enc.item_batch(np.arange(1, 40))
    model = build_model(name, enc.spec_, {"embedding_dim": 8, **values}).eval()
    if getattr(model, "co", None) is not None:  # the item-to-item table from the training positives
        model.setup(enc.indexed(enc.rows(ds, "train")))
        assert model.co.count.sum() > 0
    with torch.no_grad():
        for p in model.parameters():  # away from the zero / one initialisations, so every term counts
            p.add_(0.1 * torch.randn_like(p))
        got = model.score_candidates(queries, items)
        want = model(queries.cross(items)).view(5, 39)
        # a prepared scorer asked for some of its candidates (a retrieval stage's), in any order
        columns = torch.tensor([7, 0, 38, 12, 12, 3])
        scorer = model.candidate_scorer(items)
        some = scorer(queries, columns)
    assert got.shape == (5, 39)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(some, scorer(queries)[:, columns], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(some, want[:, columns], rtol=1e-4, atol=1e-5)


def test_mist_pools_the_same_by_bmm_and_by_index_add(prepared: Path) -> None:
    """Few pools go through one bmm, many through an index_add: the same interests, masses and shares."""
    torch.manual_seed(0)
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    b = enc.batch(enc.rows(ds, "train"), np.arange(64))
    model = build_model("mist", enc.spec_, {"embedding_dim": 8}).eval()
    with torch.no_grad():
        e = model.tokens(b)
        q = model.embed.items(b, True) + model.scenario(b.scenario)
        w = model.attend(e, q, b)
        by_bmm = model.pool(e, w, q, b)
        model.bmm_pools = 0
        by_index_add = model.pool(e, w, q, b)
    for x, y in zip(by_bmm, by_index_add, strict=True):
        torch.testing.assert_close(x, y)


@pytest.mark.parametrize("name", ["mmoe", "ple", "sarnet", "pepnet"])
def test_expert_models_report_their_gates(name: str, prepared: Path) -> None:
    from mistrec.eval.evaluate import gate_summary

    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rows = enc.rows(ds, "test")
    model = build_model(name, enc.spec_, {"embedding_dim": 8}).eval()
    assert isinstance(model, ReportsGates)
    with torch.no_grad():
        b = enc.batch(rows, np.arange(32), history=model.reads_history)
        plain = model(b)
        record = model.gate_values(b)
        assert torch.equal(model(b), plain)  # reading the gates changes nothing
    assert set(record) == set(model.gate_columns)
    for gate, w in record.items():
        assert w.shape == (32, len(model.gate_columns[gate]))
        if name != "pepnet":  # softmax gates sum to one; PEPNet's scalings lie in (0, 2)
            assert torch.allclose(w.sum(1), torch.ones(32), atol=1e-5)
        else:
            assert ((w > 0) & (w < 2)).all()
    summary = gate_summary(model, enc, rows)
    assert set(summary) == set(model.gate_columns)
    assert set(next(iter(summary.values()))["by_scenario"]) <= set(enc.spec_.scenario_names)


def test_an_expert_collapse_is_visible_in_the_gate_summary(prepared: Path) -> None:
    from mistrec.eval.evaluate import gate_summary

    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    model = build_model("mmoe", enc.spec_, {"embedding_dim": 8}).eval()
    with torch.no_grad():
        model.gates.bias.view(enc.spec_.n_scenarios, -1)[:, 0] = 50.0  # every scenario's gate picks expert 0
    summary = gate_summary(model, enc, enc.rows(ds, "test"))["experts"]["by_scenario"]
    for weights in summary.values():
        assert weights[0] > 0.99 and max(weights[1:]) < 0.01


def test_mist_user_dropout(prepared: Path) -> None:
    """user_dropout hides user ids from a share of training rows; at 1.0 the id is never read, so an (untrained)
    id embedding cannot add noise in evaluation."""
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    b = enc.batch(enc.rows(ds, "test"), np.arange(32))
    other = dataclasses.replace(b, user=torch.randint(1, enc.spec_.n_users, (32,)))
    never = build_model("mist", enc.spec_, {"embedding_dim": 8, "user_dropout": 1.0}).eval()
    some = build_model("mist", enc.spec_, {"embedding_dim": 8, "user_dropout": 0.5, "cold_id": "keep"}).eval()
    with torch.no_grad():
        for p in some.parameters():
            p.add_(0.1 * torch.randn_like(p))
        assert torch.equal(never(b), never(other))
        assert not torch.allclose(some(b), some(other))  # below 1.0 the ids are read in evaluation
        some.train()
        torch.manual_seed(0)
        hidden = some._features(b)
    # in training about half the rows see the unknown user's embedding instead of their own
    unknown = some.embed.user.weight[0]
    share = (hidden[:, :8] == unknown).all(dim=1).float().mean().item()
    assert 0.2 < share < 0.8


def test_mist_blank_rows_add_blank_views_of_a_share_of_the_rows_to_the_batch(prepared: Path) -> None:
    """blank_rows: in training a share of the rows is added once more at the batch's end, blank (no history, the
    unknown user, activity 0: what the "anchor" form's reference reads); the trainer's objective scores the whole
    batch in one forward and sums each view's loss into its row's; the rows themselves are as they were; nothing in
    evaluation; `co_items` counts only the real rows toward its first epoch."""
    from mistrec.train.step import Objective

    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    b = enc.batch(enc.rows(ds, "train"), np.arange(256))
    assert b.hist_mask.any(1).float().mean() > 0.5 and b.user.ne(0).all()
    values = {"embedding_dim": 8, "blank_rows": 0.3, "dropout": 0.0, "user_dropout": 0.0}
    model = build_model("mist", enc.spec_, values)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.train()
    torch.manual_seed(0)
    view, owner = model.training_view(b)
    assert owner is not None
    torch.manual_seed(0)
    picked = (torch.rand(len(b)) < 0.3).nonzero().squeeze(1)  # training_view's draw
    assert 0.15 * len(b) < len(picked) < 0.45 * len(b)
    assert len(view) == len(b) + len(picked) and torch.equal(owner, torch.cat([torch.arange(len(b)), picked]))
    head, tail = view.subset(slice(0, len(b))), view.subset(slice(len(b), None))
    for name in ("user", "item", "scenario", "hist_items", "hist_mask", "activity", "label"):
        assert torch.equal(getattr(head, name), getattr(b, name)), name  # the rows as they were
    assert not tail.hist_mask.any() and not tail.user.any() and not tail.activity.any()
    assert torch.equal(tail.item, b.item[picked]) and torch.equal(tail.label, b.label[picked])
    assert torch.equal(tail.scenario, b.scenario[picked])
    blank = Mist.blanked(b)
    assert torch.equal(blank.hist_items, torch.zeros_like(b.hist_items)) and not blank.user.any()
    # the objective: the view's per-row BCE (one forward), each view row's loss added to its own row's
    assert model.co is not None
    seen = int(model.co.seen)
    torch.manual_seed(0)
    loss = Objective(model, conversion_weight=0.0)(b, None)
    assert int(model.co.seen) - seen == len(b)  # the blank views are not rows of the epoch
    torch.manual_seed(0)
    model.training_view(b)  # the same draw, then the same forward: dropout is off
    per_row = model.stage_loss(view)
    assert per_row is not None  # co_fit residual, the default on implicit data: the stage's own loss
    want = per_row[: len(b)].index_add(0, picked, per_row[len(b):])
    torch.testing.assert_close(loss.detach(), want.detach(), rtol=1e-5, atol=1e-6)
    model.eval()
    view, owner = model.training_view(b)
    assert view is b and owner is None
    with pytest.raises(Exception, match="blank_rows"):
        build_model("mist", enc.spec_, {"blank_rows": 1.0})


def test_mist_cold_id_auto_settles_each_scenario_on_validation(prepared: Path, tmp_path: Path) -> None:
    """`cold_id: auto` trains as `hide`, then each scenario's new users read their id where the validation AUC
    under that option is higher; the AUCs recorded are the validation rows' under each option; the choice is
    saved with the weights; users with enough events in the scenario are never affected."""
    torch.set_num_threads(1)
    summary = fit_run(prepared, "mist", tmp_path / "run",
                      model_values={"embedding_dim": 8, "cold_id": "auto", "cold_scale": "off", "warm_scale": "off",
                                    "interest_scope": "all"},
                      train_cfg=TrainConfig(epochs=3, batch_size=512, lr=3e-3, seed=3), quiet=True)
    chosen = summary["train"]["selected"]["cold_id"]
    model, enc, _ = load_run(tmp_path / "run")
    # trained exactly as cold_id: hide, the same seed giving the same weights
    fit_run(prepared, "mist", tmp_path / "hide",
            model_values={"embedding_dim": 8, "cold_id": "hide", "cold_scale": "off", "warm_scale": "off",
                          "interest_scope": "all"},
            train_cfg=TrainConfig(epochs=3, batch_size=512, lr=3e-3, seed=3), quiet=True)
    # the choices made after training on the validation ranking (`rank_exposure`, `co_scale`) rank with the
    # chosen cold_id, so they may differ; the trained weights may not
    after = ("read_cold_id", "exposed", "co_scale")
    hidden = {k: v for k, v in load_run(tmp_path / "hide")[0].state_dict().items() if k not in after}
    weights = {k: v for k, v in model.state_dict().items() if k not in after}
    assert weights.keys() == hidden.keys()
    assert all(torch.equal(weights[k], hidden[k]) for k in weights)
    names = enc.spec_.scenario_names
    assert set(chosen) == set(names)
    assert model.read_cold_id is not None
    for s, name in enumerate(names, start=1):
        c = chosen[name]
        enough = c["rows_moved"] >= MIN_CHOICE_ROWS
        assert c["chosen"] == ("keep" if c["valid_auc_keep"] > c["valid_auc_hide"] and enough else "hide")
        assert bool(model.read_cold_id[s]) == (c["chosen"] == "keep")
    ds = PreparedDataset.load(prepared)
    valid = enc.rows(ds, "valid")
    by_option = {}
    model.use_ranking_option(1.0)  # the rounds ran before the ranking's choices: co_scale 1, co_own's w 0
    for option in ("hide", "keep"):
        model.use_option(option)
        by_option[option] = predict(model, enc, valid)
        for s, name in enumerate(names, start=1):
            rows = valid.scenario == s
            assert auc(valid.label[rows], by_option[option][rows]) == pytest.approx(chosen[name][f"valid_auc_{option}"])
    for s, name in enumerate(names, start=1):  # the rows the choice moves, as counted for the rule
        rows = valid.scenario == s
        assert chosen[name]["rows_moved"] == int((rows & (by_option["hide"] != by_option["keep"])).sum())
    # the option moves the scores of users new in the scenario only, and of some of them here
    batch = enc.batch(valid, np.arange(len(valid)))
    new = (batch.activity < model.cfg.cold_below).numpy()
    assert new.any() and (~new).any()
    assert np.array_equal(by_option["hide"][~new], by_option["keep"][~new])
    assert not np.allclose(by_option["hide"][new], by_option["keep"][new])
    # in training the choice is not read: every new user's id hidden, as with cold_id: hide
    model.train()
    for option in ("hide", "keep"):
        model.use_option(option)
        torch.manual_seed(0)
        by_option[option] = model._features(batch).detach().numpy()
    assert np.array_equal(by_option["hide"], by_option["keep"])


def test_mist_active_id_auto_settles_each_scenario_on_validation(prepared: Path, tmp_path: Path) -> None:
    """`active_id: auto` trains as `keep` (the same weights, bit for bit), then each scenario's active users (at
    least `cold_below` events there) read the unknown user instead of their id in evaluation where the validation
    AUC under that option is higher; the recorded AUCs are the validation rows' under each option, the choice is
    saved with the weights, users new in the scenario are never moved by it, and training never reads it."""
    torch.set_num_threads(1)
    values = {"embedding_dim": 8, "cold_scale": "off", "warm_scale": "off", "cold_id": "hide", "interest_scope": "all"}
    cfg = TrainConfig(epochs=3, batch_size=512, lr=3e-3, seed=3)
    summary = fit_run(prepared, "mist", tmp_path / "run", model_values={**values, "active_id": "auto"},
                      train_cfg=cfg, quiet=True)
    chosen = summary["train"]["selected"]["active_id"]
    model, enc, _ = load_run(tmp_path / "run")
    fit_run(prepared, "mist", tmp_path / "keep", model_values=values, train_cfg=cfg, quiet=True)
    after = ("hide_active_id", "exposed", "co_scale", "co.own_weight")  # the ranking's choices: with the ids chosen
    kept = {k: v for k, v in load_run(tmp_path / "keep")[0].state_dict().items() if k not in after}
    weights = {k: v for k, v in model.state_dict().items() if k not in after}
    assert weights.keys() == kept.keys()
    assert all(torch.equal(weights[k], kept[k]) for k in weights)
    names = enc.spec_.scenario_names
    assert set(chosen) == set(names)
    assert model.hide_active_id is not None
    for s, name in enumerate(names, start=1):
        c = chosen[name]
        enough = c["rows_moved"] >= MIN_CHOICE_ROWS
        assert c["chosen"] == ("hide" if c["valid_auc_hide"] > c["valid_auc_keep"] and enough else "keep")
        assert bool(model.hide_active_id[s]) == (c["chosen"] == "hide")
    ds = PreparedDataset.load(prepared)
    valid = enc.rows(ds, "valid")
    by_option = {}
    model.use_ranking_option(1.0)  # the rounds ran before the ranking's choices
    for option in ACTIVE_ID_OPTIONS:
        model.use_option(option)
        by_option[option] = predict(model, enc, valid)
        for s, name in enumerate(names, start=1):
            rows = valid.scenario == s
            got = auc(valid.label[rows], by_option[option][rows])
            assert got == pytest.approx(chosen[name][f"valid_auc_{option.removeprefix('active ')}"])
    keep, hide = (by_option[o] for o in ACTIVE_ID_OPTIONS)
    for s, name in enumerate(names, start=1):  # the rows the choice moves, as counted for the rule
        assert chosen[name]["rows_moved"] == int(((valid.scenario == s) & (hide != keep)).sum())
    # the option moves the active users' scores only, and here every one of them
    batch = enc.batch(valid, np.arange(len(valid)))
    active = (batch.activity >= model.cfg.cold_below).numpy()
    assert active.any() and (~active).any()
    assert np.array_equal(keep[~active], hide[~active])
    assert (keep[active] != hide[active]).all()
    # hiding reads the active rows as the unknown user: their logits with every id set to 0, the id read
    with torch.no_grad():
        model.use_option(ACTIVE_ID_OPTIONS[1])
        hidden = model(batch)
        model.use_option(ACTIVE_ID_OPTIONS[0])
        unknown = model(dataclasses.replace(batch, user=torch.zeros_like(batch.user)))
    assert torch.equal(hidden[active], unknown[active])
    # in training the choice is not read
    model.train()
    for option in ACTIVE_ID_OPTIONS:
        model.use_option(option)
        torch.manual_seed(0)
        by_option[option] = model._features(batch).detach().numpy()
    assert np.array_equal(*(by_option[o] for o in ACTIVE_ID_OPTIONS))
    # a run saved without the option loads with it: every active user reads their id, until it is chosen again
    reloaded, _, _ = load_run(tmp_path / "keep", {"active_id": "auto"})
    assert reloaded.hide_active_id is not None and not reloaded.hide_active_id.any()
    assert ACTIVE_ID_OPTIONS in reloaded.validation_rounds()


def test_mist_interest_scope_auto_settles_each_scenario_on_validation(prepared: Path, tmp_path: Path) -> None:
    """`interest_scope: auto` trains as `all` (the same weights, bit for bit), then each scenario keeps the option of
    `interest_options` with the highest validation AUC: the rows of its users with at least k training events there
    read their own scenario's pools only in evaluation (as `own_active` reads them), every other row as trained;
    training never reads the choice, the ranking scores as the forward with it, and a run saved without it loads
    reading every pool."""
    torch.set_num_threads(1)
    values = {"embedding_dim": 8, "cold_scale": "off", "warm_scale": "off", "cold_id": "hide", "interest_scope": "all"}
    cfg = TrainConfig(epochs=3, batch_size=512, lr=3e-3, seed=3)
    summary = fit_run(prepared, "mist", tmp_path / "run", train_cfg=cfg, quiet=True,
                      model_values={**values, "interest_scope": "auto", "interest_from": [3, 6, 21]})
    chosen = summary["train"]["selected"]["interest_scope"]
    model, enc, _ = load_run(tmp_path / "run")
    fit_run(prepared, "mist", tmp_path / "all", model_values=values, train_cfg=cfg, quiet=True)
    after = ("own_interest_from", "exposed", "co_scale", "co.own_weight")  # the ranking's choices come after it
    trained = {k: v for k, v in load_run(tmp_path / "all")[0].state_dict().items() if k not in after}
    weights = {k: v for k, v in model.state_dict().items() if k not in after}
    assert weights.keys() == trained.keys() and all(torch.equal(weights[k], trained[k]) for k in weights)
    names = enc.spec_.scenario_names
    assert set(chosen) == set(names) and model.own_interest_from is not None
    saved = model.own_interest_from.clone()  # the choice, before the options below overwrite it
    options = interest_options(model.cfg)
    assert options == ("interest all", "interest own 3", "interest own 6", "interest own 21")
    valid = enc.rows(PreparedDataset.load(prepared), "valid")
    batch = enc.batch(valid, np.arange(len(valid)))
    model.use_ranking_option(1.0)  # the rounds ran before the ranking's choices
    by_option = {}
    for option in options:
        model.use_option(option)
        by_option[option] = predict(model, enc, valid)
    for s, name in enumerate(names, start=1):
        rows = valid.scenario == s
        aucs = {o: auc(valid.label[rows], by_option[o][rows]) for o in options}
        assert aucs == pytest.approx({o: chosen[name]["valid_auc"][o.removeprefix("interest ")]
                                      for o in options})
        best = max(options, key=lambda o: (aucs[o], -options.index(o)))
        want = best if chosen[name]["rows_moved"] >= MIN_CHOICE_ROWS else options[0]
        assert chosen[name]["chosen"] == want.removeprefix("interest ")
        assert int(saved[s]) == (0 if want == options[0] else int(want.split()[-1]))
    # "own k" moves the rows of users with at least k events (with other scenarios' events) and no other row, and
    # reads them as `own_active` does
    whole = by_option[options[0]]
    others = (batch.hist_mask & (batch.hist_scenarios != batch.scenario.unsqueeze(1))).any(1).numpy()
    for option in options[1:]:
        reads_own = (batch.activity >= int(option.split()[-1])).numpy()
        assert reads_own.any() and np.array_equal(by_option[option][~reads_own], whole[~reads_own])
        assert (by_option[option][reads_own & others] != whole[reads_own & others]).all()
    own_active = build_model("mist", enc.spec_, {**values, "interest_scope": "own_active"}).eval()
    own_active.load_state_dict({k: v for k, v in model.state_dict().items() if k != "own_interest_from"},
                               strict=False)
    for key in ("exposed", "co_scale", "cold_scale", "warm_scale", "read_cold_id"):  # the same after-training state
        if getattr(model, key, None) is not None:
            getattr(own_active, key).copy_(getattr(model, key))
    assert np.allclose(predict(own_active, enc, valid), by_option["interest own 3"], atol=1e-6)
    # in training the choice is not read: every row reads every pool
    model.use_option("interest own 3")
    model.train()
    assert model._interest_view(batch) is batch
    model.eval()
    # full-catalogue ranking (the catalogue path, MistCatalogue) scores as the forward does, with the active queries'
    # interests from their own pools and the others' from every pool
    from mistrec.models.mist_rank import MistCatalogue

    from3 = (batch.activity >= 3).numpy()  # the rows "interest own 3" restricts
    picked = np.concatenate([np.flatnonzero(from3 & others)[:3], np.flatnonzero(~from3 & others)[:2]])
    assert len(picked) == 5
    queries = enc.batch(valid, picked)
    items = enc.item_batch(np.arange(1, 20))
    with torch.no_grad():
        got = MistCatalogue(model, items)(queries)
        torch.testing.assert_close(got, model(queries.cross(items)).view(len(queries), -1), rtol=1e-4, atol=1e-5)
        model.use_option(options[0])
        whole = MistCatalogue(model, items)(queries)
    assert not torch.allclose(got[:3], whole[:3], rtol=1e-4, atol=1e-5)  # the own pools engage on active queries
    torch.testing.assert_close(got[3:], whole[3:], rtol=0, atol=0)  # and on no other
    # a run saved without the option loads with it: every pool read, until it is chosen again
    reloaded, _, _ = load_run(tmp_path / "all", {"interest_scope": "auto", "interest_from": [3, 6, 21]})
    assert reloaded.own_interest_from is not None and not reloaded.own_interest_from.any()
    assert options in reloaded.validation_rounds()


def test_mist_settles_a_scenario_only_on_enough_moved_rows(prepared: Path) -> None:
    """The settling rule on given AUCs: the best option wins where the options move at least MIN_CHOICE_ROWS
    validation rows of the scenario; with fewer, or on a tie or NaN, the trained state stays."""
    enc = FeatureEncoder().fit(PreparedDataset.load(prepared))
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, "interest_scope": "all"})
    names = enc.spec_.scenario_names
    s1, s2, s3 = 1, 2, 3
    assert model.validation_rounds() == (("hide", "keep"), tuple(f"scale {x:g}" for x in COLD_SCALES)
                                         + tuple(f"anchor {x:g}" for x in COLD_SCALES[1:])
                                         + tuple(f"rate {x:g}" for x in COLD_SCALES[1:]),  # logged labels: cold_rate
                                         tuple(f"warm {x:g}" for x in COLD_SCALES))
    moved = {s1: MIN_CHOICE_ROWS, s2: MIN_CHOICE_ROWS - 1, s3: 10**6}  # s2: one row too few
    got = model.settle(("hide", "keep"), {"hide": {s1: 0.70, s2: 0.70, s3: 0.70},
                                          "keep": {s1: 0.71, s2: 0.80, s3: 0.70}}, moved, names)["cold_id"]
    assert [got[names[s - 1]]["chosen"] for s in (s1, s2, s3)] == ["keep", "hide", "hide"]  # s3: a tie
    options = model.validation_rounds()[1]
    aucs = {o: {s1: 0.70 + 0.01 * (o == "anchor 0.25"), s2: 0.70 + 0.1 * (o == "scale 0"), s3: 0.70} for o in options}
    aucs["scale 0.5"][s3] = float("nan")
    aucs["anchor 0.5"][s1] = 0.71  # a tie with anchor 0.25: the earlier option wins
    got = model.settle(options, aucs, moved, names)["cold_scale"]
    assert [(got[names[s - 1]]["chosen"], got[names[s - 1]]["form"]) for s in (s1, s2, s3)] == [
        (0.5, "anchor"), (1.0, "scale"), (1.0, "scale")]
    assert model.cold_scale is not None and model.cold_anchor is not None
    assert model.cold_scale[s1] == 0.5 and bool(model.cold_anchor[s1])
    assert model.cold_scale[s2] == 1.0 and not bool(model.cold_anchor[s2])
    assert not model.as_new  # validation's view of the rows ends with the round
    options = model.validation_rounds()[2]
    aucs = {o: {s1: 0.70 + 0.01 * (o == "warm 0"), s2: 0.70 + 0.1 * (o == "warm 0.5"), s3: 0.70} for o in options}
    got = model.settle(options, aucs, moved, names)["warm_scale"]
    assert [got[names[s - 1]]["chosen"] for s in (s1, s2, s3)] == [0.0, 1.0, 1.0]
    assert model.warm_scale is not None and model.warm_scale[s1] == 0.0 and model.warm_scale[s2] == 1.0
    assert got[names[s1 - 1]]["valid_auc"]["0"] == pytest.approx(0.71)


def _settled_option(options: tuple[str, ...], record: dict, prefix: str) -> str:
    """The option `Mist.settle`'s rule keeps from a run's record of one scenario (its validation AUCs keyed by the
    option less `prefix`, and rows moved): the best, the earlier on a tie, the first below MIN_CHOICE_ROWS."""
    best = options[0]
    for option in options[1:] if record["rows_moved"] >= MIN_CHOICE_ROWS else ():
        if record["valid_auc"][option.removeprefix(prefix)] > record["valid_auc"][best.removeprefix(prefix)]:
            best = option
    return best


def test_mist_cold_scale_auto_settles_each_scenario_on_validation(prepared: Path, tmp_path: Path) -> None:
    """`cold_scale: auto` (the default): after training and the cold_id choice, each scenario keeps the option
    (a form, "scale" or "anchor", and a scale) whose validation AUC is the highest (ties: the earlier), the AUCs
    those of every validation row scored as its user would be new in the scenario; in evaluation only rows of users
    with no event in the scenario move, on every item; at "scale 0" such a row is the item prior and the
    item-to-item term, at "anchor 0" the item terms, the network's no-history logit and the item-to-item term; the
    logit is linear in the scale; training never reads it; the catalogue path and explain score as forward."""
    torch.set_num_threads(1)
    # the counted prior, which the scale leaves whole; no `prior_tilt` (its own test below), which would move the
    # new users' prior after this choice
    values = {"embedding_dim": 8, "item_prior": True, "prior_tilt": "off", "interest_scope": "all"}
    summary = fit_run(prepared, "mist", tmp_path / "run", model_values=values,
                      train_cfg=TrainConfig(epochs=3, batch_size=512, lr=3e-3, seed=3), quiet=True)
    chosen = summary["train"]["selected"]["cold_scale"]
    assert "cold_id" in summary["train"]["selected"]  # settled first, with the scale at 1
    model, enc, _ = load_run(tmp_path / "run")
    assert model.cold_scale is not None and model.cold_anchor is not None and not model.as_new
    assert model.prior is not None and model.item_bias is not None
    names = enc.spec_.scenario_names
    options = model.validation_rounds()[1]
    assert options[0] == "scale 1" and model.validation_rounds()[2][0] == "warm 1"  # warm_scale settles after it
    ds = PreparedDataset.load(prepared)
    valid = enc.rows(ds, "valid")
    for s, name in enumerate(names, start=1):
        best = _settled_option(options, chosen[name], "scale ")
        assert (chosen[name]["form"], chosen[name]["chosen"]) == (best.split()[0], float(best.split()[1]))
        assert float(model.cold_scale[s]) == chosen[name]["chosen"]
        assert bool(model.cold_anchor[s]) == (chosen[name]["form"] == "anchor")
    settled = (model.cold_scale.clone(), model.cold_anchor.clone())
    batch = enc.batch(valid, np.arange(len(valid)))
    by_option = {}
    for option in options:  # the recorded AUCs: every validation row scored as its user new in the scenario
        model.use_option(option)
        assert model.as_new
        by_option[option] = predict(model, enc, valid)
        for s, name in enumerate(names, start=1):
            rows = valid.scenario == s
            recorded = chosen[name]["valid_auc"][option.removeprefix("scale ")]
            assert auc(valid.label[rows], by_option[option][rows]) == pytest.approx(recorded)
    with torch.no_grad():  # as_new is the rows made new: their scenario's events out of the history, activity 0
        new_rows = Mist.made_new(batch)
        assert not (new_rows.hist_mask & (new_rows.hist_scenarios == new_rows.scenario.unsqueeze(1))).any()
        assert (new_rows.hist_mask.sum(1) < batch.hist_mask.sum(1)).any() and not new_rows.activity.any()
        some = torch.arange(len(batch)) % 2 == 0  # `cold_rows`' use in training: the picked rows only
        part = Mist.made_new(batch, some)
        assert torch.equal(part.hist_mask[some], new_rows.hist_mask[some]) and not part.activity[some].any()
        assert torch.equal(part.hist_mask[~some], batch.hist_mask[~some])
        assert torch.equal(part.activity[~some], batch.activity[~some])
        as_new = model(batch)
        model.as_new = False
        torch.testing.assert_close(as_new, model(new_rows))
    moved = np.zeros(len(valid), dtype=bool)
    for option in options[1:]:
        moved |= by_option[option] != by_option[options[0]]
    for s, name in enumerate(names, start=1):
        assert chosen[name]["rows_moved"] == int((moved & (valid.scenario == s)).sum())
    model.use_option("scale 1")
    model.as_new = False
    new = (batch.activity == 0).numpy()  # in evaluation: users with no event in the scenario, every item
    assert new.any() and (~new).any()
    with torch.no_grad():
        full = model(batch)
        for option in ("scale 0", "anchor 0.5"):
            model.use_option(option)
            model.as_new = False
            got = model(batch)
            assert torch.equal(got[~new], full[~new]) and not torch.allclose(got[new], full[new])
        rows = torch.from_numpy(np.flatnonzero(new))
        sub = batch.subset(rows)
        co = model._co_events(sub)
        assert co is not None and co.any()  # the default has the term, and these rows reach it
        assert model._bias_term(sub).abs().sum() > 0  # a learned bias, which the "scale" form scales
        model.use_option("scale 1")
        one = model(sub)
        model.use_option("scale 0")  # the counted prior and the item-to-item term, neither learned from active users
        zero = model(sub)
        torch.testing.assert_close(zero, model._prior_term(sub) + co.sum(1))
        model.use_option("scale 0.5")  # the logit is linear in the scale
        torch.testing.assert_close(model(sub), (zero + one) / 2, rtol=1e-5, atol=1e-5)
        model.use_option("anchor 0")  # the item terms and the network's no-history logit, the item-to-item term
        anchored = model(sub)
        torch.testing.assert_close(anchored, model(sub.without_events(sub.hist_mask)) + co.sum(1))
        assert not torch.allclose(anchored, zero)
        model.use_option("anchor 0.5")
        torch.testing.assert_close(model(sub), (anchored + one) / 2, rtol=1e-5, atol=1e-5)
        explained = model.explain(sub)  # the explanation's logit and read-out terms as they enter the logit
        torch.testing.assert_close(explained.logit, model(sub))
        model.use_option("scale 0")
        explained = model.explain(sub)
        assert explained.transfer_terms is not None and not explained.transfer_terms.any()
        model.as_new = False
        model.train()
        assert model._scales(sub.scenario, sub.activity) is None and model._anchor(sub, sub.user, sub.user) is None
        model.eval()
        # the catalogue path, both forms at a scale between 0 and 1, for new and active users' queries, every item
        queries = batch.subset(torch.cat([rows[:3], torch.from_numpy(np.flatnonzero(~new)[:2])]))
        items = enc.item_batch(np.arange(1, enc.spec_.n_items))
        for anchor in (False, True):
            model.cold_scale.copy_(torch.where(settled[0] < 1, settled[0], 0.5))
            model.cold_anchor.fill_(anchor)
            torch.testing.assert_close(model.score_candidates(queries, items),
                                       model(queries.cross(items)).view(len(queries), -1), rtol=1e-4, atol=1e-5)
        # without a counted prior (logged labels: `item_prior` off) the learned bias is the item's base rate and
        # stays whole: at "scale 0" a new user's row is the bias and the item-to-item term
        prior, model.prior = model.prior, None
        model.use_option("scale 0")
        model.as_new = False
        torch.testing.assert_close(model(sub), model._bias_term(sub) + co.sum(1))
        for option in ("scale 0.5", "anchor 0.5"):
            model.use_option(option)
            model.as_new = False
            torch.testing.assert_close(model.score_candidates(queries, items),
                                       model(queries.cross(items)).view(len(queries), -1), rtol=1e-4, atol=1e-5)
        model.prior = prior


def test_mist_cold_rate_offers_the_counted_click_rate_on_logged_labels(prepared: Path, tmp_path: Path) -> None:
    """`cold_rate: true` (the default) on logged labels (no counted prior in training): `cold_scale: auto` also
    offers the "rate" form, where a user new in the scenario gets the counted click rate (the popularity baseline's,
    fitted before training, never read in training) and the item-to-item term whole, and s of the rest of the
    trained logit. Settled like the other forms; only rows of users with no event in the scenario move; linear in s;
    the catalogue path and explain score as forward; not there with a counted prior, with cold_scale: off or
    cold_rate: false; a run saved without it loads with it (load_run's settings), none of its scenarios on the
    form, the rate counted again by fit_rate."""
    from mistrec.models.classic import ClassicConfig, Popularity

    torch.set_num_threads(1)
    summary = fit_run(prepared, "mist", tmp_path / "run", model_values={"embedding_dim": 8, "interest_scope": "all"},
                      train_cfg=TrainConfig(epochs=2, batch_size=512, lr=3e-3, seed=4), quiet=True)
    chosen = summary["train"]["selected"]["cold_scale"]
    model, enc, _ = load_run(tmp_path / "run")
    assert model.prior is None and model.cold_rate is not None and model.cold_rated is not None
    options = model.validation_rounds()[1]
    assert options[-len(COLD_SCALES) + 1:] == tuple(f"rate {s:g}" for s in COLD_SCALES[1:])
    names = enc.spec_.scenario_names
    for s, name in enumerate(names, start=1):
        best = _settled_option(options, chosen[name], "scale ")
        assert chosen[name]["form"] == best.split()[0] and bool(model.cold_rated[s]) == (best.split()[0] == "rate")
    ds = PreparedDataset.load(prepared)
    train = enc.indexed(enc.rows(ds, "train"))
    popularity = Popularity(enc.spec_, ClassicConfig())
    popularity.fit_direct(train)  # the same smoothed rate: 10 pseudo-rows at the scenario's rate
    want = torch.logit(popularity.table.clamp(1e-4, 1 - 1e-4))[1:]
    inside = want.abs() < 7.9  # both clamp the extremes, at different places
    torch.testing.assert_close(model.cold_rate[1:][inside], want[inside], rtol=1e-4, atol=1e-4)
    valid = enc.rows(ds, "valid")
    batch = enc.batch(valid, np.arange(len(valid)))
    new = (batch.activity == 0).numpy()
    assert new.any() and (~new).any()
    rows = torch.from_numpy(np.flatnonzero(new))
    sub = batch.subset(rows)
    with torch.no_grad():
        model.use_option("scale 1")
        model.as_new = False
        full, one = model(batch), model(sub)
        model.use_option("rate 0")
        assert model.as_new and bool(model.cold_rated.all()) and not model.cold_anchor.any()  # the option's state
        model.as_new = False  # rows as they are: only users with no event in the scenario read the form
        got = model(batch)
        assert torch.equal(got[~new], full[~new]) and not torch.allclose(got[new], full[new])
        co = model._co_events(sub)
        assert co is not None
        rate = model.cold_rate[sub.scenario, sub.item]
        zero = model(sub)
        torch.testing.assert_close(zero, rate + co.sum(1))
        model.use_option("scale 0")  # the "scale" form keeps the learned bias instead
        model.as_new = False
        torch.testing.assert_close(model(sub), model._bias_term(sub) + co.sum(1))
        model.use_option("rate 0.25")
        model.as_new = False
        torch.testing.assert_close(model(sub), 0.75 * zero + 0.25 * one, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.explain(sub).logit, model(sub))
        queries = batch.subset(torch.cat([rows[:3], torch.from_numpy(np.flatnonzero(~new)[:2])]))
        items = enc.item_batch(np.arange(1, enc.spec_.n_items))
        torch.testing.assert_close(model.score_candidates(queries, items),
                                   model(queries.cross(items)).view(len(queries), -1), rtol=1e-4, atol=1e-5)
        model.train()
        assert model._rated_rows(sub) is None  # training never reads it
        model.eval()
        # a run saved before the form: no choice of it, the rate zeros until counted again (fit_rate)
        old = {k: v for k, v in model.state_dict().items() if k not in ("cold_rate", "cold_rated")}
        counted = model.cold_rate.clone()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.load_state_dict(old)
        assert not model.cold_rated.any() and not model.cold_rate.any()
        model.fit_rate(train)
        torch.testing.assert_close(model.cold_rate, counted)
    for values in ({"item_prior": True}, {"cold_rate": False}):
        other = build_model("mist", enc.spec_, {"embedding_dim": 8, **values})
        assert other.cold_rate is None and not any(o.startswith("rate") for o in other.validation_rounds()[1])
    off = build_model("mist", enc.spec_, {"embedding_dim": 8, "cold_scale": "off"})
    assert off.cold_rate is None and off.cold_rated is None  # nothing chosen: the default adds nothing there
    fit_run(prepared, "mist", tmp_path / "plain", model_values={"embedding_dim": 8, "cold_rate": False},
            train_cfg=TrainConfig(epochs=1, batch_size=512, lr=3e-3, seed=4), quiet=True)
    plain, _, _ = load_run(tmp_path / "plain")
    loaded, _, _ = load_run(tmp_path / "plain", {"cold_rate": True})
    assert plain.cold_rate is None and loaded.cold_rate is not None and loaded.cold_rated is not None
    assert not loaded.cold_rated.any() and not loaded.cold_rate.any()
    torch.testing.assert_close(loaded(batch), plain(batch))  # the same weights, the same scores until it is chosen


def test_mist_co_scale_weights_the_item_to_item_term_per_kind_of_user(prepared: Path, tmp_path: Path) -> None:
    """`co_scale: auto`: after training, each scenario's validation queries, ranked against the full catalogue at
    each weight of CO_SCALES (mistrec.eval.ranking.choose_on_ranking), choose the weight of `co_items`' term for its
    users new there and, apart, for those active there: the highest mean NDCG@10, the earlier on a tie, 1 with fewer
    than MIN_CHOICE_QUERIES queries of the kind. In evaluation each row's term is weighted by its kind's weight
    (forward, explain, the catalogue path alike); training never reads it; a run saved without it loads with the
    term whole; the default (`off` keeps the term whole); the screened ranking changes no figure."""
    torch.set_num_threads(1)
    # the term undamped and without `co_own` (tests/models/test_mist_cooc.py has its pairs): CO_SCALES alone
    values = {"embedding_dim": 8, "co_scale": "auto", "co_shrink_new": 0.0, "co_own": "off"}
    summary = fit_run(prepared, "mist", tmp_path / "run", model_values=values,
                      train_cfg=TrainConfig(epochs=1, batch_size=512, lr=3e-3, seed=4), quiet=True)
    chosen = summary["train"]["selected"]["co_scale"]
    model, enc, _ = load_run(tmp_path / "run")
    assert isinstance(model, Mist) and model.co_scale is not None and model.ranking_options() == CO_SCALES
    names = enc.spec_.scenario_names
    assert sorted(chosen) == sorted(names)
    for s, name in enumerate(names, start=1):
        for k, kind in enumerate(("new", "active")):
            record = chosen[name][kind]
            best = 1.0
            for c in CO_SCALES[1:] if record["queries"] >= MIN_CHOICE_QUERIES else ():
                if record["valid_ndcg@10"][f"{c:g}"] > record["valid_ndcg@10"][f"{best:g}"]:
                    best = c
            assert record["best"] == best and (record["p_value"] is None) == (best == 1.0)
            gated = best if best != 1.0 and record["p_value"] < CO_CHOICE_P / (len(CO_SCALES) - 1) else 1.0
            assert record["chosen"] == gated and float(model.co_scale[s, k]) == gated
    assert any(chosen[n]["active"]["queries"] >= MIN_CHOICE_QUERIES for n in names)  # the rule was exercised
    # the recorded figures are each weight's own ranking: one scoring for every weight (ranking_scorer) ranks as
    # rank_full_catalogue ranks the same sampled queries with the model put at that weight
    ds = PreparedDataset.load(prepared)
    activity = ActivityCounts.from_interactions(ds.interactions, len(names) + 1)
    for c in CO_SCALES:
        model.use_ranking_option(c)
        ranked = rank_full_catalogue(model, enc, ds, "valid", ks=(10,), activity=activity,
                                     max_queries=model.ranking_queries).per_query["full catalogue"]
        for name in names:
            for kind, mine in (("new", ranked[name]["group"] == 0), ("active", ranked[name]["group"] > 0)):
                want = float(np.mean(ranked[name]["ndcg@10"][mine])) if mine.any() else float("nan")
                assert chosen[name][kind]["valid_ndcg@10"][f"{c:g}"] == pytest.approx(want, abs=1e-12, nan_ok=True)
    # the screen (a query whose positives all have 10 candidates above them among the most-taken items is not
    # scored further) changes no figure, whatever its size, and settles some queries but not all here
    scorer_of = model.ranking_scorer
    calls = {"screened": 0, "in full": 0}

    def counting(items: Batch) -> Callable[[Batch, torch.Tensor | None], list[torch.Tensor]]:
        score = scorer_of(items)

        def counted(queries: Batch, columns: torch.Tensor | None) -> list[torch.Tensor]:
            calls["in full" if columns is None else "screened"] += len(queries)
            return score(queries, columns)
        return counted

    model.ranking_scorer = counting  # type: ignore[method-assign]
    records = {}
    for screen in (None, 1, 20, SCREEN_CANDIDATES):
        calls.update({"screened": 0, "in full": 0})
        records[screen] = choose_on_ranking(model, enc, ds, screen=screen)
        if screen == 20:
            assert 0 < calls["in full"] < calls["screened"], calls
    del model.ranking_scorer
    full = records.pop(None)
    assert json.dumps(full["co_scale"]) == json.dumps(chosen)
    for record in records.values():
        assert json.dumps(record) == json.dumps(full)  # NaN-safe and exact
    # the rule itself, on made-up rankings: the best mean per kind; a tie keeps the earlier; too few queries keep 1;
    # a best weight ahead of 1 by less than the sample's noise keeps 1
    group = np.array([0] * MIN_CHOICE_QUERIES + [1] * (MIN_CHOICE_QUERIES - 1))
    users = np.arange(len(group))
    made_up = {c: {1: {"user": users, "group": group, "ndcg@10": np.where(group == 0, 0.1 + (c == 0.25) * 0.1, 1 - c)}}
               for c in CO_SCALES}  # active users: 0 the best, but 99 queries are too few to move
    made_up[0.5][1]["ndcg@10"] = np.where(group == 0, 0.2, 0.5)  # level with 0.25 for new users: the earlier wins
    settled = model.settle_ranking(made_up, names)["co_scale"][names[0]]
    assert settled["new"]["chosen"] == 0.5 and settled["active"]["chosen"] == 1.0  # 99 active queries: too few
    assert float(model.co_scale[1, 0]) == 0.5 and float(model.co_scale[1, 1]) == 1.0
    enough = np.array([0] * MIN_CHOICE_QUERIES + [1] * MIN_CHOICE_QUERIES)
    users = np.arange(len(enough))
    made_up = {c: {1: {"user": users, "group": enough, "ndcg@10": np.where(enough == 0, 0.1, 1 - c)}}
               for c in CO_SCALES}
    assert model.settle_ranking(made_up, names)["co_scale"][names[0]]["active"]["chosen"] == 0.0  # 100: it moves
    one_query = np.where(users == 0, 1.0, 0.1)  # 0.5 ahead by 0.009 on average, all of it from one user of 100
    made_up[0.5][1]["ndcg@10"] = np.where(enough == 0, one_query, 0.5)
    settled = model.settle_ranking(made_up, names)["co_scale"][names[0]]["new"]
    assert settled["best"] == 0.5 and settled["p_value"] > CO_CHOICE_P and settled["chosen"] == 1.0
    valid = enc.rows(ds, "valid")
    batch = enc.batch(valid, np.arange(len(valid)))
    new = batch.activity == 0
    assert new.any() and (~new).any()
    with torch.no_grad():
        model.use_ranking_option(1.0)
        whole = model(batch)
        co = model._co_events(batch)
        assert co is not None and bool((co.sum(1) != 0).any())
        model.co_scale[:, 0] = 0.5
        model.co_scale[:, 1] = 0.25
        weight = torch.where(new, 0.5, 0.25)
        got = model(batch)
        torch.testing.assert_close(got, whole - co.sum(1) + weight * co.sum(1), rtol=1e-5, atol=1e-5)
        explained = model.explain(batch)
        torch.testing.assert_close(explained.logit, got)
        assert explained.event_co is not None
        torch.testing.assert_close(explained.event_co, co * weight.unsqueeze(1))
        rows = torch.cat([torch.nonzero(new).squeeze(1)[:3], torch.nonzero(~new).squeeze(1)[:3]])
        queries = batch.subset(rows)
        items = enc.item_batch(np.arange(1, enc.spec_.n_items))
        torch.testing.assert_close(model.score_candidates(queries, items),
                                   model(queries.cross(items)).view(len(queries), -1), rtol=1e-4, atol=1e-5)
        weighted = model.co_scale.clone()
        assert model.exposure is not None  # logged labels: each weight's ranking orders as `rank_exposure` does
        for c, scores in zip(CO_SCALES, model.ranking_scorer(items)(queries), strict=True):  # every weight at once
            model.use_ranking_option(c)
            ordered = model.ranking_scores(model.score_candidates(queries, items), queries.scenario, items.item)
            assert torch.equal(scores, ordered)  # the catalogue path, bit for bit
            crossed = model.ranking_scores(model._score_crossed(queries, items), queries.scenario, items.item)
            torch.testing.assert_close(scores, crossed, rtol=1e-4, atol=1e-5)
        model.co_scale.copy_(weighted)
        model.train()
        assert model._co_weights(batch.scenario, batch.activity) is None  # training never reads it
        model.eval()
        # a run saved without the weights: the term whole
        old = {k: v for k, v in model.state_dict().items() if k != "co_scale"}
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.load_state_dict(old)
        assert bool((model.co_scale == 1).all())
    default = build_model("mist", enc.spec_, {"embedding_dim": 8})
    assert default.co_scale is not None  # auto by default; the new users' term damped (`co_shrink_new`) by default
    assert default._kind_options("new") == CO_SCALES + CO_SCALES_DAMPED  # and for the active users co_own's pairs:
    assert default._kind_options("active") == CO_SCALES + tuple((c, w) for c in CO_SCALES if c for w in CO_OWN_WEIGHTS)
    plain = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_scale": "off"})
    assert plain.co_scale is None and plain.ranking_options() == ()
    assert build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 0, "co_scale": "auto"}).co_scale is None


def test_mist_warm_scale_auto_settles_each_scenario_on_its_rows_as_they_are(prepared: Path, tmp_path: Path) -> None:
    """`warm_scale: auto` (the default): after cold_scale, each scenario keeps the scale whose validation AUC is the
    highest (ties: the earlier, 1 first), the AUCs those of the validation rows as they are (not made new); in
    evaluation only rows of users with events in the scenario move, on every item; at "warm 0" such a row is the
    item prior and the item-to-item term; the logit is linear in the scale; the catalogue path and explain score
    as forward; a state dict from before it loads at 1, silently."""
    torch.set_num_threads(1)
    summary = fit_run(prepared, "mist", tmp_path / "run", model_values={"embedding_dim": 8, "item_prior": True},
                      train_cfg=TrainConfig(epochs=2, batch_size=512, lr=3e-3, seed=5), quiet=True)
    chosen = summary["train"]["selected"]["warm_scale"]
    model, enc, _ = load_run(tmp_path / "run")
    assert model.warm_scale is not None
    names = enc.spec_.scenario_names
    options = model.validation_rounds()[-1]  # the last round, after cold_scale's and prior_tilt's
    assert options[0] == "warm 1"
    ds = PreparedDataset.load(prepared)
    valid = enc.rows(ds, "valid")
    for s, name in enumerate(names, start=1):
        best = _settled_option(options, chosen[name], "warm ")
        assert chosen[name]["chosen"] == float(best.split()[1]) == float(model.warm_scale[s])
    assert any(chosen[n]["rows_moved"] >= MIN_CHOICE_ROWS for n in names)  # the rule chose somewhere, not by default
    settled = model.warm_scale.clone()
    model.use_ranking_option(1.0)  # the rounds ran before the ranking's choices: co_scale 1, co_own's w 0
    for option in options:  # the recorded AUCs: the validation rows as they are, the other rounds' choices in place
        model.use_option(option)
        assert not model.as_new
        scores = predict(model, enc, valid)
        for s, name in enumerate(names, start=1):
            rows = valid.scenario == s
            assert auc(valid.label[rows], scores[rows]) == pytest.approx(chosen[name]["valid_auc"][option[5:]])
    batch = enc.batch(valid, np.arange(len(valid)))
    warm = (batch.activity > 0).numpy()
    assert warm.any() and (~warm).any()
    with torch.no_grad():
        model.use_option("warm 1")
        full = model(batch)
        model.use_option("warm 0")
        got = model(batch)
        assert torch.equal(got[~warm], full[~warm]) and not torch.allclose(got[warm], full[warm])
        sub = batch.subset(torch.from_numpy(np.flatnonzero(warm)))
        co = model._co_events(sub)
        assert co is not None and co.any()
        torch.testing.assert_close(model(sub), model._prior_term(sub) + co.sum(1))
        zero, one = model(sub), full[torch.from_numpy(warm)]
        model.use_option("warm 0.25")
        torch.testing.assert_close(model(sub), 0.75 * zero + 0.25 * one, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.explain(sub).logit, model(sub))
        queries = batch.subset(torch.cat([torch.from_numpy(np.flatnonzero(warm)[:3]),
                                          torch.from_numpy(np.flatnonzero(~warm)[:2])]))
        items = enc.item_batch(np.arange(1, enc.spec_.n_items))
        torch.testing.assert_close(model.score_candidates(queries, items),
                                   model(queries.cross(items)).view(len(queries), -1), rtol=1e-4, atol=1e-5)
        model.warm_scale.copy_(settled)
        old = {k: v for k, v in model.state_dict().items() if k != "warm_scale"}
        model.warm_scale.fill_(0.5)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.load_state_dict(old)
        assert bool((model.warm_scale == 1).all())


def test_mist_runs_saved_before_the_anchor_form_load_with_a_warning(prepared: Path) -> None:
    """A state dict from before the "anchor" form (no `cold_anchor`) loads with the "scale" form everywhere; where
    its settled scales are not all 1 it warns that scores of users with 1 or 2 events (whom the scale no longer
    reaches) differ from its recorded metrics."""
    enc = FeatureEncoder().fit(PreparedDataset.load(prepared))
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, "interest_scope": "all"})
    old = {k: v for k, v in model.state_dict().items() if k != "cold_anchor"}
    model.cold_anchor.fill_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.load_state_dict(dict(old))  # scales all 1: nothing changes, nothing said
    assert model.cold_anchor is not None and not model.cold_anchor.any()
    old["cold_scale"] = old["cold_scale"].clone().fill_(0.25)
    with pytest.warns(UserWarning, match="1 or 2 events"):
        model.load_state_dict(old)
    assert float(model.cold_scale[1]) == 0.25


def test_mist_runs_saved_with_known_items_load_with_a_warning(prepared: Path) -> None:
    """A state dict from before the scale applied to every item (it carried `known_items`) loads; where its
    settled scales are not all 1 it warns that its new users' scores differ from its recorded metrics."""
    enc = FeatureEncoder().fit(PreparedDataset.load(prepared))
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, "interest_scope": "all"})
    old = {k: v for k, v in model.state_dict().items() if k != "cold_anchor"}
    old["known_items"] = torch.zeros(enc.spec_.n_scenarios, enc.spec_.n_items, dtype=torch.bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.load_state_dict(dict(old))  # scales all 1: nothing changes, nothing said
    old["cold_scale"] = old["cold_scale"].clone().fill_(0.25)
    with pytest.warns(UserWarning, match="train it again"):
        model.load_state_dict(old)
    assert float(model.cold_scale[1]) == 0.25


@pytest.mark.parametrize("name,values", [(n, {}) for n in sorted(REGISTRY)] + [("mist", {"side_features": False})])
def test_batches_without_history_side_features_serve_models_that_do_not_read_them(
        name: str, values: dict, prepared: Path) -> None:
    """The trainer and evaluators gather the history items' side features only for a model that declares it
    reads them (reads_history_side): any model must score the same either way."""
    torch.manual_seed(0)
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rows = enc.rows(ds, "test")
    model = build_model(name, enc.spec_, {"embedding_dim": 8, **values}).eval()
    idx = np.arange(24)
    full = enc.batch(rows, idx, history=model.reads_history)
    lean = enc.batch(rows, idx, history=model.reads_history, history_side=model.reads_history_side)
    if model.reads_history and not model.reads_history_side:
        assert lean.hist_item_cat.shape[-1] == 0 and lean.hist_item_seq.shape[2] == 0
    assert name not in ("mist", "din") or model.reads_history_side == values.get("side_features", True)
    with torch.no_grad():
        torch.testing.assert_close(model(lean), model(full))


def test_mist_transfer_read_out_is_the_per_pool_bilinear_match(prepared: Path) -> None:
    """Step 4b: logit gains sum_k A[t, k] v_k . (W_t i), v_k the attention-weighted mean of pool k's item vectors;
    explain reports the terms per source scenario, and they are the whole difference the read-out makes."""
    torch.manual_seed(0)
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    b = enc.batch(enc.rows(ds, "test"), np.arange(24))
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, "transfer_head": True, "softmax_scope": "pool",
                                            "user_dropout": 1.0}).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        out = model.explain(b)
        terms = out.transfer_terms  # (B, S)
        assert terms is not None
        assert terms.shape == (24, enc.spec_.n_scenarios)
        # by hand: per pool (scenario x polarity) the weighted mean of the events' item vectors
        items = model.embed.history_items(b, True)
        cand = model.embed.items(b, True)
        w = out.event_weights
        want = torch.zeros_like(terms)
        for r in range(24):
            t = int(b.scenario[r])
            for s in range(enc.spec_.n_scenarios):
                for pol in (0, 1):
                    sel = b.hist_mask[r] & (b.hist_scenarios[r] == s) & ((b.hist_labels[r] > 0).long() == pol)
                    if not sel.any():
                        continue
                    v = (w[r, sel, None] * items[r, sel]).sum(0) / w[r, sel].sum()
                    want[r, s] += model.pool_weight[t, s * 2 + pol] * (v @ (model.match[t] @ cand[r]))
        torch.testing.assert_close(terms, want, rtol=1e-4, atol=1e-6)
        without = out.logit - terms.sum(1)
        model.pool_weight.zero_()
        torch.testing.assert_close(model(b), without, rtol=1e-4, atol=1e-5)


def test_mist_item_bias_is_per_scenario_and_the_mean_for_a_new_one(prepared: Path) -> None:
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    b = enc.batch(enc.rows(ds, "test"), np.arange(16))
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, "item_bias": True}).eval()
    s = enc.spec_.n_scenarios
    with torch.no_grad():
        base = model(b)
        model.item_bias.weight.copy_(torch.arange(model.item_bias.num_embeddings, dtype=torch.float).unsqueeze(1))
        got = model(b) - base
        torch.testing.assert_close(got, (b.item * s + b.scenario).float())
        new = model.add_mixed_scenario(torch.full((s,), 1.0 / s))
        assert new is not None
        moved = dataclasses.replace(b, scenario=torch.full_like(b.scenario, new))
        base_new = model(moved)
        model.item_bias.weight.zero_()
        torch.testing.assert_close(base_new - model(moved), b.item.float() * s + (s - 1) / 2)


def test_mist_rank_exposure_orders_a_ranking_by_click_times_exposure(prepared: Path) -> None:
    """`rank_exposure: auto` on logged labels: the log of each item's share of its scenario's training rows (one
    pseudo-row per item), counted here by hand; a ranking orders by log sigmoid(logit) + that share, and
    `mistrec evaluate`'s full-catalogue ranking reads it: an item no training row showed in a scenario, given a share
    far above every other, tops every query's list there. "off", or sampled negatives: the logits as they are."""
    import torch.nn.functional as F

    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    assert not enc.spec_.sampled_negatives
    rows = enc.indexed(enc.rows(ds, "train"))
    model = build_model("mist", enc.spec_, {"embedding_dim": 4})
    model.setup(rows)
    n_s, n_i = enc.spec_.n_scenarios, enc.spec_.n_items
    shown = np.zeros((n_s, n_i))
    np.add.at(shown, (rows.scenario, rows.item), 1)
    shown[0] = shown.sum(0)  # the unknown scenario: every scenario's rows
    want = np.log(shown + 1) - np.log((shown + 1).sum(1, keepdims=True))
    torch.testing.assert_close(model.exposure, torch.tensor(want, dtype=torch.float32))
    logits = torch.randn(3, 5)
    scenario, items = torch.tensor([1, 2, 1]), torch.tensor([1, 4, 9, 2, 7])
    torch.testing.assert_close(model.ranking_scores(logits, scenario, items),
                               F.logsigmoid(logits) + model.exposure[scenario.view(-1, 1), items.view(1, -1)])
    off = build_model("mist", enc.spec_, {"embedding_dim": 4, "rank_exposure": "off"})
    assert off.exposure is None and off.ranking_scores(logits, scenario, items) is logits
    # per scenario (`exposed`, chosen on validation): off there, log sigmoid(logit) (the logit's order); off in
    # every scenario of the batch, the logits themselves
    assert model.exposed is not None and model.exposed.all()
    model.exposed[2] = False
    part = model.ranking_scores(logits, scenario, items)
    # and says so per query: the exposure where its scenario chose it, nothing where the logit orders
    assert model.ranking_reasons(scenario) == [(RANKED_WITH_EXPOSURE,), (), (RANKED_WITH_EXPOSURE,)]
    torch.testing.assert_close(part[1], F.logsigmoid(logits[1]))
    torch.testing.assert_close(part[[0, 2]], F.logsigmoid(logits[[0, 2]]) + model.exposure[1, items].view(1, -1))
    model.exposed[1] = False
    assert model.ranking_scores(logits, scenario, items) is logits and model.ranking_reasons(scenario) == [()] * 3
    model.exposed.fill_(True)

    model.eval()
    s = 1
    name = enc.spec_.scenario_names[s - 1]
    in_s = ds.interactions.filter(ds.interactions["scenario"] == s)
    before = in_s.filter(in_s["split"] != "test")
    j = int(before["item"].value_counts().sort("count")["item"][0])  # the item fewest users met there
    met = set(before.filter(before["item"] == j)["user"].to_list())
    positive = set(in_s.filter((in_s["split"] == "test") & (in_s["item"] == j) & (in_s["label"] > 0))["user"].to_list())
    with torch.no_grad():
        model.exposure[s, enc.item_map_[j]] = 1e4
    ranked = rank_full_catalogue(model, enc, ds, split="test", ks=(10,))
    users = ranked.per_query["full catalogue"][name]["user"]
    candidate = np.array([u not in met or u in positive for u in users])  # j not excluded for the query
    assert candidate.sum() > 10
    assert np.array_equal(ranked.top_items[name][:, 0] == j, candidate)
    assert "rank_exposure" in ranked.metrics["notes"]["ranked_by"]  # the evaluation says what ordered the lists
    assert ranked.metrics["notes"]["ranked_by_scenario"][name] == [RANKED_WITH_EXPOSURE]
    with torch.no_grad():
        model.exposure[s].zero_()  # zeros: log sigmoid orders as the logit, so as without the term
    plain = rank_full_catalogue(model, enc, ds, split="test", ks=(10,))
    unexposed = build_model("mist", enc.spec_, {"embedding_dim": 4, "rank_exposure": "off"})
    unexposed.load_state_dict({k: v for k, v in model.state_dict().items() if k not in ("exposure", "exposed")})
    unexposed.eval()
    by_logit = rank_full_catalogue(unexposed, enc, ds, split="test", ks=(10,))
    assert np.array_equal(plain.top_items[name], by_logit.top_items[name])
    assert "ranked_by" not in by_logit.metrics["notes"]


def test_mist_rank_exposure_is_chosen_per_scenario_on_the_validation_ranking(prepared: Path) -> None:
    """`rank_exposure: auto` after training (choose_exposure): per scenario, the exposure is kept where it ranks the
    validation queries at least as high in NDCG@10 as the logit alone, and the record's figures are those the
    ranking gives in each state (ranked again here)."""
    from mistrec.eval.ranking import choose_exposure

    torch.manual_seed(0)
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    model = build_model("mist", enc.spec_, {"embedding_dim": 4})
    model.setup(enc.indexed(enc.rows(ds, "train")))
    model.eval()
    record = choose_exposure(model, enc, ds)["rank_exposure"]
    assert model.exposed is not None and set(record) == set(enc.spec_.scenario_names)
    # the two orders rank differently somewhere, so the figures below tell them apart
    assert any(r["valid_ndcg@10_exposure"] != r["valid_ndcg@10_logit"] for r in record.values())
    for on in (True, False):
        chosen = model.exposed.clone()
        model.exposed.fill_(on)
        again = rank_full_catalogue(model, enc, ds, split="valid", ks=(10,), max_queries=model.ranking_queries)
        model.exposed.copy_(chosen)
        for name, r in record.items():
            key = "valid_ndcg@10_exposure" if on else "valid_ndcg@10_logit"
            assert again.metrics["by_scenario"][name]["ndcg@10"] == pytest.approx(r[key])
    for s, name in enumerate(enc.spec_.scenario_names, start=1):
        r = record[name]
        keep = r["valid_ndcg@10_exposure"] >= r["valid_ndcg@10_logit"]
        assert bool(model.exposed[s]) == keep and r["chosen"] == ("exposure" if keep else "logit")
    off = build_model("mist", enc.spec_, {"embedding_dim": 4, "rank_exposure": "off"})
    assert off.exposed is None and choose_exposure(off, enc, ds) == {}  # nothing to choose


def test_mist_item_prior_follows_sampled_negatives(tmp_path: Path, prepared: Path) -> None:
    """item_prior's default (None) is on exactly where the training negatives are sampled; with `prior_negatives:
    counted` the prior it fits is the popularity baseline's logit (the same smoothing), with the default
    (`expected`) each item's negatives are the scenario's mean over its items with a positive (by hand), so the
    prior orders a scenario's items as their count of positives does; an explicit item_prior wins either way."""
    out = prepared_implicit(tmp_path, 40, range(0, 9))
    ds = PreparedDataset.load(out)
    enc = FeatureEncoder().fit(ds)
    assert enc.spec_.sampled_negatives
    rows = enc.rows(ds, "train")
    counted = build_model("mist", enc.spec_, {"embedding_dim": 4, "prior_negatives": "counted"})
    counted.setup(enc.indexed(rows))
    pop = build_model("popularity", enc.spec_, {"negatives": "counted"})
    pop.fit_direct(enc.indexed(rows))  # its closed form (the trainer calibrates after)
    assert counted.prior is not None
    b = enc.batch(rows, np.arange(len(rows)))
    torch.testing.assert_close(counted.prior[b.scenario, b.item], torch.logit(pop.table[b.scenario, b.item]))

    model = build_model("mist", enc.spec_, {"embedding_dim": 4})  # prior_negatives: expected
    model.setup(enc.indexed(rows))
    assert model.prior is not None
    pop = build_model("popularity", enc.spec_, {})  # negatives: expected, as mist's prior
    pop.fit_direct(enc.indexed(rows))
    torch.testing.assert_close(model.prior[b.scenario, b.item], torch.logit(pop.table[b.scenario, b.item]))
    # popularity over every scenario (`per_scenario: false`): each scenario's expected rows, summed
    from mistrec.data.negatives import expected_rows

    ix = enc.indexed(rows)
    shape = (enc.spec_.n_scenarios, enc.spec_.n_items)
    clicks, shows = np.zeros(shape), np.zeros(shape)
    np.add.at(clicks, (ix.scenario, ix.item), ix.label)
    np.add.at(shows, (ix.scenario, ix.item), 1.0)
    c, n = clicks.sum(0), expected_rows(clicks, shows).sum(0)
    rate = c.sum() / n.sum()
    glob = build_model("popularity", enc.spec_, {"per_scenario": False})
    glob.fit_direct(ix)
    torch.testing.assert_close(glob.table[1], torch.tensor((c + 10.0 * rate) / (n + 10.0), dtype=torch.float32))
    for s in np.unique(ix.scenario):
        m = ix.scenario == s
        pos = np.bincount(ix.item[m], weights=ix.label[m], minlength=enc.spec_.n_items)
        neg = np.bincount(ix.item[m], weights=1 - ix.label[m], minlength=enc.spec_.n_items)
        pool = pos > 0
        assert neg[~pool].sum() == 0  # the sampler draws only items with a training positive in the scenario
        rate = pos.sum() / (pos.sum() + neg.sum())
        expected = (pos + 10.0 * rate) / (pos + neg[pool].mean() + 10.0)
        np.testing.assert_allclose(model.prior[s, pool].numpy(), np.log(expected / (1 - expected))[pool], rtol=1e-5)
        # the order of the count: more positives, a higher prior; as many, the same. The counted prior (the
        # control) spreads items of as many positives apart by the negatives drawn for them.
        for prior, same in ((model.prior, True), (counted.prior, False)):
            values, k = prior[s].numpy()[pool], pos[pool]
            order = np.argsort(k, kind="stable")
            spread = max(np.ptp(values[k == c]) for c in np.unique(k))
            if same:
                assert np.all(np.diff(values[order]) >= -1e-6) and spread < 1e-5
            else:
                assert spread > 0.01
    assert build_model("mist", enc.spec_, {"embedding_dim": 4, "item_prior": False}).prior is None
    assert model.exposure is None  # sampled negatives: no `rank_exposure`

    logged = FeatureEncoder().fit(PreparedDataset.load(prepared))  # the synthetic platform logs its negatives
    assert not logged.spec_.sampled_negatives
    assert build_model("mist", logged.spec_, {"embedding_dim": 4}).prior is None
    assert build_model("mist", logged.spec_, {"embedding_dim": 4, "item_prior": True}).prior is not None


def test_mist_null_interest_can_take_the_whole_interest_or_none_of_it(prepared: Path) -> None:
    """`null_interest`: the "no source" logit competes with the pools at the interest level. Far above every pool's
    gate it leaves no interest (the score of a history with no events, read-out aside); far below it, the shares
    are the default's (they sum to 1 over the present pools)."""
    torch.manual_seed(0)
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    b = enc.batch(enc.rows(ds, "test"), np.arange(24))
    cfg = {"embedding_dim": 8, "transfer_head": False, "user_dropout": 1.0}
    model = build_model("mist", enc.spec_, {**cfg, "null_interest": True}).eval()
    plain = build_model("mist", enc.spec_, cfg).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k != "null_gate"})
    has = b.hist_mask.any(1)
    assert has.sum() > 10
    with torch.no_grad():
        model.null_gate.fill_(-1e4)
        torch.testing.assert_close(model(b), plain(b))
        torch.testing.assert_close(model.explain(b).source_share.sum(1)[has], torch.ones(int(has.sum())))
        model.null_gate.fill_(1e4)
        empty = b.without_events(b.hist_mask)
        torch.testing.assert_close(model(b), plain(empty))
        assert (model.explain(b).source_share == 0).all()
        model.null_gate.fill_(0.0)  # in between: a share of the interest, less than 1
        total = model.explain(b).source_share.sum(1)[has]
        assert ((total > 0.05) & (total < 0.95)).all()


@pytest.fixture(scope="module")
def implicit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Implicit data in two scenarios, users of every activity in each (random times, temporal split)."""
    return prepared_implicit(tmp_path_factory.mktemp("implicit"), 80, range(100, 112), per_user=None,
                             protocol="temporal", history_length=8)


def test_mist_prior_tilt_scales_a_new_users_prior_by_their_events_elsewhere(implicit: Path, prepared: Path) -> None:
    """`prior_tilt: auto` (the default): its center is the training users' mean log(1 + positives, at most L)
    (by hand); with b set in a scenario, a new user's logit there moves by b (log(1 + history events) - center)
    times the item's prior, on the pointwise, catalogue and general crossed paths alike; users with events there,
    and the other scenario, do not move. On logged labels (no counted prior) there is nothing to tilt; a run saved
    without it loads untilted and refuses to choose until its center is fitted."""
    torch.manual_seed(0)
    ds = PreparedDataset.load(implicit)
    enc = FeatureEncoder().fit(ds)
    assert enc.spec_.sampled_negatives
    train = enc.rows(ds, "train")
    model = cast_mist(build_model("mist", enc.spec_, {"embedding_dim": 8, "prior_tilt": "auto"}))
    model.setup(enc.indexed(train))
    ix = enc.indexed(train)
    counts = np.bincount(ix.user[ix.label > 0])
    want_center = np.log1p(np.minimum(counts[counts > 0], enc.spec_.history_length)).mean()
    assert model.tilt_center is not None and model.prior_tilt is not None
    assert float(model.tilt_center) == pytest.approx(want_center, rel=1e-6)
    assert any(o[0].startswith("tilt ") for o in model.validation_rounds())
    default = cast_mist(build_model("mist", enc.spec_, {"embedding_dim": 8}))  # "auto" by default (37th session)
    assert default.prior_tilt is not None and any(o[0].startswith("tilt ") for o in default.validation_rounds())
    off = cast_mist(build_model("mist", enc.spec_, {"embedding_dim": 8, "prior_tilt": "off"}))  # "off": no round
    assert off.prior_tilt is None and not any(o[0].startswith("tilt ") for o in off.validation_rounds())
    model.eval()
    rows = enc.rows(ds, "test")
    b = enc.batch(rows, np.arange(len(rows)))
    new = Mist.made_new(b)  # every row as its user would be new in its scenario
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        before_new, before = model(new), model(b)
        model.prior_tilt[1] = 0.4  # scenario 1 only
        after_new, after = model(new), model(b)
    s1 = new.scenario == 1
    events = new.hist_mask.sum(1).float()
    prior = model.prior[new.scenario, new.item]
    moved = 0.4 * (torch.log1p(events) - model.tilt_center) * prior
    torch.testing.assert_close(after_new[s1], before_new[s1] + moved[s1], rtol=1e-5, atol=1e-5)
    assert (moved[s1].abs() > 1e-3).any()  # the check can fail: the tilt moves these rows
    torch.testing.assert_close(after_new[~s1], before_new[~s1])
    active = b.activity > 0
    assert active.any()
    torch.testing.assert_close(after[active], before[active])
    # the catalogue path: new users' queries ranked against items, as the crossed forward scores them
    queries = new.subset(torch.nonzero(s1).flatten()[:4])
    items = enc.item_batch(np.arange(1, 20))
    with torch.no_grad():
        got = model.score_candidates(queries, items)
        general = model._score_crossed(queries, items)  # the exported graph's path: the head reads no history
        want = model(queries.cross(items)).view(len(queries), 19)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(general, want, rtol=1e-4, atol=1e-5)
    # saved before the tilt: untilted, no center, the round refused until it is fitted
    state = {k: v for k, v in model.state_dict().items() if k not in ("prior_tilt", "tilt_center")}
    old = cast_mist(build_model("mist", enc.spec_, {"embedding_dim": 8, "prior_tilt": "auto"}))
    old.load_state_dict(state)
    assert old.prior_tilt is not None and not bool(old.prior_tilt.any()) and bool(torch.isnan(old.tilt_center))
    with pytest.raises(RuntimeError, match="fit_tilt_center"):
        old.use_option("tilt 0.1")
    old.fit_tilt_center(ix.user, ix.label)
    assert float(old.tilt_center) == pytest.approx(want_center, rel=1e-6)
    # logged labels: no counted prior, nothing to tilt
    logged = FeatureEncoder().fit(PreparedDataset.load(prepared))
    plain = cast_mist(build_model("mist", logged.spec_, {"embedding_dim": 8, "prior_tilt": "auto"}))
    assert plain.prior_tilt is None and not any(o[0].startswith("tilt ") for o in plain.validation_rounds())


def cast_mist(model: object) -> Mist:
    assert isinstance(model, Mist)
    return model


def test_mist_prior_tilt_is_chosen_per_scenario_on_validation(implicit: Path, tmp_path: Path) -> None:
    """`prior_tilt: auto`: `mistrec train` on implicit data makes the tilt round after cold_scale's: each scenario
    keeps the b with the highest validation AUC (the trained state, 0, on a tie), recorded in run.json and saved
    with the weights."""
    torch.set_num_threads(1)
    fit_run(implicit, "mist", tmp_path / "run", model_values={"embedding_dim": 8, "prior_tilt": "auto"},
            train_cfg=TrainConfig(epochs=2, batch_size=64), quiet=True)
    selected = json.loads((tmp_path / "run" / "run.json").read_text())["result"]["selected"]
    order = list(selected)
    assert order.index("cold_scale") < order.index("prior_tilt") < order.index("warm_scale")
    model, _, _ = load_run(tmp_path / "run")
    assert isinstance(model, Mist) and model.prior_tilt is not None
    for s, name in enumerate(("a", "b"), start=1):
        record = selected["prior_tilt"][name]
        aucs = {float(b): v for b, v in record["valid_auc"].items()}
        best = max(aucs, key=lambda b: (aucs[b], b == 0.0))
        if record["rows_moved"] >= MIN_CHOICE_ROWS:
            assert aucs[record["chosen"]] == aucs[best]
        else:  # too few rows moved to choose by: the trained state
            assert record["chosen"] == 0.0
        assert float(model.prior_tilt[s]) == pytest.approx(record["chosen"])


def _kind(chosen: float, ndcg: float | None) -> dict[str, object]:
    return {"valid_ndcg@10": {f"{chosen:g}": ndcg}, "queries": 0 if ndcg is None else 50, "best": chosen,
            "p_value": None, "chosen": chosen}


def test_mist_prior_tilt_guard_keeps_the_state_that_ranks_new_users_better(implicit: Path) -> None:
    """GuardsOnRanking (`prior_tilt: auto`): with a tilt in some scenario the states are "tilted" then "untilted"
    (none with every scenario untilted); `settle_guard` reverts a scenario's tilt where the untilted state's new
    users rank higher at their own chosen weight, keeps it on a tie or where no new user's query was ranked, and
    takes the kept state's co_scale for both kinds of user. `prior_tilt_guard: ranking` (the default) takes a
    refused tilt out of the ranking only (`tilt_ranked`), `both` out of the click probability too."""
    enc = FeatureEncoder().fit(PreparedDataset.load(implicit))
    model = cast_mist(build_model("mist", enc.spec_, {"embedding_dim": 8, "prior_tilt": "auto"}))
    assert isinstance(model, GuardsOnRanking) and model.prior_tilt is not None and model.co_scale is not None
    assert model.guard_states() == ()  # untilted everywhere: nothing to guard
    untouched = cast_mist(build_model("mist", enc.spec_, {"embedding_dim": 8, "prior_tilt": "auto", "co_items": 0}))
    assert untouched.prior_tilt is not None
    untouched.prior_tilt.fill_(0.2)
    assert untouched.guard_states() == ()  # no ranking choice to weigh it by
    model.prior_tilt[1], model.prior_tilt[2] = 0.4, -0.2
    assert model.guard_states() == ("tilted", "untilted")
    model.use_guard_state("untilted")
    assert not bool(model.prior_tilt.any())
    model.use_guard_state("tilted")
    assert model.prior_tilt[1:].tolist() == pytest.approx([0.4, -0.2])
    records = {"tilted": {"co_scale": {"a": {"new": _kind(2.0, 0.30), "active": _kind(0.5, 0.2)},
                                       "b": {"new": _kind(3.0, 0.25), "active": _kind(1.0, 0.1)}}},
               "untilted": {"co_scale": {"a": {"new": _kind(1.0, 0.31), "active": _kind(0.5, 0.2)},
                                         "b": {"new": _kind(4.0, 0.25), "active": _kind(1.0, 0.1)}}}}
    got = model.settle_guard(records, ["a", "b"])
    assert model.tilt_ranked is not None and model.tilt_ranked[1:].tolist() == [False, True]  # a refused, b kept on
    assert model.prior_tilt[1:].tolist() == pytest.approx([0.4, -0.2])  # the tie; the probability keeps both
    assert model.co_scale[1].tolist() == [1.0, 0.5] and model.co_scale[2].tolist() == [3.0, 1.0]
    assert got["prior_tilt_guard"] == {
        "a": {"tilt": 0.4, "valid_ndcg@10_tilted": 0.30, "valid_ndcg@10_untilted": 0.31, "kept": False,
              "in_probability": True},
        "b": {"tilt": -0.2, "valid_ndcg@10_tilted": 0.25, "valid_ndcg@10_untilted": 0.25, "kept": True,
              "in_probability": True}}
    assert got["co_scale"] == {"a": records["untilted"]["co_scale"]["a"], "b": records["tilted"]["co_scale"]["b"]}
    both = cast_mist(build_model("mist", enc.spec_, {"embedding_dim": 8, "prior_tilt": "auto",
                                                     "prior_tilt_guard": "both"}))
    assert both.prior_tilt is not None and both.tilt_ranked is not None
    both.prior_tilt[1], both.prior_tilt[2] = 0.4, -0.2
    assert both.guard_states() == ("tilted", "untilted")
    record = both.settle_guard(records, ["a", "b"])["prior_tilt_guard"]
    assert both.prior_tilt[1:].tolist() == pytest.approx([0.0, -0.2])  # a out of the probability too
    assert both.tilt_ranked.all() and not record["a"]["in_probability"] and record["b"]["in_probability"]
    model.prior_tilt[1] = 0.4
    # no new user's query ranked in either state: the ranking cannot tell, the tilt stays (guard_states weighs
    assert model.guard_states() == ("tilted", "untilted")  # afresh: a's earlier verdict forgotten)
    assert model.tilt_ranked.all()
    blind = {state: {"co_scale": {n: {"new": _kind(1.0, None), "active": _kind(1.0, 0.2)} for n in "ab"}}
             for state in ("tilted", "untilted")}
    assert all(g["kept"] for g in model.settle_guard(blind, ["a", "b"])["prior_tilt_guard"].values())
    assert model.prior_tilt[1:].tolist() == pytest.approx([0.4, -0.2]) and model.tilt_ranked.all()


def test_ranking_choices_weigh_the_tilt_on_the_validation_ranking(implicit: Path, tmp_path: Path) -> None:
    """`ranking_choices` on a trained run with a tilt in place makes the co_scale choice in each state, each record
    the one `choose_on_ranking` makes with the model put in that state by hand, and leaves the model in the state
    `settle_guard`'s rule keeps per scenario."""
    torch.set_num_threads(1)
    fit_run(implicit, "mist", tmp_path / "run", model_values={"embedding_dim": 8, "prior_tilt": "auto"},
            train_cfg=TrainConfig(epochs=2, batch_size=64), quiet=True)
    ds = PreparedDataset.load(implicit)
    tilt = torch.tensor([0.0, 0.4, -0.2])

    def loaded(prior_tilt: torch.Tensor) -> Mist:
        model = cast_mist(load_run(tmp_path / "run")[0])
        assert model.prior_tilt is not None
        model.prior_tilt.copy_(prior_tilt)
        return model

    model = loaded(tilt)
    enc = load_run(tmp_path / "run")[1]
    got = ranking_choices(model, enc, ds)
    want = {"tilted": choose_on_ranking(loaded(tilt), enc, ds),
            "untilted": choose_on_ranking(loaded(torch.zeros(3)), enc, ds)}
    assert model.prior_tilt is not None and model.co_scale is not None
    compared = 0
    for s, name in enumerate(("a", "b"), start=1):
        tilted, untilted = (want[state]["co_scale"][name]["new"] for state in ("tilted", "untilted"))
        with_tilt = tilted["valid_ndcg@10"][f"{tilted['chosen']:g}"]
        without = untilted["valid_ndcg@10"][f"{untilted['chosen']:g}"]
        record = got["prior_tilt_guard"][name]
        assert record["tilt"] == float(f"{float(tilt[s]):g}") and record["kept"] == (not without > with_tilt)
        np.testing.assert_equal([record["valid_ndcg@10_tilted"], record["valid_ndcg@10_untilted"]],
                                [with_tilt, without])  # NaN where the scenario has no new user's query
        compared += not (np.isnan(with_tilt) or np.isnan(without))
        kept = "untilted" if without > with_tilt else "tilted"
        assert json.dumps(got["co_scale"][name], sort_keys=True) == json.dumps(want[kept]["co_scale"][name],
                                                                              sort_keys=True)  # NaN alike
        assert float(model.prior_tilt[s]) == pytest.approx(float(tilt[s]))  # the probability keeps AUC's choice
        assert model.tilt_ranked is not None and bool(model.tilt_ranked[s]) == (kept == "tilted")
        assert model.co_scale[s].tolist() == [want[kept]["co_scale"][name][k]["chosen"] for k in ("new", "active")]
    assert compared  # at least one scenario's new users ranked in both states: the rule was applied, not skipped
    streamed = loaded(tilt)  # streamed training ranks nothing: the tilt, unweighed, goes back to its trained state
    assert ranking_choices(streamed, enc, ds, stream=True) == {}
    assert streamed.prior_tilt is not None and not bool(streamed.prior_tilt.any())


def test_a_refused_tilt_leaves_the_ranking_and_stays_in_the_probability(implicit: Path, tmp_path: Path) -> None:
    """`prior_tilt_guard: ranking`: a scenario whose ranking refused the tilt (`tilt_ranked` False) keeps it in the
    click probability (predict, as with the tilt ranked) and ranks as the untilted model does (ranking_scores less
    the tilt's term, through the catalogue and the crossed paths, and the full-catalogue evaluation's lists); the
    other scenario's tilt is in both; without the queries the ranking scores cannot be made and say so."""
    torch.set_num_threads(1)
    fit_run(implicit, "mist", tmp_path / "run", model_values={"embedding_dim": 8, "prior_tilt": "auto"},
            train_cfg=TrainConfig(epochs=1, batch_size=64), quiet=True)
    ds = PreparedDataset.load(implicit)

    def loaded(tilt: list[float], ranked: list[bool]) -> Mist:
        model = cast_mist(load_run(tmp_path / "run")[0])
        assert model.prior_tilt is not None and model.tilt_ranked is not None
        model.prior_tilt.copy_(torch.tensor(tilt))
        model.tilt_ranked.copy_(torch.tensor(ranked))
        return model

    enc = load_run(tmp_path / "run")[1]
    tilted, refused = loaded([0.0, 0.4, -0.2], [True] * 3), loaded([0.0, 0.4, -0.2], [True, False, True])
    untilted = loaded([0.0, 0.0, -0.2], [True] * 3)
    valid = enc.rows(ds, "valid")
    assert np.array_equal(predict(refused, enc, valid), predict(tilted, enc, valid))
    assert not np.array_equal(predict(refused, enc, valid), predict(untilted, enc, valid))  # the tilt moves it
    batch = enc.batch(valid, np.arange(len(valid)))
    new_a = (batch.activity == 0) & (batch.scenario == 1) & (batch.hist_mask.sum(1) > 0)
    rows = torch.cat([torch.nonzero(new_a).squeeze(1)[:3], torch.nonzero(batch.scenario == 2).squeeze(1)[:3],
                      torch.nonzero(batch.activity != 0).squeeze(1)[:2]])
    assert int(new_a.sum()) >= 3
    queries = batch.subset(rows)
    items = enc.item_batch(np.arange(1, enc.spec_.n_items))
    with torch.no_grad():
        for path in ("score_candidates", "_score_crossed"):
            logits = getattr(refused, path)(queries, items)
            torch.testing.assert_close(logits, getattr(tilted, path)(queries, items))  # the probability's logits
            ordered = refused.ranking_scores(logits, queries.scenario, items.item, queries)
            torch.testing.assert_close(ordered, getattr(untilted, path)(queries, items), rtol=1e-5, atol=1e-5)
            assert not torch.allclose(ordered[:3], logits[:3])  # scenario a's new users: the tilt left out
            assert torch.equal(ordered[3:], logits[3:])  # b's rows and active users' rows: as the logits
            assert tilted.ranking_scores(logits, queries.scenario, items.item, queries) is logits
            # the reasons name the tilt left out on exactly the rows whose scores it moved
            moved = (ordered != logits).any(1).tolist()
            assert refused.ranking_reasons(queries.scenario, queries) == [
                (RANKED_WITHOUT_TILT,) if m else () for m in moved] and sum(moved) >= 1
            assert tilted.ranking_reasons(queries.scenario, queries) == [()] * len(rows)
        with pytest.raises(ValueError, match="need the queries"):
            refused.ranking_scores(logits, queries.scenario, items.item)
        assert refused.co_scale is not None
        weighted = refused.co_scale.clone()  # the choice's scorer: every weight's scores as ranking_scores makes them
        assert refused.co is not None and refused.co.own_weight is not None  # `co_own`, the default
        own = refused.co.own_weight.clone()
        for c, scores in zip(refused.ranking_options(), refused.ranking_scorer(items)(queries), strict=True):
            refused.use_ranking_option(c)
            ordered = refused.ranking_scores(refused.score_candidates(queries, items), queries.scenario, items.item,
                                             queries)
            if isinstance(c, tuple):  # co_own's pair: the cross and own parts summed apart, so to float rounding
                torch.testing.assert_close(scores, ordered, rtol=1e-4, atol=1e-5)
            else:
                assert torch.equal(scores, ordered)
            assert not torch.equal(scores, refused.score_candidates(queries, items))
        refused.co_scale.copy_(weighted)
        refused.co.own_weight.copy_(own)
    lists = {name: rank_full_catalogue(m, enc, ds, "valid", ks=(10,))
             for name, m in (("refused", refused), ("untilted", untilted), ("tilted", tilted))}
    assert np.array_equal(lists["refused"].top_items["a"], lists["untilted"].top_items["a"])
    assert np.array_equal(lists["refused"].top_items["b"], lists["tilted"].top_items["b"])
    assert "prior_tilt" in lists["refused"].metrics["notes"]["ranked_by"]
    assert lists["refused"].metrics["notes"]["ranked_by_scenario"] == {"a": [RANKED_WITHOUT_TILT]}
    assert "ranked_by" not in lists["tilted"].metrics["notes"]
    # a run saved before the option: no `tilt_ranked` in its weights, its ranking carries what its tilt holds
    state = {k: v for k, v in refused.state_dict().items() if k != "tilt_ranked"}
    fresh = cast_mist(build_model("mist", enc.spec_, {"embedding_dim": 8, "prior_tilt": "auto"}))
    fresh.load_state_dict(state)
    assert fresh.tilt_ranked is not None and bool(fresh.tilt_ranked.all())


def test_a_run_saved_before_prior_tilt_loads_untilted(implicit: Path, tmp_path: Path) -> None:
    """`prior_tilt: auto` is the default: a run trained today records it and loads with its tilt; a run.json
    without the key (saved before the option existed) loads with it off, as it was scored."""
    torch.set_num_threads(1)
    fit_run(implicit, "mist", tmp_path / "run", model_values={"embedding_dim": 8},
            train_cfg=TrainConfig(epochs=1, batch_size=64), quiet=True)
    model, _, meta = load_run(tmp_path / "run")
    assert meta["model_config"]["prior_tilt"] == "auto" and cast_mist(model).prior_tilt is not None
    doc = json.loads((tmp_path / "run" / "run.json").read_text())
    del doc["model_config"]["prior_tilt"]
    (tmp_path / "run" / "run.json").write_text(json.dumps(doc))
    weights = tmp_path / "run" / "weights.pt"  # nor did its weights hold the tilt's buffers
    state = torch.load(weights, weights_only=True)
    torch.save({k: v for k, v in state.items() if k not in ("prior_tilt", "tilt_center", "tilt_ranked")}, weights)
    assert cast_mist(load_run(tmp_path / "run")[0]).prior_tilt is None


def test_choices_made_again_on_a_saved_run_are_the_recorded_ones(implicit: Path, tmp_path: Path) -> None:
    """select_on_validation(again=True) on a loaded run puts every round back in its trained state first, so its
    choices are the ones training recorded, even with every later round's buffer left elsewhere (here cold_scale 0
    and a tilt in place while cold_id is scored) and `co_scale`, chosen after them on the ranking, at 4 (training
    scores the rounds with it at 1: rechoosing with it in place moved the thirty-sixth session's figures)."""
    from mistrec.train.distributed import Ranks
    from mistrec.train.loop import select_on_validation

    torch.set_num_threads(1)
    fit_run(implicit, "mist", tmp_path / "run", model_values={"embedding_dim": 8, "prior_tilt": "auto",
                                                             "cold_id": "auto"},
            train_cfg=TrainConfig(epochs=2, batch_size=64), quiet=True)
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["result"]["selected"]
    model, enc, _ = load_run(tmp_path / "run")
    assert isinstance(model, Mist) and model.cold_scale is not None and model.prior_tilt is not None
    model.cold_scale.fill_(0.0)
    model.prior_tilt.fill_(0.4)
    assert model.co_scale is not None
    model.co_scale.fill_(4.0)  # a choice made after these on the ranking, which moves the logits
    ds = PreparedDataset.load(implicit)
    again = select_on_validation(model, enc, enc.rows(ds, "valid"), TrainConfig(), Ranks(), again=True)
    for name in ("cold_id", "cold_scale", "prior_tilt", "warm_scale"):
        assert again[name] == recorded[name], name
