"""One registry maps model names (the command line and the JSON use them) to (config, model) pairs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mistrec.config import parse_config
from mistrec.errors import ConfigError
from mistrec.features import FeatureSpec
from mistrec.models.base import Model, ModelConfig
from mistrec.models.cdr import EMCDR, PTUPCDR, BiTGCF, BiTGCFConfig, EMCDRConfig, PTUPCDRConfig
from mistrec.models.classic import SVD, ClassicConfig, ItemKNN, MostPopular, NMFModel, Popularity
from mistrec.models.din import DIN, DINConfig
from mistrec.models.dnn import DNNConfig, IsolatedDNN, ScenarioDNN
from mistrec.models.experts import (
    PLE,
    STAR,
    MMoE,
    MMoEConfig,
    PLEConfig,
    SharedBottom,
    SharedBottomConfig,
    StarConfig,
)
from mistrec.models.mist import Mist, MistConfig
from mistrec.models.pepnet import PEPNet, PEPNetConfig
from mistrec.models.retrieval import BPRMF, GAT, LightGCN, RetrievalConfig
from mistrec.models.sarnet import SARNet, SARNetConfig
from mistrec.models.two_tower import TwoTower, TwoTowerConfig

__all__ = ["REGISTRY", "Entry", "build_model", "conversion_models", "model_config"]


@dataclass(frozen=True)
class Entry:
    """A registry entry: the model's config class and its model class."""

    config: type[ModelConfig]
    model: type[Model]


REGISTRY: dict[str, Entry] = {
    "mist": Entry(MistConfig, Mist),
    "din": Entry(DINConfig, DIN),
    "star": Entry(StarConfig, STAR),
    "mmoe": Entry(MMoEConfig, MMoE),
    "ple": Entry(PLEConfig, PLE),
    "shared_bottom": Entry(SharedBottomConfig, SharedBottom),
    "scenario_dnn": Entry(DNNConfig, ScenarioDNN),
    "isolated_dnn": Entry(DNNConfig, IsolatedDNN),
    "pepnet": Entry(PEPNetConfig, PEPNet),
    "sarnet": Entry(SARNetConfig, SARNet),
    "popularity": Entry(ClassicConfig, Popularity),
    "most_popular": Entry(ClassicConfig, MostPopular),
    "itemknn": Entry(ClassicConfig, ItemKNN),
    "svd": Entry(ClassicConfig, SVD),
    "nmf": Entry(ClassicConfig, NMFModel),
    "bpr_mf": Entry(RetrievalConfig, BPRMF),
    "two_tower": Entry(TwoTowerConfig, TwoTower),
    "lightgcn": Entry(RetrievalConfig, LightGCN),
    "gat": Entry(RetrievalConfig, GAT),
    "emcdr": Entry(EMCDRConfig, EMCDR),
    "ptupcdr": Entry(PTUPCDRConfig, PTUPCDR),
    "bitgcf": Entry(BiTGCFConfig, BiTGCF),
}


def conversion_models() -> list[str]:
    """The registry names that learn the second task (conversion) when the data has it."""
    return [name for name, e in REGISTRY.items() if e.model.supports_conversion]


def model_config(name: str, values: dict[str, Any] | None = None) -> ModelConfig:
    """The typed config of model `name`, from a mapping (a YAML file's contents); unknown keys are errors."""
    if name not in REGISTRY:
        raise ConfigError(f"Unknown model '{name}'. Known models: {', '.join(sorted(REGISTRY))}.")
    return parse_config(REGISTRY[name].config, dict(values or {}), f"the {name} model config")


def build_model(name: str, spec: FeatureSpec, config: ModelConfig | dict[str, Any] | None = None) -> Model:
    """Builds model `name` from the feature spec (never from a dataset) and its config."""
    cfg = config if isinstance(config, ModelConfig) else model_config(name, config)
    return REGISTRY[name].model(spec, cfg)
