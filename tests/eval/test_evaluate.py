"""`evaluate_run` and full-catalogue ranking: metrics agree with scikit-learn and with a brute-force ranking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score

from mistrec.batch import Batch
from mistrec.cli.main import main
from mistrec.data import PreparedDataset
from mistrec.errors import ConfigError
from mistrec.eval import evaluate_run, rank_full_catalogue
from mistrec.eval.evaluate import leave_source_out_matrix, load_per_query, load_run_and_data
from mistrec.features import FeatureEncoder
from mistrec.models.base import Model
from tests.cli.test_cli import fails_with
from tests.conftest import prepared_synthetic, small_run


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evaluate")
    return prepared_synthetic(root, n_users=200, events_per_user=30, seed=4)


@pytest.fixture(scope="module")
def mist_run(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_run(prepared, "mist", tmp_path_factory.mktemp("runs") / "mist")


def test_evaluate_run_metrics_agree_with_scikit_learn(mist_run: Path, prepared: Path) -> None:
    doc = evaluate_run(mist_run, ks=(5, 10))
    assert doc.dataset["fingerprint"] == PreparedDataset.load(prepared).manifest["fingerprint"]
    run = doc.run
    assert run.model == "mist" and run.seed == 1 and run.train_samples_per_second and run.train_samples_per_second > 0
    saved = np.load(mist_run / "predictions_test.npz")
    y, p, s = saved["label"], saved["prob"], saved["scenario"]
    m = run.metrics
    assert m is not None and run.scenario_names is not None
    assert m.overall.auc == pytest.approx(roc_auc_score(y, p), abs=1e-6)
    assert m.overall.logloss == pytest.approx(log_loss(y, p.astype(np.float64)), abs=1e-6)
    names = run.scenario_names
    for name, block in m.by_scenario.items():
        rows = s == names.index(name) + 1
        assert block.n == int(rows.sum()) and block.positives == int(y[rows].sum())
        assert block.auc == pytest.approx(roc_auc_score(y[rows], p[rows]), abs=1e-6)
        for key in ("gauc", "ece", "ndcg@5", "hr@10", "recall@10", "mrr", "coverage@10", "novelty@10"):
            assert np.isfinite(block.get(key)), key
        assert block.ranking["ranking_candidates"] == "full catalogue"
    assert run.transfer_matrix is not None and run.leave_source_out is not None
    t = run.transfer_matrix
    assert np.allclose(np.sum(t["source_share"], axis=1), 1.0, atol=1e-4)  # shares of a target sum to one
    # the leave-source-out matrix: each target's full AUC is the evaluated one, each drop is full - without
    lso = run.leave_source_out
    assert lso["scenarios"] == names and np.asarray(lso["auc_drop"]).shape == (len(names), len(names))
    for i, name in enumerate(names):
        assert lso["auc_full"][i] == pytest.approx(m.by_scenario[name].auc, abs=1e-6)
        np.testing.assert_allclose(lso["auc_drop"][i], lso["auc_full"][i] - np.asarray(lso["auc_without"][i]))
    # evaluate reuses its predictions for the full-history column: the same as scoring the rows afresh
    model, enc, _, ds = load_run_and_data(mist_run)
    fresh = leave_source_out_matrix(model, enc, enc.rows(ds, "test"))
    np.testing.assert_allclose(fresh["auc_drop"], lso["auc_drop"], atol=1e-6)
    assert fresh["rows_touched"] == lso["rows_touched"]


class _Table(Model):
    """Scores (user, item) from a fixed table: lets a test know the exact ranking."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table)

    def forward(self, b: Batch) -> torch.Tensor:
        return self.table[b.user, b.item]


def _brute_force(ds: PreparedDataset, enc: FeatureEncoder, table: np.ndarray, k: int) -> dict[str, float]:
    """The ranking protocol of mistrec.eval.ranking, written as plain loops over queries and items."""
    df = ds.interactions.filter(~ds.interactions["sampled"]) if "sampled" in ds.interactions.columns \
        else ds.interactions
    rows = df.to_dicts()
    ndcg, hr, mrr = [], [], []
    for s in range(1, len(ds.scenarios) + 1):
        catalogue = sorted({r["item"] for r in rows if r["scenario"] == s})
        queries: dict[int, set[int]] = {}
        seen: dict[int, set[int]] = {}
        for r in rows:
            if r["scenario"] != s:
                continue
            if r["split"] == "test" and r["label"] > 0:
                queries.setdefault(r["user"], set()).add(r["item"])
            elif r["split"] in ("train", "valid"):
                seen.setdefault(r["user"], set()).add(r["item"])
        for u in sorted(queries):
            pos = queries[u]
            cands = [i for i in catalogue if i in pos or i not in seen.get(u, set())]
            score = {i: table[enc.user_map_[u], enc.item_map_[i]] for i in cands}
            ranks = []
            for i in pos:
                ranks.append(1 + sum(score[j] > score[i] for j in cands) +
                             sum(score[j] == score[i] for j in cands if j not in pos))
            ranks = sorted(ranks)
            dcg = sum(1 / np.log2(r + 1) for r in ranks if r <= k)
            idcg = sum(1 / np.log2(j + 2) for j in range(min(len(pos), k)))
            ndcg.append(dcg / idcg)
            hr.append(float(ranks[0] <= k))
            mrr.append(1 / ranks[0])
    return {"ndcg": float(np.mean(ndcg)), "hr": float(np.mean(hr)), "mrr": float(np.mean(mrr))}


def test_full_catalogue_ranking_equals_a_brute_force_ranking(prepared: Path) -> None:
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rng = np.random.default_rng(0)
    table = np.round(rng.random((enc.spec_.n_users, enc.spec_.n_items)), 1).astype(np.float32)  # many ties
    got = rank_full_catalogue(_Table(torch.from_numpy(table)), enc, ds, ks=(5,), max_rows_per_chunk=200)
    want = _brute_force(ds, enc, table, 5)
    assert got.metrics["overall"]["ndcg@5"] == pytest.approx(want["ndcg"], abs=1e-9)
    assert got.metrics["overall"]["hr@5"] == pytest.approx(want["hr"], abs=1e-9)
    assert got.metrics["overall"]["mrr"] == pytest.approx(want["mrr"], abs=1e-9)


def test_an_oracle_ranks_perfectly_and_seen_items_are_not_candidates(prepared: Path) -> None:
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    # An oracle must tell every item apart, cold ones included: ids map to themselves here (the fitted encoder
    # maps items without training rows to 0, and a few test positives are such items).
    enc.user_map_ = np.arange(enc.spec_.n_users)
    enc.item_map_ = np.arange(enc.spec_.n_items)
    df = ds.interactions
    table = np.zeros((enc.spec_.n_users, enc.spec_.n_items), dtype=np.float32)
    seen = df.filter(df["split"] != "test")
    table[seen["user"].to_numpy(), seen["item"].to_numpy()] = 10.0  # what the user met before scores highest
    test_pos = df.filter((df["split"] == "test") & (df["label"] > 0))
    table[test_pos["user"].to_numpy(), test_pos["item"].to_numpy()] = 5.0
    got = rank_full_catalogue(_Table(torch.from_numpy(table)), enc, ds, ks=(10,)).metrics["overall"]
    # every relevant item ranks first: the seen items, scored 10, were not candidates, else they would rank first
    assert got["mrr"] == 1.0 and got["hr@10"] == 1.0
    sampled = rank_full_catalogue(_Table(torch.from_numpy(-table)), enc, ds, ks=(10,), sampled_negatives=5)
    assert sampled.metrics["overall"]["ranking_candidates"] == "5 sampled negatives"
    assert sampled.metrics["overall"]["hr@10"] == 1.0  # at most 5 negatives + positives: all within 10
    # more sampled negatives than a scenario has items was once labelled "100000 sampled negatives"
    with pytest.raises(ConfigError, match=r"sampled_negatives 100000 is not below the [0-9,]+ items of the catalogue"):
        rank_full_catalogue(_Table(torch.from_numpy(table)), enc, ds, ks=(10,), sampled_negatives=100000)


def test_results_by_activity_cover_every_row_and_query(mist_run: Path) -> None:
    doc = evaluate_run(mist_run, ks=(5,)).to_json()
    m = doc["runs"][0]["metrics"]
    saved = np.load(mist_run / "predictions_test.npz")
    names = doc["runs"][0]["scenario_names"]
    by = m["by_activity"]
    assert by["groups"] == ["0", "1-2", "3-5", "6-20", ">20"]
    for name, groups in by["by_scenario"].items():
        assert sum(g["n"] for g in groups.values()) == m["by_scenario"][name]["n"]
        assert sum(g["n_queries"] for g in groups.values()) == m["by_scenario"][name]["n_queries"]
        for gname, block in groups.items():  # the group's AUC is the AUC of its saved rows
            rows = (saved["scenario"] == names.index(name) + 1) & (saved["group"] == by["groups"].index(gname))
            if len(np.unique(saved["label"][rows])) == 2:
                assert block["auc"] == pytest.approx(roc_auc_score(saved["label"][rows], saved["prob"][rows]),
                                                     abs=1e-6)
        # the scenario's NDCG is the query-weighted mean of its groups'
        want = sum(g["ndcg@5"] * g["n_queries"] for g in groups.values()) / m["by_scenario"][name]["n_queries"]
        assert m["by_scenario"][name]["ndcg@5"] == pytest.approx(want, abs=1e-9)
    per_query = load_per_query(mist_run / "ranking_test.npz")["full catalogue"]
    for name, q in per_query.items():
        assert q["ndcg@5"].mean() == pytest.approx(m["by_scenario"][name]["ndcg@5"], abs=1e-9)
    # warm users dominate the synthetic platform's test rows: there are groups beyond 0
    assert any(g != "0" for g in by["overall"])


def test_sampled_lists_from_the_same_pass_equal_a_sampled_ranking(prepared: Path) -> None:
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rng = np.random.default_rng(1)
    table = torch.from_numpy(rng.random((enc.spec_.n_users, enc.spec_.n_items)).astype(np.float32))
    both = rank_full_catalogue(_Table(table), enc, ds, ks=(5,), also_sampled=7, max_rows_per_chunk=300)
    alone = rank_full_catalogue(_Table(table), enc, ds, ks=(5,), sampled_negatives=7, max_rows_per_chunk=300)
    full = rank_full_catalogue(_Table(table), enc, ds, ks=(5,), max_rows_per_chunk=300)
    assert both.metrics["sampled"]["overall"]["ndcg@5"] == alone.metrics["overall"]["ndcg@5"]
    assert both.metrics["sampled"]["overall"]["ranking_candidates"] == "7 sampled negatives"
    assert both.metrics["overall"]["ndcg@5"] == full.metrics["overall"]["ndcg@5"]
    # fewer candidates, better ranks: sampled lists are easier than the catalogue
    assert both.metrics["sampled"]["overall"]["mrr"] > both.metrics["overall"]["mrr"]


def test_a_query_sample_is_seeded_and_counted(prepared: Path) -> None:
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    table = torch.from_numpy(np.random.default_rng(2).random((enc.spec_.n_users, enc.spec_.n_items)).astype(
        np.float32))
    a = rank_full_catalogue(_Table(table), enc, ds, ks=(5,), max_queries=20)
    b = rank_full_catalogue(_Table(table), enc, ds, ks=(5,), max_queries=20)
    for name, block in a.metrics["by_scenario"].items():
        assert block["n_queries"] == min(20, block["n_queries_total"])
        assert block == b.metrics["by_scenario"][name]
    assert any(v["n_queries_total"] > 20 for v in a.metrics["by_scenario"].values())


def test_mist_ranks_the_catalogue_as_its_general_path_does(mist_run: Path, prepared: Path) -> None:
    """The catalogue scorer (mist_rank.MistCatalogue, what evaluation uses) gives the metrics the general path
    (every crossed row through the top) gives, on a trained run: the same ranks, per query."""
    from mistrec.models.mist_rank import MistCatalogue
    from mistrec.train import load_run

    model, enc, _ = load_run(mist_run)
    ds = PreparedDataset.load(prepared)
    assert isinstance(model.candidate_scorer(enc.item_batch(np.arange(1, 5))), MistCatalogue)
    fast = rank_full_catalogue(model, enc, ds, ks=(5, 10))
    model.score_candidates = model._score_crossed  # type: ignore[method-assign]  # the general path
    model.candidate_scorer = lambda items, max_rows=32768: Model.candidate_scorer(model, items, max_rows)  # type: ignore[method-assign]
    general = rank_full_catalogue(model, enc, ds, ks=(5, 10))
    for name, block in fast.metrics["by_scenario"].items():
        for key, value in block.items():
            assert value == pytest.approx(general.metrics["by_scenario"][name][key], abs=1e-9), (name, key)
    for view, by_scenario in fast.per_query.items():
        for name, arrays in by_scenario.items():
            np.testing.assert_allclose(arrays["ndcg@10"], general.per_query[view][name]["ndcg@10"], atol=1e-9)


def test_evaluate_command(mist_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(mist_run), "--json", str(out), "--k", "5", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "overall" in printed and "ndcg@5" in printed
    doc = json.loads(out.read_text())
    assert doc["runs"][0]["metrics"]["by_scenario"]["home_feed"]["auc"] > 0.5


@pytest.mark.parametrize("args,message", [
    (["evaluate", "/nonexistent/run"], "Run directory not found"),
    (["evaluate", "RUN", "--k", "0"], "--k takes ints >= 1"),
    (["evaluate", "RUN", "--k", "ten"], "--k takes comma-separated ints"),
    (["evaluate", "RUN", "--data", "/nonexistent/data"], "not at /nonexistent/data"),
    (["benchmark", "DATA", "--models", "mist,nope", "--json", "x.json"], "Unknown model(s) nope. Known models:"),
    (["benchmark", "DATA", "--models", "mist", "--seeds", "0", "--json", "x.json"], "--seeds must be >= 1"),
    # once found only after every run had trained: now before the first
    (["benchmark", "DATA", "--models", "mist", "--bootstrap", "0", "--json", "x.json"], "--bootstrap must be >= 1"),
    (["benchmark", "DATA", "--models", "mist", "--json", "TMP"], "is a directory: give a file name"),
])
def test_evaluate_and_benchmark_bad_input(args: list[str], message: str, mist_run: Path, prepared: Path,
                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(mist_run) if a == "RUN" else str(prepared) if a == "DATA" else
            str(tmp_path / a) if a.endswith(".json") else str(tmp_path) if a == "TMP" else a for a in args]
    fails_with(capsys, args, message)


def test_offdiagonal_spearman_ranks_sources_and_ignores_the_diagonal() -> None:
    from mistrec.eval.evaluate import offdiagonal_spearman

    planted = np.array([[9.0, 0.1, 0.4], [0.2, 9.0, 0.3], [0.5, 0.6, 9.0]])
    learned = planted.copy()
    np.fill_diagonal(learned, -5.0)  # the diagonal does not count
    assert offdiagonal_spearman(planted, learned) == pytest.approx(1.0)
    assert offdiagonal_spearman(planted, -learned) == pytest.approx(-1.0)
    assert np.isnan(offdiagonal_spearman(np.eye(3), learned))  # the identity control has nothing to rank
