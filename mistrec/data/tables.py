"""Side tables (users, items, scenarios) and scenarios derived from a user or item attribute."""

from __future__ import annotations

from typing import Any

import polars as pl

from mistrec.data.config import ScenarioFrom, TableConfig
from mistrec.data.readers import LINE, location, read_columns, such_rows
from mistrec.data.sources import InvalidRows, finite_number
from mistrec.errors import DataError

__all__ = ["derive_scenarios", "read_table"]


def read_table(tc: TableConfig, extra: tuple[str, ...] = ()) -> pl.DataFrame:
    """Reads a side table's id, feature and `extra` columns as stripped strings; ids must be unique."""
    wanted = dict(tc.columns)
    for name in (*tc.features, *extra):
        wanted.setdefault(name, name)
    df = read_columns(tc.path, tc.format, wanted, sep=tc.sep, header=tc.header, encoding=tc.encoding)
    df = df.with_columns(pl.col(c).str.strip_chars().replace("", None) for c in wanted)
    key = tc.key
    missing = df.filter(pl.col(key).is_null())
    if missing.height:
        line = int(missing[LINE][0])
        raise DataError(f"{location(tc.path, tc.format, line)}, column '{key}': missing id in the {tc.kind} "
                        f"table ({such_rows(missing.height)}). Fill it in or remove the row.")
    dup = df.filter(pl.col(key).is_duplicated())
    if dup.height:
        first = dup.sort(LINE).head(2)
        where = ", ".join(str(x) for x in first[LINE].to_list())
        where = f"rows {where} (0-based)" if tc.format == "parquet" else f"lines {where}"
        raise DataError(f"{tc.path}: {key} {first[key][0]!r} appears more than once in the {tc.kind} table "
                        f"({where}; {dup.height} rows with repeated ids). Keep one row per id.")
    return df


def derive_scenarios(
    inter: pl.DataFrame, sf: ScenarioFrom, table: pl.DataFrame, tc: TableConfig, invalid: InvalidRows
) -> pl.DataFrame:
    """Fills the interactions' scenario from a user or item attribute (map, bins or the value itself)."""
    key = tc.key
    if sf.column not in table.columns:
        raise DataError(f"scenario_from.column '{sf.column}' is not a column of the {tc.kind} table {tc.path}: "
                        f"add it to that table's columns or categorical list.")
    attr = table.select(pl.col(key), pl.col(sf.column).alias("__attr"), pl.col(LINE).alias("__attr_line"))
    if sf.token == "first":
        attr = attr.with_columns(pl.col("__attr").str.split(sf.sep).list.first())
    attr = attr.with_columns(_scenario_expr(sf, attr, tc).alias("__derived"))
    out = inter.join(attr.select(key, "__derived"), on=key, how="left")
    missing = out.filter(pl.col("__derived").is_null())
    if missing.height:
        ex = missing.head(1)
        msg = (f"{missing.height} interactions have a {key} without a row (or a value) in the {tc.kind} table "
               f"{tc.path}, so their scenario cannot be derived; first: {key} {ex[key][0]!r}")
        if invalid.policy == "error":
            raise DataError(msg + ". Add those ids to the table, or set cleaning.invalid_rows: drop.")
        examples = [f"{key} {v!r}: not in {tc.path}" for v in missing[key].head(5).to_list()]
        invalid.add("missing_scenario", missing.height, examples)
        out = out.filter(pl.col("__derived").is_not_null())
    return out.with_columns(pl.col("__derived").alias("scenario")).drop("__derived")


def _scenario_expr(sf: ScenarioFrom, attr: pl.DataFrame, tc: TableConfig) -> pl.Expr:
    col = pl.col("__attr")
    if sf.bins is not None:
        num = finite_number(col)
        bad = attr.filter(col.is_not_null() & num.is_null())
        if bad.height:
            line = int(bad["__attr_line"][0])
            raise DataError(f"{location(tc.path, tc.format, line)}, column '{sf.column}': value "
                            f"{bad['__attr'][0]!r} is not a finite number, so scenario_from.bins cannot place it.")
        labels = sf.labels or []
        expr: Any = pl.when(num.is_null()).then(None)
        for cut, label in zip(sf.bins, labels, strict=False):  # left-closed bins: [cut_k-1, cut_k)
            expr = expr.when(num < cut).then(pl.lit(label))
        return expr.otherwise(pl.lit(labels[-1]))
    if sf.map is not None:
        values = attr["__attr"].drop_nulls().unique()
        unmapped = values.filter(~values.is_in(list(sf.map)))
        if unmapped.len() and sf.default is None:
            shown = ", ".join(repr(v) for v in unmapped.sort().head(10).to_list())
            raise DataError(f"{tc.path}, column '{sf.column}': values {shown} are not in scenario_from.map "
                            f"(keys: {', '.join(sf.map)}). Add them to the map or give scenario_from.default.")
        return col.replace_strict(sf.map, default=sf.default, return_dtype=pl.String)
    return col
