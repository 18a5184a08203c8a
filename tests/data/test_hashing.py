"""Hashed user ids (the dataset's `hashing: {users: B}`): a table of B + 1 rows, collisions reported by prepare
as measured on the vocabulary, side features still each user's own, and runs that train, load and score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mistrec.data import PreparedDataset, load_dataset_config, prepare
from mistrec.errors import ConfigError
from mistrec.eval.evaluate import evaluate_run
from mistrec.eval.fit import fit_run
from mistrec.features import FeatureEncoder
from mistrec.train import TrainConfig
from tests.conftest import write_yaml


def _prepared(tiny: dict[str, Any], name: str, hashing: dict[str, Any] | None) -> PreparedDataset:
    cfg = dict(tiny["cfg"], **({"hashing": hashing} if hashing is not None else {}))
    out = tiny["dir"] / name
    prepare(load_dataset_config(write_yaml(tiny["dir"] / f"{name}.yaml", cfg)), out, quiet=True)
    return PreparedDataset.load(out)


def test_collisions_are_reported_as_measured_on_the_vocabulary(tiny: dict[str, Any]) -> None:
    ds = _prepared(tiny, "hashed", {"users": 2})
    report = ds.manifest["hashing"]
    vocab = ds.vocab["user_id"]
    buckets = vocab["bucket"].to_numpy()
    assert buckets.min() >= 1 and buckets.max() <= 2
    per_bucket = np.bincount(buckets)
    shared = per_bucket[buckets] > 1
    assert report["buckets"] == 2 and report["ids"] == 4 == len(buckets)
    assert report["buckets_used"] == int((per_bucket > 0).sum())
    assert report["share_of_ids"] == pytest.approx(shared.mean())
    assert report["expected_share_uniform_hash"] == pytest.approx(1 - 0.5 ** 3)
    assert any("hashed into 2 rows" in note for note in ds.manifest["notes"])
    assert _prepared(tiny, "plain", None).manifest["hashing"] is None


def test_the_table_has_the_buckets_and_side_features_stay_each_users(tiny: dict[str, Any]) -> None:
    hashed, plain = _prepared(tiny, "hashed", {"users": 3}), _prepared(tiny, "plain", None)
    enc_h, enc_p = FeatureEncoder().fit(hashed), FeatureEncoder().fit(plain)
    assert enc_h.spec_.n_users == 4 and enc_p.spec_.n_users == 5
    rows_h, rows_p = enc_h.rows(hashed, "train"), enc_p.rows(plain, "train")
    idx = np.arange(len(rows_p))
    b_h, b_p = enc_h.batch(rows_h, idx), enc_p.batch(rows_p, idx)
    bucket = dict(zip(hashed.vocab["user_id"]["index"].to_list(), hashed.vocab["user_id"]["bucket"].to_list(),
                      strict=True))
    assert b_h.user.tolist() == [bucket[u] for u in rows_h.user.tolist()]
    assert b_h.user_cat.tolist() == b_p.user_cat.tolist()  # gender: each user's own, not their bucket's
    assert b_h.user_num.tolist() == b_p.user_num.tolist()


def test_a_hashed_run_trains_loads_and_scores(tiny: dict[str, Any], tmp_path: Path) -> None:
    ds = _prepared(tiny, "hashed", {"users": 3})
    fit_run(ds.path, "mist", tmp_path / "run", model_values={"embedding_dim": 8},
            train_cfg=TrainConfig(epochs=1, batch_size=8), quiet=True)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["overall"]["auc"]
    again = evaluate_run(tmp_path / "run", ranking=False).run.metrics
    assert again is not None and again.to_json()["overall"]["auc"] == pytest.approx(written)
    with pytest.raises(ConfigError, match="hashed user ids"):  # warm start matches users row for row
        fit_run(_prepared(tiny, "plain", None).path, "mist", tmp_path / "warm", init_from=tmp_path / "run",
                train_cfg=TrainConfig(epochs=1, batch_size=8), quiet=True)


@pytest.mark.parametrize(("hashing", "message"), [({"users": -1}, "hashing.users"), ({"items": 5}, "items")])
def test_bad_hashing_settings_are_refused(tiny: dict[str, Any], hashing: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_dataset_config(write_yaml(tiny["dir"] / "bad.yaml", dict(tiny["cfg"], hashing=hashing)))
