"""New scenarios (no training rows) read through their descriptions: the mix of trained scenarios, the encoder that
keeps their index, mist's mixed parameters, and the shared path that averages trained scenarios only."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from mistrec.data import PreparedDataset, ProtocolConfig, SyntheticConfig, generate, load_dataset_config, prepare
from mistrec.errors import ConfigError
from mistrec.eval.explain import Recommender
from mistrec.eval.fit import fit_run
from mistrec.features import FeatureEncoder
from mistrec.features.scenario_text import minilm_available, scenario_mix
from mistrec.models import build_model, model_config
from mistrec.models.layers import PartitionedNorm, ScenarioGroups, StarLinear, route
from mistrec.train import TrainConfig, load_run, predict

NAMES = ["home_feed", "search", "game_lobby", "vr_arcade"]
TEXT = {1: "personalised feed on the app's home screen", 2: "results of a typed search query",
        3: "games offered in the multiplayer lobby", 4: "multiplayer games played in virtual reality"}


def test_mix_rows_identity_for_trained_text_weights_for_new() -> None:
    mix, how = scenario_mix(NAMES, TEXT, seen=[1, 2, 3], encoder="tfidf")
    assert mix.shape == (5, 5)
    assert np.array_equal(mix[:4, :4], np.diag([0.0, 1.0, 1.0, 1.0]))  # index 0 stays the shared path
    assert mix[4, 4] == 0.0 and mix[4, 0] == 0.0 and np.isclose(mix[4].sum(), 1.0)
    assert mix[4].argmax() == 3  # shares "multiplayer" and "games" with the game lobby only
    assert how["vr_arcade"]["by"] == "text:tfidf" and max(how["vr_arcade"]["weights"].values()) == mix[4, 3]
    sharper, _ = scenario_mix(NAMES, TEXT, seen=[1, 2, 3], encoder="tfidf", temperature=0.01)
    assert sharper[4, 3] > mix[4, 3]


def test_uniform_shared_and_undescribed_new_scenarios() -> None:
    uniform, how = scenario_mix(NAMES, {}, seen=[1, 2, 3], mode="uniform")
    assert np.allclose(uniform[4, 1:4], 1 / 3) and how["vr_arcade"]["by"] == "uniform"
    shared, how = scenario_mix(NAMES, TEXT, seen=[1, 2, 3], mode="shared")
    assert not shared[4].any() and how["vr_arcade"]["by"] == "shared"
    undescribed, how = scenario_mix(NAMES, {k: v for k, v in TEXT.items() if k != 4}, seen=[1, 2, 3],
                                    encoder="tfidf")
    assert not undescribed[4].any() and "no description" in how["vr_arcade"]["why"]
    with pytest.raises(ConfigError, match="new_scenarios must be one of"):
        scenario_mix(NAMES, TEXT, seen=[1], mode="nearest")
    with pytest.raises(ConfigError, match="text_temperature must be > 0"):
        scenario_mix(NAMES, TEXT, seen=[1], temperature=0)
    with pytest.raises(ConfigError, match="new_scenarios"):
        model_config("mist", {"new_scenarios": "nearest"})


@pytest.mark.skipif(not minilm_available(), reason="the text extra (all-MiniLM-L6-v2) is not installed")
def test_minilm_puts_a_vr_arcade_next_to_the_game_lobby() -> None:
    text = {**TEXT, 4: "an arcade of shooters and racing titles in VR headsets"}  # no word shared with the lobby
    mix, how = scenario_mix(NAMES, text, seen=[1, 2, 3], encoder="minilm")
    assert how["vr_arcade"]["by"] == "text:minilm" and mix[4].argmax() == 3


def test_shared_path_averages_trained_scenarios_only() -> None:
    out = torch.tensor([[9.0, 1.0, 3.0, 100.0]])  # scenario 3 was never trained: its head is noise
    assert route(out, torch.tensor([0]), torch.tensor([1, 2])).tolist() == [2.0]
    norm = PartitionedNorm(2, n_scenarios=4, trained=[1, 2]).eval()
    with torch.no_grad():
        norm.mean[1:] = torch.tensor([[1.0, 1.0], [3.0, 3.0], [50.0, 50.0]])
        norm.var[:] = 1.0 - 1e-5
    assert torch.allclose(norm(torch.full((1, 2), 2.0), torch.tensor([0])), torch.zeros(1, 2), atol=1e-5)
    layer = StarLinear(3, 2, n_scenarios=4, trained=[1, 2])
    with torch.no_grad():
        layer.w.copy_(torch.rand(4, 3, 2))
        layer.b.copy_(torch.rand(4, 2))
    x = torch.randn(5, 3)
    got = layer(x, ScenarioGroups(torch.zeros(5, dtype=torch.long)))
    w = layer.shared.weight.t() * (layer.w[1] + layer.w[2]) / 2
    torch.testing.assert_close(got, x @ w + (layer.b[1] + layer.b[2]) / 2 + layer.shared.bias)


@pytest.fixture(scope="module")
def left_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A five-scenario platform whose vr_arcade shows the game lobby's items; vr_arcade left out of training."""
    root = tmp_path_factory.mktemp("new_scenario")
    t = np.array([[0.7, 0.2, 0.1, 0.0, 0.0], [0.3, 0.6, 0.0, 0.1, 0.0], [0.1, 0.0, 0.5, 0.4, 0.0],
                  [0.45, 0.05, 0.3, 0.2, 0.0], [0.1, 0.0, 0.5, 0.4, 0.0]])
    cfg = SyntheticConfig(n_users=300, events_per_user=30, seed=3, transfer=t,
                          scenarios=("home_feed", "search", "game_lobby", "vr_showroom", "vr_arcade"),
                          scenario_share=(0.45, 0.25, 0.15, 0.07, 0.08), pool_sizes=(100, 80, 50, 30, 0),
                          item_pool=(0, 1, 2, 3, 2), label_noise=(0.3, 0.5, 0.8, 1.0, 0.8),
                          label_bias=(-3.0, -2.8, -2.6, -1.8, -2.6))
    yaml_path = generate(cfg).write(root / "raw")
    prepare(load_dataset_config(yaml_path), root / "prepared", quiet=True, history_length=8,
            protocol=ProtocolConfig(name="leave-scenario-out", target="vr_arcade"))
    return root / "prepared"


def test_item_pool_shares_a_catalogue(left_out: Path) -> None:
    inter = PreparedDataset.load(left_out).interactions
    names = PreparedDataset.load(left_out).scenarios
    arcade, lobby = names.index("vr_arcade") + 1, names.index("game_lobby") + 1
    arcade_items = set(inter.filter(inter["scenario"] == arcade)["item"].to_list())
    assert arcade_items and arcade_items <= set(inter.filter(inter["scenario"] == lobby)["item"].to_list())
    with pytest.raises(ConfigError, match="item_pool"):
        SyntheticConfig(item_pool=(0, 1, 3, 2)).matrix()  # 2 shows 3's pool, which shows 2's
    with pytest.raises(ConfigError, match="choice_interest"):
        SyntheticConfig(choice_interest=(0, 1, 2, 4)).matrix()


def test_encoder_keeps_a_described_new_scenario(left_out: Path, tmp_path: Path) -> None:
    ds = PreparedDataset.load(left_out)
    arcade = ds.scenarios.index("vr_arcade") + 1
    shared = FeatureEncoder().fit(ds)
    assert shared.scenario_map_[arcade] == 0 and shared.spec_.scenario_mix == ()
    assert arcade not in shared.spec_.trained_scenarios and len(shared.spec_.trained_scenarios) == 4
    enc = FeatureEncoder(new_scenarios="text", text_encoder="tfidf").fit(ds)
    assert enc.scenario_map_[arcade] == arcade
    mix = np.array(enc.spec_.scenario_mix)
    assert np.isclose(mix[arcade].sum(), 1.0) and mix[arcade, ds.scenarios.index("game_lobby") + 1] > 0.5
    enc.save(tmp_path)
    back = FeatureEncoder.load(tmp_path)
    assert back.spec_ == enc.spec_ and back.scenario_resolution_ == enc.scenario_resolution_


def test_mist_reads_a_one_hot_new_scenario_as_that_scenario(left_out: Path) -> None:
    """With all its weight on the game lobby, a vr_arcade row scores exactly as the same row in the game lobby;
    rows of trained scenarios score exactly as without any mix."""
    ds = PreparedDataset.load(left_out)
    arcade, lobby = ds.scenarios.index("vr_arcade") + 1, ds.scenarios.index("game_lobby") + 1
    enc = FeatureEncoder(new_scenarios="text", text_encoder="tfidf", text_temperature=1e-4).fit(ds)
    assert np.isclose(enc.spec_.scenario_mix[arcade][lobby], 1.0)
    torch.manual_seed(0)
    cfg = model_config("mist", {"embedding_dim": 8, "hidden": [16, 8]})
    mixed = build_model("mist", enc.spec_, cfg).eval()
    plain = build_model("mist", dataclasses.replace(enc.spec_, scenario_mix=()), cfg).eval()
    plain.load_state_dict(mixed.state_dict())
    with torch.no_grad():  # every scenario's weights and normalisation statistics differ
        for p in mixed.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        for name, buf in mixed.named_buffers():
            if name.endswith((".mean", ".var")):
                buf.add_(torch.rand_like(buf))
    plain.load_state_dict(mixed.state_dict())
    rows = enc.rows(ds, "test")
    b = enc.batch(rows, np.arange(len(rows)))
    new = b.scenario == arcade
    assert new.any() and (~new).any()
    with torch.no_grad():
        got = mixed(b)
        assert torch.equal(got[~new], plain(b)[~new])
        as_lobby = dataclasses.replace(b, scenario=b.scenario.masked_fill(new, lobby))
        assert torch.allclose(got[new], mixed(as_lobby)[new], atol=1e-5)
        assert not torch.allclose(got[new], mixed(dataclasses.replace(b, scenario=b.scenario.masked_fill(new, 0)))[
            new], atol=1e-3)  # and not as the shared path


def test_fit_run_resolves_and_reloads(left_out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    summary = fit_run(left_out, "mist", out, model_values={"embedding_dim": 8, "hidden": [16, 8],
                                                           "new_scenarios": "text", "text_encoder": "tfidf"},
                      train_cfg=TrainConfig(epochs=2, batch_size=256, seed=0))
    assert "New scenario vr_arcade: " in capsys.readouterr().err
    model, enc, _ = load_run(out)
    assert enc.scenario_resolution_["vr_arcade"]["by"] == "text:tfidf"
    ds = PreparedDataset.load(left_out)
    rows = enc.rows(ds, "test")
    arcade = rows.scenario == ds.scenarios.index("vr_arcade") + 1
    assert arcade.sum() == summary["test"]["by_scenario"]["vr_arcade"]["n"] > 0
    auc = roc_auc_score(rows.label[arcade], predict(model, enc, rows)[arcade])  # the reloaded model's own scores
    assert auc == pytest.approx(summary["test"]["by_scenario"]["vr_arcade"]["auc"], abs=1e-9)
    rec = Recommender.load(out, left_out)
    user = str(ds.vocab["user_id"]["value"][0])
    got = rec.recommend(user, "vr_arcade", k=3, explain=True)
    assert got["new_scenario"]["by"] == "text:tfidf" and len(got["items"]) == 3
    assert all(item["explanation"] for item in got["items"])


# -- scenarios described only after training (not in the data at all) -------------------------------------------


def test_describing_after_training_resolves_as_the_table_would_have(left_out: Path) -> None:
    """A scenario described after training gets the row its description would have had in the scenarios table at
    training time (same encoder, temperature and trained basis): vr_arcade's own description, under a new name."""
    ds = PreparedDataset.load(left_out)
    arcade = ds.scenarios.index("vr_arcade") + 1
    enc = FeatureEncoder(new_scenarios="text", text_encoder="tfidf").fit(ds)
    assert enc.scenario_descriptions_["vr_arcade"] == "multiplayer games played in virtual reality"
    row, how = enc.describe_scenario("vr_arcade_2", enc.scenario_descriptions_["vr_arcade"])
    assert row is not None and row.shape == (enc.spec_.n_scenarios,)
    np.testing.assert_allclose(row, enc.spec_.scenario_mix[arcade], rtol=1e-6)
    assert how["by"] == "text:tfidf" and row[arcade] == 0.0  # never a weight on an untrained scenario
    shared_row, shared_how = FeatureEncoder().fit(ds).describe_scenario("vr_arcade_2", "games in VR")
    assert shared_row is None and shared_how["by"] == "shared"
    with pytest.raises(ConfigError, match="is a scenario of the training data"):
        enc.describe_scenario("search", "anything")
    with pytest.raises(ConfigError, match="description of the new scenario 'x' is empty"):
        enc.describe_scenario("x", "  ")
    assert build_model("star", enc.spec_, model_config("star", {})).add_mixed_scenario(torch.ones(6)) is None


@pytest.fixture(scope="module")
def sharp_text_run(left_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mist with new_scenarios: text and a temperature so low that a description equal to one trained scenario's
    puts all the weight on it."""
    out = tmp_path_factory.mktemp("sharp") / "run"
    # cold_id: keep, because a user is new in a scenario described after training (no events there) and new users
    # are read without their id by default: the scores would then differ from the game lobby's by design; and
    # warm_scale: off, because the lobby's users with events there get the lobby's chosen share of the learned part
    # while a scenario described after training is read unscaled (nobody has events there), again by design
    fit_run(left_out, "mist", out, model_values={"embedding_dim": 8, "hidden": [16, 8], "new_scenarios": "text",
                                                 "text_encoder": "tfidf", "text_temperature": 1e-4, "cold_id": "keep",
                                                 "warm_scale": "off"},
            train_cfg=TrainConfig(epochs=1, batch_size=256, seed=0), quiet=True)
    return out


def test_recommend_in_a_scenario_described_after_training(sharp_text_run: Path, left_out: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from mistrec.cli.main import main

    rec = Recommender.load(sharp_text_run, left_out)
    user = str(rec.ds.vocab["user_id"]["value"][5])
    before = rec.recommend(user, "home_feed", k=5)
    lobby = rec.recommend(user, "game_lobby", k=5)
    with pytest.raises(ConfigError, match="To recommend in a new one, describe it"):
        rec.recommend(user, "vr_lounge", k=5)
    text = rec.enc.scenario_descriptions_["game_lobby"]
    got = rec.recommend(user, "vr_lounge", k=5, description=text, candidates=[i["item"] for i in lobby["items"]])
    how = got["new_scenario"]
    assert how["by"] == "text:tfidf" and how["described_after_training"]
    assert how["weights"]["game_lobby"] == pytest.approx(1.0)
    # all of its weight on the game lobby: the same items score as they do there
    assert [i["item"] for i in got["items"]] == [i["item"] for i in lobby["items"]]
    np.testing.assert_allclose([i["score"] for i in got["items"]], [i["score"] for i in lobby["items"]], rtol=1e-5)
    assert rec.recommend(user, "home_feed", k=5)["items"] == before["items"]  # trained scenarios untouched
    whole = rec.recommend(user, "vr_lounge", k=3, explain=True)  # described once: the whole catalogue now
    assert len(whole["items"]) == 3 and all(i["explanation"] for i in whole["items"])
    with pytest.raises(ConfigError, match="was described differently before"):
        rec.recommend(user, "vr_lounge", k=3, description="a quiet reading room")
    with pytest.raises(ConfigError, match="is a scenario of the data: it needs no description"):
        rec.recommend(user, "search", k=3, description="typed queries")
    with pytest.raises(ConfigError, match="Unknown candidate item"):
        rec.recommend(user, "vr_lounge", k=1, candidates=["no-such-item"])
    assert main(["recommend", str(sharp_text_run), "--data", str(left_out), "--user", user, "--scenario", "vr_den",
                 "--describe", text, "-k", "2"]) == 0
    assert "New scenario vr_den: 1.00 game_lobby (text:tfidf)" in capsys.readouterr().out


def test_scenarios_described_at_once_from_many_threads_stay_consistent(sharp_text_run: Path,
                                                                       left_out: Path) -> None:
    """The service answers from a thread pool: requests that describe new scenarios (which grows the model's
    mix) run while others score in a described one. Each new scenario gets its own scenario, catalogue and row of
    the mix, and every answer scores as described (a forward that saw the mix grow under it failed with a shape
    error)."""
    from concurrent.futures import ThreadPoolExecutor

    rec = Recommender.load(sharp_text_run, left_out)
    user = str(rec.ds.vocab["user_id"]["value"][5])
    lobby = rec.recommend(user, "game_lobby", k=5)
    candidates = [i["item"] for i in lobby["items"]]
    text = rec.enc.scenario_descriptions_["game_lobby"]
    rec.recommend(user, "vr_room_first", k=5, description=text, candidates=candidates)
    rows_before = len(rec.model.mix)  # type: ignore[attr-defined, arg-type]

    def work(k: int) -> dict[str, Any]:
        if k % 2:  # half describe a new scenario, half score in the one described before
            return rec.recommend(user, f"vr_room_{k}", k=5, description=text, candidates=candidates)
        return rec.recommend(user, "vr_room_first", k=5, candidates=candidates, explain=k % 4 == 0)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(work, range(32)))
    indices = [rec._described[f"vr_room_{k}"][2] for k in range(1, 32, 2)]
    assert len(set(indices)) == 16 and len(rec.model.mix) == rows_before + 16  # type: ignore[attr-defined, arg-type]
    for got in answers:
        np.testing.assert_allclose([i["score"] for i in got["items"]], [i["score"] for i in lobby["items"]],
                                   rtol=1e-5)
