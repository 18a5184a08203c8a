"""`negatives: fresh`: where the data's negatives were sampled when it was prepared, the trainer draws each training
negative's item again at every step, as the sampler drew it (the scenario's items with a training positive, never
one of the user's training positives); positives and logged negatives stay as they are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mistrec.data import PreparedDataset
from mistrec.data.negatives import FreshNegatives
from mistrec.features import FeatureEncoder
from mistrec.models.registry import build_model
from mistrec.train import TrainConfig, train
from tests.conftest import prepared_implicit, prepared_synthetic


def test_redrawn_negatives_come_from_the_pool_and_avoid_the_users_positives() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    user = rng.integers(1, 60, n)
    scenario = rng.integers(1, 4, n)
    label = (rng.random(n) < 0.4).astype(np.float32)
    item = scenario * 1000 + rng.integers(0, 25, n)  # disjoint item ranges per scenario
    item[(scenario == 3) & (label > 0)] = 3000  # scenario 3's pool: one item
    fresh = FreshNegatives(user, item, scenario, label)
    positives = set(zip(user[label > 0].tolist(), item[label > 0].tolist(), strict=True))
    pool = {s: set(item[(scenario == s) & (label > 0)].tolist()) for s in (1, 2, 3)}
    draws = [fresh.redraw(np.random.default_rng(k), user, item, scenario, label) for k in range(3)]
    negative = label <= 0
    for got in draws:
        assert (got[~negative] == item[~negative]).all()  # positives untouched
        drawn = negative & (got != item)
        assert all(int(i) in pool[int(s)] for i, s in zip(got[drawn], scenario[drawn], strict=True))
        assert not any((int(u), int(i)) in positives for u, i in zip(user[drawn], got[drawn], strict=True))
    # a user holding scenario 3's only pool item as a positive keeps the negative's item it has
    holders = {u for u, i in positives if i == 3000}
    stuck = negative & (scenario == 3) & np.isin(user, list(holders))
    assert stuck.any() and all((d[stuck] == item[stuck]).all() for d in draws)
    # the draws move: most negatives of scenarios 1 and 2 differ between two steps (1 in 25 may repeat by chance)
    open_rows = negative & (scenario < 3)
    assert (draws[0][open_rows] != draws[1][open_rows]).mean() > 0.8


def test_a_scenario_with_no_training_positive_keeps_its_negatives() -> None:
    user, item = np.array([1, 2, 3]), np.array([5, 6, 7])
    scenario, label = np.array([1, 2, 2]), np.array([1.0, 0.0, 0.0])
    got = FreshNegatives(user, item, scenario, label).redraw(np.random.default_rng(0), user, item, scenario, label)
    assert got.tolist() == [5, 6, 7]


@pytest.fixture(scope="module")
def implicit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_implicit(tmp_path_factory.mktemp("fresh"), 60, range(100, 112), per_positive=2)


def _trained_batches(prepared: Path, negatives: str, monkeypatch: pytest.MonkeyPatch, epochs: int = 2
                     ) -> tuple[FeatureEncoder, list[tuple[np.ndarray, np.ndarray, np.ndarray]], dict]:
    """Trains isolated_dnn; returns the encoder, each batch's (dataset items, users, labels) as the model saw them,
    and the trained weights."""
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    batch = FeatureEncoder.batch

    def recording(self: FeatureEncoder, rows, idx, **kw):  # type: ignore[no-untyped-def]
        b = batch(self, rows, idx, **kw)
        if torch.is_grad_enabled():  # the training steps, not validation's scoring
            seen.append((b.item_key.numpy().copy(), rows.user[idx].copy(), b.label.numpy().copy()))
        return b

    monkeypatch.setattr(FeatureEncoder, "batch", recording)
    torch.manual_seed(0)
    model = build_model("isolated_dnn", enc.spec_, {"embedding_dim": 4})
    train(model, enc, enc.rows(ds, "train"), enc.rows(ds, "valid"),
          TrainConfig(epochs=epochs, patience=epochs, batch_size=64, negatives=negatives), quiet=True)
    monkeypatch.undo()
    return enc, seen, {k: v.clone() for k, v in model.state_dict().items()}


def test_fresh_redraws_the_training_negatives_every_step(implicit: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = PreparedDataset.load(implicit)
    enc = FeatureEncoder().fit(ds)
    assert enc.spec_.sampled_negatives
    rows = enc.rows(ds, "train")
    prepared_pairs = set(zip(rows.user.tolist(), rows.item.tolist(), rows.label.tolist(), strict=True))
    positives = {(u, i) for u, i, y in prepared_pairs if y > 0}
    _, fixed, _ = _trained_batches(implicit, "fixed", monkeypatch)
    _, fresh, _ = _trained_batches(implicit, "fresh", monkeypatch)

    def negatives(batches: list) -> list[tuple[int, int]]:
        return [(int(u), int(i)) for items, users, labels in batches
                for i, u, y in zip(items, users, labels, strict=True) if y == 0]

    # the control: "fixed" trains on the prepared draw, every (user, item, label) a prepared row
    assert all((u, i, 0.0) in prepared_pairs for u, i in negatives(fixed))
    got = negatives(fresh)
    assert len(got) == len(negatives(fixed))  # the same rows, only their items drawn again
    assert sum((u, i, 0.0) not in prepared_pairs for u, i in got) > 0.3 * len(got)
    assert not any(pair in positives for pair in got)
    fresh_positives = [(int(u), int(i)) for items, users, labels in fresh
                       for i, u, y in zip(items, users, labels, strict=True) if y > 0]
    assert all(pair in positives for pair in fresh_positives)


def test_fresh_leaves_logged_negatives_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logged = prepared_synthetic(tmp_path, n_users=80, events_per_user=12, seed=3)
    enc, _, _ = _trained_batches(logged, "fixed", monkeypatch, epochs=1)
    assert not enc.spec_.sampled_negatives
    _, fixed_batches, fixed = _trained_batches(logged, "fixed", monkeypatch, epochs=1)
    _, fresh_batches, fresh = _trained_batches(logged, "fresh", monkeypatch, epochs=1)
    assert all((a[0] == b[0]).all() for a, b in zip(fixed_batches, fresh_batches, strict=True))
    assert all(torch.equal(fixed[k], fresh[k]) for k in fixed)
