"""`mistrec benchmark`: resumes after a kill without retraining, summarises with paired tests and transfer
gains, and writes an HTML report that a real headless browser draws without errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.conftest import headless_page, prepared_synthetic

MODELS = "popularity,isolated_dnn,mmoe,mist"


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A benchmark killed after its first run, then started again."""
    root = tmp_path_factory.mktemp("benchmark")
    prepared_synthetic(root, history_length=5, n_users=150, events_per_user=20, seed=3)
    out = root / "bench.json"
    cmd = [sys.executable, "-m", "mistrec", "benchmark", str(root / "prepared"), "--models", MODELS, "--seeds", "2",
           "--epochs", "2", "--json", str(out), "--report", str(root / "report.html"), "--threads", "1",
           "--bootstrap", "200", "--k", "5"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                             start_new_session=True)
    done = root / "bench.runs" / "popularity" / "seed-2022" / "eval.json"
    deadline = time.monotonic() + 180
    while not done.is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # killed halfway: the first run is finished, the rest is not
    first.wait()
    assert done.is_file(), "the first run did not finish before the kill"
    assert not out.exists()
    weights = done.parent / "weights.pt"
    mtime = weights.stat().st_mtime_ns
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    return {"root": root, "out": out, "second": second, "weights": weights, "mtime": mtime}


def test_a_killed_benchmark_resumes_without_retraining(benchmark: dict[str, Any]) -> None:
    second = benchmark["second"]
    assert second.returncode == 0, second.stdout + second.stderr
    assert "[1/8] popularity seed 2022: finished before, kept" in second.stdout
    assert benchmark["weights"].stat().st_mtime_ns == benchmark["mtime"]  # not trained again
    doc = json.loads(benchmark["out"].read_text())
    assert [(r["model"], r["seed"]) for r in doc["runs"]] == [(m, s) for m in MODELS.split(",") for s in (2022, 2023)]


def test_the_summary_has_uncertainty_paired_tests_and_transfer_gain(benchmark: dict[str, Any]) -> None:
    doc = json.loads(benchmark["out"].read_text())
    summary = doc["summary"]
    scenarios = doc["data_summary"]["scenarios"]
    for run in doc["runs"]:
        assert run["peak_rss_mb"] > 0 and run["train_seconds"] >= 0
        assert set(run["metrics"]["by_scenario"]) <= set(scenarios)
    auc = summary["by_model"]["mmoe"]["by_scenario"]["home_feed"]["auc"]
    assert auc["n"] == 2 and auc["std"] >= 0
    for s, best in summary["best"].items():
        if s == "overall":
            continue
        means = {m: v["by_scenario"][s]["auc"]["mean"] for m, v in summary["by_model"].items()}
        assert means[best] == max(means.values())
        for other, test in summary["paired_tests"][s].items():
            assert other != best
            assert 0 < test["bootstrap"]["p_value"] <= 1 and test["bootstrap"]["diff"] >= -1e-12
            assert "p_value" in test["seed_t_test"]
    gain = summary["transfer_gain"]["mmoe"]["home_feed"]
    iso = summary["by_model"]["isolated_dnn"]["by_scenario"]["home_feed"]["auc"]["mean"]
    sb = summary["by_model"]["mmoe"]["by_scenario"]["home_feed"]["auc"]["mean"]
    assert gain["auc_gain"] == pytest.approx(sb - iso)
    assert gain["negative_transfer"] == (sb < iso)


def test_the_summary_by_activity_compares_models_in_each_group(benchmark: dict[str, Any]) -> None:
    doc = json.loads(benchmark["out"].read_text())
    act = doc["summary"]["by_activity"]
    assert act["groups"] == ["0", "1-2", "3-5", "6-20", ">20"] and act["ndcg_metric"] == "ndcg@5"
    for s, groups in act["best"].items():
        for g, best in groups.items():
            means = {m: v[s][g]["auc"]["mean"] for m, v in act["by_model"].items() if g in v[s]}
            assert means[best] == max(means.values())
            for other, test in act["paired"][s][g].items():
                assert other != best and test["seeds"] == [2022, 2023]
                if "auc" in test:
                    assert test["auc"]["diff"] >= -1e-12 and 0 < test["auc"]["p_value"] <= 1
    # the gain per group is the difference of the group means, tested on the group's rows
    gains = act["transfer_gain"]["mist"]
    assert gains, "no gain of mist over the isolated model in any group"
    for s, groups in gains.items():
        for g, gain in groups.items():
            want = act["by_model"]["mist"][s][g]["auc"]["mean"] - act["by_model"]["isolated_dnn"][s][g]["auc"]["mean"]
            assert gain["auc_gain"] == pytest.approx(want)
            assert "ndcg@5_gain" in gain and 0 < gain["ndcg@5_p_value"] <= 1
    # runs' groups sum to their scenario's rows
    run = doc["runs"][0]
    for s, groups in run["metrics"]["by_activity"]["by_scenario"].items():
        assert sum(g["n"] for g in groups.values()) == run["metrics"]["by_scenario"][s]["n"]


def test_the_report_loads_in_a_headless_browser_with_its_charts_drawn(benchmark: dict[str, Any]) -> None:
    report = benchmark["root"] / "report.html"
    assert report.is_file()
    with headless_page(1200, 900) as (page, problems):
        page.goto(report.as_uri())
        charts = {c: page.locator(f"svg[data-chart='{c}']") for c in ("auc-bars", "transfer-gain", "curves")}
        for name, chart in charts.items():
            assert chart.count() == 1, name
            box = chart.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 100, name
        # drawn, not empty: bars with a height, and a curve with points
        heights = page.eval_on_selector_all("svg[data-chart='auc-bars'] rect.bar",
                                            "els => els.map(e => e.getBBox().height)")
        assert len(heights) == 4 * 5 and min(heights) > 0  # 4 models x (4 scenarios + overall)
        assert page.locator("svg[data-chart='transfer-gain'] rect.bar").count() == 3 * 4
        assert page.locator("svg[data-chart='curves'] polyline.curve").count() == 3  # closed-form: none
        # one bar per (model other than isolated_dnn, scenario, activity group) that has a gain
        doc = json.loads(benchmark["out"].read_text())
        by_gain = doc["summary"]["by_activity"]["transfer_gain"]
        n_bars = sum(len(groups) for m in by_gain.values() for s, groups in m.items() if s != "overall")
        by_activity = page.locator("svg[data-chart='gain-by-activity'] rect.bar")
        assert n_bars > 0 and by_activity.count() == n_bars
        assert page.locator("svg[data-chart='gain-by-activity']").bounding_box()["height"] > 100
        assert "best" in (page.locator("td.best").first.get_attribute("class") or "")
        mmoe = next(r for r in json.loads(benchmark["out"].read_text())["runs"] if r["model"] == "mmoe")
        n_cells = len(mmoe["gates"]["experts"]["columns"]) * len(mmoe["gates"]["experts"]["by_scenario"])
        gates = page.locator("svg[data-chart='gates-mmoe-experts'] rect.cell")
        assert n_cells >= 4 and gates.count() == n_cells  # scenario x expert: who uses which expert, drawn
        for chart in ("transfer-matrix", "leave-source-out"):  # mist: target x source, attention and effect
            assert page.locator(f"svg[data-chart='{chart}'] rect.cell").count() == 4 * 4, chart
        png = page.screenshot(full_page=True)
        assert len(png) > 20_000  # a page of text, tables and charts, not a blank one
    assert not problems, problems


def test_resuming_with_other_settings_is_refused(benchmark: dict[str, Any]) -> None:
    root = benchmark["root"]
    cmd = [sys.executable, "-m", "mistrec", "benchmark", str(root / "prepared"), "--models", MODELS, "--seeds", "2",
           "--epochs", "3", "--json", str(benchmark["out"]), "--threads", "1", "--k", "5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2  # the JSON is there: refused before anything else
    assert "exists: pass --force to replace it" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([*cmd, "--force"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "holds runs made with other settings (train:" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("config,message", [
    ({"models": {"mist": {"embeding_dim": 8}}}, r"Unknown key 'embeding_dim' in the mist model config"),
    ({"models": {"popularity": {"prior": "ten"}}}, r"'prior' parameter of ClassicConfig must be a number"),
    ({"train": {"epoch": 3}}, r"Unknown key 'epoch' in the benchmark's train settings")])
def test_a_misspelt_config_key_stops_the_benchmark_before_any_run(tmp_path: Any, config: dict[str, Any],
                                                                  message: str) -> None:
    """Every model's config and the train settings are parsed before the first run: nothing is trained."""
    import re

    import yaml

    prepared_synthetic(tmp_path, history_length=5, n_users=60, events_per_user=10, seed=3)
    (tmp_path / "bench.yaml").write_text(yaml.safe_dump(config))
    work = tmp_path / "runs"
    cmd = [sys.executable, "-m", "mistrec", "benchmark", str(tmp_path / "prepared"), "--models", "popularity,mist",
           "--config", str(tmp_path / "bench.yaml"), "--json", str(tmp_path / "b.json"), "--work", str(work),
           "--threads", "1", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert re.search(message, proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not any(work.glob("*/seed-*")), "a run started before the config was checked"
