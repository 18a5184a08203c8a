"""Id vocabularies: raw value -> dense index, with index 0 reserved for unknown or missing values."""

from __future__ import annotations

import polars as pl

__all__ = ["UNKNOWN", "build_vocab", "collisions", "encode", "hash_buckets"]

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


def hash_buckets(values: pl.Expr, buckets: int) -> pl.Expr:
    """Each value's bucket, 1..buckets (0 stays the unknown row), as the `bucket` column: polars' 64-bit hash
    of the value modulo the table size. The buckets are written into the prepared vocabulary, which every later
    step reads, so they need not be recomputed alike by another version of polars."""
    return (values.hash(seed=HASH_SEED) % buckets + 1).cast(pl.Int64).alias("bucket")


HASH_SEED = 20221


def collisions(vocab: pl.DataFrame, train_counts: pl.DataFrame, buckets: int) -> dict[str, float | int]:
    """How many ids share their bucket with another id, against what a uniform hash gives (1 - (1 - 1/B)^(n-1) of
    n ids in B buckets), and the share of the training rows those ids hold. `train_counts`: index, len."""
    per_bucket = vocab.group_by("bucket").len().rename({"len": "ids_in_bucket"})
    shared = vocab.join(per_bucket, on="bucket").with_columns((pl.col("ids_in_bucket") > 1).alias("shared"))
    rows = shared.join(train_counts, on="index", how="left").with_columns(pl.col("len").fill_null(0))
    n, total = shared.height, int(rows["len"].sum())
    return {"buckets": buckets, "ids": n, "buckets_used": per_bucket.height,
            "ids_sharing_a_bucket": int(shared["shared"].sum()),
            "share_of_ids": int(shared["shared"].sum()) / n if n else 0.0,
            "expected_share_uniform_hash": 1.0 - (1.0 - 1.0 / buckets) ** max(n - 1, 0),
            "share_of_training_rows": float(rows.filter(pl.col("shared"))["len"].sum() / total) if total else 0.0}
