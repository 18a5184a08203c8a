"""The one config parser: every key and value checked against the dataclass's type hints, errors that name the
key, the rule, the allowed values and what was given."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import pytest
import yaml

from mistrec.config import parse_config
from mistrec.errors import ConfigError
from mistrec.models import REGISTRY, model_config
from mistrec.train import TrainConfig


@dataclass(frozen=True)
class _Inner:
    size: int = 1


@dataclass(frozen=True)
class _Example:
    renamed: ClassVar[dict[str, str]] = {"layers": "hidden"}

    mode: Literal["a", "b"] = "a"
    switch: Literal["auto", "off"] = "auto"
    hidden: tuple[int, ...] = (8,)
    rate: float = 0.5
    flag: bool = False
    name: str | None = None
    inner: _Inner = field(default_factory=_Inner)
    extra: dict[str, int] = field(default_factory=dict)

    def validate(self) -> None:
        if not 0 <= self.rate <= 1:
            raise ConfigError(f"The 'rate' parameter of _Example must be in [0, 1]. Got {self.rate}.")


@pytest.mark.parametrize(("values", "message"), [
    ({"mdoe": "a"}, "Unknown key 'mdoe' in ex. Allowed keys: mode, switch, hidden, rate, flag, name, inner, extra. "
                    "Did you mean 'mode'?"),
    ({"mode": "c"}, "The 'mode' parameter of _Example must be one of 'a', 'b'. Got 'c' instead."),
    ({"switch": True}, "The 'switch' parameter of _Example must be one of 'auto', 'off'. Got True instead."),
    ({"hidden": [8, 0]}, "The 'hidden' parameter of _Example must be a list of positive ints. Got [8, 0] instead."),
    ({"hidden": 8}, "must be a list of ints. Got 8 instead."),
    ({"rate": "high"}, "The 'rate' parameter of _Example must be a number. Got 'high' instead."),
    ({"rate": True}, "must be a number. Got True"),
    ({"rate": 2}, "The 'rate' parameter of _Example must be in [0, 1]. Got 2."),  # validate(): what types cannot say
    ({"flag": "yes"}, "The 'flag' parameter of _Example must be true or false. Got 'yes' instead."),
    ({"name": 3}, "The 'name' parameter of _Example must be a string. Got 3 instead."),
    ({"inner": {"sise": 2}}, "Unknown key 'sise' in ex (The 'inner' parameter of _Example)."),
    ({"extra": {"k": "v"}}, "The 'extra' parameter of _Example ('k') must be an int. Got 'v' instead."),
    ({"layers": [4]}, "'layers' in ex is now called 'hidden': rename it."),
    ([1, 2], "ex must be a mapping of _Example keys. Got [1, 2]."),
])
def test_bad_values_are_named(values: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_Example, values, "ex")
    assert message in str(info.value)


def test_good_values_are_converted_and_nothing_else_changes() -> None:
    cfg = parse_config(_Example, {"mode": "b", "hidden": [4, 2], "rate": 1, "name": None, "inner": {"size": 3},
                                  "extra": {"k": 1}}, "ex")
    assert cfg == _Example(mode="b", hidden=(4, 2), rate=1, name=None, inner=_Inner(3), extra={"k": 1})
    assert parse_config(_Example, None, "ex") == _Example()
    # YAML reads an unquoted off as false: a choice between words that has "off" takes it as "off"
    assert parse_config(_Example, yaml.safe_load("switch: off"), "ex") == _Example(switch="off")


def test_every_registered_config_and_the_train_config_parse_their_own_defaults() -> None:
    """Each config class's type hints are ones the parser can check (a hint it cannot is a TypeError here, not a
    user's error later), and the defaults pass its checks."""
    for name, entry in REGISTRY.items():
        defaults = {k: v for k, v in vars(entry.config()).items()}
        assert model_config(name, defaults) == entry.config(), name
    assert parse_config(TrainConfig, vars(TrainConfig()), "train") == TrainConfig()
