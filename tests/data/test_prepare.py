"""End to end: dataset YAML -> prepared directory, on tiny files whose right answers are known by hand."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from mistrec.data import PreparedDataset, ProtocolConfig, load_dataset_config, prepare
from mistrec.errors import ConfigError, DataError, LeakageError
from tests.conftest import write_yaml


def run(tiny: dict[str, Any], cfg: dict[str, Any] | None = None, **kw: Any) -> PreparedDataset:
    path = tiny["yaml"] if cfg is None else write_yaml(tiny["dir"] / "variant.yaml", cfg)
    prepare(load_dataset_config(path), tiny["dir"] / "out", force=True, **kw)  # tests prepare it again and again
    return PreparedDataset.load(tiny["dir"] / "out")


def variant(tiny: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(tiny["cfg"])


def raw_ids(ds: PreparedDataset, df: pl.DataFrame) -> pl.DataFrame:
    users = ds.vocab["user_id"].select(pl.col("index").alias("user"), pl.col("value").alias("user_id"))
    items = ds.vocab["item_id"].select(pl.col("index").alias("item"), "item_id")
    return df.join(users, on="user").join(items, on="item")


def test_two_sources_are_read_labelled_and_split(tiny: dict[str, Any]) -> None:
    ds = run(tiny)
    inter = ds.interactions
    assert inter.height == 22
    assert ds.scenarios == ["home", "search"]
    # rating > 3 -> 1: home has 11 of 16 positives, search 4 of 6.
    by = ds.manifest["counts"]["after_cleaning"]
    assert (by["home"]["rows"], by["search"]["rows"]) == (16, 6)
    assert by["home"]["positive_rate"] == pytest.approx(11 / 16)
    assert by["search"]["positive_rate"] == pytest.approx(4 / 6)
    # temporal: each user's last event (by time, across scenarios) is test, the one before valid.
    named = raw_ids(ds, inter)
    last = named.sort("timestamp").group_by("user_id").agg(pl.col("split").last(), pl.col("item_id").last())
    assert set(last["split"].cast(pl.String).to_list()) == {"test"}
    assert dict(zip(last["user_id"], last["item_id"], strict=True)) == {"u1": "e", "u2": "b", "u3": "a", "u4": "q3"}
    assert ds.manifest["leakage_checks"]["train_before_eval_per_user"] == "passed"


def test_history_holds_only_earlier_training_events_of_the_user(tiny: dict[str, Any]) -> None:
    ds = run(tiny)
    inter = raw_ids(ds, ds.interactions.with_row_index("pos"))
    u1_test = inter.filter((pl.col("user_id") == "u1") & (pl.col("split") == "test"))
    h = ds.histories(u1_test["pos"].to_numpy())
    # u1's events before t=500: a(100) q1(150) b(200) c(300) q2(350) d(400); d is valid (not train), so the
    # last three training events are b, c, q2, most recent last.
    items = ds.vocab["item_id"]
    names = dict(zip(items["index"], items["item_id"], strict=True))
    assert [names[i] for i in h.items[0]] == ["b", "c", "q2"]
    assert h.mask.all()
    assert h.time_gaps[0].tolist() == [300, 200, 150]
    assert h.labels[0].tolist() == [0.0, 1.0, 0.0]  # rating > 3
    assert h.values[0].tolist() == [2.0, 4.0, 2.0]  # the ratings themselves: training labels, graded
    scen = ds.vocab["scenario"]
    assert [dict(zip(scen["index"], scen["value"], strict=True))[s] for s in h.scenarios[0]] == ["home", "home",
                                                                                                  "search"]


def test_timestamps_in_ms_and_date_formats(tiny: dict[str, Any]) -> None:
    d = tiny["dir"]
    (d / "ms.csv").write_text("u,i,t,r\nx,a,1500,5\nx,b,2500,1\n")
    (d / "dates.csv").write_text("u,i,t,r\nx,c,1970-01-01 00:00:03,5\n")
    cfg = variant(tiny)
    cfg["interactions"] = [
        {"path": "ms.csv", "scenario": "home", "timestamp": {"unit": "ms"},
         "columns": {"user_id": "u", "item_id": "i", "timestamp": "t", "rating": "r"}},
        {"path": "dates.csv", "scenario": "search", "timestamp": {"unit": "%Y-%m-%d %H:%M:%S"},
         "columns": {"user_id": "u", "item_id": "i", "timestamp": "t", "rating": "r"}},
    ]
    cfg.pop("users"), cfg.pop("items")
    ds = run(tiny, cfg)
    assert sorted(ds.interactions["timestamp"].to_list()) == [1, 2, 3]


def test_duplicates_are_removed_and_counted(tiny: dict[str, Any]) -> None:
    with (tiny["dir"] / "home.csv").open("a") as fh:
        fh.write("u1,a,100,5\nu1,a,100,5\n")
    ds = run(tiny)
    assert ds.manifest["cleaning"]["duplicates_removed"] == 2
    assert ds.manifest["counts"]["before_cleaning"]["home"]["rows"] == 18
    assert ds.manifest["counts"]["after_cleaning"]["home"]["rows"] == 16


def test_unparsable_label_is_an_error_naming_file_line_and_value(tiny: dict[str, Any]) -> None:
    with (tiny["dir"] / "home.csv").open("a") as fh:
        fh.write("u1,z,900,five\n")
    with pytest.raises(DataError, match=r"home\.csv line 18, column 'rating': value 'five': unparsable label"):
        run(tiny)


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-Infinity"])
def test_a_non_finite_rating_is_no_label(tiny: dict[str, Any], value: str) -> None:
    """With the rule '> 3' a NaN or inf rating once became a label (inf > 3: a positive; NaN a graded value that
    turned the metrics file into invalid JSON): it is an unparsable label, named, or dropped and counted."""
    with (tiny["dir"] / "home.csv").open("a") as fh:
        fh.write(f"u1,z,900,{value}\n")
    with pytest.raises(DataError, match=rf"home\.csv line 18, column 'rating': value '{value}': unparsable label"):
        run(tiny)
    cfg = variant(tiny)
    cfg["cleaning"] = {"invalid_rows": "drop"}
    ds = run(tiny, cfg)
    assert ds.manifest["cleaning"]["invalid_rows"]["removed"] == {"unparsable_label": 1}
    assert ds.interactions["label_value"].is_finite().all()


def test_a_ragged_row_and_bad_bytes_are_named_by_line(tiny: dict[str, Any]) -> None:
    """Both were reported without the line number (and no hint about the encoding key)."""
    home = tiny["dir"] / "home.csv"
    original = home.read_bytes()
    home.write_bytes(original + b"u1,z,900,4,extra\n")
    with pytest.raises(DataError, match=r"home\.csv line 18 \(5 fields where the first line has 4\)"):
        run(tiny)
    home.write_bytes(original + b"u1,caf\xe9,900,4\n")
    with pytest.raises(DataError, match=r"home\.csv line 18 \(bytes .* are not utf-8: set 'encoding' in the YAML"):
        run(tiny)


def test_a_non_finite_timestamp_is_unparsable(tiny: dict[str, Any]) -> None:
    with (tiny["dir"] / "home.csv").open("a") as fh:
        fh.write("u1,z,inf,4\n")
    with pytest.raises(DataError, match=r"home\.csv line 18, column 'ts' \(for 'timestamp'\): value 'inf': "
                                        "unparsable timestamp"):
        run(tiny)


def test_drop_policy_counts_invalid_rows_per_reason(tiny: dict[str, Any]) -> None:
    with (tiny["dir"] / "home.csv").open("a") as fh:
        fh.write("u1,z,900,five\n,z,901,4\nu2,z,,4\nu2,y,yesterday,4\n")
    cfg = variant(tiny)
    cfg["cleaning"] = {"invalid_rows": "drop"}
    ds = run(tiny, cfg)
    removed = ds.manifest["cleaning"]["invalid_rows"]["removed"]
    assert removed == {"missing_user_id": 1, "unparsable_label": 1, "missing_timestamp": 1,
                       "unparsable_timestamp": 1}
    assert ds.manifest["rows_read"] == 26
    assert ds.interactions.height == 22
    assert "line 21" in ds.manifest["cleaning"]["invalid_rows"]["examples"]["unparsable_timestamp"][0]


def test_empty_scenario_value_is_an_error(tiny: dict[str, Any]) -> None:
    with (tiny["dir"] / "search.tsv").open("a") as fh:
        fh.write("u1\tq9\t4\t999\t\n")
    with pytest.raises(DataError, match=r"search\.tsv line 7, column 'scenario': an empty value: missing scenario"):
        run(tiny)


def test_empty_constant_scenario_is_a_config_error(tiny: dict[str, Any]) -> None:
    cfg = variant(tiny)
    cfg["interactions"][0]["scenario"] = "  "
    with pytest.raises(ConfigError, match=r"interactions\[0\]\.scenario is empty"):
        run(tiny, cfg)


def test_scenario_from_user_attribute_with_map_bins_and_first_token(tiny: dict[str, Any]) -> None:
    cfg = variant(tiny)
    for src in cfg["interactions"]:
        src.pop("scenario", None)
        src["columns"].pop("scenario", None)
    cfg["scenario_from"] = {"table": "users", "column": "age", "bins": [25, 35], "labels": ["young", "mid", "old"]}
    ds = run(tiny, cfg)
    named = raw_ids(ds, ds.interactions)
    scen = dict(zip(ds.vocab["scenario"]["index"], ds.vocab["scenario"]["value"], strict=True))
    per_user = {u: {scen[s] for s in g} for u, g in named.group_by("user_id").agg("scenario").iter_rows()}
    assert per_user == {"u1": {"young"}, "u2": {"mid"}, "u3": {"old"}, "u4": {"mid"}}

    cfg["scenario_from"] = {"table": "users", "column": "age", "map": {18: "a", 25: "b"}}
    with pytest.raises(DataError, match=r"values '31', '40' are not in scenario_from\.map"):
        run(tiny, cfg)

    cfg["scenario_from"] = {"table": "items", "column": "genre", "token": "first", "sep": "|"}
    ds = run(tiny, cfg)
    assert ds.scenarios == ["Action", "Comedy", "Drama"]


def test_item_id_scope_scenario_keeps_same_ids_apart(tiny: dict[str, Any]) -> None:
    d = tiny["dir"]
    (d / "x.csv").write_text("u,i\nu1,1\nu2,1\nu1,2\n")
    (d / "y.csv").write_text("u,i\nu1,1\nu2,3\n")
    cols = {"user_id": "u", "item_id": "i"}
    cfg = {"name": "scoped", "label": {"implicit": True},
           "interactions": [
               {"path": "x.csv", "scenario": "x", "item_id_scope": "scenario", "columns": cols},
               {"path": "y.csv", "scenario": "y", "item_id_scope": "scenario", "columns": cols},
           ], "protocol": {"name": "random", "valid": 0.0, "test": 0.2}}
    ds = run(tiny, cfg)
    assert ds.vocab["item_id"].height == 4  # x/1, x/2, y/1, y/3
    assert ds.manifest["timestamp"]["from_file_order"] is True
    assert ds.manifest["negatives"]["per_positive"] == 1


def test_predefined_split_and_a_leaking_split(tiny: dict[str, Any]) -> None:
    d = tiny["dir"]
    (d / "train.csv").write_text("u,i,t,l\nu1,a,1,1\nu1,b,2,0\nu2,a,3,1\n")
    (d / "test.csv").write_text("u,i,t,l\nu1,c,4,1\nu2,b,5,0\n")
    cfg = {"name": "pre", "interactions": [
        {"path": "train.csv", "scenario": "s", "split": "train",
         "columns": {"user_id": "u", "item_id": "i", "timestamp": "t", "label": "l"}},
        {"path": "test.csv", "scenario": "s", "split": "test",
         "columns": {"user_id": "u", "item_id": "i", "timestamp": "t", "label": "l"}}]}
    ds = run(tiny, cfg)
    assert ds.manifest["protocol"]["name"] == "predefined"
    assert ds.split("test").height == 2
    ds = run(tiny, cfg, protocol=ProtocolConfig(seed=5))  # a seed alone does not ask for another protocol
    assert ds.manifest["protocol"]["name"] == "predefined"
    with pytest.raises(ConfigError, match=r"predefined splits.*--protocol predefined"):
        run(tiny, cfg, protocol=ProtocolConfig(name="random"))
    (d / "test.csv").write_text("u,i,t,l\nu1,c,4,1\nu1,a,1,1\n")  # an event of train copied into test
    with pytest.raises(LeakageError, match="1 evaluation interactions also appear in train"):
        run(tiny, cfg)


def test_split_column_with_value_map(tiny: dict[str, Any]) -> None:
    d = tiny["dir"]
    (d / "tagged.csv").write_text("u,i,t,l,tag\nu1,a,1,1,0\nu1,b,2,0,0\nu1,c,3,1,1\nu1,d,4,1,2\nu1,e,5,1,7\n")
    cfg = {"name": "tag", "split_values": {0: "train", 1: "valid", 2: "test"}, "interactions": [
        {"path": "tagged.csv", "scenario": "s",
         "columns": {"user_id": "u", "item_id": "i", "timestamp": "t", "label": "l", "split": "tag"}}]}
    with pytest.raises(DataError, match=r"tagged\.csv line 6, column 'tag' \(for 'split'\): value '7': unknown split"):
        run(tiny, cfg)
    (d / "tagged.csv").write_text("u,i,t,l,tag\nu1,a,1,1,0\nu1,b,2,0,0\nu1,c,3,1,1\nu1,d,4,1,2\n")
    ds = run(tiny, cfg)
    assert ds.interactions["split"].cast(pl.String).to_list() == ["train", "train", "valid", "test"]


def test_side_tables_are_encoded_and_numeric_fitted_on_train_only(tiny: dict[str, Any]) -> None:
    cfg = variant(tiny)
    cfg["cleaning"] = {"numeric": {"fill": "mean", "outliers": "none", "scale": "minmax"}}
    ds = run(tiny, cfg)
    items = ds.tables["items"]
    genre = ds.vocab["items.genre"]
    names = dict(zip(genre["index"], genre["value"], strict=True))
    item_names = dict(zip(ds.vocab["item_id"]["index"], ds.vocab["item_id"]["item_id"], strict=True))
    row = items.filter(pl.col("item").replace_strict(item_names) == "a")
    assert [names[g] for g in row["genre"][0]] == ["Comedy", "Drama"]
    assert row["title"][0] == "A film"
    assert 0 not in genre["index"].to_list()  # 0 is the reserved unknown index
    # spend: u1 10, u2 missing, u3 30, u4 1000; every user has training rows, so fill = mean(10, 30, 1000).
    state = ds.manifest["cleaning"]["numeric"]["users"]
    assert state["fill"] == [pytest.approx(1040 / 3)]
    assert state["missing_filled"] == {"spend": 1}
    users = ds.tables["users"]["spend"].to_numpy()
    assert users.min() == pytest.approx(0.0) and users.max() == pytest.approx(1.0)


@pytest.mark.parametrize("value", ["NaN", "inf", "1e300"])
def test_a_non_finite_numeric_feature_is_named(tiny: dict[str, Any], value: str) -> None:
    """An empty cell is a missing value (filled); NaN or inf written as a value is an error on its line. So is
    1e300 (the side-table fuzzer's warning): finite in float64, it overflowed the standard deviation and turned
    the whole column to 0, silently."""
    (tiny["dir"] / "users.csv").write_text(f"uid,age,gender,spend\nu1,18,F,10\nu2,25,M,{value}\nu3,40,F,30\n")
    with pytest.raises(DataError, match=rf"users\.csv line 3, column 'spend': value '{value}' is not a finite number"):
        run(tiny)


def test_numeric_fit_ignores_entities_without_training_rows(tiny: dict[str, Any]) -> None:
    # leave-scenario-out on search: q1..q3 never appear in train, so their prices must not shape the fit.
    ds = run(tiny, protocol=ProtocolConfig(name="leave-scenario-out", target="search"))
    state = ds.manifest["cleaning"]["numeric"]["items"]
    item_names = dict(zip(ds.vocab["item_id"]["index"], ds.vocab["item_id"]["item_id"], strict=True))
    train_items = {item_names[i] for i in ds.split("train")["item"].to_list()}
    assert train_items and not train_items & {"q1", "q2", "q3"}
    prices = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": 5.0, "f": np.nan}
    assert state["fitted_on_rows"] == len(train_items)
    assert state["fill"][0] == pytest.approx(float(np.nanmedian([prices[i] for i in train_items])))


def test_outputs_are_reproducible_for_a_seed(tiny: dict[str, Any]) -> None:
    p = ProtocolConfig(name="random", seed=7, valid=0.2, test=0.2)
    a = run(tiny, protocol=p).interactions
    b = run(tiny, protocol=p).interactions
    c = run(tiny, protocol=ProtocolConfig(name="random", seed=8, valid=0.2, test=0.2)).interactions
    assert a.equals(b)
    assert not a["split"].equals(c["split"])


def test_kcore_filter_is_off_by_default_and_iterates(tiny: dict[str, Any]) -> None:
    ds = run(tiny)
    assert ds.manifest["cleaning"]["kcore"]["rows_removed"] == 0
    cfg = variant(tiny)
    cfg["cleaning"] = {"kcore": {"user": 2, "item": 3}}
    ds = run(tiny, cfg)
    inter = ds.interactions
    assert inter.group_by("item").len()["len"].min() >= 3
    assert inter.group_by("user").len()["len"].min() >= 2
    assert ds.manifest["cleaning"]["kcore"]["rows_removed"] == 22 - inter.height > 0


def test_manifest_records_sources_protocol_and_checks(tiny: dict[str, Any]) -> None:
    run(tiny)
    m = json.loads((tiny["dir"] / "out" / "manifest.json").read_text())
    assert m["schema_version"] == 2
    assert [s["name"] for s in m["sources"]] == ["home.csv", "search.tsv"]
    assert len(m["sources"][0]["sha256"]) == 64
    assert m["protocol"] == {"name": "temporal", "valid": 0.1, "test": 0.1, "check_leakage": True}
    assert m["history"]["length"] == 3
    assert set(m["leakage_checks"].values()) == {"passed"}
    assert len(m["fingerprint"]) == 16


def test_out_directory_that_is_not_a_prepared_dataset_is_refused(tiny: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a prepared dataset"):
        prepare(load_dataset_config(tiny["yaml"]), out)
    assert (out / "notes.txt").exists()


def test_ids_missing_from_a_side_table_are_reported(tiny: dict[str, Any]) -> None:
    (tiny["dir"] / "users.csv").write_text("uid,age,gender,spend\nu1,18,F,10\nu2,25,M,\nu3,40,F,30\n")
    ds = run(tiny)
    assert ds.manifest["cleaning"]["side_tables"]["users"]["ids_without_row"] == 1
    assert any("1 user_id values of the interactions have no row in the users table" in n
               for n in ds.manifest["notes"])
    assert ds.tables["users"].height == 3


def test_a_repeated_side_table_id_is_named_by_line_or_by_parquet_row(tiny: dict[str, Any]) -> None:
    """Found by the side-table fuzzer: a parquet table's repeated id was named by 'lines 0, 1', its 0-based row
    indices called lines."""
    import polars as pl

    (tiny["dir"] / "users.csv").write_text("uid,age,gender,spend\nu1,18,F,10\nu2,25,M,\nu1,40,F,30\nu4,31,M,1\n")
    with pytest.raises(DataError, match=r"user_id 'u1' appears more than once in the users table \(lines 2, 4; 2 "):
        run(tiny)
    pl.read_csv(tiny["dir"] / "users.csv").write_parquet(tiny["dir"] / "users.parquet")
    cfg = variant(tiny)
    cfg["users"] = {**cfg["users"], "path": "users.parquet", "format": "parquet"}
    with pytest.raises(DataError, match=r"appears more than once in the users table \(rows 0, 2 \(0-based\); 2 "):
        run(tiny, cfg)


def test_cold_order_last_gives_cold_rows_the_users_whole_history_elsewhere(tmp_path: Path) -> None:
    # cold-user with cold_order "last" (for data whose time is a made-up order): every evaluated row of a cold user
    # reads all of the user's training events (up to the history length), where at its own time it reads only
    # those before it; the leakage checks still pass, and the rows and splits are the time order's
    from mistrec.data import SyntheticConfig, generate

    yaml_path = generate(SyntheticConfig(n_users=120, events_per_user=20, seed=3)).write(tmp_path / "raw")
    cfg = load_dataset_config(yaml_path)
    kept = {}
    for order in ("time", "last"):
        protocol = ProtocolConfig(name="cold-user", target="search", cold_fraction=0.3, cold_rest="train",
                                  cold_order=order)
        prepare(cfg, tmp_path / order, protocol=protocol, history_length=1000, quiet=True)
        ds = PreparedDataset.load(tmp_path / order)
        assert ds.manifest["leakage_checks"]["history_strictly_before_and_train_only"] == "passed"
        assert ds.manifest["protocol"].get("cold_order", "time") == order
        rows = ds.interactions
        n_train = rows.filter((pl.col("split") == "train") & ~pl.col("sampled")).group_by("user").len("n")
        cold = rows.filter(pl.col("split") != "train", ~pl.col("sampled")).join(n_train, on="user", how="left")
        seen = cold["hist_end"] - cold["hist_start"]
        kept[order] = (seen, cold["n"].fill_null(0), cold.sort("user", "item")["split"])
    seen, n, _ = kept["last"]
    assert seen.len() > 0 and (seen == n).all()  # every training event of the user, every row
    seen_time, n_time, _ = kept["time"]
    assert (seen_time <= n_time).all() and (seen_time < n_time).any()  # the control: at their time, fewer
    assert kept["time"][2].equals(kept["last"][2])

