from __future__ import annotations

import numpy as np

from mistrec.data.negatives import sample_negatives


def test_negatives_come_from_the_scenario_pool_and_avoid_known_positives() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    user = rng.integers(1, 100, n)
    scen = rng.integers(1, 4, n)
    item = scen * 1000 + rng.integers(0, 60, n)  # disjoint pools per scenario
    neg = sample_negatives(user, item, scen, per_positive=3, seed=5)
    assert neg.unfilled == 0 and len(neg.item) == 3 * n
    assert (neg.item // 1000 == scen[neg.source]).all()
    positives = set(zip(user.tolist(), item.tolist(), strict=True))
    assert not any((u, i) in positives for u, i in zip(user[neg.source].tolist(), neg.item.tolist(), strict=True))
    again = sample_negatives(user, item, scen, per_positive=3, seed=5)
    assert (again.item == neg.item).all()
