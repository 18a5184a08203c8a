"""Warm start on other data (mistrec.train.warm): rows follow ids, not indices; new ids keep their fresh rows;
(item, scenario) tables map by item; other tensors are copied; different scenarios are refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from mistrec.data import PreparedDataset, ProtocolConfig, load_dataset_config, prepare
from mistrec.errors import ConfigError
from mistrec.features import FeatureEncoder
from mistrec.train.warm import id_rows, warm_start


def _prepared(tiny: dict[str, Any], name: str) -> PreparedDataset:
    prepare(load_dataset_config(tiny["yaml"]), tiny["dir"] / name, protocol=ProtocolConfig(name="random", seed=1),
            quiet=True)
    return PreparedDataset.load(tiny["dir"] / name)


def test_id_rows_follow_the_ids(tiny: dict[str, Any]) -> None:
    old = _prepared(tiny, "old")
    home = tiny["dir"] / "home.csv"  # the newer data: u1 gone, u0 and item zz new (they sort first: indices move)
    lines = home.read_text().splitlines()
    home.write_text("\n".join([lines[0], *[r for r in lines[1:] if not r.startswith("u1,")],
                               "u0,zz,600,5", "u0,a,610,4", "u0,b,620,1"]) + "\n")
    new = _prepared(tiny, "new")
    users = id_rows(old, new, "user_id")
    old_index = dict(zip(old.vocab["user_id"]["value"].to_list(), old.vocab["user_id"]["index"].to_list(),
                         strict=True))
    for value, index in zip(new.vocab["user_id"]["value"].to_list(), new.vocab["user_id"]["index"].to_list(),
                            strict=True):
        assert users[index] == old_index.get(value, -1), value
    assert users[0] == 0 and users[new.vocab["user_id"].filter(pl_value("u0"))["index"][0]] == -1
    assert (users >= 0).sum() - 1 == len(set(old_index) & set(new.vocab["user_id"]["value"].to_list()))
    known = np.flatnonzero(users > 0)
    assert (users[known] != known).any()  # the indices did move: an identity map would be wrong here
    items = id_rows(old, new, "item_id")
    assert (items == -1).sum() == 1  # zz, the one new item


def pl_value(value: str) -> Any:
    import polars as pl

    return pl.col("value") == value


class _Toy(nn.Module):
    def __init__(self, users: int, items: int, scenarios: int) -> None:
        super().__init__()
        self.user = nn.Embedding(users, 2)
        self.item = nn.Embedding(items, 2)
        self.item_bias = nn.Embedding(items * scenarios, 1)
        self.top = nn.Linear(2, 1)


def test_warm_start_maps_id_tables_copies_the_rest_and_refuses_other_scenarios(tiny: dict[str, Any]) -> None:
    spec = FeatureEncoder().fit(_prepared(tiny, "p")).spec_
    old_spec = replace(spec, n_users=4, n_items=3)
    new_spec = replace(spec, n_users=5, n_items=3)
    s = spec.n_scenarios
    torch.manual_seed(0)
    old, new = _Toy(4, 3, s), _Toy(5, 3, s)
    fresh = {k: v.clone() for k, v in new.state_dict().items()}
    users = np.array([0, 2, -1, 1, 3])  # new user 1 was old 2; new user 2 is new; ...
    items = np.array([0, 2, 1])  # items 1 and 2 swapped
    report = warm_start(new, old.state_dict(), old_spec, new_spec, users, items)
    assert torch.equal(new.user.weight[1], old.user.weight[2]) and torch.equal(new.user.weight[4], old.user.weight[3])
    assert torch.equal(new.user.weight[2], fresh["user.weight"][2])  # a new user keeps its fresh row
    assert torch.equal(new.item.weight[1], old.item.weight[2])  # same size, but mapped: the name says item
    bias_old, bias_new = old.item_bias.weight.view(3, s), new.item_bias.weight.view(3, s)
    assert torch.equal(bias_new[1], bias_old[2]) and torch.equal(bias_new[2], bias_old[1])
    assert torch.equal(new.top.weight, old.top.weight) and "top.weight" in report.copied
    assert set(report.mapped) == {"user.weight", "item.weight", "item_bias.weight"} and not report.fresh
    other = replace(new_spec, scenario_names=tuple(reversed(spec.scenario_names)))
    with pytest.raises(ConfigError, match="needs the same scenarios, in the same order"):
        warm_start(new, old.state_dict(), old_spec, other, users, items)


def test_init_from_a_run_whose_prepared_data_is_gone_is_named(tiny: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    from mistrec.errors import ArtifactError
    from mistrec.eval.fit import fit_run
    from mistrec.train import TrainConfig

    old = _prepared(tiny, "old")
    fit_run(old.path, "popularity", tmp_path / "run", train_cfg=TrainConfig(epochs=1), quiet=True)
    other = ProtocolConfig(name="random", seed=2)  # another split: other prepared data
    prepare(load_dataset_config(tiny["yaml"]), tiny["dir"] / "other", protocol=other, quiet=True)
    shutil.rmtree(old.path)
    with pytest.raises(ArtifactError, match=r"was trained on other prepared data .* which is not there any more"):
        fit_run(tiny["dir"] / "other", "popularity", tmp_path / "run2", init_from=tmp_path / "run", quiet=True)
