"""The dataset YAML: typed, strictly validated configuration of sources, labels, tables and protocol.

Every unknown key fails loudly with the key, where it was found and the keys allowed there
(RecBole's config silently returned None for mistyped keys; its users lost days to it).

Example:
    >>> cfg = DatasetConfig.from_dict({"name": "toy", "interactions": [
    ...     {"path": "a.csv", "columns": {"user_id": "u", "item_id": "i"}, "scenario": "home"}],
    ...     "label": {"implicit": True}}, base_dir=Path("."))
    >>> cfg.interactions[0].scenario
    'home'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mistrec.data.protocol_config import PROTOCOLS, ProtocolConfig
from mistrec.data.values import _bool, _check_keys, _choice, _int, _number, _require_mapping, _str_list
from mistrec.errors import ConfigError

__all__ = [
    "PROTOCOLS",
    "CleaningConfig",
    "DatasetConfig",
    "HistoryConfig",
    "LabelRule",
    "NegativesConfig",
    "ProtocolConfig",
    "ScenarioFrom",
    "SourceConfig",
    "TableConfig",
    "TimestampConfig",
    "load_dataset_config",
]

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
    """One interaction file."""

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

    @classmethod
    def from_dict(cls, d: Any, base_dir: Path, where: str) -> SourceConfig:
        d = _require_mapping(d, where)
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

    @property
    def key(self) -> str:
        return {"users": "user_id", "items": "item_id", "scenarios": "scenario"}[self.kind]

    @property
    def features(self) -> list[str]:
        return [*self.categorical, *self.numeric, *self.text, *self.sequence]

    @classmethod
    def from_dict(cls, kind: str, d: Any, base_dir: Path) -> TableConfig:
        where = kind
        d = _require_mapping(d, where)
        _check_keys(d, (*_FILE_KEYS, "categorical", "numeric", "text", "sequence", "sequence_sep"), where)
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
        )
        seen: set[str] = set()
        for name in cfg.features:
            if name in seen:
                raise ConfigError(f"{where}: column '{name}' is listed twice among categorical/numeric/text/sequence.")
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


@dataclass(frozen=True)
class ScenarioFrom:
    """Scenario derived from a user or item attribute: a value map, numeric bins, or the value itself."""

    table: str
    column: str
    map: dict[str, str] | None = None
    bins: list[float] | None = None
    labels: list[str] | None = None
    token: str | None = None  # 'first': take the first `sep`-separated token (genre lists)
    sep: str = " "
    default: str | None = None

    @classmethod
    def from_dict(cls, d: Any) -> ScenarioFrom:
        where = "scenario_from"
        d = _require_mapping(d, where)
        _check_keys(d, ("table", "column", "map", "bins", "labels", "token", "sep", "default"), where)
        table = _choice(d.get("table"), ("users", "items"), f"{where}.table")
        if "column" not in d:
            raise ConfigError(f"{where} needs 'column': the {table} column the scenario is derived from.")
        mapping = None
        if "map" in d:
            m = _require_mapping(d["map"], f"{where}.map")
            mapping = {_scalar_str(k): _scalar_str(v) for k, v in m.items()}
        bins = labels = None
        if "bins" in d:
            if mapping is not None:
                raise ConfigError(f"{where}: give either map or bins, not both.")
            raw = d["bins"]
            if not isinstance(raw, list) or not raw:
                raise ConfigError(f"{where}.bins must be a non-empty ascending list of cut points. Got {raw!r}.")
            bins = [_number(b, f"{where}.bins") for b in raw]
            if bins != sorted(bins):
                raise ConfigError(f"{where}.bins must be ascending. Got {raw!r}.")
            labels = [str(v) for v in d.get("labels", list(range(len(bins) + 1)))]
            if len(labels) != len(bins) + 1:
                raise ConfigError(
                    f"{where}.labels must have len(bins) + 1 = {len(bins) + 1} entries. Got {len(labels)}."
                )
        token = d.get("token")
        if token is not None:
            token = _choice(token, ("first",), f"{where}.token")
        default = d.get("default")
        return cls(table=table, column=str(d["column"]), map=mapping, bins=bins, labels=labels, token=token,
                   sep=str(d.get("sep", " ")), default=None if default is None else _scalar_str(default))


def _scalar_str(v: Any) -> str:
    # YAML reads `1: young` with an int key and `18.0` as a float: compare them as the file's text would be.
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


@dataclass(frozen=True)
class NumericCleaning:
    """How numeric side features are cleaned: missing values filled, outliers clipped, then scaled."""

    fill: str = "median"  # mean | median | knn | none
    knn_neighbors: int = 5
    outliers: str = "iqr"  # iqr | zscore | none
    iqr_k: float = 1.5
    z_max: float = 3.0
    scale: str = "zscore"  # zscore | minmax | none


@dataclass(frozen=True)
class CleaningConfig:
    """The dataset YAML's `cleaning:` section: deduplication, invalid rows (error or drop), k-core filtering
    and the numeric side features' cleaning."""

    deduplicate: bool = True
    invalid_rows: str = "error"  # error | drop
    kcore_user: int = 0
    kcore_item: int = 0
    numeric: NumericCleaning = field(default_factory=NumericCleaning)

    @classmethod
    def from_dict(cls, d: Any) -> CleaningConfig:
        where = "cleaning"
        d = _require_mapping(d, where)
        _check_keys(d, ("deduplicate", "invalid_rows", "kcore", "numeric"), where)
        kc = _require_mapping(d.get("kcore", {}), f"{where}.kcore")
        _check_keys(kc, ("user", "item"), f"{where}.kcore")
        num = _require_mapping(d.get("numeric", {}), f"{where}.numeric")
        _check_keys(num, ("fill", "knn_neighbors", "outliers", "iqr_k", "z_max", "scale"), f"{where}.numeric")
        numeric = NumericCleaning(
            fill=_choice(num.get("fill", "median"), ("mean", "median", "knn", "none"), f"{where}.numeric.fill"),
            knn_neighbors=_int(num.get("knn_neighbors", 5), f"{where}.numeric.knn_neighbors", 1),
            outliers=_choice(num.get("outliers", "iqr"), ("iqr", "zscore", "none"), f"{where}.numeric.outliers"),
            iqr_k=_number(num.get("iqr_k", 1.5), f"{where}.numeric.iqr_k", 0),
            z_max=_number(num.get("z_max", 3.0), f"{where}.numeric.z_max", 0),
            scale=_choice(num.get("scale", "zscore"), ("zscore", "minmax", "none"), f"{where}.numeric.scale"),
        )
        return cls(
            deduplicate=_bool(d.get("deduplicate", True), f"{where}.deduplicate"),
            invalid_rows=_choice(d.get("invalid_rows", "error"), ("error", "drop"), f"{where}.invalid_rows"),
            kcore_user=_int(kc.get("user", 0), f"{where}.kcore.user"),
            kcore_item=_int(kc.get("item", 0), f"{where}.kcore.item"),
            numeric=numeric,
        )


@dataclass(frozen=True)
class HistoryConfig:
    """The dataset YAML's `history:` section: events kept per sample (strictly earlier ones), and whether only
    positive events are kept."""

    length: int = 50
    positives_only: bool = False

    @classmethod
    def from_dict(cls, d: Any) -> HistoryConfig:
        d = _require_mapping(d, "history")
        _check_keys(d, ("length", "positives_only"), "history")
        return cls(length=_int(d.get("length", 50), "history.length", 1),
                   positives_only=_bool(d.get("positives_only", False), "history.positives_only"))


@dataclass(frozen=True)
class NegativesConfig:
    """The dataset YAML's `negatives:` section, for implicit data: sampled negatives per positive and the redraws
    allowed for a candidate that hits a known positive."""

    per_positive: int = 1
    max_rounds: int = 50

    @classmethod
    def from_dict(cls, d: Any) -> NegativesConfig:
        d = _require_mapping(d, "negatives")
        _check_keys(d, ("per_positive", "max_rounds"), "negatives")
        return cls(per_positive=_int(d.get("per_positive", 1), "negatives.per_positive", 0),
                   max_rounds=_int(d.get("max_rounds", 50), "negatives.max_rounds", 1))


_TOP_KEYS = ("name", "interactions", "label", "timestamp", "users", "items", "scenarios", "scenario_from",
             "cleaning", "history", "negatives", "protocol", "split_values", "description")


@dataclass(frozen=True)
class DatasetConfig:
    """A whole dataset YAML, parsed and checked (docs/data.md): where the interactions and side tables are, how
    labels, timestamps and scenarios are read, and the cleaning, history, negatives and protocol settings."""

    name: str
    base_dir: Path
    interactions: list[SourceConfig]
    label: LabelRule
    timestamp: TimestampConfig
    users: TableConfig | None = None
    items: TableConfig | None = None
    scenarios: TableConfig | None = None
    scenario_from: ScenarioFrom | None = None
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    negatives: NegativesConfig = field(default_factory=NegativesConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    split_values: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any, base_dir: Path) -> DatasetConfig:
        d = _require_mapping(d, "the dataset YAML")
        _check_keys(d, _TOP_KEYS, "the dataset YAML (top level)")
        if "interactions" not in d:
            raise ConfigError("The dataset YAML needs 'interactions': a list of one or more source files.")
        sources_raw = d["interactions"]
        if isinstance(sources_raw, Mapping):
            sources_raw = [sources_raw]
        if not isinstance(sources_raw, list) or not sources_raw:
            raise ConfigError("'interactions' must be a non-empty list of sources (path, format, columns, ...).")
        sources = [SourceConfig.from_dict(s, base_dir, f"interactions[{i}]") for i, s in enumerate(sources_raw)]
        scenario_from = ScenarioFrom.from_dict(d["scenario_from"]) if "scenario_from" in d else None
        tables = {k: TableConfig.from_dict(k, d[k], base_dir) for k in ("users", "items", "scenarios") if k in d}
        for i, s in enumerate(sources):
            has_scenario = s.scenario is not None or "scenario" in s.columns or scenario_from is not None
            if not has_scenario:
                raise ConfigError(
                    f"interactions[{i}] ({s.name}) has no scenario: give 'scenario: NAME', map a 'scenario' "
                    f"column, or derive it with a top-level 'scenario_from'."
                )
            if scenario_from is not None and (s.scenario is not None or "scenario" in s.columns):
                raise ConfigError(f"interactions[{i}]: scenario_from is set, so sources may not give a scenario too.")
        if scenario_from is not None and scenario_from.table not in tables:
            raise ConfigError(f"scenario_from.table is '{scenario_from.table}', but the YAML has no "
                              f"'{scenario_from.table}' table.")
        split_values = {_scalar_str(k): _choice(v, SPLITS, f"split_values.{k}")
                        for k, v in _require_mapping(d.get("split_values", {}), "split_values").items()}
        name = d.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError("The dataset YAML needs a 'name' (a short string such as ml-1m-age).")
        return cls(
            name=name, base_dir=base_dir, interactions=sources,
            label=LabelRule.from_dict(d.get("label", {"column": "label"}), "label"),
            timestamp=TimestampConfig.from_dict(d.get("timestamp", {}), "timestamp"),
            users=tables.get("users"), items=tables.get("items"), scenarios=tables.get("scenarios"),
            scenario_from=scenario_from,
            cleaning=CleaningConfig.from_dict(d.get("cleaning", {})),
            history=HistoryConfig.from_dict(d.get("history", {})),
            negatives=NegativesConfig.from_dict(d.get("negatives", {})),
            protocol=ProtocolConfig.from_dict(d.get("protocol", {})),
            split_values=split_values,
            raw=dict(d),
        )

    def table(self, kind: str) -> TableConfig | None:
        return {"users": self.users, "items": self.items, "scenarios": self.scenarios}[kind]

    @property
    def implicit(self) -> bool:
        rules = [s.label or self.label for s in self.interactions]
        return any(r.implicit for r in rules)


def load_dataset_config(path: str | Path) -> DatasetConfig:
    """Reads and validates a dataset YAML file; paths inside are relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Dataset config not found: {path}. Give the path to a dataset YAML file.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path} is not valid YAML{at}: {getattr(exc, 'problem', exc)}.") from None
    if raw is None:
        raise ConfigError(f"{path} is empty: it must describe a dataset (name, interactions, label, ...).")
    try:
        return DatasetConfig.from_dict(raw, base_dir=path.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
