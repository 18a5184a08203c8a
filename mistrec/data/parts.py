"""Preparing data in parts of users, for inputs larger than memory (`mistrec prepare --parts N`; docs/scale.md).

Everything `prepare` computes about a row depends on its user's rows alone (cleaning, the split, negatives, the
history windows, the leakage checks), except what is global: the vocabularies, the negatives' item pools, the counts.
So the users are cut into N ranges of their sorted ids (`user_bounds`, from one scan of the user column), each range
is read by polars' streaming engine with a filter (only its rows reach memory), cleaned, and kept on disk; the
vocabularies are built from the parts' ids; then each part is encoded, split, windowed, checked and written as
shards of the one prepared directory, in user order, so that the result reads like one prepared in a piece.

What memory holds: one part's rows, the distinct user ids (once, to cut the ranges) and the vocabularies.
Refused, with the reason: k-core (a global fixpoint over users and items), the cold-item and kshot protocols
(they choose among all items or all target rows), data without timestamps (file order across parts), event-store
sources and text files that polars cannot scan (another encoding than UTF-8, a separator of several bytes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from mistrec.data.config import DatasetConfig, ProtocolConfig
from mistrec.data.readers import scan_columns, scannable
from mistrec.errors import ConfigError, DataError

__all__ = ["check_partable", "part_filter", "sum_facts", "user_bounds"]

Bound = tuple[str | None, str | None]


def check_partable(cfg: DatasetConfig, protocol: ProtocolConfig, parts: int) -> None:
    """Refuses, with the reason and the fix, what cannot be prepared in parts."""
    why = []
    if cfg.cleaning.kcore_user or cfg.cleaning.kcore_item:
        why.append("k-core filtering removes users and items until none is left below the thresholds, a fixpoint "
                   "over the whole data (drop cleaning.kcore, or filter the input before)")
    if protocol.name in ("cold-item", "kshot"):
        why.append(f"protocol '{protocol.name}' chooses among all the data's "
                   f"{'items' if protocol.name == 'cold-item' else 'target rows'} at once")
    for src in cfg.interactions:
        if src.format == "store":
            why.append(f"source {src.name} is an event store (read whole)")
        elif not scannable(src.format, src.sep, src.encoding):
            why.append(f"{src.path} cannot be scanned in parts (encoding {src.encoding!r}, separator {src.sep!r}: "
                       "convert it to UTF-8 with a one-byte separator, or to parquet)")
        elif "timestamp" not in src.columns:
            why.append(f"source {src.name} has no timestamp (file order would be the time order, across parts)")
    if why:
        raise ConfigError(f"Cannot prepare in {parts} parts: " + "; ".join(why) + ". Prepare in one piece "
                          "(--parts 1), or change what is named.")


def user_bounds(cfg: DatasetConfig, parts: int) -> list[Bound]:
    """[lo, hi) ranges of the stripped user ids (None: unbounded) holding about as many distinct users each, from
    one streaming scan of every source's user column (the distinct ids are what memory holds)."""
    ids = []
    for src in cfg.interactions:
        lf = scan_columns(src.path, src.format, {"user_id": src.columns["user_id"]}, sep=src.sep, header=src.header)
        ids.append(lf.select(pl.col("user_id").str.strip_chars()).filter(
            pl.col("user_id").is_not_null() & (pl.col("user_id") != "")).unique())
    users = pl.concat(ids).unique().sort("user_id").collect(engine="streaming")["user_id"]
    if users.len() == 0:
        raise DataError("No interaction has a user id: nothing to prepare. Check the column mapping.")
    cuts = sorted({users[users.len() * k // parts] for k in range(1, parts)})
    edges: list[str | None] = [None, *cuts, None]
    return [(edges[k], edges[k + 1]) for k in range(len(edges) - 1)]


def part_filter(bound: Bound, first: bool) -> pl.Expr:
    """The rows of a part: stripped user id in [lo, hi); the first part also takes the rows without a user id (so
    that they are counted as invalid once)."""
    uid = pl.col("user_id").str.strip_chars()
    lo, hi = bound
    keep = pl.lit(True)
    if lo is not None:
        keep = keep & (uid >= lo)
    if hi is not None:
        keep = keep & (uid < hi)
    if first:
        keep = keep | uid.is_null() | (uid == "")
    return keep


def sum_facts(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two parts' facts (counts, nested by target) added up, key by key."""
    out = dict(a)
    for k, v in b.items():
        if k not in out:
            out[k] = v
        elif isinstance(v, Mapping):
            out[k] = sum_facts(out[k], v)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[k] = out[k] + v
    return out
