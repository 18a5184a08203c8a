"""Integrated gradients over a history model's behaviour tokens (Sundararajan et al., ICML 2017), through Captum:
what `mistrec recommend --explain` reports next to the attention weights."""

from __future__ import annotations

import numpy as np
import torch

from mistrec.batch import Batch
from mistrec.models.base import Explains, Model

__all__ = ["integrated_gradients"]


def integrated_gradients(model: Model, b: Batch, steps: int) -> np.ndarray:
    """Integrated gradients of each row's logit over its history tokens (zero tokens as the baseline), summed over
    the embedding: (rows, L). Captum's implementation."""
    from captum.attr import IntegratedGradients

    assert isinstance(model, Explains)
    explains = model
    with torch.no_grad():
        tokens = explains.tokens(b)

    def forward(t: torch.Tensor) -> torch.Tensor:
        n = t.shape[0] // len(b)  # Captum stacks the path steps along the batch
        expanded = b.subset(torch.arange(len(b)).repeat(n)) if n > 1 else b
        return explains.explain(expanded, tokens=t).logit

    attributions = IntegratedGradients(forward).attribute(tokens, baselines=torch.zeros_like(tokens),
                                                          n_steps=steps, internal_batch_size=steps * len(b))
    return (attributions.sum(-1) * b.hist_mask).detach().numpy()
