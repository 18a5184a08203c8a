"""Id vocabularies: raw value -> dense index, with index 0 reserved for unknown or missing values."""

from __future__ import annotations

import polars as pl

__all__ = ["UNKNOWN", "build_vocab", "encode"]

UNKNOWN = 0


def build_vocab(values: pl.Series) -> pl.DataFrame:
    """Distinct non-null values, sorted, numbered from 1 (0 is the reserved unknown index).

    Example:
        >>> build_vocab(pl.Series(["b", "a", "b", None]))["index"].to_list()
        [1, 2]
    """
    uniq = values.drop_nulls().unique().sort()
    return pl.DataFrame({"value": uniq, "index": pl.int_range(1, uniq.len() + 1, dtype=pl.Int32, eager=True)})


def encode(values: pl.Series | pl.Expr, vocab: pl.DataFrame) -> pl.Expr:
    """Maps values to their vocabulary index; unseen or missing values map to UNKNOWN."""
    expr = values if isinstance(values, pl.Expr) else pl.lit(values)
    return expr.replace_strict(vocab["value"], vocab["index"], default=UNKNOWN, return_dtype=pl.Int32)
