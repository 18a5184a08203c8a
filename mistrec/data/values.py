"""Checks of the values in a dataset YAML, each naming where the value was and what it must be."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mistrec.config import shown_key
from mistrec.errors import ConfigError


def _check_keys(d: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in d:
        if key not in allowed:
            raise ConfigError(f"Unknown key {shown_key(key)} in {where}. Allowed keys: {', '.join(allowed)}.")


def _require_mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping (key: value). Got {type(value).__name__}: {value!r}.")
    return value


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{where} must be one of {', '.join(allowed)}. Got {value!r} instead.")
    return str(value)


def _number(value: Any, where: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number. Got {value!r} instead.")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{where} must be in [{lo}, {hi}]. Got {value!r} instead.")
    return float(value)


def _int(value: Any, where: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"{where} must be an int >= {lo}. Got {value!r} instead.")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false. Got {value!r} instead.")
    return value


def _str_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise ConfigError(f"{where} must be a list of column names. Got {value!r} instead.")
    return [str(v) for v in value]
