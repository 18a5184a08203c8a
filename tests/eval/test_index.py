"""`mistrec index`: faiss indexes of the retrieval model's item vectors, exact and HNSW, stored with the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mistrec.cli.main import main
from mistrec.data import PreparedDataset
from mistrec.errors import ConfigError
from mistrec.eval.index import build_index, load_index
from mistrec.train import load_run
from tests.conftest import prepared_synthetic, small_run

pytest.importorskip("faiss", reason="faiss-cpu is a dev dependency: pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_synthetic(tmp_path_factory.mktemp("index"), n_users=300, events_per_user=30, seed=6)


@pytest.fixture(scope="module")
def tower_run(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_run(prepared, "two_tower", tmp_path_factory.mktemp("runs") / "two_tower", batch_size=256)


def test_an_exact_index_finds_the_models_own_top_items(tower_run: Path, prepared: Path) -> None:
    reports = build_index(tower_run, kind="flat")
    assert {r.kind for r in reports} == {"flat"} and all(r.recall_at_k == 1.0 for r in reports)
    indexes = load_index(tower_run)
    model, enc, _ = load_run(tower_run)
    ds = PreparedDataset.load(prepared)
    rows = enc.rows(ds, "test")
    for s_idx, name in enumerate(ds.scenarios, start=1):
        index, items = indexes[name]
        assert index.ntotal == items.size
        idx = np.flatnonzero(rows.scenario == s_idx)[:5]
        queries = enc.batch(rows, idx, history=True, history_side=model.reads_history_side)
        with torch.no_grad():
            scores = model.candidate_scorer(enc.item_batch(items))(queries)
            vectors = model.user_vector(queries).numpy()
        want = torch.topk(scores, 10, dim=1).indices.numpy()
        got = index.search(np.ascontiguousarray(vectors), 10)[1]
        for g, w, s in zip(got, want, scores, strict=True):  # the same items, up to ties in the scores
            assert np.allclose(np.sort(s.numpy()[g]), np.sort(s.numpy()[w]), atol=1e-5)


def test_hnsw_is_tuned_to_the_stated_recall_and_written_with_the_run(tower_run: Path) -> None:
    reports = build_index(tower_run, kind="hnsw", recall=0.9)
    doc = json.loads((tower_run / "index" / "index.json").read_text())
    assert doc["recall_target"] == 0.9 and len(doc["scenarios"]) == len(reports)
    for r in reports:
        assert r.kind == "hnsw" and r.ef_search is not None and r.queries > 0
        assert r.recall_at_k >= 0.9, r
        assert (tower_run / "index" / f"{r.scenario}.faiss").is_file()


def test_a_model_without_item_vectors_is_refused(prepared: Path, tmp_path: Path) -> None:
    small_run(prepared, "popularity", tmp_path / "pop")
    with pytest.raises(ConfigError, match="two_tower"):
        build_index(tmp_path / "pop")


def test_the_index_command(tower_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(tower_run), "--kind", "auto", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "flat" in out and "recall@" in out and "index.json" in out
