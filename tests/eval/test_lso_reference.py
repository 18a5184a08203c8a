"""benchmarks/lso_reference.py: the Bayes reader's leave-source-out drops follow the correlation of the interests
that drive the events, and nothing moves where the interests are independent (the identity control)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mistrec.data.synthetic import transfer_platform

from .benchmark_scripts import load

ref = load("lso_reference")


def _platform(rows: int = 3000) -> tuple[object, np.ndarray, list[np.ndarray], np.ndarray, np.ndarray]:
    cfg = transfer_platform(n_users=10)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, cfg.dim)) / np.sqrt(cfg.dim)
    pools = [np.arange(50 * s, 50 * (s + 1)) for s in range(4)]
    target = np.repeat(np.arange(4), rows // 4)
    counts = rng.integers(0, 12, size=(len(target), 4))
    counts[target == 0, 0] = 0  # scenario 0's rows: new there, read from the others only
    return cfg, vectors, pools, target, counts


def test_independent_interests_move_nothing_off_the_diagonal() -> None:
    cfg, vectors, pools, target, counts = _platform()
    lam = ref.event_information(cfg, vectors, pools, np.random.default_rng(1), draws=500)
    assert (lam > 0).all()
    drop = ref.simulate(cfg, vectors, pools, np.eye(4), lam, target, counts, 2, np.random.default_rng(2))
    off = ~np.eye(4, dtype=bool)
    assert np.abs(drop[off]).max() == 0.0  # the posterior of c_t reads y_t alone: the same scores
    assert (np.diag(drop)[1:] > 0.02).all()  # the own events carry the active rows


def test_a_source_correlated_with_the_target_is_what_its_new_users_lose() -> None:
    cfg, vectors, pools, target, counts = _platform(8000)
    corr = np.eye(4)
    corr[0, 1] = corr[1, 0] = 0.9  # scenario 1's events speak of scenario 0's clicks; 2 and 3 do not
    lam = ref.event_information(cfg, vectors, pools, np.random.default_rng(1), draws=500)
    drop = ref.simulate(cfg, vectors, pools, corr, lam, target, counts, 2, np.random.default_rng(3))
    assert drop[0, 1] > 0.05
    assert abs(drop[0, 2]) == 0.0 and abs(drop[0, 3]) == 0.0
    assert drop[0, 0] == 0.0  # no own events to remove


def test_option_effect_json_gives_both_arms_and_the_controls_offdiagonal(tmp_path: Path) -> None:
    """`--mist` and `--control` read option_effect.py's JSON (`--lso`): each arm's matrices per seed, and on the
    identity control each seed's largest off-diagonal |drop|, diagonal entries never counted; FILE:DRAW names a draw
    of this script's JSON and refuses one it does not hold."""
    names = ["a", "b"]
    mats = {"mist": [[[0.05, -0.004], [0.001, 0.03]], [[0.05, 0.002], [0.0, 0.04]]],
            "candidate": [[[0.09, 0.001], [0.0, 0.08]], [[0.07, 0.0], [-0.003, 0.06]]]}
    doc = {"seeds": [2022, 2023], "overall": [
        {"dir": f"synthetic-{kind}-4000u",
         "leave_source_out": {arm: [{"scenarios": names, "auc_drop": m} for m in ms] for arm, ms in mats.items()}}
        for kind in ("transfer", "identity")]}
    path = tmp_path / "effect.json"
    path.write_text(json.dumps(doc))
    arms = ref.mist_matrices(str(path))
    assert set(arms) == {"mist", "candidate"} and [r["seed"] for r in arms["candidate"]] == [2022, 2023]
    control = ref.control_drops(path, [2022, 2023])
    assert [r["max_abs_offdiag_drop"] for r in control["mist"]["per_seed"]] == [0.004, 0.002]
    assert [r["max_abs_offdiag_drop"] for r in control["candidate"]["per_seed"]] == [0.001, 0.003]
    assert control["mist"]["max_abs_offdiag_drop"] == 0.004
    (tmp_path / "ref.json").write_text(json.dumps({"draws": {"0": {"scenarios": names}}}))
    assert ref.reference_draw(f"{tmp_path / 'ref.json'}:0")["scenarios"] == names
    with pytest.raises(SystemExit, match="not '1'"):
        ref.reference_draw(f"{tmp_path / 'ref.json'}:1")
