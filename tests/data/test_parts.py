"""Preparing in parts of users (`prepare(..., parts=N)`, data/parts.py): the same prepared data as in one piece
where nothing is drawn at random, valid data (leakage checks, negatives from the whole data's pools, windows into
the file's events) where something is, and a clear refusal of what cannot be prepared in parts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from mistrec.data import PreparedDataset, load_dataset_config, prepare
from mistrec.data.config import ProtocolConfig
from mistrec.data.shards import Shards
from mistrec.errors import ConfigError, DataError
from tests.conftest import write_yaml


def _prepare(tiny: dict[str, Any], name: str, parts: int, cfg: dict[str, Any] | None = None,
             protocol: ProtocolConfig | None = None, shard_rows: int = 1_000_000) -> Path:
    out = tiny["dir"] / name
    yaml_path = write_yaml(tiny["dir"] / f"{name}.yaml", cfg or tiny["cfg"])
    prepare(load_dataset_config(yaml_path), out, parts=parts, protocol=protocol, shard_rows=shard_rows, quiet=True)
    return out


def _files(root: Path) -> dict[str, pl.DataFrame]:
    return {str(p.relative_to(root)): pl.read_parquet(p) for p in sorted(root.rglob("*.parquet"))}


def _manifest(root: Path) -> dict[str, Any]:
    doc = json.loads((root / "manifest.json").read_text())
    for key in ("created_seconds", "shards"):  # the time, and shards that end where parts end
        doc.pop(key)
    return doc


def test_parts_give_the_data_prepared_in_one_piece(tiny: dict[str, Any]) -> None:
    # explicit labels and a temporal split: nothing is drawn, so every file and count must be the same
    home = tiny["dir"] / "home.csv"
    home.write_text(home.read_text() + ",z,600,5\nu2,z,,4\n")  # a row without user, one without time: invalid
    cfg = dict(tiny["cfg"], cleaning={"invalid_rows": "drop"})
    one, three = _prepare(tiny, "one", 1, cfg), _prepare(tiny, "three", 3, cfg)
    files_one, files_three = _files(one), _files(three)
    assert files_one.keys() == files_three.keys() and "interactions.parquet" in files_one
    for name, frame in files_one.items():
        assert frame.equals(files_three[name]), name
    m1, m3 = _manifest(one), _manifest(three)
    assert m1 == m3
    assert m1["cleaning"]["invalid_rows"]["removed"] == {"missing_user_id": 1, "missing_timestamp": 1}
    shards = json.loads((three / "manifest.json").read_text())["shards"]
    assert len(shards) == 3  # a part is never split further at these sizes, and each part ends a shard
    assert [s["rows"][0] for s in shards] == [0, shards[0]["rows"][1], shards[1]["rows"][1]]


def test_parts_with_sampled_negatives_and_cold_users_are_valid(tiny: dict[str, Any]) -> None:
    # implicit positives: negatives and cold users are drawn per part, so the data differs from one piece's, but
    # prepare's own leakage checks pass, every negative comes from its scenario's pool over the whole data as of
    # its split (the items with a positive in that split or an earlier one), and the windows point into the file's
    # events
    cfg = {**tiny["cfg"], "label": {"implicit": True}}
    cfg["interactions"] = [dict(s) for s in cfg["interactions"]]
    for s in cfg["interactions"]:
        s["columns"] = {k: v for k, v in s["columns"].items() if k != "rating"}
    protocol = ProtocolConfig(name="cold-user", target="search", cold_fraction=0.5)
    out = _prepare(tiny, "implicit", 2, cfg, protocol, shard_rows=5)
    ds = PreparedDataset.load(out)
    checks = ds.manifest["leakage_checks"]
    assert checks["negatives_not_known_positives"] == "passed"
    assert checks["history_strictly_before_and_train_only"] == "passed"
    rows = ds.interactions
    assert rows["row"].to_list() == list(range(rows.height))
    real, sampled = rows.filter(~pl.col("sampled")), rows.filter(pl.col("sampled"))
    assert sampled.height == real.height - ds.manifest["negatives"]["unfilled"]
    assert checks["negatives_name_items_known_by_their_split"] == "passed"
    order = {"train": 0, "valid": 1, "test": 2}
    first = {}  # (scenario, item) -> the earliest split with a positive of it, over every part
    for s, i, split in real.select("scenario", "item", "split").iter_rows():
        first[(s, i)] = min(first.get((s, i), 2), order[split])
    assert all(first[(s, i)] <= order[split] for s, i, split in sampled.select("scenario", "item", "split").iter_rows())
    # a control that the rule can fail here: some items show up only after train, and test negatives may name them
    assert any(v > 0 for v in first.values())
    assert {(u, i) for u, i in sampled.select("user", "item").iter_rows()}.isdisjoint(
        {(u, i) for u, i in real.select("user", "item").iter_rows()})
    assert ds.manifest["protocol"]["cold_users"] >= 1
    # each shard's windows, moved to its own events, hold the user's earlier training events
    for k in range(len(Shards.of(out, ds.manifest))):
        part, events = Shards.of(out, ds.manifest).read(k)
        for u, t, lo, hi in part.select("user", "timestamp", "hist_start", "hist_end").iter_rows():
            assert np.all(events.user[lo:hi] == u) and np.all(events.ts[lo:hi] < t)


@pytest.mark.parametrize(("change", "named"), [
    ({"cleaning": {"kcore": {"user": 2}}}, "k-core"),
    ({"protocol": {"name": "cold-item"}}, "cold-item"),
    ({"drop_timestamp": True}, "no timestamp"),
    ({"sep": "::"}, "cannot be scanned"),
])
def test_what_cannot_be_prepared_in_parts_is_refused_with_the_reason(tiny: dict[str, Any], change: dict[str, Any],
                                                                      named: str) -> None:
    cfg = dict(tiny["cfg"])
    cfg["interactions"] = [dict(s) for s in cfg["interactions"]]
    if change.pop("drop_timestamp", False):
        cfg["interactions"][0]["columns"] = {k: v for k, v in cfg["interactions"][0]["columns"].items()
                                             if k != "timestamp"}
    if "sep" in change:
        cfg["interactions"][0]["sep"] = change.pop("sep")
    cfg.update(change)
    with pytest.raises(ConfigError, match=named) as err:
        _prepare(tiny, "refused", 2, cfg)
    assert "--parts 1" in str(err.value)


def test_a_file_that_cannot_be_parsed_is_named_in_parts_too(tiny: dict[str, Any]) -> None:
    home = tiny["dir"] / "home.csv"
    home.write_text(home.read_text() + "u9,a,700,5,extra\n")
    with pytest.raises(DataError, match=r"home\.csv line \d+ .*could not be parsed"):
        _prepare(tiny, "ragged", 2)
