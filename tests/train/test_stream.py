"""Streamed training: prepared data written in shards of whole users and read a shard at a time gives the same
encoder, the same batches and the same scores as the data in memory; what it cannot do yet is refused."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from mistrec.data import PreparedDataset, ProtocolConfig, SyntheticConfig, generate, load_dataset_config, prepare
from mistrec.errors import ConfigError
from mistrec.eval.evaluate import evaluate_run
from mistrec.eval.fit import fit_run
from mistrec.features import FeatureEncoder
from mistrec.train import TrainConfig, load_run
from tests.conftest import write_yaml


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    yaml_path = generate(SyntheticConfig(n_users=300, events_per_user=30, seed=1)).write(root / "raw")
    prepare(load_dataset_config(yaml_path), root / "prepared", protocol=ProtocolConfig(name="temporal"),
            history_length=10, quiet=True, shard_rows=2000)
    return root / "prepared"


def test_shards_are_whole_users_and_cover_the_files(prepared: Path) -> None:
    ds = PreparedDataset.load(prepared)
    spec = ds.manifest["shards"]
    assert len(spec) >= 4 and pq.ParquetFile(prepared / "interactions.parquet").metadata.num_row_groups == len(spec)
    assert spec[0]["rows"][0] == 0 and spec[-1]["rows"][1] == ds.interactions.height
    assert spec[-1]["events"][1] == len(ds.events)
    users = ds.interactions["user"].to_numpy()
    for a, b in itertools.pairwise(spec):
        assert a["rows"][1] == b["rows"][0] and a["events"][1] == b["events"][0]
        assert users[a["rows"][1] - 1] != users[b["rows"][0]]  # no user in two shards
    for split in ("train", "valid", "test"):
        assert sum(s["by_split"].get(split, 0) for s in spec) == ds.split(split).height


def test_the_streamed_encoder_and_batches_are_the_in_memory_ones(prepared: Path) -> None:
    whole, lazy = PreparedDataset.load(prepared), PreparedDataset.load(prepared, rows=False)
    assert lazy.interactions.height == 0 and len(lazy.events) == 0
    enc, enc_lazy = FeatureEncoder().fit(whole), FeatureEncoder().fit(lazy)
    assert enc.spec_ == enc_lazy.spec_
    for name in ("user_map_", "item_map_", "scenario_map_", "value_stats_", "item_cat_", "user_cat_"):
        assert np.array_equal(getattr(enc, name), getattr(enc_lazy, name)), name
    rows = enc.rows(whole, "train")
    position = {int(r): i for i, r in enumerate(whole.split("train")["row"].to_list())}
    for k in (0, len(lazy.shards) - 1):
        df, events = lazy.shards.read(k, "train")
        part = enc_lazy.frame_rows(df, events)
        idx = np.arange(len(part))
        mine = enc_lazy.batch(part, idx)
        theirs = enc.batch(rows, np.array([position[int(r)] for r in df["row"].to_list()]))
        for field in ("user", "item", "label", "hist_items", "hist_scenarios", "hist_gaps", "hist_labels",
                      "hist_mask", "activity", "item_cat"):
            assert torch.equal(getattr(mine, field), getattr(theirs, field)), field


def test_a_streamed_run_trains_and_scores_as_the_data_in_memory_does(prepared: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = TrainConfig(epochs=2, batch_size=128, stream=True, stream_workers=1)
    summary = fit_run(prepared, "mist", tmp_path / "run", model_values={"embedding_dim": 8}, train_cfg=cfg,
                      quiet=True)
    assert summary["train"]["train_samples"] == 2 * PreparedDataset.load(prepared).split("train").height
    assert summary["valid"]["overall"]["auc"] > 0.6  # it learned (the in-memory run: 0.68 on this data)
    # the streamed scores of the test split are those of the whole split in memory (mistrec evaluate)
    again = evaluate_run(tmp_path / "run", ranking=False).run.metrics
    assert again is not None
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert again.to_json()["overall"]["auc"] == pytest.approx(written["overall"]["auc"], abs=1e-9)
    assert again.to_json()["overall"]["n"] == written["overall"]["n"]


def test_mist_fits_its_item_terms_a_shard_at_a_time(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """mist's item prior from the training rows a shard at a time (PreparesInChunks) are those from
    all of them at once, and a streamed run of mist never reads the training rows whole; the choices made on the
    validation ranking (rank_exposure, co_scale), which need the rows in memory, are not made and stderr says so:
    the run keeps the trained state (the exposure everywhere, co_scale 1)."""
    from mistrec.models import build_model
    from mistrec.train.stream import StreamedRows

    whole, lazy = PreparedDataset.load(prepared), PreparedDataset.load(prepared, rows=False)
    enc = FeatureEncoder().fit(whole)
    chunks = list(StreamedRows(lazy, enc, "train").indexed_chunks())
    assert len(chunks) > 1 and sum(len(c) for c in chunks) == whole.split("train").height
    values = {"embedding_dim": 8, "item_prior": True}
    at_once, by_shard = build_model("mist", enc.spec_, values), build_model("mist", enc.spec_, values)
    at_once.setup(enc.indexed(enc.rows(whole, "train")))
    by_shard.setup_chunks(iter(chunks))
    assert at_once.prior is not None and by_shard.prior is not None and at_once.prior.abs().sum() > 0
    torch.testing.assert_close(by_shard.prior, at_once.prior, rtol=0, atol=1e-6)

    def whole_split(_: StreamedRows) -> None:
        raise AssertionError("the training rows were read whole")

    monkeypatch.setattr(StreamedRows, "indexed", whole_split)
    torch.set_num_threads(1)
    summary = fit_run(prepared, "mist", tmp_path / "run", model_values=values,
                      train_cfg=TrainConfig(epochs=1, batch_size=128, stream=True), quiet=True)
    assert summary["valid"]["overall"]["auc"] > 0.55
    assert "need the rows in memory" in capsys.readouterr().err
    assert not {"rank_exposure", "co_scale"} & set(summary["train"]["selected"])
    model, _, _ = load_run(tmp_path / "run")
    assert model.exposed is not None and bool(model.exposed.all())
    assert model.co_scale is not None and bool((model.co_scale == 1).all())


@pytest.mark.parametrize(("model", "train", "why"), [
    ("bpr_mf", {}, "negatives"), ("emcdr", {}, "several stages"), ("popularity", {}, "closed form"),
    ("mist", {"checkpoint_every": 5}, "checkpoints"), ("mist", {"sampling": "balanced"}, "balanced"),
    ("mist", {"negatives": "fresh"}, "fresh"),
])
def test_what_streaming_cannot_do_is_refused(prepared: Path, tmp_path: Path, model: str, train: dict[str, object],
                                             why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        fit_run(prepared, model, tmp_path / "run", train_cfg=TrainConfig(epochs=1, stream=True, **train), quiet=True)


def test_two_ranks_stream_their_own_shards(prepared: Path, tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "stream.yaml", {"model": {"embedding_dim": 8},
                                                   "train": {"stream": True, "stream_workers": 0}})
    done = subprocess.run([sys.executable, "-m", "mistrec", "train", str(prepared), "--model", "mist", "--out",
                           str(tmp_path / "run"), "--epochs", "2", "--batch-size", "128", "--quiet", "--nproc", "2",
                           "--config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    shards = PreparedDataset.load(prepared).manifest["shards"]
    # each rank steps over its own shards; both take as many steps as the rank with fewer batches has
    assert 0 < metrics["train"]["train_samples"] <= 2 * sum(s["by_split"]["train"] for s in shards)
    assert metrics["valid"]["overall"]["auc"] > 0.6


def test_fewer_shards_than_ranks_is_refused(prepared: Path) -> None:
    from mistrec.models import build_model, model_config
    from mistrec.train.distributed import Ranks
    from mistrec.train.stream import StreamedRows

    ds = PreparedDataset.load(prepared, rows=False)
    enc = FeatureEncoder().fit(ds)
    model = build_model("mist", enc.spec_, model_config("mist", {"embedding_dim": 8}))
    rows = StreamedRows(ds, enc, "train")
    with pytest.raises(ConfigError, match="smaller --shard-rows"):
        rows.epoch(np.random.default_rng(0), 1, 0, 64, Ranks(0, len(ds.shards) + 1), model)
