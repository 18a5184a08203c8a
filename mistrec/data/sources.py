"""Interaction sources -> one canonical table, with every invalid row either reported or counted.

The canonical columns are user_id, item_id (strings), scenario (string), timestamp (Int64 unix
seconds, null when the source has none), label (Float64), label_value (the graded value the label was made
from, such as the rating; equal to label for 0/1 and implicit labels), split (string or null), conversion
(Float64 0/1, the optional second task; null when the source maps none), plus `__source`,
`__line` (where the row came from) and `__item_scoped` (the source's item ids are local to its
scenario). Mapped columns that are not canonical are kept, as strings, as context features.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from mistrec.data.config import DatasetConfig
from mistrec.data.readers import LINE, location, read_columns, read_store
from mistrec.data.source_config import CANONICAL, LabelRule, SourceConfig, TimestampConfig
from mistrec.errors import DataError

__all__ = ["InvalidRows", "finite_number", "float32_number", "load_interactions"]

SOURCE = "__source"
FLOAT32_MAX = 3.4028234663852886e38
ITEM_SCOPED = "__item_scoped"
_SPLIT_ALIASES = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid", "dev": "valid",
                  "test": "test"}
_FIXES = {
    "missing_user_id": "fill in the user id",
    "missing_item_id": "fill in the item id",
    "missing_scenario": "give every row a scenario",
    "missing_label": "fill in the label",
    "unparsable_label": "fix the value (a 0/1 label column takes 0, 1, true or false; graded labels "
    "need a rule such as '> 3' and a finite number: NaN and inf are no rating)",
    "missing_timestamp": "fill in the timestamp",
    "unparsable_timestamp": "fix the value (a finite number, or a date in the YAML's format) or the timestamp "
    "unit/format in the YAML",
    "unknown_split": "use train, valid or test, or map the values with split_values",
    "missing_conversion": "fill in the conversion (0 or 1)",
    "unparsable_conversion": "fix the value (the conversion column takes 0, 1, true or false)",
    "conversion_without_click": "a conversion is post-click (ESMM): set it to 0 where the label is 0, or map "
    "the column as a context feature under another name",
}


@dataclass
class InvalidRows:
    """Rows removed before anything else, per reason, with a few examples each."""

    policy: str
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, n: int, examples: list[str]) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + n
        self.examples.setdefault(reason, []).extend(examples)
        del self.examples[reason][5:]

    def to_dict(self) -> dict[str, object]:
        return {"policy": self.policy, "removed": dict(self.counts), "examples": dict(self.examples)}


def load_interactions(cfg: DatasetConfig, keep: pl.Expr | None = None, invalid: InvalidRows | None = None
                      ) -> tuple[pl.DataFrame, InvalidRows]:
    """Reads every source, parses labels, timestamps, scenarios and splits, and applies the invalid-row policy.
    With `keep` (an expression over the mapped columns), only the rows where it holds, scanned (data/parts.py);
    `invalid`: the report to add to (a new one by default)."""
    invalid = invalid if invalid is not None else InvalidRows(policy=cfg.cleaning.invalid_rows)
    frames = [_load_source(cfg, i, src, invalid, keep) for i, src in enumerate(cfg.interactions)]
    has_ts = [f["timestamp"].null_count() < f.height for f in frames if f.height]
    if any(has_ts) and not all(has_ts):
        names = [s.name for s, f in zip(cfg.interactions, frames, strict=True)
                 if f.height and f["timestamp"].null_count() == f.height]
        raise DataError(f"Sources {', '.join(names)} have no timestamp while others do: time order across "
                        "sources would be undefined. Map a timestamp column for every source, or for none.")
    return pl.concat(frames, how="diagonal_relaxed"), invalid


def _load_source(cfg: DatasetConfig, index: int, src: SourceConfig, invalid: InvalidRows, keep: pl.Expr | None
                 ) -> pl.DataFrame:
    rule = src.label or cfg.label
    wanted = dict(src.columns)
    if not rule.implicit and rule.column is not None and rule.column not in wanted:
        if not src.header:
            raise DataError(f"{src.path}: the label column '{rule.column}' needs a position in columns "
                            "(the file has no header).")
        wanted[rule.column] = rule.column
    if src.format == "store" and src.store is not None:
        df = read_store(src.store, src.path, wanted)
    else:
        df = read_columns(src.path, src.format, wanted, sep=src.sep, header=src.header, encoding=src.encoding,
                          keep=keep)
    ts_cfg = src.timestamp or cfg.timestamp
    id_cols = [pl.col(c).str.strip_chars().replace("", None).alias(c) for c in ("user_id", "item_id")]
    df = df.with_columns(id_cols)
    checks: list[tuple[str, str, pl.Expr]] = [
        ("missing_user_id", "user_id", pl.col("user_id").is_null()),
        ("missing_item_id", "item_id", pl.col("item_id").is_null()),
    ]
    df, label_checks = _parse_label(df, rule)
    checks += label_checks
    df, ts_checks = _parse_timestamp(df, ts_cfg)
    checks += ts_checks
    df, sc_checks = _parse_scenario(df, src, cfg.scenario_from is not None)
    checks += sc_checks
    df, split_checks = _parse_split(df, src, cfg.split_values)
    checks += split_checks
    df, conversion_checks = _parse_conversion(df)
    checks += conversion_checks
    df = _apply_policy(df, checks, src, invalid)
    context = [c for c in src.columns if c not in CANONICAL and c != rule.column]
    return df.select(
        "user_id", "item_id", "scenario", "timestamp", "label", "label_value", "split", "conversion",
        pl.lit(index, dtype=pl.Int32).alias(SOURCE), LINE,
        pl.lit(src.item_id_scope == "scenario").alias(ITEM_SCOPED), *context,
    )


def finite_number(value: pl.Expr) -> pl.Expr:
    """A column (text or numbers) as Float64: null where it is not a number, and where it is NaN or +-inf (which a cast
    accepts: "NaN" > 3 would otherwise be a label, and a mean over "inf" a feature)."""
    num = value.cast(pl.Float64, strict=False)
    return pl.when(num.is_finite()).then(num)


def float32_number(value: pl.Expr) -> pl.Expr:
    """`finite_number`, and null beyond float32's range too: what is kept as float32 (a rating, a numeric feature)
    would be inf there, and a standard deviation over 1e300 overflows, turning the whole column to 0."""
    num = finite_number(value)
    return pl.when(num.abs() <= FLOAT32_MAX).then(num)


def _parse_label(df: pl.DataFrame, rule: LabelRule) -> tuple[pl.DataFrame, list[tuple[str, str, pl.Expr]]]:
    if rule.implicit:
        return df.with_columns(pl.lit(1.0).alias("label"), pl.lit(1.0).alias("label_value")), []
    col = str(rule.column)
    raw = pl.col(col).str.strip_chars()
    num = float32_number(raw)
    if rule.op is None:
        num = _zero_one(raw)
        bad = num.is_not_null() & ~num.is_in([0.0, 1.0])
        label = num
    else:
        bad = pl.lit(False)
        thr = rule.threshold
        label = {">": num > thr, ">=": num >= thr, "<": num < thr, "<=": num <= thr, "==": num == thr,
                 "!=": num != thr}[rule.op].cast(pl.Float64)
    df = df.with_columns(label.alias("label"), num.alias("label_value"),
                         (raw.is_not_null() & (num.is_null() | bad)).alias("__bad_label"))
    return df, [
        ("missing_label", col, pl.col(col).is_null()),
        ("unparsable_label", col, pl.col("__bad_label")),
    ]


def _zero_one(raw: pl.Expr) -> pl.Expr:
    """A 0/1 column as Float64: 0, 1, true, false (any case); anything else null."""
    lowered = raw.str.to_lowercase()
    num = finite_number(raw)
    return pl.when(lowered == "true").then(1.0).when(lowered == "false").then(0.0).otherwise(num)


def _parse_conversion(df: pl.DataFrame) -> tuple[pl.DataFrame, list[tuple[str, str, pl.Expr]]]:
    if "conversion" not in df.columns:
        return df.with_columns(pl.lit(None, dtype=pl.Float64).alias("conversion")), []
    df = df.rename({"conversion": "__raw_conversion"})
    raw = pl.col("__raw_conversion").str.strip_chars()
    num = _zero_one(raw)
    df = df.with_columns(num.alias("conversion"))
    return df, [
        ("missing_conversion", "__raw_conversion", raw.is_null() | (raw == "")),
        ("unparsable_conversion", "__raw_conversion",
         (raw != "") & (pl.col("conversion").is_null() | ~pl.col("conversion").is_in([0.0, 1.0]))),
        ("conversion_without_click", "__raw_conversion", (pl.col("conversion") == 1.0) & (pl.col("label") == 0.0)),
    ]


def _parse_timestamp(df: pl.DataFrame, ts: TimestampConfig) -> tuple[pl.DataFrame, list[tuple[str, str, pl.Expr]]]:
    if "timestamp" not in df.columns:
        return df.with_columns(pl.lit(None, dtype=pl.Int64).alias("timestamp")), []
    df = df.rename({"timestamp": "__raw_ts"})
    raw = pl.col("__raw_ts").str.strip_chars()
    if "%" in ts.unit:
        parsed = raw.str.strptime(pl.Datetime("us"), ts.unit, strict=False).dt.epoch("s")
    else:
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000}[ts.unit]
        parsed = (finite_number(raw) / per_second).floor().cast(pl.Int64, strict=False)
    df = df.with_columns(parsed.alias("timestamp"))
    return df, [
        ("missing_timestamp", "__raw_ts", pl.col("__raw_ts").is_null()),
        ("unparsable_timestamp", "__raw_ts", pl.col("__raw_ts").is_not_null() & pl.col("timestamp").is_null()),
    ]


def _parse_scenario(
    df: pl.DataFrame, src: SourceConfig, derived: bool
) -> tuple[pl.DataFrame, list[tuple[str, str, pl.Expr]]]:
    if derived:  # filled in later from a side table
        return df.with_columns(pl.lit(None, dtype=pl.String).alias("scenario")), []
    if src.scenario is not None:
        return df.with_columns(pl.lit(src.scenario).alias("scenario")), []
    df = df.with_columns(pl.col("scenario").alias("__raw_scenario"),
                         pl.col("scenario").str.strip_chars().replace("", None))
    return df, [("missing_scenario", "__raw_scenario", pl.col("scenario").is_null())]


def _parse_split(
    df: pl.DataFrame, src: SourceConfig, split_values: dict[str, str]
) -> tuple[pl.DataFrame, list[tuple[str, str, pl.Expr]]]:
    if src.split is not None:
        return df.with_columns(pl.lit(src.split).alias("split")), []
    if "split" not in df.columns:
        return df.with_columns(pl.lit(None, dtype=pl.String).alias("split")), []
    mapping = split_values or _SPLIT_ALIASES
    raw = pl.col("split").str.strip_chars()
    mapped = raw.replace_strict(mapping, default=None, return_dtype=pl.String)
    df = df.with_columns(mapped.alias("split"), raw.alias("__raw_split"))
    return df, [("unknown_split", "__raw_split", pl.col("split").is_null())]


def _apply_policy(
    df: pl.DataFrame, checks: list[tuple[str, str, pl.Expr]], src: SourceConfig, invalid: InvalidRows
) -> pl.DataFrame:
    if not checks:
        return df
    flags = df.select([expr.alias(reason) for reason, _, expr in checks])
    any_bad = flags.select(pl.any_horizontal(pl.all())).to_series()
    if not any_bad.any():
        return df
    taken = pl.Series([False] * df.height)
    for reason, column, _ in checks:
        # A row with several problems is counted once, under its first reason.
        mask = flags[reason] & ~taken
        taken = taken | mask
        n = int(mask.sum())
        if n == 0:
            continue
        rows = df.filter(mask).head(5)
        shown_col = {"__raw_ts": "timestamp", "__raw_split": "split", "__raw_scenario": "scenario",
                     "__raw_conversion": "conversion"}.get(column, column)
        ref = src.columns.get(shown_col)
        named = f"column '{shown_col}'"
        if isinstance(ref, str) and ref != shown_col:  # the file's own name for a canonical column
            named = f"column '{ref}' (for '{shown_col}')"
        examples = [
            f"{location(src.path, src.format, line)}, {named}: "
            + ("an empty value" if value is None else f"value {value!r}")
            for line, value in zip(rows[LINE].to_list(), rows[column].to_list(), strict=True)
        ]
        if invalid.policy == "error":
            what = reason.replace("_", " ")
            raise DataError(
                f"{examples[0]}: {what} ({n} such row{'s' if n > 1 else ''} in this file). "
                f"Fix: {_FIXES[reason]}, or set cleaning.invalid_rows: drop to drop and count such rows."
            )
        invalid.add(reason, n, examples)
    return df.filter(~any_bad)
