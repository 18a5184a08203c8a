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

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mistrec.data.content import ALIGN_METHODS, TEXT_ENCODERS
from mistrec.data.protocol_config import PROTOCOLS, ProtocolConfig
from mistrec.data.source_config import (
    SPLITS,
    LabelRule,
    SourceConfig,
    TableConfig,
    TimestampConfig,
)
from mistrec.data.values import _bool, _check_keys, _choice, _int, _number, _require_mapping
from mistrec.errors import ConfigError

__all__ = [
    "PROTOCOLS",
    "CleaningConfig",
    "DatasetConfig",
    "HashingConfig",
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


@dataclass(frozen=True)
class ContentConfig:
    """The dataset YAML's `content:` section: whether and how the side tables' text columns are embedded into
    content vectors (data/content.py). Image and vector columns are always read: they are there for that."""

    embed_text: bool = False  # off: text columns are kept as strings only (they were before content vectors)
    text_encoder: str = "auto"  # auto (MiniLM when the text extra is installed, else TF-IDF), minilm, tfidf
    # the dimensions TF-IDF is reduced to by truncated SVD (MiniLM's are 384); None ("auto" in the YAML): the
    # components above the noise floor, at most 64 (data/content.py, parallel_rank)
    text_dims: int | None = None
    # cooccurrence (the default since 2026-12-03: docs/benchmarks.md, "Content"): the items' content replaced by
    # its map onto the behaviour factors it predicts (fitted on the training split's liked rows: data/content.py,
    # align_to_cooccurrence); none: the content as embedded
    align: str = "cooccurrence"

    @classmethod
    def from_dict(cls, d: Any) -> ContentConfig:
        d = _require_mapping(d, "content")
        _check_keys(d, ("embed_text", "text_encoder", "text_dims", "align"), "content")
        return cls(embed_text=_bool(d.get("embed_text", False), "content.embed_text"),
                   text_encoder=_choice(d.get("text_encoder", "auto"), TEXT_ENCODERS, "content.text_encoder"),
                   text_dims=_text_dims(d.get("text_dims", "auto")),
                   align=_choice(d.get("align", cls.align), ALIGN_METHODS, "content.align"))


def _text_dims(v: Any) -> int | None:
    return None if v == "auto" else _int(v, "content.text_dims (auto or a number of dimensions)", 1)


@dataclass(frozen=True)
class HashingConfig:
    """The dataset YAML's `hashing:` section: user ids hashed into a table of `users` rows (0: every user its own
    row, the default). A vocabulary of 10^8 users needs 10^8 embedding rows; hashed, the table has as many rows as
    asked and users who share a bucket share an embedding (the collision rate is in the manifest)."""

    users: int = 0

    @classmethod
    def from_dict(cls, d: Any) -> HashingConfig:
        d = _require_mapping(d, "hashing")
        _check_keys(d, ("users",), "hashing")
        return cls(users=_int(d.get("users", 0), "hashing.users", 0))


_TOP_KEYS = ("name", "interactions", "label", "timestamp", "users", "items", "scenarios", "scenario_from",
             "cleaning", "history", "negatives", "protocol", "split_values", "description", "content", "hashing")


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
    content: ContentConfig = field(default_factory=ContentConfig)
    hashing: HashingConfig = field(default_factory=HashingConfig)
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
            content=ContentConfig.from_dict(d.get("content", {})),
            hashing=HashingConfig.from_dict(d.get("hashing", {})),
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
