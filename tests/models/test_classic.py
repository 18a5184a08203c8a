"""The closed-form baselines' own definitions: most_popular's count against popularity's rate, and the Platt
calibration's order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mistrec.data import PreparedDataset
from mistrec.features import FeatureEncoder
from mistrec.models import build_model
from mistrec.models.base import ScoreModel
from tests.conftest import prepared_synthetic


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_synthetic(tmp_path_factory.mktemp("classic"), "random", history_length=10, protocol_seed=1,
                              n_users=200, events_per_user=30, seed=3)


def test_most_popular_scores_the_count_of_training_positives_where_popularity_scores_the_rate(prepared: Path) -> None:
    """most_popular: log(1 + the item's training positives in the scenario), counted by hand here; an item shown
    often and rarely clicked outranks one shown once and clicked, the other way round from popularity."""
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rows = enc.indexed(enc.rows(ds, "train"))
    model = build_model("most_popular", enc.spec_, {})
    model.fit_direct(rows)
    want = np.zeros((enc.spec_.n_scenarios, enc.spec_.n_items))
    for s, i, y in zip(rows.scenario, rows.item, rows.label, strict=True):
        want[s, i] += y > 0
    torch.testing.assert_close(model.table, torch.tensor(np.log1p(want), dtype=torch.float32))

    pop = build_model("popularity", enc.spec_, {})
    pop.fit_direct(rows)
    shows = np.zeros_like(want)
    np.add.at(shows, (rows.scenario, rows.item), 1)
    rate = pop.table.numpy()
    # a pair of items in one scenario whose orders disagree: more positives, lower rate
    s, i, j = next((s, i, j) for s in range(1, enc.spec_.n_scenarios) for i in np.flatnonzero(shows[s] > 0)
                   for j in np.flatnonzero(shows[s] > 0) if want[s, i] > want[s, j] and rate[s, i] < rate[s, j])
    assert model.table[s, i] > model.table[s, j] and pop.table[s, i] < pop.table[s, j]

    glob = build_model("most_popular", enc.spec_, {"per_scenario": False})
    glob.fit_direct(rows)
    assert torch.equal(glob.table[1], glob.table[2])
    torch.testing.assert_close(glob.table[1], torch.tensor(np.log1p(want.sum(0)), dtype=torch.float32))


class _Signed(ScoreModel):
    """A score that follows the row's label (sign 1) or falls as it rises (sign -1), a little of the item id
    breaking ties."""

    reads_history = False
    reads_history_side = False

    def __init__(self, sign: float) -> None:
        super().__init__()
        self.sign = sign

    def score(self, b):  # type: ignore[no-untyped-def]
        return self.sign * b.label.float() + 0.01 * b.item.float() / float(b.item.max())


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_calibration_never_reverses_a_score_models_order(prepared: Path, sign: float) -> None:
    """The Platt map is increasing: a score that follows the labels gets a steep slope; one that falls as they
    rise gets a nearly flat increasing map at the base rate (a fitted negative slope would have reversed its
    ranking and AUC), its probabilities near the base rate."""
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rows = enc.rows(ds, "train")
    model = _Signed(sign)
    model.calibrate(enc, rows)
    a = float(model.calibration[0])
    assert a > 1.0 if sign > 0 else 0 < a < 0.1
    model.eval()
    batch = enc.batch(rows, np.arange(500))
    with torch.no_grad():
        p, s = model(batch), model.score(batch)
    order = torch.argsort(s)
    assert bool((p[order].diff() >= 0).all())  # never reversed
    assert float(p.max() - p.min()) > 0  # nor flattened to a tie
    if sign < 0:
        rate = float(rows.label.mean())
        assert abs(float(torch.sigmoid(p).mean()) - rate) < 0.01
