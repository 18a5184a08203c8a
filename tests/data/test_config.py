"""The dataset YAML refuses what it does not understand, naming the key and the allowed ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mistrec.data.config import DatasetConfig, LabelRule, load_dataset_config
from mistrec.errors import ConfigError

BASE: dict[str, Any] = {"name": "t", "interactions": [{"path": "a.csv", "scenario": "s",
                                                        "columns": {"user_id": "u", "item_id": "i"}}]}


def build(**changes: Any) -> DatasetConfig:
    d = {**BASE, **changes}
    return DatasetConfig.from_dict(d, base_dir=Path("/data"))


def test_minimal_config_has_honest_defaults() -> None:
    cfg = build()
    assert cfg.protocol.name is None  # decided by the data: predefined when it carries splits, else temporal
    assert cfg.protocol.resolved(data_has_splits=False).name == "temporal"
    assert cfg.protocol.resolved(data_has_splits=True).name == "predefined"
    assert cfg.history.length == 50
    assert cfg.cleaning.deduplicate and cfg.cleaning.invalid_rows == "error"
    assert (cfg.cleaning.kcore_user, cfg.cleaning.kcore_item) == (0, 0)
    assert cfg.interactions[0].path == Path("/data/a.csv")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"labels": {}}, r"Unknown key 'labels' in the dataset YAML \(top level\)\. Allowed keys: name, interactions"),
        ({"cleaning": {"kcore": {"users": 5}}}, r"Unknown key 'users' in cleaning\.kcore\. Allowed keys: user, item"),
        ({"label": {"column": "r", "rule": "more than 3"}}, r"label\.rule must be a comparison such as '> 3'"),
        ({"protocol": {"name": "chrono"}}, r"protocol\.name must be one of random, temporal"),
        ({"history": {"length": 0}}, r"history\.length must be an int >= 1\. Got 0"),
        ({"scenario_from": {"table": "users", "column": "age"},
          "interactions": [{"path": "a.csv", "columns": {"user_id": "u", "item_id": "i"}}]},
         r"the YAML has no 'users' table"),
        ({"interactions": []}, r"'interactions' must be a non-empty list"),
    ],
)
def test_bad_config_is_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(**changes)


def test_source_errors() -> None:
    bad_key = {**BASE["interactions"][0], "seperator": ";"}
    msg = r"Unknown key 'seperator' in interactions\[0\]\. Allowed keys: path, format, sep"
    with pytest.raises(ConfigError, match=msg):
        build(interactions=[bad_key])
    positional = {"path": "a.tsv", "header": False, "scenario": "s", "columns": {"user_id": "u", "item_id": 1}}
    with pytest.raises(ConfigError, match=r"give the 0-based column position instead"):
        build(interactions=[positional])
    with pytest.raises(ConfigError, match=r"columns must map 'item_id'"):
        build(interactions=[{"path": "a.csv", "scenario": "s", "columns": {"user_id": "u"}}])
    both = {**BASE["interactions"][0], "columns": {"user_id": "u", "item_id": "i", "scenario": "s"}}
    with pytest.raises(ConfigError, match="either as a constant"):
        build(interactions=[both])
    none = {"path": "a.csv", "columns": {"user_id": "u", "item_id": "i"}}
    with pytest.raises(ConfigError, match=r"has no scenario"):
        build(interactions=[none])


def test_label_rules() -> None:
    assert LabelRule.from_dict({"column": "rating", "rule": ">= 4"}, "label").describe() == "1 if rating >= 4 else 0"
    assert LabelRule.from_dict({"implicit": True}, "label").implicit
    with pytest.raises(ConfigError, match="implicit: true takes no column"):
        LabelRule.from_dict({"implicit": True, "column": "x"}, "label")


def test_yaml_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Dataset config not found"):
        load_dataset_config(tmp_path / "nope.yaml")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml is not valid YAML at line"):
        load_dataset_config(tmp_path / "broken.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        load_dataset_config(tmp_path / "empty.yaml")
