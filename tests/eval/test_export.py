"""`mistrec export --format onnx`: mist (scenario routing in the graph, dynamic batch and history length, attention
as a second output) and the two towers, checked against PyTorch with ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mistrec.cli.main import main
from mistrec.data import PreparedDataset
from mistrec.eval.export import INPUTS
from mistrec.train import load_run
from tests.conftest import prepared_synthetic, small_run

ort = pytest.importorskip("onnxruntime", reason="onnx, onnxscript and onnxruntime are dev dependencies")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_synthetic(tmp_path_factory.mktemp("export"), n_users=200, events_per_user=30, seed=9)


@pytest.fixture(scope="module")
def mist_run(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mist run with its export (RUN/export)."""
    from mistrec.eval.export import export_run

    run = _run(prepared, tmp_path_factory.mktemp("runs"), "mist")
    export_run(run)
    return run


def _run(prepared: Path, root: Path, model: str) -> Path:
    return small_run(prepared, model, root / model, epochs=1)


def test_mist_exports_with_its_scenario_routing_and_attention(mist_run: Path, prepared: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run = mist_run
    assert main(["export", str(run), "--out", str(tmp_path / "again"), "--threads", "1"]) == 0
    assert "max |diff|" in capsys.readouterr().out
    doc = json.loads((tmp_path / "again" / "export.json").read_text())
    graph, rank = doc["graphs"]["model"], doc["graphs"]["rank"]
    assert graph["outputs"] == ["logit", "attention"] and len(graph["parity_max_abs"]) == 4
    assert max(graph["parity_max_abs"].values()) <= 1e-5
    # and the ranking graph, one query against many candidates, checked in every scenario
    assert rank["outputs"] == ["logit"] and len(rank["parity_max_abs"]) == 4
    assert max(rank["parity_max_abs"].values()) <= 1e-5
    # checked here too, on rows the export never saw (validation), at another batch size and history length
    model, enc, _ = load_run(run)
    rows = enc.rows(PreparedDataset.load(prepared), "valid")
    b = enc.batch(rows, np.arange(37), history=True, history_side=True)
    assert len(np.unique(b.scenario.numpy())) > 1  # several scenarios' routes in one call
    session = ort.InferenceSession(str(run / "export" / "model.onnx"), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    for length in (b.hist_items.shape[1], 3):
        feeds = {n: getattr(b, n)[:, -length:].numpy() if n.startswith("hist_") else getattr(b, n).numpy()
                 for n in INPUTS if n in names}
        logit, attention = session.run(None, feeds)
        cut = b.without_events(torch.zeros_like(b.hist_mask))  # the same rows, their last `length` events only
        cut = type(b)(**{f: (getattr(cut, f)[:, -length:] if f.startswith("hist_") else getattr(cut, f))
                         for f in b.__dataclass_fields__})
        with torch.no_grad():
            want = model.explain(cut)
        np.testing.assert_allclose(logit, want.logit.numpy(), atol=1e-5)
        np.testing.assert_allclose(attention, want.event_weights.numpy(), atol=1e-5)


@pytest.mark.parametrize("values,form,warm", [
    ({}, "rate", 1.0),
    ({"softmax_scope": "pool", "weights": "din", "top": "mlp", "cold_rate": False}, "anchor", 0.75),
    ({"self_attention_layers": 1, "null_interest": True, "scorer": "mlp", "polarity_pools": False,
      "user_per_scenario": True, "cold_rate": False}, "scale", 0.25),
    ({"co_items": 5, "item_prior": True, "co_scale": "auto", "prior_tilt": "auto"}, "anchor", 0.5),
    ({"co_items": 3, "co_own": "auto", "co_own_items": 12}, "rate", 0.75),
    ({"interest_scope": "auto"}, "rate", 1.0)])
def test_the_ranking_graph_scores_as_score_candidates(values: dict, form: str, warm: float, prepared: Path,
                                                      tmp_path: Path) -> None:
    """rank.onnx (one query, C candidates) against the model's own full-catalogue scores, with queries of no
    history, of a few events and of a whole window, new users at a cold_scale below 1 in each form ("scale",
    "anchor", and "rate" on these logged labels), users with events in the scenario at a warm_scale of 1 or below,
    at another history length and number of candidates than the export's example; with `co_scale: auto` the
    item-to-item term weighted apart for new and active users; with the counted prior, new users' prior tilted
    (`prior_tilt`); with `co_own` the active rows' own scenario read through the deeper table; with
    `interest_scope: auto` the interests of users with at least 3 events from their own scenario's pools."""
    from mistrec.eval.export import QUERY_INPUTS, RANK_INPUTS, export_rank
    from mistrec.features import FeatureEncoder
    from mistrec.models import build_model

    torch.manual_seed(0)
    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    queries = enc.batch(enc.rows(ds, "test"), np.arange(12), history=True, history_side=True)
    drop = torch.zeros_like(queries.hist_mask)
    drop[0] = True
    drop[1, :-3] = True
    queries = queries.without_events(drop)
    queries.activity[:6] = 0  # new in the scenario: cold_scale applies
    model = build_model("mist", enc.spec_, {"embedding_dim": 8, **values}).eval()
    if model.co is not None or model.cold_rate is not None:  # the item-to-item table, the counted click rate
        model.setup(enc.indexed(enc.rows(ds, "train")))
    assert (model.cold_rate is not None) == (form == "rate")
    with torch.no_grad():
        for p in model.parameters():  # away from the zero / one initialisations, so every term counts
            p.add_(0.1 * torch.randn_like(p))
        model.cold_scale.fill_(0.5)
        model.cold_anchor.fill_(form == "anchor")
        if model.cold_rated is not None:
            assert model.cold_rate is not None and model.cold_rate.std() > 0
            model.cold_rated.fill_(form == "rate")
        model.warm_scale.fill_(warm)
        if model.co_scale is not None:
            model.co_scale[:, 0] = 0.5
            model.co_scale[:, 1] = 0.25
        if model.co is not None and model.co.own_weight is not None:  # `co_own`: the active rows' own scenario
            model.co.own_weight.fill_(2.0)
        if model.prior_tilt is not None:  # with the counted prior: new users' prior tilted by their history
            assert model.tilt_center is not None and not bool(torch.isnan(model.tilt_center))
            model.prior_tilt.fill_(0.2)
        if model.own_interest_from is not None:  # `interest_scope: auto`: users with 3 events or more, own pools
            model.own_interest_from.fill_(3)
    assert queries.activity[6:].all()  # the rows warm_scale reaches
    if model.own_interest_from is not None:  # the own pools move these scores
        with torch.no_grad():
            grid = enc.item_batch(np.arange(1, 60))
            own = model.score_candidates(queries, grid)
            model.own_interest_from.zero_()
            assert not torch.allclose(own, model.score_candidates(queries, grid))
            model.own_interest_from.fill_(3)
    items = enc.item_batch(np.arange(1, 60))
    if model.co is not None and model.co.own_weight is not None:  # the own-scenario part moves these scores
        with torch.no_grad():
            with_own = model.score_candidates(queries, items)
            model.co.own_weight.zero_()
            assert not torch.allclose(with_own, model.score_candidates(queries, items))
            model.co.own_weight.fill_(2.0)
    parity = export_rank(model, queries, items, tmp_path / "rank.onnx")
    assert len(parity) > 1 and max(parity.values()) <= 1e-5
    session = ort.InferenceSession(str(tmp_path / "rank.onnx"), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    assert names <= set(RANK_INPUTS)
    few = enc.item_batch(np.array([3, 17, 5]))
    with torch.no_grad():
        want = model.score_candidates(queries, few).numpy()
    for i in range(len(queries)):
        feeds = {n: getattr(queries, n)[i:i + 1, -4:].numpy() if n.startswith("hist_") and n in QUERY_INPUTS
                 else (getattr(queries, n)[i:i + 1] if n in QUERY_INPUTS else getattr(few, n)).numpy()
                 for n in names}
        cut = queries.subset(slice(i, i + 1))
        cut = type(cut)(**{f: (getattr(cut, f)[:, -4:] if f.startswith("hist_") else getattr(cut, f))
                           for f in cut.__dataclass_fields__})
        with torch.no_grad():
            short = model.score_candidates(cut, few).numpy()[0]
        np.testing.assert_allclose(session.run(None, feeds)[0], short, atol=1e-5)
        if i == 0:  # no history: the window's length does not matter
            np.testing.assert_allclose(short, want[0], atol=1e-5)


def test_the_two_towers_export_as_two_graphs(prepared: Path, tmp_path: Path) -> None:
    run = _run(prepared, tmp_path, "two_tower")
    assert main(["export", str(run), "--threads", "1"]) == 0
    doc = json.loads((run / "export" / "export.json").read_text())
    assert set(doc["graphs"]) == {"user_tower", "item_tower"}
    assert all(max(g["parity_max_abs"].values()) <= 1e-5 for g in doc["graphs"].values())


def test_the_service_scores_with_onnx_runtime_as_with_pytorch(mist_run: Path) -> None:
    from mistrec.eval.explain import Recommender

    run = mist_run
    by_torch, by_onnx = Recommender.load(run), Recommender.load(run, backend="onnx")
    assert by_onnx.model.rank is not None  # queries against candidates through the ranking graph
    # the exposure in every scenario, whatever the run's validation chose (rank_exposure: auto), so that both
    # backends' order by it is tested: the ONNX backend reads the PyTorch model's choice
    assert by_torch.model.exposed is not None
    by_torch.model.exposed.fill_(True)
    by_onnx.model.torch_model.exposed.fill_(True)
    user = by_torch.active_users(1)[0]
    for scenario in by_torch.ds.scenarios:
        a = by_torch.recommend(user, scenario, k=5)
        b = by_onnx.recommend(user, scenario, k=5, explain=True)  # explanations from the PyTorch model
        assert [i["item"] for i in a["items"]] == [i["item"] for i in b["items"]]
        np.testing.assert_allclose([i["score"] for i in a["items"]], [i["score"] for i in b["items"]], atol=1e-5)
        assert b["items"][0]["explanation"]["sentence"]
        # both order by mist's `rank_exposure` where the run has its table (logged labels), and say so
        assert by_torch.model.exposure is not None  # the synthetic platform logs its labels
        assert "ranked_by" in a and "ranked_by" in b


def test_onnx_runtime_loads_and_runs_the_graph_without_pytorch(mist_run: Path, prepared: Path,
                                                               tmp_path: Path) -> None:
    """A serving stack with ONNX Runtime alone (no torch in the process) loads the exported graph and scores."""
    import subprocess
    import sys

    run = mist_run
    model, enc, _ = load_run(run)
    b = enc.batch(enc.rows(PreparedDataset.load(prepared), "test"), np.arange(9), history=True, history_side=True)
    np.savez(tmp_path / "feeds.npz", **{n: getattr(b, n).numpy() for n in INPUTS})
    with torch.no_grad():
        want = model(b).numpy()
    script = (
        "import sys, numpy as np, onnxruntime as ort\n"
        f"s = ort.InferenceSession({str(run / 'export' / 'model.onnx')!r}, providers=['CPUExecutionProvider'])\n"
        f"f = np.load({str(tmp_path / 'feeds.npz')!r})\n"
        "names = [i.name for i in s.get_inputs()]\n"
        "out = s.run(['logit'], {n: f[n] for n in names})[0]\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        f"np.save({str(tmp_path / 'got.npy')!r}, out)\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    np.testing.assert_allclose(np.load(tmp_path / "got.npy"), want, atol=1e-5)


def test_the_graphs_bags_are_the_embedding_bags_means(tiny: dict) -> None:
    """With `per_event` (what export sets) a multi-valued feature's mean is gathered and summed instead of
    nn.EmbeddingBag (which the exporter lowers to a loop over bags): the same numbers, empty bags included."""
    from mistrec.data import ProtocolConfig, load_dataset_config, prepare
    from mistrec.features import FeatureEncoder
    from mistrec.models.layers import FeatureEmbedding

    prepare(load_dataset_config(tiny["yaml"]), tiny["dir"] / "p", protocol=ProtocolConfig(name="random", seed=1),
            quiet=True)
    ds = PreparedDataset.load(tiny["dir"] / "p")
    enc = FeatureEncoder().fit(ds)
    assert enc.spec_.item_seq  # the tiny data's genres
    b = enc.batch(enc.rows(ds, "train"), np.arange(12), history=True, history_side=True)
    torch.manual_seed(0)
    embed = FeatureEmbedding(enc.spec_, 4)
    b.item_seq[0] = 0  # one empty bag
    with torch.no_grad():
        by_bag = (embed(b), embed.history_items(b, True))
        embed.per_event = True
        gathered = (embed(b), embed.history_items(b, True))
    for x, y in zip(by_bag, gathered, strict=True):
        torch.testing.assert_close(x, y)
