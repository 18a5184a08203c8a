"""Readers: separators, headers or positions, encodings, RecBole atomic files, parquet; errors name the file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from mistrec.data.readers import read_columns
from mistrec.errors import DataError


def test_csv_with_header_selects_and_renames(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text('uid,iid,extra\n1,"x,y",z\n2,b,w\n')
    df = read_columns(f, "csv", {"user_id": "uid", "item_id": "iid"})
    assert df.columns == ["__line", "user_id", "item_id"]
    assert df["item_id"].to_list() == ["x,y", "b"]
    assert df["__line"].to_list() == [2, 3]


def test_positional_multichar_separator_and_latin1(tmp_path: Path) -> None:
    f = tmp_path / "ratings.dat"
    f.write_bytes("1::Caf\xe9::5\n2::Na\xefve::3\n".encode("latin-1"))
    df = read_columns(f, "csv", {"user_id": 0, "item_id": 1, "r": 2}, sep="::", header=False, encoding="latin-1")
    assert df["item_id"].to_list() == ["Café", "Naïve"]
    assert df["r"].to_list() == ["5", "3"]
    assert df["__line"].to_list() == [1, 2]


def test_recbole_atomic_file_with_crlf(tmp_path: Path) -> None:
    f = tmp_path / "x.inter"
    f.write_bytes(b"user_id:token\titem_id:token\trating:float\r\nu1\tThe Film (1995)\t4\r\n")
    df = read_columns(f, "recbole", {"user_id": "user_id", "item_id": "item_id", "rating": "rating"})
    assert df.row(0) == (2, "u1", "The Film (1995)", "4")


def test_parquet_values_become_strings(tmp_path: Path) -> None:
    f = tmp_path / "x.parquet"
    pl.DataFrame({"u": [1, 2], "i": ["a", "b"], "t": [1.5, 2.0]}).write_parquet(f)
    df = read_columns(f, "parquet", {"user_id": "u", "item_id": "i", "timestamp": "t"})
    assert df["user_id"].to_list() == ["1", "2"]
    assert df["__line"].to_list() == [0, 1]


def test_row_number_as_id(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text("s,c\nq1,1\nq1,0\n")
    assert read_columns(f, "csv", {"user_id": "s", "item_id": "@row"})["item_id"].to_list() == ["2", "3"]


def test_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"File not found: .*missing\.csv"):
        read_columns(tmp_path / "missing.csv", "csv", {"user_id": "u"})
    f = tmp_path / "a.csv"
    f.write_text("uid,iid\n1,2\n")
    msg = r"a\.csv: column 'user' \(for 'user_id'\) is not in the file\. Its columns are: uid, iid"
    with pytest.raises(DataError, match=msg):
        read_columns(f, "csv", {"user_id": "user", "item_id": "iid"})
    with pytest.raises(DataError, match=r"column position 5 \(for 'item_id'\) is out of range: the file has 2 columns"):
        read_columns(f, "csv", {"user_id": 0, "item_id": 5}, header=False)
    (tmp_path / "empty.csv").write_text("uid,iid\n")
    with pytest.raises(DataError, match="has no data rows"):
        read_columns(tmp_path / "empty.csv", "csv", {"user_id": "uid"})
