"""The second task (conversion, ESMM): data with a conversion column -> models with a conversion head, trained on
every row, evaluated with CVR AUC on clicks and CTCVR AUC on every row; errors on bad conversion values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mistrec.data import PreparedDataset, load_dataset_config, prepare
from mistrec.errors import DataError
from mistrec.eval.fit import fit_run
from mistrec.features import FeatureEncoder
from mistrec.models import REGISTRY, build_model, conversion_models
from mistrec.train import TrainConfig, load_run, predict, predict_tasks
from mistrec.train.loop import ctcvr_loss
from tests.conftest import prepared_synthetic, write_yaml


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("conversion")
    return prepared_synthetic(root, "random", history_length=10, protocol_seed=1, n_users=600, events_per_user=40,
                              seed=5, conversion=True)


def test_the_conversion_models_are_the_multi_task_ones() -> None:
    assert conversion_models() == ["mist", "star", "mmoe", "shared_bottom", "scenario_dnn"]
    assert all(not REGISTRY[n].model.supports_conversion for n in ("din", "ple", "popularity", "bpr_mf"))


def test_ctcvr_loss_is_bce_of_the_product_and_skips_unknown_conversions() -> None:
    a = torch.tensor([2.0, -1.0, 0.5, 30.0, 0.0])
    b = torch.tensor([-0.5, 1.0, 3.0, 30.0, 0.0])
    click = torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0])
    conv = torch.tensor([1.0, 0.0, 0.0, 1.0, float("nan")])
    got = ctcvr_loss(a, b, click, conv)
    p = (torch.sigmoid(a) * torch.sigmoid(b)).double()
    y = (click * torch.nan_to_num(conv)).double()
    want = -(y * p.log() + (1 - y) * (1 - p).log())
    assert torch.allclose(got[:3].double(), want[:3], rtol=1e-5)
    assert torch.isfinite(got).all() and got[3] < 1e-6  # p near 1 and y = 1: no inf, no NaN
    assert got[4] == 0.0  # unknown conversion: no loss


def test_prepared_data_carries_the_second_task(prepared: Path) -> None:
    ds = PreparedDataset.load(prepared)
    assert ds.manifest["tasks"] == ["click", "conversion"]
    inter = ds.interactions
    assert ((inter["conversion"] == 1) & (inter["label"] == 0)).sum() == 0  # post-click only
    enc = FeatureEncoder().fit(ds)
    assert enc.spec_.tasks == ("click", "conversion")
    b = enc.batch(enc.rows(ds, "train"), np.arange(32))
    assert b.conversion.shape == (32,) and set(b.conversion.tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("name", ["mist", "star", "mmoe", "shared_bottom", "scenario_dnn"])
def test_conversion_model_contract(name: str, prepared: Path, tmp_path: Path) -> None:
    """Loss goes down, the planted conversion signal is learned (CVR AUC on clicked test rows), the click head
    is the model's forward, and a saved run gives the same two probabilities after loading."""
    torch.set_num_threads(1)
    summary = fit_run(prepared, name, tmp_path / "run", model_values={"embedding_dim": 8},
                      train_cfg=TrainConfig(epochs=5, batch_size=512, lr=3e-3, patience=5, seed=3), quiet=True)
    losses = [h["train_loss"] for h in summary["train"]["history"]]
    assert losses[-1] < losses[0], losses
    assert "valid_ctcvr_auc" in summary["train"]["history"][-1]
    conv = summary["test"]["conversion"]
    # the planted conversion depends on the user's interest and the item's quality: clearly above chance
    assert conv["overall"]["cvr_auc"] > 0.6, conv["overall"]
    assert conv["overall"]["ctcvr_auc"] > 0.6, conv["overall"]
    assert conv["overall"]["clicks"] > conv["overall"]["conversions"] > 0
    assert set(conv["by_scenario"]) == set(summary["test"]["by_scenario"])

    model, enc, _ = load_run(tmp_path / "run")
    ds = PreparedDataset.load(prepared)
    rows = enc.rows(ds, "test")
    click, cvr = predict_tasks(model, enc, rows)
    assert np.array_equal(click, predict(model, enc, rows))  # the click head is forward's
    again, _ = load_run(tmp_path / "run")[:2]
    click2, cvr2 = predict_tasks(again, enc, rows)
    assert np.array_equal(click, click2) and np.array_equal(cvr, cvr2)


def test_a_click_only_model_trains_on_conversion_data(prepared: Path, tmp_path: Path) -> None:
    summary = fit_run(prepared, "din", tmp_path / "run", model_values={"embedding_dim": 8},
                      train_cfg=TrainConfig(epochs=1, batch_size=512, seed=3), quiet=True)
    assert "conversion" not in summary["test"] and summary["test"]["overall"]["auc"] > 0.5


def test_click_data_builds_no_conversion_head(tmp_path: Path) -> None:
    prepared = prepared_synthetic(tmp_path, "random", history_length=5, n_users=60, events_per_user=10, seed=2)
    ds = PreparedDataset.load(prepared)
    assert ds.manifest["tasks"] == ["click"] and "conversion" not in ds.interactions.columns
    enc = FeatureEncoder().fit(ds)
    model = build_model("mist", enc.spec_, {"embedding_dim": 8})
    assert not model.predicts_conversion and not any("cvr" in k for k in model.state_dict())
    assert np.isnan(enc.rows(ds, "train").conversion).all()


def _conversion_yaml(root: Path, rows: list[str], policy: str = "error") -> Path:
    (root / "log.csv").write_text("uid,iid,ts,clicked,bought,surface\n" + "\n".join(rows) + "\n")
    return write_yaml(root / "dataset.yaml", {
        "name": "conv", "interactions": [{"path": "log.csv", "columns": {
            "user_id": "uid", "item_id": "iid", "timestamp": "ts", "label": "clicked", "conversion": "bought",
            "scenario": "surface"}}],
        "label": {"column": "label"}, "cleaning": {"invalid_rows": policy}})


def test_a_conversion_without_a_click_is_a_clear_error(tmp_path: Path) -> None:
    rows = ["u1,i1,1,1,1,a", "u1,i2,2,0,1,a", "u2,i1,3,1,0,b"]
    msg = r"log\.csv.*line 3.*column 'bought' \(for 'conversion'\).*conversion without click"
    with pytest.raises(DataError, match=msg):
        prepare(load_dataset_config(_conversion_yaml(tmp_path, rows)), tmp_path / "out", quiet=True)


def test_an_unparsable_conversion_is_named_or_counted(tmp_path: Path) -> None:
    rows = ["u1,i1,1,1,yes,a", *[f"u{k % 5},i{k % 7},{k + 2},{k % 2},0,{'ab'[k % 2]}" for k in range(40)]]
    msg = r"line 2.*column 'bought' \(for 'conversion'\): value 'yes'.*unparsable conversion"
    with pytest.raises(DataError, match=msg):
        prepare(load_dataset_config(_conversion_yaml(tmp_path, rows)), tmp_path / "out", quiet=True)
    manifest = prepare(load_dataset_config(_conversion_yaml(tmp_path, rows, "drop")), tmp_path / "out2", quiet=True)
    assert manifest["cleaning"]["invalid_rows"]["removed"] == {"unparsable_conversion": 1}
    assert manifest["tasks"] == ["click", "conversion"]


def test_the_benchmark_reports_the_second_task(prepared: Path, tmp_path: Path) -> None:
    from mistrec.eval.benchmark import BenchmarkConfig, run_benchmark
    from mistrec.eval.report import render_report

    doc = run_benchmark(prepared, BenchmarkConfig(models=["star", "din"], seeds=[1], work_dir=tmp_path / "runs",
                                                  train={"epochs": 1, "batch_size": 512}, threads=1, ranking=False,
                                                  n_boot=50), log=lambda *a: None)
    assert doc.summary is not None
    by_model = doc.summary["by_model"]
    assert "conversion" in by_model["star"] and "conversion" not in by_model["din"]
    assert by_model["star"]["conversion"]["overall"]["cvr_auc"]["n"] == 1
    assert set(by_model["star"]["conversion"]["by_scenario"]) == set(by_model["star"]["by_scenario"])
    html = render_report(doc)
    assert "The second task: conversion" in html and "<caption>cvr_auc</caption>" in html


def test_evaluate_reports_and_saves_the_second_task(prepared: Path, tmp_path: Path) -> None:
    from mistrec.eval.evaluate import evaluate_run

    fit_run(prepared, "shared_bottom", tmp_path / "run", model_values={"embedding_dim": 8},
            train_cfg=TrainConfig(epochs=1, batch_size=512, seed=3), quiet=True)
    run = evaluate_run(tmp_path / "run", ranking=False).to_json()["runs"][0]
    conv = run["metrics"]["conversion"]
    assert conv["overall"]["n"] == run["metrics"]["overall"]["n"] and 0.5 < conv["overall"]["ctcvr_auc"] <= 1
    saved = np.load(tmp_path / "run" / "predictions_test.npz")
    assert saved["cvr"].shape == saved["prob"].shape and set(np.unique(saved["conversion"])) <= {0.0, 1.0}


def test_mist_fits_its_item_to_item_term_jointly_on_conversion_data(prepared: Path) -> None:
    from mistrec.errors import ConfigError

    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    b = enc.batch(enc.rows(ds, "train"), np.arange(16))
    auto = build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 5})  # co_fit: auto
    assert not auto.co_residual and auto.stage_loss(b) is None  # the trainer's click + conversion loss on the sum
    with pytest.raises(ConfigError, match="co_fit: residual trains the click logit only"):
        build_model("mist", enc.spec_, {"embedding_dim": 8, "co_items": 5, "co_fit": "residual"})
