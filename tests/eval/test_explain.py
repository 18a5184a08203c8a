"""Recommendations and their explanations: structure, cold start, bad input, and the attribution maths."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mistrec.cli.main import main
from mistrec.errors import ConfigError
from mistrec.eval.attribution import integrated_gradients
from mistrec.eval.explain import (
    RANKED_BY,
    RANKED_BY_UNTILTED,
    Logged,
    Recommender,
    leave_source_out_matrix,
    ranked_by,
)
from mistrec.eval.fit import fit_run
from mistrec.models.base import RANKED_WITH_EXPOSURE, RANKED_WITHOUT_TILT
from mistrec.train import TrainConfig
from tests.cli.test_cli import fails_with
from tests.conftest import prepared_implicit, prepared_synthetic, small_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("explain")
    prepared_synthetic(root, n_users=150, events_per_user=25, triggers=2, seed=6)
    fit_run(root / "prepared", "mist", root / "run", model_values={"embedding_dim": 8},
            train_cfg=TrainConfig(epochs=2, batch_size=512, seed=1), quiet=True)
    return root / "run"


def test_recommend_explains_each_item(run: Path) -> None:
    rec = Recommender.load(run)
    # the platform logs its labels, so mist may rank by the click probability times the item's share of the
    # scenario's training rows (`rank_exposure`), per scenario as validation chose (run.json records it); with
    # it on it says so, and each item's score is its click probability
    chosen = json.loads((run / "run.json").read_text())["result"]["selected"]["rank_exposure"]
    assert set(chosen) == set(rec._scenarios)
    assert rec.model.exposed is not None
    rec.model.exposed.fill_(True)
    out = rec.recommend("u00003", "vr_showroom", k=4, explain=True)
    assert not out["cold_start"] and len(out["items"]) == 4
    assert out["ranked_by"] == RANKED_BY
    s_idx = rec._scenarios.index("vr_showroom") + 1
    assert rec.model.exposure is not None
    shares = rec.model.exposure[s_idx, rec.enc.item_map_[[rec._item_index[i["item"]] for i in out["items"]]]]
    ordered = [float(np.log(i["score"])) + float(e) for i, e in zip(out["items"], shares, strict=True)]
    assert all(a >= b - 1e-5 for a, b in itertools.pairwise(ordered))
    exposure, rec.model.exposure = rec.model.exposure, None  # as `rank_exposure: off`: by the click probability
    try:
        plain = rec.recommend("u00003", "vr_showroom", k=4)
    finally:
        rec.model.exposure = exposure
    scores = [i["score"] for i in plain["items"]]
    assert scores == sorted(scores, reverse=True) and "ranked_by" not in plain
    seen = set(rec.ds.interactions.filter(rec.ds.interactions["user"] == rec._user_index["u00003"])["item"])
    names = {str(rec._item_names[i]) for i in seen}
    for item in out["items"]:
        e = item["explanation"]
        assert 0 < len(e["events"]) <= 5 and e["sentence"]
        # ranked by effect on the logit: integrated gradients plus, with co_items, the event's exact part of that term
        assert all(("co_items" in ev) == (rec.model.co is not None) for ev in e["events"])
        effects = [ev["integrated_gradients"] + ev.get("co_items", 0.0) for ev in e["events"]]
        assert effects == sorted(effects, reverse=True)
        assert {ev["scenario"] for ev in e["events"]} <= set(rec._scenarios)
        assert abs(sum(e["source_share"].values()) - 1) < 1e-4
        assert set(e["leave_source_out"]) <= set(rec._scenarios)
        assert all(ev["item"] in names for ev in e["events"])  # only the user's own past events


def test_integrated_gradients_are_complete(run: Path) -> None:
    """The attributions of a row sum to its logit minus the logit with all-zero history tokens."""
    rec = Recommender.load(run)
    _, _, _, query, _ = rec._query("u00007", 2, rec._now, [])
    assert query is not None
    b = query.cross(rec.enc.item_batch(np.array([1, 2, 3])))
    ig = integrated_gradients(rec.model, b, steps=64)
    with torch.no_grad():
        tokens = rec.model.tokens(b)
        full = rec.model(b, tokens=tokens)
        empty = rec.model(b, tokens=torch.zeros_like(tokens))
    np.testing.assert_allclose(ig.sum(1), (full - empty).numpy(), atol=2e-3)


def test_leave_source_out_matrix_and_dropping_events(run: Path) -> None:
    rec = Recommender.load(run)
    rows = rec.enc.rows(rec.ds, "test")
    m = leave_source_out_matrix(rec.model, rec.enc, rows)
    n = len(rec._scenarios)
    assert np.asarray(m["auc_drop"]).shape == (n, n)
    b = rec.enc.batch(rows, np.arange(20))
    drop = b.hist_scenarios == 2
    gone = b.without_events(drop)
    assert not (gone.hist_mask & drop).any() and (gone.hist_items[drop] == 0).all()
    assert torch.equal(gone.hist_mask, b.hist_mask & ~drop)
    # the dropped events' side features go too; the kept events' are their items' (the encoder's tables)
    assert b.hist_item_cat.shape[-1] > 0 and b.hist_item_num.shape[-1] > 0  # the synthetic items have both
    assert (gone.hist_item_cat[drop] == 0).all() and (gone.hist_item_num[drop] == 0).all()
    kept = gone.hist_mask
    np.testing.assert_array_equal(gone.hist_item_cat[kept].numpy(), rec.enc.item_cat_[gone.hist_items[kept].numpy()])


def test_cold_start_and_bad_input(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = Recommender.load(run)
    cold = rec.recommend("someone-new", "search", k=3, explain=True)
    assert cold["cold_start"] and "unknown user" in cold["note"] and len(cold["items"]) == 3
    assert "popular" in cold["items"][0]["explanation"]["sentence"]
    fails_with(capsys, ["recommend", str(run), "--user", "u00001", "--scenario", "mars"],
               "Unknown scenario 'mars'. Known scenarios: game_lobby, home_feed, search, vr_showroom")
    fails_with(capsys, ["recommend", str(run), "--user", "u00001", "--scenario", "search", "-k", "0"],
               "k must be an int from 1 to")
    fails_with(capsys, ["recommend", str(run), "--user", "u00001", "--scenario", "search", "-k", "100000"],
               "k must be an int from 1 to")


def test_recommend_command_prints_explanations(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", str(run), "--user", "u00003", "--scenario", "home_feed", "-k", "2", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "Top 2 in home_feed for user u00003" in out
    assert "mostly because of" in out or "comes from the item and user features" in out


def test_a_scenario_described_after_training_takes_the_shared_path_by_default(run: Path) -> None:
    """The run trained with new_scenarios: shared (mist's default): a described new scenario scores as the unknown
    scenario (index 0, the trained scenarios' mean path) and the output says why."""
    rec = Recommender.load(run)
    fitted_map = rec.enc.scenario_map_.copy()
    out = rec.recommend("u00003", "vr_arcade", k=3, description="multiplayer games played in virtual reality")
    how = out["new_scenario"]
    assert how["by"] == "shared" and "train with new_scenarios: text" in how["why"]
    assert how["described_after_training"] and not out["cold_start"]
    assert len(out["items"]) == 3
    # its rows reach the model as index 0, the unknown scenario
    s_idx = rec._scenarios.index("vr_arcade") + 1
    assert np.array_equal(rec.enc.scenario_map_, fitted_map)  # the fitted encoder is not changed
    _, _, _, query, _ = rec._query("u00003", s_idx, rec._now, [])
    assert query is not None and int(query.scenario[0]) == 0
    cold = rec.recommend("someone-new", "vr_arcade", k=2)
    assert cold["cold_start"] and "most popular items overall" in cold["note"]
    with pytest.raises(ConfigError, match="candidates is empty"):
        rec.recommend("u00003", "vr_arcade", k=1, candidates=[])


def test_logged_events_enter_the_history_at_once(run: Path) -> None:
    """A click logged in home_feed is in the history of the next request in vr_showroom; a user the run never
    saw is read from their logged events; what they met in the scenario is not recommended again."""
    from mistrec.eval.explain import Logged

    rec = Recommender.load(run)
    home = rec._scenarios.index("home_feed") + 1
    clicked = str(rec._item_names[rec._popular[home][0]])
    t = rec._now + 60  # a minute after the data's last event
    logged = [Logged(item=clicked, scenario="home_feed", time=t, label=1.0)]
    before = rec.recommend("u00003", "vr_showroom", k=5)
    after = rec.recommend("u00003", "vr_showroom", k=5, logged=logged)
    length = rec.enc.spec_.history_length
    assert after["history_events"] == min(before["history_events"] + 1, length)
    assert [i["score"] for i in after["items"]] != [i["score"] for i in before["items"]]
    explained = rec.recommend("u00003", "vr_showroom", k=2, explain=True, logged=logged)
    assert all(item["explanation"]["sentence"] for item in explained["items"])
    at_click = rec.recommend("u00003", "vr_showroom", k=5, logged=logged, at=t)  # strictly before: not yet in
    assert at_click["history_events"] == before["history_events"]
    newcomer = rec.recommend("someone-new", "vr_showroom", k=5, logged=logged)
    assert not newcomer["cold_start"] and newcomer["history_events"] == 1  # the id-free path
    assert rec.recommend("someone-new", "vr_showroom", k=5)["cold_start"]  # no events: popular items
    vr = rec._scenarios.index("vr_showroom") + 1
    met = str(rec._item_names[rec._catalogue[vr][0]])
    seen_there = rec.recommend("someone-new", "vr_showroom", k=5,
                               logged=[*logged, Logged(item=met, scenario="vr_showroom", time=t, label=1.0)])
    assert met not in [i["item"] for i in seen_there["items"]]
    with pytest.raises(ConfigError, match="Logged event\\(s\\) in unknown scenario\\(s\\) arcade"):
        rec.recommend("u00003", "vr_showroom", k=5, logged=[Logged(item=clicked, scenario="arcade", time=t, label=1)])


def test_a_refused_tilt_orders_a_new_user_untilted_and_reports_the_tilted_probability(tmp_path: Path) -> None:
    """mist on implicit data with `prior_tilt_guard: ranking`: where the scenario's ranking refused the tilt, a
    user new there (a user the run never saw, with clicks logged in the other scenario) gets the untilted model's
    order, each item's score is the tilted click probability, and `ranked_by` says so."""
    run = small_run(prepared_implicit(tmp_path, n_users=60, b_items=range(20, 50)), "mist", tmp_path / "run",
                    epochs=1, batch_size=64)
    rec = Recommender.load(run)
    model = rec.model
    assert model.prior_tilt is not None and model.tilt_ranked is not None
    b_items = [str(rec._item_names[i]) for i in rec._catalogue[rec._scenarios.index("b") + 1][:5]]
    logged = [Logged(item=item, scenario="b", time=float(t), label=1.0) for t, item in enumerate(b_items)]
    k = int(rec._catalogue[rec._scenarios.index("a") + 1].size)

    def ask(tilt: float, ranked: bool) -> dict:
        with torch.no_grad():
            model.prior_tilt[1], model.tilt_ranked[1] = tilt, ranked
        return rec.recommend("newcomer", "a", k=k, logged=logged)

    refused, untilted, tilted = ask(1.5, False), ask(0.0, True), ask(1.5, True)  # a strong tilt: it reorders
    assert refused["ranked_by"] == RANKED_BY_UNTILTED
    assert "ranked_by" not in untilted and "ranked_by" not in tilted
    order = [i["item"] for i in refused["items"]]
    assert order == [i["item"] for i in untilted["items"]] and order != [i["item"] for i in tilted["items"]]
    by_item = {i["item"]: i["score"] for i in tilted["items"]}
    np.testing.assert_allclose([i["score"] for i in refused["items"]], [by_item[i] for i in order], atol=1e-6)
    # `ranked_by` is what the model did to this query's order, not a guess from the data's kind: with the exposure
    # added to the same run (as `rank_exposure` on logged labels would have it), the new user's order had both, a
    # user active in the scenario (no tilt: not new there) the exposure only
    names = {i: u for u, i in rec._user_index.items()}
    inter = rec.ds.interactions
    active = names[int(inter.filter((inter["scenario"] == rec._scenarios.index("a") + 1)
                                    & (inter["split"] == "train"))["user"][0])]
    with torch.no_grad():
        model.exposure = torch.randn(len(rec._scenarios) + 1, rec.enc.spec_.n_items)
        model.exposed = torch.ones(len(rec._scenarios) + 1, dtype=torch.bool)
    both = ask(1.5, False)
    assert both["ranked_by"] == ranked_by((RANKED_WITHOUT_TILT, RANKED_WITH_EXPOSURE)) != RANKED_BY_UNTILTED
    assert rec.recommend(active, "a", k=5)["ranked_by"] == RANKED_BY
    model.exposed.fill_(False)
    assert ask(1.5, False)["ranked_by"] == RANKED_BY_UNTILTED and "ranked_by" not in rec.recommend(active, "a", k=5)
