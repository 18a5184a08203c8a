"""The protocol section of a dataset YAML (or the --protocol options of `mistrec prepare`): how interactions are
split into training, validation and test data (docs/protocols.md)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mistrec.data.values import _bool, _check_keys, _choice, _int, _number, _require_mapping
from mistrec.errors import ConfigError

__all__ = ["PROTOCOLS", "ProtocolConfig"]

PROTOCOLS = ("random", "temporal", "cold-user", "cold-item", "kshot", "leave-scenario-out", "predefined")


@dataclass(frozen=True)
class ProtocolConfig:
    """How interactions are split; see docs/protocols.md. Ratios may be fractions or per-user counts.

    `name` None means: predefined when the data carries splits, else temporal (see `resolved`).
    """

    name: str | None = None
    seed: int = 2022
    valid: float = 0.1
    test: float = 0.1
    target: str | None = None
    k: float | None = None  # kshot: percent of the target scenario's training rows kept
    cold_fraction: float = 0.2  # cold-user: share of eligible users made cold in the target
    # cold-user: where every row but the cold users' target rows goes: "split" (the temporal split, so warm users are
    # evaluated too) or "train" (all of it is training data and only cold users are evaluated, as PTUPCDR's protocol)
    cold_rest: str = "split"
    # cold-user: when the cold users' target rows happen. "time" (the default): at their own time, so a row's history
    # holds the user's events elsewhere up to it. "last": after every other event of the user (in their order), as
    # for a user who arrives in the target after being active elsewhere: every row's history then holds all of the
    # user's events elsewhere (up to the history length), as the id-based models learn from all of them. For data
    # whose time is an order the recipe made up (the cross-domain pairs, recipe cdr-pair): with real timestamps it
    # moves those rows in time (docs/protocols.md).
    cold_order: str = "time"
    # temporal: split each (user, scenario) sequence by itself (leave-one-out per user and domain, as the
    # cross-domain papers), not each user's whole sequence
    per_scenario: bool = False
    check_leakage: bool = True

    @classmethod
    def from_dict(cls, d: Any) -> ProtocolConfig:
        if isinstance(d, str):
            d = {"name": d}
        d = _require_mapping(d, "protocol")
        _check_keys(d, ("name", "seed", "valid", "test", "target", "k", "cold_fraction", "cold_rest", "cold_order",
                        "per_scenario", "check_leakage"), "protocol")
        cfg = cls(
            name=None if d.get("name") is None else _choice(d["name"], PROTOCOLS, "protocol.name"),
            seed=_int(d.get("seed", 2022), "protocol.seed"),
            valid=_ratio_or_count(d.get("valid", 0.1), "protocol.valid"),
            test=_ratio_or_count(d.get("test", 0.1), "protocol.test"),
            target=None if d.get("target") is None else str(d["target"]),
            k=None if d.get("k") is None else _number(d["k"], "protocol.k", 0, 100),
            cold_fraction=_number(d.get("cold_fraction", 0.2), "protocol.cold_fraction", 0, 1),
            cold_rest=_choice(d.get("cold_rest", "split"), ("split", "train"), "protocol.cold_rest"),
            cold_order=_choice(d.get("cold_order", "time"), ("time", "last"), "protocol.cold_order"),
            per_scenario=_bool(d.get("per_scenario", False), "protocol.per_scenario"),
            check_leakage=_bool(d.get("check_leakage", True), "protocol.check_leakage"),
        )
        return cfg

    def resolved(self, data_has_splits: bool) -> ProtocolConfig:
        """This protocol with its name decided: the default is predefined for data with splits, else temporal."""
        if self.name is not None:
            return self
        return dataclasses.replace(self, name="predefined" if data_has_splits else "temporal")

    def describe(self) -> dict[str, Any]:
        """The options that matter for this protocol, for the manifest."""
        if self.name is None:
            raise ValueError("describe() needs a resolved protocol: call resolved() first")
        keep = {"random": ("seed", "valid", "test"), "temporal": ("valid", "test"),
                "cold-user": ("seed", "valid", "test", "target", "cold_fraction"),
                "cold-item": ("seed", "valid", "test", "target", "cold_fraction"),
                "kshot": ("seed", "valid", "test", "target", "k"),
                "leave-scenario-out": ("valid", "test", "target"), "predefined": ()}[self.name]
        out: dict[str, Any] = {"name": self.name, **{k: getattr(self, k) for k in keep}}
        # the newer options only when set: the manifests (and fingerprints) of data prepared without them stay
        if self.per_scenario and self.name not in ("random", "predefined"):
            out["per_scenario"] = True
        if self.name == "cold-user" and self.cold_rest != "split":
            out["cold_rest"] = self.cold_rest
        if self.name == "cold-user" and self.cold_order != "time":
            out["cold_order"] = self.cold_order
        return {**out, "check_leakage": self.check_leakage}

    @property
    def targets(self) -> tuple[str, ...]:
        """The target scenarios: `target` is one name, or several separated by commas (cold-user only)."""
        return () if self.target is None else tuple(t.strip() for t in self.target.split(",") if t.strip())

    def with_overrides(self, **kw: Any) -> ProtocolConfig:
        merged = {**self.__dict__, **{k: v for k, v in kw.items() if v is not None}}
        return ProtocolConfig.from_dict(merged)

    def validate_for(self, scenarios: list[str]) -> None:
        """Checks the options a protocol needs, once the scenarios are known."""
        if self.name in ("cold-user", "kshot", "leave-scenario-out") and self.target is None:
            raise ConfigError(f"Protocol '{self.name}' needs a target scenario: pass --target S or protocol.target. "
                              f"Known scenarios: {', '.join(scenarios)}.")
        if self.name in ("cold-user", "cold-item", "kshot", "leave-scenario-out"):  # the protocols that read it
            for t in self.targets:
                if t not in scenarios:
                    raise ConfigError(
                        f"Target scenario '{t}' is not in the data. Known scenarios: {', '.join(scenarios)}.")
        if len(self.targets) > 1 and self.name in ("kshot", "leave-scenario-out"):
            raise ConfigError(f"Protocol '{self.name}' takes one target scenario. Got {self.target!r}; only "
                              "cold-user (disjoint cold users in each) and cold-item take several, comma-separated.")
        if self.name == "kshot" and (self.k is None or self.k <= 0):
            raise ConfigError("Protocol 'kshot' needs k, the percent of target training rows kept, in (0, 100]: "
                              "pass --k 5 or protocol.k.")
        if self.name in ("random",) and (self.valid >= 1 or self.test >= 1 or self.valid + self.test >= 1):
            raise ConfigError("Protocol 'random' needs valid and test fractions with valid + test < 1.")


def _ratio_or_count(v: Any, where: str) -> float:
    x = _number(v, where, 0)
    if x >= 1 and not float(x).is_integer():
        raise ConfigError(f"{where} must be a fraction in [0, 1) or a whole count of rows per user. Got {v!r}.")
    return x
