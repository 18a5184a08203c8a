"""The synthetic platform: shape, reproducibility, and a planted transfer that really drives the labels."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from mistrec.data.synthetic import SyntheticConfig, generate, planted_offdiag, transfer_platform
from mistrec.errors import ConfigError


def test_scenarios_differ_in_size_and_pool() -> None:
    d = generate(SyntheticConfig(n_users=300, seed=1))
    counts = d.interactions.group_by("scenario").len().sort("len", descending=True)
    assert counts["scenario"].to_list() == ["home_feed", "search", "game_lobby", "vr_showroom"]
    assert counts["len"][0] > 3 * counts["len"][3]
    assert np.allclose(d.transfer.sum(axis=1), 1.0)
    pools = d.interactions.group_by("scenario").agg(pl.col("item_id").n_unique()).sort("item_id")
    assert pools["item_id"].to_list() == [80, 150, 300, 400]  # each scenario has its own item pool


def test_same_seed_same_data() -> None:
    a = generate(SyntheticConfig(n_users=100, seed=3)).interactions
    b = generate(SyntheticConfig(n_users=100, seed=3)).interactions
    c = generate(SyntheticConfig(n_users=100, seed=4)).interactions
    assert a.equals(b) and not a.equals(c)


def test_planted_transfer_drives_clicks_in_the_sparse_scenario() -> None:
    d = generate(SyntheticConfig(n_users=1500, seed=0))
    inter = d.interactions.filter(d.interactions["scenario"] == "vr_showroom")
    users = np.array([int(u[1:]) for u in inter["user_id"].to_list()])
    item_index = {name: i for i, name in enumerate(d.items["item_id"].to_list())}
    items = d.item_vectors[[item_index[i] for i in inter["item_id"].to_list()]]
    t = d.scenario_names.index("vr_showroom")
    own = np.einsum("nd,nd->n", d.user_interest[users, t], items)
    transferred = np.einsum("ts,usd->utd", d.transfer, d.user_interest)[users, t]
    y = inter["label"].to_numpy()
    auc_own = roc_auc_score(y, own)
    auc_transferred = roc_auc_score(y, np.einsum("nd,nd->n", transferred, items))
    # vr_showroom puts only 0.2 of its weight on itself: the other scenarios' interests carry most signal.
    assert auc_transferred > auc_own + 0.05
    assert auc_transferred > 0.7


def test_bad_transfer_matrix_is_refused() -> None:
    with pytest.raises(ConfigError, match="rows sum to 1"):
        generate(SyntheticConfig(transfer=np.ones((4, 4))))


def test_the_old_platform_is_unchanged_by_the_new_knobs_at_their_defaults() -> None:
    a = generate(SyntheticConfig(n_users=80, seed=2)).interactions
    b = generate(SyntheticConfig(n_users=80, seed=2, strength=1.0, shared_items=0.0, categories=0,
                                 new_users=(0.0, 0.0, 0.0, 0.0))).interactions
    assert a.equals(b)


def test_transfer_platform_shares_items_and_has_users_new_in_a_scenario() -> None:
    d = generate(transfer_platform(n_users=600, seed=1))
    inter = d.interactions
    shared = inter.filter(pl.col("item_id").str.starts_with("shared_"))
    # the shared catalogue's items are shown in every scenario
    assert shared.group_by("item_id").agg(pl.col("scenario").n_unique())["scenario"].max() == 4
    assert d.items["category"].n_unique() > 8  # 32 content directions, not the d latent coordinates
    # users new in vr_showroom (half of them) have no event there before their join, late in the period
    first = inter.filter(pl.col("scenario") == "vr_showroom").group_by("user_id").agg(pl.col("timestamp").min())
    start, period = inter["timestamp"].min(), 90 * 86400
    late = (first["timestamp"] - start) > 0.75 * period
    assert 0.3 < late.mean() < 0.7
    assert planted_offdiag(d.transfer)[3] == pytest.approx(0.8)


def test_identity_control_clicks_follow_the_scenarios_own_interest_only() -> None:
    d = generate(transfer_platform(strength=0.0, n_users=800, seed=2))
    assert np.allclose(d.transfer, np.eye(4)) and planted_offdiag(d.transfer).max() == 0
    inter = d.interactions.filter(pl.col("scenario") == "vr_showroom")
    users = np.array([int(u[1:]) for u in inter["user_id"].to_list()])
    item_index = {name: i for i, name in enumerate(d.items["item_id"].to_list())}
    items = d.item_vectors[[item_index[i] for i in inter["item_id"].to_list()]]
    y = inter["label"].to_numpy()
    own = roc_auc_score(y, np.einsum("nd,nd->n", d.user_interest[users, 3], items))
    home = roc_auc_score(y, np.einsum("nd,nd->n", d.user_interest[users, 0], items))
    assert own > 0.75 and abs(home - 0.5) < 0.03  # nothing of the home feed's interest reaches vr clicks
    # at full strength the home feed's interest predicts vr clicks
    d1 = generate(transfer_platform(strength=1.0, n_users=800, seed=2))
    inter1 = d1.interactions.filter(pl.col("scenario") == "vr_showroom")
    users1 = np.array([int(u[1:]) for u in inter1["user_id"].to_list()])
    items1 = d1.item_vectors[[item_index[i] for i in inter1["item_id"].to_list()]]
    home1 = roc_auc_score(inter1["label"].to_numpy(), np.einsum("nd,nd->n", d1.user_interest[users1, 0], items1))
    assert home1 > 0.65


def test_bad_knobs_are_refused() -> None:
    for bad, match in (({"strength": 1.5}, "strength"), ({"choice": "x"}, "choice"), ({"shared_items": -1}, "shared"),
                       ({"new_users": (0.1,)}, "new_users"), ({"join_window": (0.9, 0.1)}, "join_window"),
                       ({"choice_candidates": -1}, "choice_candidates")):
        with pytest.raises(ConfigError, match=match):
            SyntheticConfig(**bad).matrix()  # type: ignore[arg-type]


def _chosen_alignment(d: object) -> float:
    """The mean of b[u, s] . v[i] over the events' chosen items (the choice's preference), home_feed only."""
    inter = d.interactions.filter(pl.col("scenario") == "home_feed")  # type: ignore[attr-defined]
    users = np.array([int(u[1:]) for u in inter["user_id"].to_list()])
    index = {name: i for i, name in enumerate(d.items["item_id"].to_list())}  # type: ignore[attr-defined]
    vectors = d.item_vectors[[index[i] for i in inter["item_id"].to_list()]]  # type: ignore[attr-defined]
    return float(np.einsum("nd,nd->n", d.user_interest[users, 0], vectors).mean())  # type: ignore[attr-defined]


def test_a_large_pool_is_chosen_from_through_sampled_candidates_with_the_same_preference() -> None:
    base = {"n_users": 400, "seed": 5, "pool_sizes": (2000, 300, 150, 80)}
    full = generate(SyntheticConfig(**base))  # type: ignore[arg-type]
    sampled = generate(SyntheticConfig(**base, choice_candidates=200))  # type: ignore[arg-type]
    # only home_feed's pool is larger than 200, and only its choices differ in kind
    rest = pl.col("scenario") != "home_feed"
    assert not sampled.interactions.filter(~rest)["item_id"].equals(full.interactions.filter(~rest)["item_id"])
    # chosen by the same interest: as aligned with it as the full draw's (a sample of 200 of 2,000 items finds
    # slightly less aligned ones), far above what a uniform choice gives (about 0)
    a_full, a_sampled = _chosen_alignment(full), _chosen_alignment(sampled)
    assert a_sampled > 0.6 * a_full and a_sampled > 0.5, (a_full, a_sampled)
    assert sampled.interactions.filter(~rest)["item_id"].n_unique() > 1500  # the whole pool is reachable


@pytest.mark.parametrize("noise", [0.2, 1.0])
def test_descriptions_say_where_an_item_lies_and_pure_noise_says_nothing(noise: float) -> None:
    """Items close in the latent space share description words (they name the directions the item leans on); with
    every word drawn from the whole vocabulary (noise 1, the control) they share no more than any two items."""
    from mistrec.data.synthetic import WORDS

    data = generate(SyntheticConfig(n_users=50, events_per_user=10, description_words=10, description_noise=noise,
                                    seed=3))
    v = data.item_vectors
    word_list = {w: j for j, words in enumerate(WORDS) for w in words}
    bags = np.zeros((len(v), len(WORDS)))
    for i, text in enumerate(data.items["description"].to_list()):  # the items table is in item_vectors' order
        for w in text.split():
            bags[i, word_list[w]] += 1
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    cos = (unit @ unit.T)[np.triu_indices(len(v), 1)]
    shared = (bags @ bags.T)[np.triu_indices(len(v), 1)]
    rho = np.corrcoef(cos, shared)[0, 1]
    if noise < 1:
        assert rho > 0.3
    else:
        assert abs(rho) < 0.05
