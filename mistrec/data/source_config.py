"""The dataset YAML's files: interaction sources (a file, or an event store), side tables, and how a source's
labels and timestamps are read. Part of the dataset YAML (mistrec.data.config re-exports its classes)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mistrec.data.values import _bool, _check_keys, _choice, _require_mapping, _str_list
from mistrec.errors import ConfigError

__all__ = ["CANONICAL", "FORMATS", "ROW_NUMBER", "SPLITS", "ColumnRef", "LabelRule", "SourceConfig", "TableConfig",
           "TimestampConfig"]

FORMATS = ("csv", "parquet", "recbole")
SPLITS = ("train", "valid", "test")
ColumnRef = str | int

# Canonical interaction columns that a source's `columns` mapping may name; anything else is context.
# `conversion` (optional, 0/1): a post-click conversion, the second task's label (ESMM's CVR); 1 needs a click.
CANONICAL = ("user_id", "item_id", "timestamp", "label", "scenario", "split", "conversion")
# A column mapped to this marker takes the row's position in its file (for data without ids, AliExpress).
ROW_NUMBER = "@row"


def _columns(value: Any, header: bool, where: str) -> dict[str, ColumnRef]:
    mapping = _require_mapping(value, where)
    out: dict[str, ColumnRef] = {}
    for name, ref in mapping.items():
        if isinstance(ref, bool) or not isinstance(ref, str | int):
            raise ConfigError(f"{where}.{name} must be a column name or a 0-based position. Got {ref!r}.")
        if not header and isinstance(ref, str) and ref != ROW_NUMBER:
            raise ConfigError(
                f"{where}.{name} is {ref!r}, but this file has no header (header: false): "
                f"give the 0-based column position instead, for example {name}: 0."
            )
        out[str(name)] = ref
    return out


_RULE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class LabelRule:
    """How a row's label is made: a 0/1 column, a threshold rule on a column, or implicit (all 1)."""

    column: str | None = "label"
    op: str | None = None
    threshold: float | None = None
    implicit: bool = False

    @classmethod
    def from_dict(cls, d: Any, where: str) -> LabelRule:
        d = _require_mapping(d, where)
        _check_keys(d, ("column", "rule", "implicit"), where)
        if d.get("implicit"):
            if "column" in d or "rule" in d:
                raise ConfigError(f"{where}: implicit: true takes no column or rule (every row is a positive).")
            return cls(column=None, implicit=True)
        column = d.get("column", "label")
        if not isinstance(column, str | int):
            raise ConfigError(f"{where}.column must be a column name. Got {column!r}.")
        rule = d.get("rule")
        if rule is None:
            return cls(column=str(column))
        m = _RULE.match(str(rule))
        if not m:
            raise ConfigError(
                f"{where}.rule must be a comparison such as '> 3' or '>= 1' "
                f"(operators >, >=, <, <=, ==, !=). Got {rule!r} instead."
            )
        return cls(column=str(column), op=m.group(1), threshold=float(m.group(2)))

    def describe(self) -> str:
        if self.implicit:
            return "implicit (every logged row is a positive; negatives are sampled)"
        if self.op is None:
            return f"0/1 column '{self.column}'"
        return f"1 if {self.column} {self.op} {self.threshold:g} else 0"


@dataclass(frozen=True)
class TimestampConfig:
    """Unit of the timestamp column: 's', 'ms', 'us' or a strftime format such as '%Y-%m-%d'."""

    unit: str = "s"

    @classmethod
    def from_dict(cls, d: Any, where: str) -> TimestampConfig:
        d = _require_mapping(d, where)
        _check_keys(d, ("unit",), where)
        unit = d.get("unit", "s")
        if not isinstance(unit, str) or (unit not in ("s", "ms", "us") and "%" not in unit):
            raise ConfigError(
                f"{where}.unit must be s, ms, us or a strftime format such as '%Y-%m-%d'. Got {unit!r}."
            )
        return cls(unit=unit)


_FILE_KEYS = ("path", "format", "sep", "header", "encoding", "columns")


@dataclass(frozen=True)
class SourceConfig:
    """One interaction file, or an event store (`store: URL`, format 'store'): the events `mistrec serve` logged,
    read with their own columns, label (`Event.label`: clicks and conversions 1, impressions 0, ratings above 3
    1) and time in seconds, whatever the dataset's label rule and time unit."""

    path: Path
    format: str
    sep: str
    header: bool
    encoding: str
    columns: dict[str, ColumnRef]
    scenario: str | None = None
    split: str | None = None
    item_id_scope: str = "global"
    label: LabelRule | None = None
    timestamp: TimestampConfig | None = None
    name: str = ""
    store: str | None = None  # the event store's URL (format 'store')

    @classmethod
    def from_dict(cls, d: Any, base_dir: Path, where: str) -> SourceConfig:
        d = _require_mapping(d, where)
        if "store" in d:
            return cls._from_store(d, base_dir, where)
        _check_keys(d, (*_FILE_KEYS, "scenario", "split", "item_id_scope", "label", "timestamp", "name"), where)
        path, fmt, sep, header, encoding = _file_fields(d, base_dir, where)
        columns = _columns(d.get("columns", {}), header, f"{where}.columns")
        for required in ("user_id", "item_id"):
            if required not in columns:
                raise ConfigError(f"{where}.columns must map '{required}' to a column of {path.name}.")
        scenario = d.get("scenario")
        if scenario is not None and "scenario" in columns:
            raise ConfigError(f"{where}: give the scenario either as a constant (scenario:) or a column, not both.")
        if scenario is not None:
            scenario = str(scenario)
            if not scenario.strip():
                raise ConfigError(f"{where}.scenario is empty: name the scenario of {path.name}, e.g. home_feed.")
        split = d.get("split")
        if split is not None:
            split = _choice(split, SPLITS, f"{where}.split")
        label = LabelRule.from_dict(d["label"], f"{where}.label") if "label" in d else None
        ts = TimestampConfig.from_dict(d["timestamp"], f"{where}.timestamp") if "timestamp" in d else None
        return cls(
            path=path, format=fmt, sep=sep, header=header, encoding=encoding, columns=columns,
            scenario=scenario, split=split,
            item_id_scope=_choice(d.get("item_id_scope", "global"), ("global", "scenario"),
                                  f"{where}.item_id_scope"),
            label=label, timestamp=ts, name=str(d.get("name", path.name)),
        )


    @classmethod
    def _from_store(cls, d: Mapping[str, Any], base_dir: Path, where: str) -> SourceConfig:
        _check_keys(d, ("store", "split", "name"), where)
        url = d["store"]
        if not isinstance(url, str) or not url.startswith(("sqlite:///", "postgresql")):
            raise ConfigError(f"{where}.store must be an event store's URL: sqlite:///FILE (relative to the YAML "
                              f"file, or absolute) or postgresql+psycopg://USER@HOST/DB. Got {url!r}.")
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            path = path if path.is_absolute() else base_dir / path
            url = f"sqlite:///{path}"
        else:
            path = Path(url.rsplit("@", 1)[-1])  # in messages: the host and database, never a password
        split = d.get("split")
        return cls(path=path, format="store", sep=",", header=True, encoding="utf-8",
                   columns={"user_id": "user_id", "item_id": "item_id", "timestamp": "time", "scenario": "scenario"},
                   split=None if split is None else _choice(split, SPLITS, f"{where}.split"),
                   label=LabelRule(column="label"), timestamp=TimestampConfig(unit="s"),
                   name=str(d.get("name", "logged events")), store=url)


def _file_fields(d: Mapping[str, Any], base_dir: Path, where: str) -> tuple[Path, str, str, bool, str]:
    if "path" not in d:
        raise ConfigError(f"{where} needs a 'path' (relative to the YAML file or absolute).")
    path = Path(str(d["path"]))
    if not path.is_absolute():
        path = base_dir / path
    default_fmt = {".parquet": "parquet", ".inter": "recbole", ".user": "recbole", ".item": "recbole"}.get(
        path.suffix, "csv"
    )
    fmt = _choice(d.get("format", default_fmt), FORMATS, f"{where}.format")
    default_sep = "\t" if fmt == "recbole" or path.suffix in (".tsv", ".txt") else ","
    sep = d.get("sep", default_sep)
    if not isinstance(sep, str) or not sep:
        raise ConfigError(f"{where}.sep must be a non-empty string such as ',' or '\\t' or '::'. Got {sep!r}.")
    header = _bool(d.get("header", True), f"{where}.header")
    if fmt == "recbole" and not header:
        raise ConfigError(f"{where}: RecBole atomic files always have a 'name:type' header; drop header: false.")
    encoding = d.get("encoding", "utf-8")
    if not isinstance(encoding, str):
        raise ConfigError(f"{where}.encoding must be a codec name such as utf-8 or latin-1. Got {encoding!r}.")
    return path, fmt, sep, header, encoding


@dataclass(frozen=True)
class TableConfig:
    """A side table of users, items or scenarios: an id column and typed feature columns."""

    kind: str  # users | items | scenarios
    path: Path
    format: str
    sep: str
    header: bool
    encoding: str
    columns: dict[str, ColumnRef]
    categorical: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    sequence: list[str] = field(default_factory=list)
    sequence_sep: str = " "
    image: list[str] = field(default_factory=list)  # image paths, relative to the table's file (data/content.py)
    vector: list[str] = field(default_factory=list)  # precomputed vectors, numbers separated by spaces or commas
    vector_files: list[str] = field(default_factory=list)  # .npy files, one row per row of the table's file

    @property
    def key(self) -> str:
        return {"users": "user_id", "items": "item_id", "scenarios": "scenario"}[self.kind]

    @property
    def features(self) -> list[str]:
        """The feature columns, each once (a text column may also be categorical or a sequence)."""
        return list(dict.fromkeys([*self.categorical, *self.numeric, *self.text, *self.sequence, *self.image,
                                   *self.vector]))

    @classmethod
    def from_dict(cls, kind: str, d: Any, base_dir: Path) -> TableConfig:
        where = kind
        d = _require_mapping(d, where)
        _check_keys(d, (*_FILE_KEYS, "categorical", "numeric", "text", "sequence", "sequence_sep", "image", "vector",
                        "vector_files"),
                    where)
        path, fmt, sep, header, encoding = _file_fields(d, base_dir, where)
        key = {"users": "user_id", "items": "item_id", "scenarios": "scenario"}[kind]
        columns = _columns(d.get("columns", {key: key} if header else {}), header, f"{where}.columns")
        if key not in columns:
            raise ConfigError(f"{where}.columns must map '{key}' to a column of {path.name}.")
        cfg = cls(
            kind=kind, path=path, format=fmt, sep=sep, header=header, encoding=encoding, columns=columns,
            categorical=_str_list(d.get("categorical"), f"{where}.categorical"),
            numeric=_str_list(d.get("numeric"), f"{where}.numeric"),
            text=_str_list(d.get("text"), f"{where}.text"),
            sequence=_str_list(d.get("sequence"), f"{where}.sequence"),
            sequence_sep=str(d.get("sequence_sep", " ")),
            image=_str_list(d.get("image"), f"{where}.image"),
            vector=_str_list(d.get("vector"), f"{where}.vector"),
            vector_files=_str_list(d.get("vector_files"), f"{where}.vector_files"),
        )
        if kind == "scenarios" and (cfg.image or cfg.vector or cfg.vector_files):
            raise ConfigError(f"{where}: image and vector columns are read for items and users only; a scenario is "
                              "described by its text.")
        seen: set[str] = set()
        # a text column may also be categorical or a sequence (genres as ids and as words of the item's text)
        also_ids = set(cfg.categorical) | set(cfg.sequence)
        listed = [*cfg.categorical, *cfg.numeric, *[c for c in cfg.text if c not in also_ids], *cfg.sequence,
                  *cfg.image, *cfg.vector]
        for name in listed:
            if name in seen:
                raise ConfigError(f"{where}: column '{name}' is listed twice among categorical/numeric/text/sequence/"
                                  "image/vector.")
            if name == key:
                raise ConfigError(f"{where}: the id column '{key}' cannot also be a feature.")
            seen.add(name)
        if not header:
            for name in cfg.features:
                if name not in columns:
                    raise ConfigError(
                        f"{where}: feature '{name}' needs a position in {where}.columns (the file has no header)."
                    )
        return cfg
