"""One way to read a configuration: a mapping (from YAML or the command line) -> a frozen dataclass, checked key by
key against the dataclass's type hints, as scikit-learn checks parameters.

    >>> parse_config(TrainConfig, {"optimizer": "sgd"}, "the train config")
    ConfigError: The 'optimizer' parameter of TrainConfig must be one of 'adam', 'adamw'. Got 'sgd' instead.

What the types say is checked here: unknown keys (with the nearest known one), bool / int / float / str,
`Literal[...]` choices (named in the message), `tuple[int, ...]` and lists, mappings, `X | None`, nested config
dataclasses. What they cannot say (ranges, one setting against another) is the dataclass's own `validate()`,
called last. A key that was renamed is listed in the class's `renamed` mapping (old -> new): the message gives
the new name. Model, train and benchmark configs all come through here (the dataset YAML has its own reader,
mistrec.data.config, because its errors name files, tables and columns).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from mistrec.errors import ConfigError

__all__ = ["parse_config", "shown_key"]

C = TypeVar("C")


def parse_config(cls: type[C], values: Any, where: str) -> C:
    """`cls` built from `values` (a mapping; None is empty), every key and value checked; then `validate()`."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping of {cls.__name__} keys. Got {values!r}.")
    hints = get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    renamed: dict[str, str] = getattr(cls, "renamed", {})
    parsed: dict[str, Any] = {}
    for key, value in values.items():
        if key in renamed:
            raise ConfigError(f"'{key}' in {where} is now called '{renamed[key]}': rename it.")
        if key not in fields:
            near = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            raise ConfigError(f"Unknown key {shown_key(key)} in {where}. Allowed keys: {', '.join(fields)}.{hint}")
        parsed[key] = _value(hints[key], value, f"The '{key}' parameter of {cls.__name__}", where)
    cfg = cls(**parsed)
    check = getattr(cfg, "validate", None)
    if check is not None:
        check()
    return cfg


def shown_key(key: object) -> str:
    """A key as an error message shows it: 'name', or its repr when it is not plain printable text (a newline
    in a YAML key must not break the one-line error)."""
    return f"'{key}'" if isinstance(key, str) and key.isprintable() and "'" not in key else repr(key)


def _value(kind: Any, value: Any, what: str, where: str) -> Any:
    """`value` checked (and converted: a list to a tuple, an int to a float) against the type hint `kind`."""
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _value(option, value, what, where)
            except ConfigError as exc:
                errors.append(exc)
        if len(options) == 1:
            raise errors[0]
        raise ConfigError(f"{what} must be {' or '.join(_describe(o) for o in options)}. "
                          f"Got {value!r} instead.")
    if origin is Literal:
        if isinstance(value, bool) and not any(isinstance(a, bool) for a in args):
            # YAML 1.1 reads an unquoted off / no as false and on / yes as true: `co_scale: off` means "off"
            word = next((w for w in (("off", "no") if not value else ("on", "yes")) if w in args), None)
            if word is not None:
                return word
        if value not in args or isinstance(value, bool) != any(isinstance(a, bool) for a in args if a == value):
            raise ConfigError(f"{what} must be one of {', '.join(repr(a) for a in args)}. "
                              f"Got {value!r} instead.")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{what} must be {_describe(kind)}. Got {value!r} instead.")
        item = args[0] if args else Any
        if origin is tuple and item is int and not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                      for v in value):  # layer sizes
            raise ConfigError(f"{what} must be a list of positive ints. Got {value!r} instead.")
        items = [_value(item, v, what, where) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{what} must be a mapping. Got {value!r} instead.")
        key_kind, item_kind = args if args else (Any, Any)
        return {_value(key_kind, k, what, where): _value(item_kind, v, f"{what} ('{k}')", where)
                for k, v in value.items()}
    if kind is Any:
        return value
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return parse_config(kind, value, f"{where} ({what})")
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{what} must be true or false. Got {value!r} instead.")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{what} must be an int. Got {value!r} instead.")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{what} must be a number. Got {value!r} instead.")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{what} must be a string. Got {value!r} instead.")
        return value
    if kind is Path:
        if not isinstance(value, str | Path):
            raise ConfigError(f"{what} must be a path. Got {value!r} instead.")
        return Path(value)
    raise TypeError(f"parse_config cannot check the type {kind!r} ({what})")  # a config class's bug, not input's


def _describe(kind: Any) -> str:
    origin, args = get_origin(kind), get_args(kind)
    if origin in (tuple, list):
        return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s" if args else "a list"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    return {bool: "true or false", int: "an int", float: "a number", str: "a string"}.get(kind, str(kind))
