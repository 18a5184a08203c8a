"""Data layer: dataset YAML, readers, cleaning, protocols, histories, synthetic data, recipes."""

from mistrec.data.config import DatasetConfig, ProtocolConfig, load_dataset_config
from mistrec.data.history import HistoryBatch, HistoryEvents
from mistrec.data.prepare import prepare
from mistrec.data.prepared import PreparedDataset
from mistrec.data.synthetic import SyntheticConfig, SyntheticData, generate

__all__ = [
    "DatasetConfig",
    "HistoryBatch",
    "HistoryEvents",
    "PreparedDataset",
    "ProtocolConfig",
    "SyntheticConfig",
    "SyntheticData",
    "generate",
    "load_dataset_config",
    "prepare",
]
