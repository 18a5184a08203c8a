"""Fuzzed readers: random small interaction files (csv with any separator, positional tsv, parquet, RecBole
atomic), random side tables (items and users: csv, parquet, RecBole) and random dataset YAMLs. `prepare` either
succeeds with every interaction row read accounted for (kept + invalid + duplicates + k-core + protocol-excluded
= read, and read = the data lines written) or fails with one mistrec error; never another exception.

Case counts: CSV_CASES + YAML_CASES + SIDE_CASES (2,400 together), run by `make test` and so by CI.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mistrec.data import load_dataset_config, prepare
from mistrec.errors import MistrecError

# a RuntimeWarning (an overflow, an all-NaN mean) is numeric trouble passing silently: a failure here
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

CSV_CASES = int(__import__("os").environ.get("MISTREC_FUZZ_CSV", 1500))
YAML_CASES = int(__import__("os").environ.get("MISTREC_FUZZ_YAML", 500))
SIDE_CASES = int(__import__("os").environ.get("MISTREC_FUZZ_SIDE", 400))

IDS = st.one_of(st.sampled_from(["u1", "u2", "u3", "i1", "i2", "i3"]),  # mostly good values, so that most files
               st.sampled_from(["", " ", "ü", "名前", "a,b", 'q"uote', "x\ty", "0", "-1", "NaN", "null", "None",
                                "1e400"]))  # get past the first bad row and reach the rest of the pipeline
GOOD_NUMBERS = st.integers(min_value=0, max_value=5).map(str)
NUMBERS = st.one_of(
    GOOD_NUMBERS, GOOD_NUMBERS, GOOD_NUMBERS,
    st.integers(min_value=-10**15, max_value=10**15).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "NaN", "nan", "inf", "-Infinity", "1e400", "-1e400", "五", "true", "FALSE", "3 stars",
                     "2020-01-01", "0x1F", "1_000", "+4", "٣"]),
)
ROW = st.tuples(IDS, IDS, NUMBERS, NUMBERS, st.sampled_from(["home", "search", "home", "search", "", "ü-scene"]),
                st.sampled_from([0] * 30 + [1, -1]))  # the last: now and then a field too many, or too few
ROWS = st.lists(ROW, min_size=0, max_size=25)


def _write(rows: list[tuple[Any, ...]], fmt: str, sep: str, root: Path) -> tuple[dict[str, Any], int]:
    """The interactions file and its source config; the number of data lines written."""
    header = ["uid", "iid", "ts", "rating", "scene"]
    body = []
    for *fields, ragged in rows:
        fields = list(fields)
        if ragged > 0:
            fields.append("extra")
        elif ragged < 0:
            fields.pop()
        body.append(fields)
    columns: dict[str, Any] = {"user_id": "uid", "item_id": "iid", "timestamp": "ts", "rating": "rating",
                               "scenario": "scene"}
    if fmt == "parquet":
        full = [r[:5] + [""] * (5 - len(r[:5])) for r in body]  # a parquet table is never ragged
        pl.DataFrame(full or None, schema=header, orient="row").write_parquet(root / "d.parquet")
        return {"path": "d.parquet", "format": "parquet", "columns": columns}, len(full)
    if fmt == "recbole":
        out = io.StringIO()
        out.write("uid:token\tiid:token\tts:float\trating:float\tscene:token\n")
        for r in body:
            out.write("\t".join(f.replace("\t", " ").replace("\n", " ") for f in r) + "\n")
        (root / "d.inter").write_text(out.getvalue(), encoding="utf-8")
        return {"path": "d.inter", "format": "recbole", "columns": columns}, len(body)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator="\n")
    positional = sep == "\t" and len(body) % 2 == 1  # half the tab files have no header and positional columns
    if not positional:
        writer.writerow(header)
    writer.writerows(body)
    (root / "d.csv").write_text(out.getvalue(), encoding="utf-8")
    if positional:
        columns = {"user_id": 0, "item_id": 1, "timestamp": 2, "rating": 3, "scenario": 4}
    return {"path": "d.csv", "format": "csv", "sep": sep, "header": not positional, "columns": columns}, len(body)


def _accounted(manifest: dict[str, Any]) -> int:
    cleaning = manifest["cleaning"]
    return (manifest["counts"]["after_cleaning"]["ALL"]["rows"] if "ALL" in manifest["counts"]["after_cleaning"]
            else 0) + sum(cleaning["invalid_rows"]["removed"].values()) + cleaning["duplicates_removed"] + \
        cleaning["kcore"]["rows_removed"] + cleaning.get("protocol_excluded_rows", 0)


def _prepare_or_fail_cleanly(config: dict[str, Any], root: Path) -> dict[str, Any] | None:
    (root / "d.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    try:
        return prepare(load_dataset_config(root / "d.yaml"), root / "out", force=True)
    except MistrecError as exc:
        message = str(exc)
        assert message and "\n" not in message.strip(), f"not one line: {message!r}"
        return None


@settings(max_examples=CSV_CASES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=ROWS, fmt=st.sampled_from(["csv", "csv", "csv", "parquet", "recbole"]),
       sep=st.sampled_from([",", "\t", ";", "|"]), policy=st.sampled_from(["drop", "error"]),
       unit=st.sampled_from(["s", "ms", "%Y-%m-%d"]))
def test_random_interaction_files_prepare_or_fail_with_one_line(rows: list[tuple[Any, ...]], fmt: str, sep: str,
                                                                policy: str, unit: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source, written = _write(rows, fmt, sep, root)
        config = {"name": "fuzz", "interactions": [source], "label": {"column": "rating", "rule": "> 3"},
                  "timestamp": {"unit": unit}, "cleaning": {"invalid_rows": policy}, "history": {"length": 3}}
        manifest = _prepare_or_fail_cleanly(config, root)
        if manifest is not None:
            assert manifest["rows_read"] == written
            assert _accounted(manifest) == written, manifest["cleaning"]


YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=8),
              st.sampled_from(["csv", "parquet", "recbole", "> 3", "s", "drop", "error", "random", "temporal"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)
SECTIONS = st.sampled_from(["label", "timestamp", "cleaning", "history", "negatives", "protocol", "users", "items",
                            "interactions", "name", "scenarios", "not_a_section"])


@settings(max_examples=YAML_CASES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(changes=st.dictionaries(SECTIONS, YAML_VALUES, max_size=3))
def test_random_yaml_sections_prepare_or_fail_with_one_line(changes: dict[str, Any]) -> None:
    """A working dataset YAML with random values put into its sections."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "d.csv").write_text("uid,iid,ts,rating\nu1,a,1,5\nu1,b,2,1\nu2,a,3,4\nu2,c,4,2\nu3,b,5,5\n")
        config: dict[str, Any] = {
            "name": "fuzz", "label": {"column": "rating", "rule": "> 3"}, "timestamp": {"unit": "s"},
            "interactions": [{"path": "d.csv", "format": "csv", "sep": ",", "header": True, "scenario": "home",
                              "columns": {"user_id": "uid", "item_id": "iid", "timestamp": "ts",
                                          "rating": "rating"}}]}
        config.update(changes)
        manifest = _prepare_or_fail_cleanly(config, root)
        if manifest is not None:
            assert manifest["rows_read"] == 5 and _accounted(manifest) == 5


SIDE_VALUES = st.sampled_from(["", "NaN", "inf", "1e400", "ü", "名前", 'q"t', "a,b", "x\ty", "-0", "None", "3 stars"])
GOOD_CATEGORY, GOOD_TAGS = st.sampled_from(["a", "b", "c", "ü", "名前"]), st.sampled_from(["x", "x y", "y z w", ""])
CATEGORY = st.one_of(*[GOOD_CATEGORY] * 8, SIDE_VALUES, st.text(max_size=4))  # mostly good values, so that
PRICE = st.one_of(*[GOOD_NUMBERS] * 8, st.floats(allow_nan=True, allow_infinity=True).map(repr), SIDE_VALUES)
TAGS = st.one_of(*[GOOD_TAGS] * 8, SIDE_VALUES)  # a good share of the tables prepare, and reach the features
# most ids are those of the interactions (i1-i3 items, u1-u3 users), with unknown, empty and repeated ones
SIDE_ROW = st.tuples(st.sampled_from(["1", "1", "2", "2", "3", "3", "4", "", "ü"]), CATEGORY, PRICE, TAGS,
                     st.sampled_from([0] * 40 + [1, -1]))
CLEAN_ROW = st.tuples(st.sampled_from(["1", "2", "3", "4"]), GOOD_CATEGORY, GOOD_NUMBERS, GOOD_TAGS, st.just(0))


@settings(max_examples=SIDE_CASES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=st.one_of(st.lists(CLEAN_ROW, max_size=6, unique_by=lambda r: r[0]),
                     st.lists(SIDE_ROW, max_size=8, unique_by=lambda r: r[0]), st.lists(SIDE_ROW, max_size=8)),
       kind=st.sampled_from(["items", "users"]),
       fmt=st.sampled_from(["csv", "csv", "parquet", "recbole"]), sep=st.sampled_from([",", "\t", ";"]))
def test_random_side_tables_prepare_or_fail_with_one_line(rows: list[tuple[Any, ...]], kind: str, fmt: str,
                                                          sep: str) -> None:
    """A working interactions file with a random items or users table (a categorical, a numeric and a sequence
    column; duplicate, empty and unknown ids; ragged rows; unicode, NaN, inf, huge numbers): the interactions
    are all accounted for whatever the table holds, or prepare fails with one line."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "d.csv").write_text("uid,iid,ts,rating\nu1,i1,1,5\nu1,i2,2,1\nu2,i1,3,4\nu2,i3,4,2\nu3,i2,5,5\n")
        key = "item_id" if kind == "items" else "user_id"
        header = [key, "cat", "price", "tags"]
        body = []
        for ident, *values, ragged in rows:
            fields = [kind[0] + ident if ident not in ("", "ü") else ident, *values]
            if ragged > 0:
                fields.append("extra")
            elif ragged < 0:
                fields.pop()
            body.append(fields)
        table: dict[str, Any] = {"categorical": ["cat"], "numeric": ["price"], "sequence": ["tags"]}
        if fmt == "parquet":
            full = [r[:4] + [""] * (4 - len(r[:4])) for r in body]
            pl.DataFrame(full or None, schema=header, orient="row").write_parquet(root / "t.parquet")
            table.update(path="t.parquet", format="parquet")
        elif fmt == "recbole":
            lines = [f"{key}:token\tcat:token\tprice:float\ttags:token_seq"]
            lines += ["\t".join(f.replace("\t", " ").replace("\n", " ") for f in r) for r in body]
            (root / "t.inter").write_text("\n".join(lines) + "\n", encoding="utf-8")
            table.update(path="t.inter", format="recbole")
        else:
            out = io.StringIO()
            writer = csv.writer(out, delimiter=sep, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(body)
            (root / "t.csv").write_text(out.getvalue(), encoding="utf-8")
            table.update(path="t.csv", format="csv", sep=sep)
        config: dict[str, Any] = {
            "name": "fuzz", "label": {"column": "rating", "rule": "> 3"}, "timestamp": {"unit": "s"},
            "interactions": [{"path": "d.csv", "format": "csv", "sep": ",", "header": True, "scenario": "home",
                              "columns": {"user_id": "uid", "item_id": "iid", "timestamp": "ts",
                                          "rating": "rating"}}],
            kind: table}
        manifest = _prepare_or_fail_cleanly(config, root)
        if manifest is not None:
            assert manifest["rows_read"] == 5 and _accounted(manifest) == 5
