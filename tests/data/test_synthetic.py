"""The synthetic platform: shape, reproducibility, and a planted transfer that really drives the labels."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from mistrec.data.synthetic import SyntheticConfig, generate
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
