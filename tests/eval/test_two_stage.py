"""Two-stage recommendation: a two_tower run and its index retrieve, the mist run ranks what was retrieved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mistrec.cli.main import main
from mistrec.errors import ArtifactError, ConfigError
from mistrec.eval.explain import Recommender
from mistrec.eval.index import build_index
from mistrec.eval.two_stage import Retriever
from tests.conftest import prepared_synthetic, small_run

pytest.importorskip("faiss", reason="faiss-cpu is a dev dependency: pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("two_stage")
    prepared = prepared_synthetic(root, n_users=300, events_per_user=30, seed=8)
    small_run(prepared, "mist", root / "mist", batch_size=256)
    small_run(prepared, "two_tower", root / "tower", batch_size=256)
    build_index(root / "tower", kind="flat")
    return root / "mist", root / "tower"


def _user_with_history(rec: Recommender) -> str:
    return rec.active_users(1)[0]


def test_the_ranker_scores_exactly_what_was_retrieved(runs: tuple[Path, Path]) -> None:
    mist, tower = runs
    rec = Recommender.load(mist)
    rec.retriever = Retriever.load(tower, rec, n=20)
    user, scenario = _user_with_history(rec), rec.ds.scenarios[0]
    out = rec.recommend(user, scenario, k=5)
    stage = out["stages"]["retrieval"]
    assert "skipped" not in stage and stage["model"] == "two_tower" and 5 <= stage["retrieved"] <= 20
    assert stage["catalogue"] > 20
    assert all(1 <= item["retrieval_rank"] <= stage["retrieved"] for item in out["items"])
    # the second stage is mist on the retrieved items: the same answer as mist given them as candidates
    at = rec._at(None, [])
    found, _ = rec.retriever.retrieve(user, scenario, at, [], rec._catalogue[rec.ds.scenarios.index(scenario) + 1])
    assert found is not None
    names = [str(rec._item_names[i]) for i in found]
    alone = Recommender.load(mist).recommend(user, scenario, k=5, candidates=names)
    assert [i["item"] for i in out["items"]] == [i["item"] for i in alone["items"]]
    np.testing.assert_allclose([i["score"] for i in out["items"]], [i["score"] for i in alone["items"]], atol=1e-6)


def test_a_catalogue_no_larger_than_the_retrieval_is_ranked_whole(runs: tuple[Path, Path]) -> None:
    mist, tower = runs
    rec = Recommender.load(mist)
    user, scenario = _user_with_history(rec), rec.ds.scenarios[0]
    single = rec.recommend(user, scenario, k=5)
    rec.retriever = Retriever.load(tower, rec, n=100_000)
    out = rec.recommend(user, scenario, k=5)
    assert "the whole catalogue is ranked" in out["stages"]["retrieval"]["skipped"]
    assert [i["item"] for i in out["items"]] == [i["item"] for i in single["items"]]


def test_a_retrieval_run_must_be_a_tower_on_the_same_data(runs: tuple[Path, Path]) -> None:
    mist, tower = runs
    rec = Recommender.load(mist)
    with pytest.raises(ConfigError, match="two_tower"):
        Retriever.load(mist, rec)
    rec.enc.dataset_fingerprint_ = "something else"
    with pytest.raises(ArtifactError, match="other data"):
        Retriever.load(tower, rec)


def test_recommend_command_in_two_stages(runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    mist, tower = runs
    user = _user_with_history(Recommender.load(mist))
    scenario = Recommender.load(mist).ds.scenarios[0]
    assert main(["recommend", str(mist), "--user", user, "--scenario", scenario, "-k", "3", "--retrieval",
                 str(tower), "--retrieve", "20", "--threads", "1"]) == 0
    assert "retrieval (two_tower): " in capsys.readouterr().out


def test_the_service_recommends_in_two_stages_and_keeps_them_across_a_reload(runs: tuple[Path, Path],
                                                                             tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from mistrec.serve.app import create_app

    mist, tower = runs
    rec = Recommender.load(mist)
    user, scenario = _user_with_history(rec), rec.ds.scenarios[0]
    with TestClient(create_app(mist, f"sqlite:///{tmp_path / 'events.db'}", retrieval=tower, retrieve=20)) as c:
        for _ in range(2):  # before and after a reload to the same run
            body = c.post("/v1/recommend", json={"user": user, "scenario": scenario, "k": 5}).json()
            assert body["stages"]["retrieval"]["retrieved"] <= 20
            assert all("retrieval_rank" in item for item in body["items"])
            assert c.post("/v1/admin/reload", json={"run_dir": str(mist)}).status_code == 200


def test_two_stage_ranking_evaluation(runs: tuple[Path, Path]) -> None:
    """Retrieving the whole catalogue ranks as the ranker alone; retrieving n, the top n are the retrieved ones."""
    from mistrec.data import PreparedDataset
    from mistrec.eval import rank_full_catalogue
    from mistrec.eval.index import load_index
    from mistrec.eval.two_stage import TwoStageScorer
    from mistrec.train import load_run

    mist, tower = runs
    ranker, enc, meta = load_run(mist)
    retriever, _, _ = load_run(tower)
    ds = PreparedDataset.load(meta["data"])
    indexes = load_index(tower)
    alone = rank_full_catalogue(ranker, enc, ds, ks=(5, 10))
    everything = TwoStageScorer(ranker, retriever, indexes, list(ds.scenarios), enc.item_map_, n=100_000)
    whole = rank_full_catalogue(everything, enc, ds, ks=(5, 10))
    assert whole.metrics["overall"]["ndcg@10"] == pytest.approx(alone.metrics["overall"]["ndcg@10"], abs=1e-9)
    few = rank_full_catalogue(TwoStageScorer(ranker, retriever, indexes, list(ds.scenarios), enc.item_map_, n=5),
                              enc, ds, ks=(5, 10))
    # only 5 candidates per query score above -inf: a relevant item is in the top 5 or ranks after every one of
    # them (ties count against it), never 6th to 10th
    for name, block in few.metrics["by_scenario"].items():
        assert block["hr@10"] == pytest.approx(block["hr@5"], abs=1e-12), name
    # asked for some candidates' columns, the same scores (-inf where not retrieved) as those columns of the whole
    import torch

    rows = enc.rows(ds, "test")
    queries = enc.batch(rows, np.flatnonzero(rows.scenario == 1)[:4])
    items = enc.item_batch(np.arange(1, 60))
    scorer = TwoStageScorer(ranker, retriever, indexes, list(ds.scenarios), enc.item_map_, n=5).candidate_scorer(items)
    columns = torch.tensor([40, 3, 3, 0, 58, 17])
    whole_scores, some = scorer(queries), scorer(queries, columns)
    assert torch.isinf(whole_scores).any() and torch.isfinite(whole_scores).any()
    torch.testing.assert_close(some, whole_scores[:, columns])
