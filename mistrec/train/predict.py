"""Click (and conversion) probabilities of encoded rows from a trained model, in batches, without gradients."""

from __future__ import annotations

import numpy as np
import torch

from mistrec.features import EncodedRows, FeatureEncoder
from mistrec.models.base import Model

__all__ = ["predict", "predict_tasks"]


def predict(model: Model, enc: FeatureEncoder, rows: EncodedRows, batch_size: int = 16384) -> np.ndarray:
    """Click probabilities for every row, in order (evaluation mode, no gradients)."""
    return _predict(model, enc, rows, batch_size, conversion=False)[0]


def predict_tasks(model: Model, enc: FeatureEncoder, rows: EncodedRows, batch_size: int = 16384
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """p(click) for every row, in order, and p(conversion | click) when the model has a conversion head (a model
    built on data with conversions, `Model.predicts_conversion`), else None."""
    return _predict(model, enc, rows, batch_size, conversion=model.predicts_conversion)


def _predict(model: Model, enc: FeatureEncoder, rows: EncodedRows, batch_size: int, conversion: bool
             ) -> tuple[np.ndarray, np.ndarray | None]:
    model.eval()
    click = np.empty(len(rows), dtype=np.float32)
    cvr = np.empty(len(rows), dtype=np.float32) if conversion else None
    with torch.no_grad():
        for lo in range(0, len(rows), batch_size):
            idx = np.arange(lo, min(lo + batch_size, len(rows)))
            b = enc.batch(rows, idx, history=model.reads_history, history_side=model.reads_history_side)
            if cvr is None:
                click[idx] = torch.sigmoid(model(b)).numpy()
            else:
                c, v = model.forward_tasks(b)
                click[idx], cvr[idx] = torch.sigmoid(c).numpy(), torch.sigmoid(v).numpy()
    return click, cvr
