"""The feedback loop, closed: a served run logs what a user was shown and clicked; `prepare` reads the event store
as one more source; `train --init-from` continues the served run on that data (users and items matched by id);
the service reloads it, and the new run scores the clicked items higher, for that user, than the old one did, by
more than it raises the items shown to them and not clicked (the control), and by more than the same continuation
without the store does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from fastapi.testclient import TestClient

from mistrec.cli.main import main
from mistrec.data import SyntheticConfig, generate
from mistrec.serve.app import create_app

USER, SCENARIO = "u00007", "vr_showroom"


def _scores(client: TestClient, items: list[str]) -> dict[str, float]:
    r = client.post("/v1/recommend", json={"user": USER, "scenario": SCENARIO, "k": len(items),
                                           "candidates": items})
    assert r.status_code == 200, r.text
    return {i["item"]: i["score"] for i in r.json()["items"]}


def test_logged_clicks_are_learned_by_a_run_retrained_from_the_store(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    torch.set_num_threads(1)
    raw = generate(SyntheticConfig(n_users=300, events_per_user=30, seed=11)).write(tmp_path / "raw")
    assert main(["prepare", str(raw), "--out", str(tmp_path / "p1"), "--protocol", "random", "--quiet"]) == 0
    assert main(["train", str(tmp_path / "p1"), "--model", "mist", "--out", str(tmp_path / "r1"), "--epochs", "10",
                 "--config", str(_config(tmp_path)), "--seed", "1", "--quiet"]) == 0
    store = tmp_path / "events.db"
    with TestClient(create_app(tmp_path / "r1", f"sqlite:///{store}")) as client:
        ranked = client.post("/v1/recommend", json={"user": USER, "scenario": SCENARIO, "k": 40}).json()["items"]
        names = [i["item"] for i in ranked]
        clicked, control = names[-10:], names[-20:-10]  # among the run's least likely items for this user
        # three visits a minute apart; each time the user is shown all 20 and clicks the first 10
        events = [{"event_id": f"fb-{visit}-{item}", "user": USER, "item": item, "scenario": SCENARIO,
                   "type": "click" if item in clicked else "impression", "time": 1_796_000_000.0 + 60 * visit}
                  for visit in range(3) for item in clicked + control]
        assert client.post("/v1/events", json={"events": events}).status_code == 200
        before = _scores(client, clicked + control)  # the served run, the logged events in the history
        # the dataset YAML with the store as one more source, prepared again; the served run continued on it
        cfg = yaml.safe_load(raw.read_text())
        cfg["interactions"].append({"store": f"sqlite:///{store}", "name": "feedback"})
        (raw.parent / "with_feedback.yaml").write_text(yaml.safe_dump(cfg))
        capsys.readouterr()
        assert main(["prepare", str(raw.parent / "with_feedback.yaml"), "--out", str(tmp_path / "p2"),
                     "--protocol", "random"]) == 0
        assert "feedback" in capsys.readouterr().out  # the store is named among the sources read
        assert main(["train", str(tmp_path / "p2"), "--model", "mist", "--out", str(tmp_path / "r2"), "--epochs",
                     "10", "--init-from", str(tmp_path / "r1"), "--seed", "1", "--quiet"]) == 0
        stored = client.post("/v1/admin/reload", json={"run_dir": str(tmp_path / "r2")})
        assert stored.status_code == 200, stored.text
        after = _scores(client, clicked + control)
        # the same continuation without the store (the data p1 was prepared from): what retraining alone moves
        assert main(["train", str(tmp_path / "p1"), "--model", "mist", "--out", str(tmp_path / "r2-without"),
                     "--epochs", "10", "--init-from", str(tmp_path / "r1"), "--seed", "1", "--quiet"]) == 0
        assert client.post("/v1/admin/reload", json={"run_dir": str(tmp_path / "r2-without")}).status_code == 200
        without = _scores(client, clicked + control)
    gain_clicked = np.mean([after[i] - before[i] for i in clicked])
    gain_control = np.mean([after[i] - before[i] for i in control])
    lift = gain_clicked - gain_control
    lift_without = np.mean([without[i] - before[i] for i in clicked]) - np.mean([without[i] - before[i]
                                                                                 for i in control])
    # the rule: with the store, the clicked items' mean score rises more than the shown-but-not-clicked ones' (the
    # same user, scenario, history and runs), and by at least 0.05 more than the same continuation without the store
    # moves them. Measured when the test was written (data seeds 11 / 12 / 13, mist without co_items): +0.078 /
    # +0.080 / +0.073 with the store, +0.007 / +0.023 / +0.012 without. With co_items fitted jointly (mist's
    # default of 2026-12-02; a probe of this test): +0.043 / +0.188 / +0.244 with the store, -0.031 / -0.068 / -0.043
    # without: continued training alone moved these items, so the rule reads the difference to that control (the
    # default's residual fit of 2026-12-03 passes the same rule; its margins were not probed)
    assert lift > 0, (lift, lift_without)
    assert lift - lift_without >= 0.05, (lift, lift_without)


def _config(root: Path) -> Path:
    path = root / "mist.yaml"
    path.write_text(yaml.safe_dump({"model": {"embedding_dim": 8}, "train": {"batch_size": 512}}))
    return path
