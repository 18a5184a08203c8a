"""The two-tower retrieval model: its in-batch sampled softmax with the logQ correction, written out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mistrec.data import PreparedDataset
from mistrec.features import FeatureEncoder
from mistrec.models import build_model
from mistrec.models.two_tower import TwoTower
from tests.conftest import prepared_synthetic


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_synthetic(tmp_path_factory.mktemp("two_tower"), n_users=120, events_per_user=20, seed=2)


def test_the_in_batch_loss_is_the_corrected_softmax_over_the_scenarios_other_items(prepared: Path) -> None:
    """Row i's loss is -log softmax_i over the batch's items of row i's scenario, each logit u_i . v_j / t minus
    log q(scenario_j, item_j); an item that is row i's own (clicked by another row too) is not its negative."""
    torch.manual_seed(0)
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rows = enc.rows(ds, "train")
    positive = np.flatnonzero(rows.label > 0)[:40]
    positive = np.concatenate([positive, positive[:3]])  # three items clicked twice in the batch
    model = build_model("two_tower", enc.spec_, {"embedding_dim": 8, "temperature": 0.3})
    assert isinstance(model, TwoTower)
    model.setup(enc.indexed(rows))
    assert torch.isfinite(model.log_q).all() and bool((model.log_q < 0).all())
    model.eval()  # no dropout: the same vectors twice
    b = enc.batch(rows, positive, history=True, history_side=model.reads_history_side)
    with torch.no_grad():
        got = model.stage_loss(b)
        u, v = model.user_vector(b).numpy(), model.item_vector(b).numpy()
    item, scen = b.item.numpy(), b.scenario.numpy()
    log_q = model.log_q.numpy()
    for i in range(len(b)):
        keep = [j for j in range(len(b)) if scen[j] == scen[i] and (j == i or item[j] != item[i])]
        logits = np.array([u[i] @ v[j] / 0.3 - log_q[scen[j], item[j]] for j in keep])
        want = -(logits[keep.index(i)] - np.log(np.exp(logits - logits.max()).sum()) - logits.max())
        assert got[i].item() == pytest.approx(want, rel=1e-4, abs=1e-5)

