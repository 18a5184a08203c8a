"""`mistrec train`: a working run, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mistrec.cli.main import main
from mistrec.errors import ArtifactError
from mistrec.train import load_run
from tests.cli.test_cli import fails_with
from tests.conftest import prepared_synthetic


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train_cli")
    return prepared_synthetic(root, "random", n_users=120, events_per_user=25, seed=2)


def test_train_writes_a_run(prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "model.yaml"
    cfg.write_text("model: {embedding_dim: 8, hidden: [32, 16]}\ntrain: {batch_size: 256}\n")
    out = tmp_path / "run"
    assert main(["train", str(prepared), "--model", "star", "--out", str(out), "--config", str(cfg),
                 "--epochs", "2", "--seed", "4", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "Trained star (seed 4)" in printed and "test AUC: overall" in printed
    meta = json.loads((out / "run.json").read_text())
    assert meta["model_config"]["hidden"] == [32, 16] and meta["train_config"]["batch_size"] == 256
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]["by_scenario"]) == {"game_lobby", "home_feed", "search", "vr_showroom"}


def test_bad_input(prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "run")
    line = fails_with(capsys, ["train", str(prepared), "--model", "deepfm", "--out", out], "Unknown model 'deepfm'")
    assert "Known models: bitgcf, bpr_mf, din, " in line and "mist, " in line and "star" in line
    fails_with(capsys, ["train", str(tmp_path / "nope"), "--model", "mist", "--out", out],
               "Prepared dataset not found")


def test_incompatible_prepared_version(prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "old"
    old.mkdir()
    for f in prepared.rglob("*"):
        target = old / f.relative_to(prepared)
        if f.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(f.read_bytes())
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["schema_version"] = 0
    (old / "manifest.json").write_text(json.dumps(manifest))
    fails_with(capsys, ["train", str(old), "--model", "mist", "--out", str(tmp_path / "r")],
               "was prepared with schema version 0")


def test_run_with_missing_or_wrong_weights(prepared: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["train", str(prepared), "--model", "shared_bottom", "--out", str(out), "--epochs", "1",
                 "--quiet"]) == 0
    (out / "weights.pt").rename(out / "weights.bak")
    with pytest.raises(ArtifactError, match=r"is missing weights\.pt"):
        load_run(out)
    meta = json.loads((out / "run.json").read_text())
    (out / "weights.bak").rename(out / "weights.pt")
    meta["model_config"]["bottom"] = [64]
    (out / "run.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=r"does not match the shared_bottom model of run\.json: size mismatch "
                       r"for .*train it again"):
        load_run(out)


def test_pretrain_then_finetune(prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pre, ft = tmp_path / "pre", tmp_path / "ft"
    sources = ["home_feed", "search", "game_lobby"]
    assert main(["train", str(prepared), "--model", "mist", "--out", str(pre), "--epochs", "1", "--quiet",
                 "--train-scenarios", ",".join(sources)]) == 0
    # a fine-tuning step too small to move the weights: the run must hold its starting point's weights
    assert main(["train", str(prepared), "--model", "mist", "--out", str(ft), "--epochs", "1", "--quiet",
                 "--init-from", str(pre), "--train-scenarios", "vr_showroom", "--lr", "1e-30"]) == 0
    capsys.readouterr()
    pre_metrics = json.loads((pre / "metrics.json").read_text())
    metrics = json.loads((ft / "metrics.json").read_text())
    train_counts = json.loads((prepared / "manifest.json").read_text())["counts"]["by_split"]["train"]
    assert pre_metrics["train"]["train_samples"] == sum(train_counts[s]["rows"] for s in sources)
    assert metrics["train"]["train_samples"] == train_counts["vr_showroom"]["rows"]
    assert metrics["init_from"] == str(pre) and metrics["train_scenarios"] == ["vr_showroom"]
    assert set(metrics["test"]["by_scenario"]) == {"game_lobby", "home_feed", "search", "vr_showroom"}
    pre_model, _, _ = load_run(pre)
    ft_model, _, _ = load_run(ft)
    for (name, p), (_, q) in zip(pre_model.named_parameters(), ft_model.named_parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-12), name
    fails_with(capsys, ["train", str(prepared), "--model", "star", "--out", str(tmp_path / "x"), "--init-from",
                        str(pre)], "holds a mist model, not star")
    fails_with(capsys, ["train", str(prepared), "--model", "mist", "--out", str(tmp_path / "x"),
                        "--train-scenarios", "lobby"], "Unknown scenario(s) lobby in --train-scenarios")


@pytest.mark.parametrize(("content", "message"), [
    ("model: {embeding_dim: 8}\n",
     "Unknown key 'embeding_dim' in the mist model config. Allowed keys: embedding_dim, dropout"),
    ("train: {lr: fast}\n", "The 'lr' parameter of TrainConfig must be a number. Got 'fast' instead."),
    ("model: [unclosed\n", "is not valid YAML"),
    ("model: [1, 2]\n", "The 'model' parameter of TrainYaml must be a mapping. Got [1, 2] instead."),
    ("optimiser: adam\n", "Allowed keys: model, train."),
])
def test_bad_train_config(content: str, message: str, prepared: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "model.yaml"
    cfg.write_text(content)
    fails_with(capsys, ["train", str(prepared), "--model", "mist", "--out", str(tmp_path / "run"), "--config",
                        str(cfg)], message)


def test_out_directory_that_is_not_a_run_is_refused(prepared: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    fails_with(capsys, ["train", str(prepared), "--model", "mist", "--out", str(busy)],
               "exists and is not a run: choose an empty or new directory")
    assert (busy / "notes.txt").read_text() == "keep me"
    fails_with(capsys, ["train", str(prepared), "--model", "mist", "--out", str(busy / "notes.txt")],
               "is a file: give a directory to write the run into")


def test_a_finished_run_is_not_replaced_without_force(prepared: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`train --out` onto a finished mist run once replaced it by a din run without a word."""
    out = tmp_path / "run"
    assert main(["train", str(prepared), "--model", "popularity", "--out", str(out), "--quiet"]) == 0
    before = (out / "run.json").read_bytes()
    fails_with(capsys, ["train", str(prepared), "--model", "din", "--out", str(out), "--epochs", "1"],
               "holds a run already: pass --force to replace it")
    assert (out / "run.json").read_bytes() == before
    assert main(["train", str(prepared), "--model", "svd", "--out", str(out), "--force", "--quiet"]) == 0
    assert json.loads((out / "run.json").read_text())["model"] == "svd"
    assert not list(tmp_path.glob(".run.*"))  # no temporary sibling left behind


def test_a_killed_training_leaves_the_previous_run_whole(prepared: Path, tmp_path: Path) -> None:
    """SIGKILL while `train --out R --force` trains: R still holds the finished run, byte for byte, and loads."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    assert main(["train", str(prepared), "--model", "popularity", "--out", str(out), "--quiet"]) == 0
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    cfg = tmp_path / "long.yaml"
    cfg.write_text("train: {epochs: 500, patience: 500}\n")  # still training when killed
    proc = subprocess.Popen([sys.executable, "-m", "mistrec", "train", str(prepared), "--model", "mist", "--out",
                             str(out), "--force", "--config", str(cfg), "--quiet", "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(8)  # imports, data, encoder: well into training by now
    assert proc.poll() is None, "the training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    _, _, meta = load_run(out)
    assert meta["model"] == "popularity"


def test_ema_validates_and_keeps_the_moving_average(prepared: Path) -> None:
    from mistrec.data import PreparedDataset
    from mistrec.errors import ConfigError
    from mistrec.eval.pointwise import evaluate_rows
    from mistrec.features import FeatureEncoder
    from mistrec.models import build_model
    from mistrec.train import TrainConfig, predict, train

    ds = PreparedDataset.load(prepared)
    enc = FeatureEncoder().fit(ds)
    rows, valid = enc.rows(ds, "train"), enc.rows(ds, "valid")

    def fit(ema: float) -> tuple[torch.nn.Module, float, float]:
        torch.manual_seed(0)
        model = build_model("star", enc.spec_, {"embedding_dim": 8, "hidden": [16, 8]})
        result = train(model, enc, rows, valid, TrainConfig(epochs=3, patience=3, batch_size=256, seed=1, ema=ema),
                       quiet=True)
        overall = evaluate_rows(predict(model, enc, valid), valid, enc.spec_.scenario_names).overall
        assert overall.mean_scenario_auc is not None
        return model, overall.mean_scenario_auc, result.best_score

    plain, _, _ = fit(0.0)
    averaged, auc, best = fit(0.9)
    assert auc == pytest.approx(best, abs=1e-12)  # the kept weights are the validated ones: the average's
    assert not all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), averaged.state_dict().values(),
                                                      strict=True))
    instant, _, _ = fit(1e-9)  # an average that forgets at once is the raw weights
    for a, b in zip(plain.state_dict().values(), instant.state_dict().values(), strict=True):
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="The 'ema' parameter of TrainConfig must be a number in"):
        TrainConfig(ema=1.0).validate()


@pytest.mark.parametrize(("piece", "content", "message"), [
    ("weights.pt", b"\x80\x04random bytes, not weights", "weights.pt is damaged: not a PyTorch weights file"),
    ("weights.pt", b"", "weights.pt is damaged"),
    ("run.json", b'{"model": "popularity", ', "run.json is damaged: not valid JSON (line 1, column"),
    ("run.json", b"\xff\xfe\x00", "run.json is damaged: not UTF-8 text"),
    ("encoder.json", b"[1, 2]", "encoder.json is damaged: a JSON object was expected"),
    ("encoder.npz", b"PK\x03\x04 not a zip", "encoder.npz is damaged"),
])
def test_a_damaged_run_is_named_not_a_traceback(piece: str, content: bytes, message: str, prepared: Path,
                                                 tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Random bytes in weights.pt once gave an UnpicklingError traceback advising weights_only=False; a broken
    run.json a JSONDecodeError traceback."""
    out = tmp_path / "run"
    assert main(["train", str(prepared), "--model", "popularity", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    (out / piece).write_bytes(content)
    line = fails_with(capsys, ["evaluate", str(out), "--no-ranking"], message)
    assert "weights_only=False" not in line


@pytest.mark.parametrize(("piece", "content", "message"), [
    ("interactions.parquet", b"PAR1 truncated", "interactions.parquet is damaged: not a readable Parquet file"),
    ("history_events.parquet", b"", "history_events.parquet is damaged: not a readable Parquet file"),
    ("vocab/item_id.parquet", b"\x00" * 64, "item_id.parquet is damaged: not a readable Parquet file"),
    ("manifest.json", b"{", "manifest.json is damaged: not valid JSON"),
])
def test_a_damaged_prepared_directory_is_named_not_a_traceback(piece: str, content: bytes, message: str,
                                                               prepared: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Random bytes in a prepared Parquet file gave polars' ComputeError traceback."""
    import shutil

    copy = tmp_path / "prepared"
    shutil.copytree(prepared, copy)
    (copy / piece).write_bytes(content)
    fails_with(capsys, ["train", str(copy), "--model", "popularity", "--out", str(tmp_path / "run")], message)


def test_a_folder_of_runs_names_them(prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`recommend` on a folder holding seed-0/ said "Train it again" instead of naming the run inside."""
    assert main(["train", str(prepared), "--model", "popularity", "--out", str(tmp_path / "mist" / "seed-0"),
                 "--quiet"]) == 0
    capsys.readouterr()
    fails_with(capsys, ["evaluate", str(tmp_path / "mist"), "--no-ranking"],
               f"is not a run directory but holds runs: {tmp_path / 'mist' / 'seed-0'}. Give one of them.")
