"""The command line: bad input gets one clear line and exit status 2, never a traceback."""

from __future__ import annotations

import copy
import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from mistrec.cli.main import main
from tests.conftest import write_yaml


def fails_with(capsys: pytest.CaptureFixture[str], argv: list[str], pattern: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert pattern in lines[0], lines[0]
    return lines[0]


def bad_yaml(tiny: dict[str, Any], change: Any) -> str:
    cfg = copy.deepcopy(tiny["cfg"])
    change(cfg)
    return str(write_yaml(tiny["dir"] / "bad.yaml", cfg))


def test_missing_data_file(tiny: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    path = bad_yaml(tiny, lambda c: c["interactions"][0].update(path="nope.csv"))
    fails_with(capsys, ["prepare", path, "--out", str(tiny["dir"] / "o")], "File not found:")


def test_column_not_in_file(tiny: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    path = bad_yaml(tiny, lambda c: c["interactions"][0]["columns"].update(timestamp="time"))
    line = fails_with(capsys, ["prepare", path, "--out", str(tiny["dir"] / "o")], "column 'time' (for 'timestamp')")
    assert "Its columns are: uid, iid, ts, rating" in line


def test_unknown_yaml_key(tiny: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    path = bad_yaml(tiny, lambda c: c.update(histroy={"length": 5}))
    line = fails_with(capsys, ["prepare", path, "--out", str(tiny["dir"] / "o")], "Unknown key 'histroy'")
    assert "Allowed keys: name, interactions, label" in line


def test_unparsable_label(tiny: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    with (tiny["dir"] / "home.csv").open("a") as fh:
        fh.write("u9,z,999,4 stars\n")
    fails_with(capsys, ["prepare", str(tiny["yaml"]), "--out", str(tiny["dir"] / "o")],
               "home.csv line 18, column 'rating': value '4 stars': unparsable label")


def test_empty_scenario(tiny: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    with (tiny["dir"] / "search.tsv").open("a") as fh:
        fh.write("u1\tq9\t4\t999\t \n")
    fails_with(capsys, ["prepare", str(tiny["yaml"]), "--out", str(tiny["dir"] / "o")],
               "search.tsv line 7, column 'scenario': value ' ': missing scenario")


def test_leaking_split(tiny: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    d = tiny["dir"]
    (d / "tr.csv").write_text("u,i,t,l\nu1,a,1,1\nu1,b,2,0\n")
    (d / "te.csv").write_text("u,i,t,l\nu1,a,1,1\n")
    cols = {"user_id": "u", "item_id": "i", "timestamp": "t", "label": "l"}
    path = write_yaml(d / "leak.yaml", {"name": "leak", "interactions": [
        {"path": "tr.csv", "scenario": "s", "split": "train", "columns": cols},
        {"path": "te.csv", "scenario": "s", "split": "test", "columns": cols}]})
    fails_with(capsys, ["prepare", str(path), "--out", str(d / "o")], "Split leaks: 1 evaluation interactions")


def test_protocol_needs_a_known_target(tiny: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tiny["dir"] / "o")
    fails_with(capsys, ["prepare", str(tiny["yaml"]), "--out", out, "--protocol", "kshot"], "needs a target scenario")
    fails_with(capsys, ["prepare", str(tiny["yaml"]), "--out", out, "--protocol", "kshot", "--target", "lobby"],
               "Target scenario 'lobby' is not in the data. Known scenarios: home, search")


def test_prepare_prints_a_summary_and_writes_the_manifest(tiny: dict[str, Any],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tiny["dir"] / "o"
    assert main(["prepare", str(tiny["yaml"]), "--out", str(out), "--protocol", "random", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "Prepared 'tiny' with protocol 'random' (seed 3)" in printed
    assert json.loads((out / "manifest.json").read_text())["protocol"]["seed"] == 3
    # a prepared dataset is not rewritten without --force (its runs would fail their fingerprint check), and the
    # refusal comes before the work
    before = (out / "manifest.json").read_bytes()
    fails_with(capsys, ["prepare", str(tiny["yaml"]), "--out", str(out), "--protocol", "random", "--seed", "4"],
               "holds a prepared dataset already: pass --force to replace it")
    assert (out / "manifest.json").read_bytes() == before
    assert main(["prepare", str(tiny["yaml"]), "--out", str(out), "--protocol", "random", "--seed", "4",
                 "--force"]) == 0
    assert json.loads((out / "manifest.json").read_text())["protocol"]["seed"] == 4
    fails_with(capsys, ["prepare", str(tiny["yaml"]), "--out", str(out / "manifest.json")], "is a file")


def test_prepare_says_what_it_lost_and_what_looks_wrong(tiny: dict[str, Any],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Dropped rows, duplicates, a wrong timestamp unit and tiny or one-label scenarios were said only in
    manifest.json."""
    with (tiny["dir"] / "home.csv").open("a") as fh:
        fh.write("u1,a,100,5\nu9,z,900,five\n")  # a duplicate of line 2, and an unparsable label
    cfg = dict(tiny["cfg"], cleaning={"invalid_rows": "drop"})
    path = tiny["dir"] / "drop.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["prepare", str(path), "--out", str(tiny["dir"] / "o"), "--protocol", "random"]) == 0
    printed = capsys.readouterr().out
    assert "rows read 24; removed: 1 unparsable label, 1 duplicate" in printed
    assert "warning: timestamps run from 1970-01-01 to 1970-01-01" in printed  # the fixture's times are 100..500 s
    assert "warning: scenario search has 6 rows: too few for metrics of its own." in printed


def test_a_scenario_with_one_label_is_said_at_prepare_and_evaluate(tiny: dict[str, Any], tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """AUC and gAUC were printed as `nan` with no reason."""
    search = (tiny["dir"] / "search.tsv").read_text().splitlines()
    (tiny["dir"] / "search.tsv").write_text("".join(
        "\t".join([*r.split("\t")[:2], "5", *r.split("\t")[3:]]) + "\n" for r in search))  # every rating 5
    out, run = tiny["dir"] / "o", tmp_path / "run"
    assert main(["prepare", str(tiny["yaml"]), "--out", str(out), "--protocol", "random", "--seed", "1"]) == 0
    assert "warning: scenario search: every label is 1: its AUC and gAUC are undefined." in capsys.readouterr().out
    assert main(["train", str(out), "--model", "popularity", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--no-ranking", "--quiet", "--split", "valid"]) == 0
    printed = capsys.readouterr().out
    assert "nan" not in printed
    assert "n/a: auc in search needs both labels among the rows: 1 of 1 rows positive" in printed
    # the files say it too: null with the reason beside it (strict JSON, no NaN)
    valid = json.loads((run / "metrics.json").read_text(), parse_constant=_no_constant)["valid"]["by_scenario"]
    assert valid["search"]["auc"] is None
    assert valid["search"]["undefined"]["auc"] == "needs both labels among the rows: 1 of 1 rows positive"


def _no_constant(name: str) -> Any:
    raise AssertionError(f"{name} in a JSON file")


def test_recipe_list_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipe", "list"]) == 0
    assert "ml-1m-age" in capsys.readouterr().out
    fails_with(capsys, ["recipe", "ml-1m-age"], "needs --data")


def test_demo_runs_end_to_end_as_a_real_process(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "mistrec", "demo", "--out", str(out), "--users", "150", "--quiet"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Planted transfer matrix" in proc.stdout and "vr_showroom" in proc.stdout
    manifest = json.loads((out / "prepared" / "manifest.json").read_text())
    assert manifest["scenarios"] == ["game_lobby", "home_feed", "search", "vr_showroom"]
    assert (out / "raw" / "planted_transfer.json").is_file()
    assert "Transfer gain of mist over the isolated per-scenario model" in proc.stdout
    assert "by the user's training events in the scenario" in proc.stdout  # the gain by activity group
    assert "Spearman against the planted T" in proc.stdout  # leave-source-out against the planted matrix
    bench = json.loads((out / "benchmark.json").read_text())
    assert set(bench["summary"]["transfer_gain"]["mist"]) == set(manifest["scenarios"])
    assert (out / "report.html").read_text().count("<svg") >= 3


def test_the_vr_demo_fills_and_explains_each_scenes_slots(tmp_path: Path) -> None:
    out = tmp_path / "vr"
    proc = subprocess.run([sys.executable, "-m", "mistrec", "demo", "--scenario-set", "vr", "--out", str(out),
                           "--users", "200", "--epochs", "2", "--quiet"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Item descriptions embedded by" in proc.stdout and "12 slots in showroom for user" in proc.stdout
    manifest = json.loads((out / "prepared" / "manifest.json").read_text())
    assert manifest["content"]["items"]["blocks"][0]["kind"] == "text"
    doc = json.loads((out / "slates.json").read_text(), parse_constant=_no_constant)
    items = {r["item_id"]: r["category"] for r in csv.DictReader((out / "raw" / "items.csv").open())}
    assert doc["users"]
    for user in doc["users"]:
        for scene, slate in user["scenes"].items():
            assert slate["slots_filled"] == 12 and len(slate["items"]) == 12
            assert all(i.startswith(scene) for i in slate["items"])  # each scene's own catalogue
            counts = Counter(items[i] for i in slate["items"])
            assert max(counts.values()) <= 3  # the per-category cap
            assert slate["expected_clicks"] <= slate["top_of_list"]["expected_clicks"] + 1e-6
            assert all(isinstance(e, str) and e for e in slate["explanations"])
    assert set(doc["coverage"]) == {"cinema", "game_lobby", "home_feed", "showroom"}
    # the same slot filling from the command line, for any user and scene
    user = doc["users"][0]["user"]
    proc = subprocess.run([sys.executable, "-m", "mistrec", "recommend", str(out / "runs" / "mist"), "--user", user,
                           "--scenario", "cinema", "--slots", "6", "--per-category", "1", "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert [it["slot"] for it in got["items"]] == list(range(1, 7)) and got["slate"]["category"] == "category"
    assert len({it["category"] for it in got["items"]}) == 6  # one per category
    assert got["slate"]["expected_clicks"] <= got["slate"]["top_of_list"]["expected_clicks"] + 1e-6


def test_an_internal_error_exits_1_with_the_traceback_and_a_hint_to_report_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A bug of ours (not a MistrecError) is exit status 1, not 2: the traceback to report, then one line saying
    it is ours, not the user's input."""
    def broken(args: Any) -> int:
        raise RuntimeError("index 7 is out of bounds\nfor axis 0")

    monkeypatch.setattr("mistrec.cli.main._recipe", broken)
    assert main(["recipe", "list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("mistrec recipe: internal error: RuntimeError: index 7 is out of bounds for axis 0. ")
    assert "This is a bug in mistrec" in last and "please report it" in last
