"""Readers: csv (any separator, header or positional columns), parquet and RecBole atomic files.

Every reader returns a polars DataFrame whose selected columns are all strings (parsing is the
caller's job, so that a bad value can be reported with its file, line and column), renamed as the
YAML mapping asks, plus a `__line` column with the row's line number in the file (1-based, header
counted) or its 0-based row index for parquet.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from mistrec.data.source_config import ROW_NUMBER, ColumnRef
from mistrec.errors import ConfigError, DataError

__all__ = ["LINE", "first_data_line", "location", "read_columns", "read_store", "scan_columns", "scannable",
           "source_fingerprint", "such_rows"]

LINE = "__line"
_STORE_READ: dict[str, dict[str, Any]] = {}  # url -> the fingerprint of the events read_store last read there


def location(path: Path, fmt: str, line: int) -> str:
    """How a row is named in messages: 'file.csv line 12', 'file.parquet row 11 (0-based)' or 'events.db event 7
    (in arrival order)'."""
    if fmt == "parquet":
        return f"{path} row {line} (0-based)"
    if fmt == "store":
        return f"{path} event {line} (in arrival order)"
    return f"{path} line {line}"


def read_store(url: str, path: Path, columns: Mapping[str, ColumnRef]) -> pl.DataFrame:
    """The events of an event store (mistrec.data.store) as the mapped columns, as strings (as the file readers
    give them), with the arrival number as the line. A SQLite file that is not there is an error, not a new empty
    store."""
    try:
        from mistrec.data.store import EventStore
    except ImportError as exc:  # SQLAlchemy is the serve extra's
        raise ConfigError(f"Reading the event store {path} needs SQLAlchemy: pip install 'mistrec[serve]'.") from exc
    if url.startswith("sqlite:///") and not path.is_file():
        raise DataError(f"Event store not found: {path}. Check the 'store' URL in the dataset YAML (a SQLite path is "
                        "relative to the YAML file).")
    store = EventStore(url)  # refuses a store of another schema version
    try:
        df = store.frame()
    finally:
        store.close()
    if df.height == 0:
        raise DataError(f"The event store {path} holds no events. Log some first, or remove this source from the "
                        "YAML.")
    # the fingerprint of exactly these events: the service may log more while prepare runs
    events = df.select("event_id", "user_id", "item_id", "scenario", "type", "value", "time")
    _STORE_READ[url] = {"sha256": hashlib.sha256(events.write_csv().encode()).hexdigest(), "events": df.height}
    return df.select(*(pl.col(str(old)).cast(pl.String).alias(new) for new, old in columns.items()),
                     pl.col("seq").alias(LINE))


def source_fingerprint(path: Path, fmt: str, url: str | None = None) -> dict[str, Any]:
    """What a prepared dataset records of a source to know it again: the sha256 and size of the file, or of the
    event store's events that `read_store` last read (id, user, item, scenario, type, value, time; in arrival
    order) and their count."""
    if fmt == "store" and url is not None:
        if url not in _STORE_READ:
            read_store(url, path, {})
        return dict(_STORE_READ[url])
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return {"sha256": h.hexdigest(), "bytes": path.stat().st_size}


def such_rows(n: int) -> str:
    """'1 such row' / '3 such rows', for messages that count the rows like the one they name."""
    return f"{n:,} such row" + ("" if n == 1 else "s")


def read_columns(
    path: Path,
    fmt: str,
    columns: Mapping[str, ColumnRef],
    *,
    sep: str = ",",
    header: bool = True,
    encoding: str = "utf-8",
    keep: pl.Expr | None = None,
) -> pl.DataFrame:
    """Reads the mapped columns of one file as strings, renamed to the mapping's keys.

    Args:
        path: the file.
        fmt: 'csv', 'parquet' or 'recbole'.
        columns: new name -> column name in the file, or 0-based position, or '@row' (the row number).
        sep: field separator for csv (may be several characters, such as '::').
        header: whether the csv file's first line names the columns.
        encoding: the file's text encoding.
        keep: only the rows where this expression (over the mapped columns) holds, read by polars' streaming
            engine, so that memory holds those rows and not the file (`scannable` says which files can be).
    """
    if not path.is_file():
        raise DataError(f"File not found: {path}. Check the 'path' in the dataset YAML (relative to the YAML file).")
    if keep is not None:
        try:
            return scan_columns(path, fmt, columns, sep=sep, header=header).filter(keep).collect(engine="streaming")
        except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
            if fmt == "parquet":
                raise DataError(f"{path} could not be read as parquet: {exc}".splitlines()[0]) from None
            raise _unparsable(path, "\t" if fmt == "recbole" else sep, encoding, header, exc) from None
    if fmt == "parquet":
        df = _read_parquet(path)
    else:
        if fmt == "recbole":
            sep, header = "\t", True
        df = _read_text(path, sep, header, encoding)
        if fmt == "recbole":
            # RecBole atomic headers are `name:type`; the YAML names columns without the type.
            df = df.rename({c: c.split(":", 1)[0] for c in df.columns})
    first_line = first_data_line(fmt, header)
    if df.height == 0:
        raise DataError(f"{path} has no data rows. Check the path, or remove this source from the YAML.")
    return _select(df, path, columns, header or fmt == "parquet", first_line)


def scannable(fmt: str, sep: str, encoding: str) -> bool:
    """Whether `scan_columns` can read such a file: parquet, and text files in UTF-8 with a one-byte separator
    (others are decoded whole by `read_columns`)."""
    return fmt == "parquet" or (fmt in ("csv", "recbole") and encoding.lower().replace("_", "-") in ("utf-8", "utf8")
                                and len(("\t" if fmt == "recbole" else sep).encode()) == 1)


def scan_columns(path: Path, fmt: str, columns: Mapping[str, ColumnRef], *, sep: str = ",",
                 header: bool = True) -> pl.LazyFrame:
    """`read_columns` as a lazy frame (a file `scannable` takes), for reading parts of a file larger than memory."""
    if fmt == "parquet":
        lf = pl.scan_parquet(path)
        schema = lf.collect_schema()
        nested = [c for c, t in schema.items() if isinstance(t, pl.List | pl.Array)]
        lf = lf.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join(" ") for c in nested)
        lf = lf.with_columns(pl.all().cast(pl.String))
    else:
        if fmt == "recbole":
            sep, header = "\t", True
        lf = pl.scan_csv(path, separator=sep, has_header=header, infer_schema=False,
                         quote_char='"' if sep == "," else None, truncate_ragged_lines=False)
        if fmt == "recbole":
            lf = lf.rename({c: c.split(":", 1)[0] for c in lf.collect_schema().names()})
    names = lf.collect_schema().names()
    lf = lf.with_row_index(LINE, offset=first_data_line(fmt, header)).with_columns(pl.col(LINE).cast(pl.Int64))
    return lf.select(pl.col(LINE), *_mapped(names, path, columns, header or fmt == "parquet"))


def first_data_line(fmt: str, header: bool) -> int:
    """The `LINE` number of a file's first data row: 0-based rows in parquet, 1-based lines in text files (after
    the header line when there is one; RecBole atomic files always have one)."""
    if fmt == "parquet":
        return 0
    return 2 if header or fmt == "recbole" else 1


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for corrupt files
        raise DataError(f"{path} could not be read as parquet: {exc}".splitlines()[0]) from None
    # a list or array column (a precomputed vector) becomes its numbers separated by spaces, as a csv would hold it
    nested = [c for c, t in df.schema.items() if isinstance(t, pl.List | pl.Array)]
    df = df.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join(" ") for c in nested)
    return df.with_columns(pl.all().cast(pl.String))


def _read_text(path: Path, sep: str, header: bool, encoding: str) -> pl.DataFrame:
    source: Path | io.BytesIO = path
    norm = encoding.lower().replace("_", "-")
    if norm not in ("utf-8", "utf8") or len(sep.encode()) > 1:
        try:
            text = path.read_bytes().decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise DataError(f"{path} could not be decoded as {encoding}: {exc}. Set 'encoding' in the YAML "
                            "(for example latin-1 for the GroupLens MovieLens files).") from None
        if len(sep.encode()) > 1:
            # polars takes one-byte separators: swap a multi-character one (GroupLens '::') for the unit
            # separator, a byte that does not occur in text data.
            if "\x1f" in text:
                raise DataError(f"{path} contains the byte 0x1f, so the separator {sep!r} cannot be read.")
            text = text.replace(sep, "\x1f")
            sep = "\x1f"
        source = io.BytesIO(text.encode("utf-8"))
    try:
        return pl.read_csv(
            source, separator=sep, has_header=header, infer_schema=False, quote_char='"' if sep == "," else None,
            truncate_ragged_lines=False,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise _unparsable(path, sep, encoding, header, exc) from None


def _unparsable(path: Path, sep: str, encoding: str, header: bool, exc: Exception) -> DataError:
    """The error for a text file polars refused, read whole or scanned in parts: empty, or where it goes wrong."""
    if isinstance(exc, pl.exceptions.NoDataError):
        return DataError(f"{path} is empty. Check the path, or remove this source from the YAML.")
    first = str(exc).strip().splitlines()[0]
    where = _first_bad_line(path, sep, encoding)
    return DataError(f"{path}{where or ''} could not be parsed with separator {sep!r} (header: {header}): {first}")


def _first_bad_line(path: Path, sep: str, encoding: str) -> str | None:
    """Where a text file that polars refused goes wrong, for the message: the first bytes that are not valid in
    its encoding, or the first line whose field count differs from the first line's. Only on the error path."""
    import csv

    raw = path.read_bytes()
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            line = raw[:exc.start].count(b"\n") + 1
            return (f" line {line} (bytes {raw[exc.start:exc.start + 4]!r} are not {encoding}: set 'encoding' in "
                    "the YAML, for example latin-1)")
        return None
    if len(sep) != 1:
        return None
    widths = None
    for n, fields in enumerate(csv.reader(io.StringIO(text), delimiter=sep, quotechar='"' if sep == "," else None),
                               start=1):
        if widths is None:
            widths = len(fields)
        elif fields and len(fields) != widths:
            return f" line {n} ({len(fields)} fields where the first line has {widths})"
    return None


def _select(
    df: pl.DataFrame, path: Path, columns: Mapping[str, ColumnRef], header: bool, first_line: int
) -> pl.DataFrame:
    names = df.columns
    df = df.with_columns((pl.int_range(pl.len(), dtype=pl.Int64) + first_line).alias(LINE))
    return df.select(pl.col(LINE), *_mapped(names, path, columns, header))


def _mapped(names: list[str], path: Path, columns: Mapping[str, ColumnRef], header: bool) -> list[pl.Expr]:
    """The mapping's columns out of a file with columns `names` (the row number: the `LINE` column)."""
    exprs: list[pl.Expr] = []
    for new, ref in columns.items():
        if ref == ROW_NUMBER:
            exprs.append(pl.col(LINE).cast(pl.String).alias(new))
            continue
        if isinstance(ref, int):
            if ref < 0 or ref >= len(names):
                raise DataError(
                    f"{path}: column position {ref} (for '{new}') is out of range: the file has {len(names)} "
                    f"columns (positions 0..{len(names) - 1})."
                )
            exprs.append(pl.col(names[ref]).alias(new))
            continue
        if ref not in names:
            shown = ", ".join(names[:30]) + (" ..." if len(names) > 30 else "")
            raise DataError(
                f"{path}: column '{ref}' (for '{new}') is not in the file. Its columns are: {shown}."
                + ("" if header else " The file was read without a header: use 0-based positions.")
            )
        exprs.append(pl.col(ref).alias(new))
    return exprs
