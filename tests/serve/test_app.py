"""The HTTP service on a small trained run: recommend, events that change the next answer in another scenario,
idempotent retries, 4xx bodies that name the field, the API key, no stack trace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient  # needs httpx, a dev dependency: never skipped

from mistrec.eval.fit import fit_run
from mistrec.serve.app import create_app


@pytest.fixture
def client(run: Path, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(run, f"sqlite:///{tmp_path / 'events.db'}", api_key="secret")) as c:
        yield c


def test_a_logged_click_changes_the_next_answer_in_another_scenario(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["model"] == "mist"
    body = {"user": "u00003", "scenario": "vr_showroom", "k": 5}
    before = client.post("/v1/recommend", json=body).json()
    assert not before["cold_start"] and len(before["items"]) == 5
    home_item = client.post("/v1/recommend", json={**body, "scenario": "home_feed"}).json()["items"][0]["item"]
    click = {"event_id": "e1", "user": "u00003", "item": home_item, "scenario": "home_feed", "type": "click"}
    events = {"events": [click]}
    assert client.post("/v1/events", json=events, headers={"X-API-Key": "secret"}).json() == {"stored": ["e1"]}
    assert client.post("/v1/events", json=events, headers={"X-API-Key": "secret"}).json() == {"stored": ["e1"]}
    assert len(client.get("/v1/users/u00003/history").json()["events"]) == 1  # the retry was stored once
    after = client.post("/v1/recommend", json=body).json()
    assert after["history_events"] == min(before["history_events"] + 1, 10)
    assert [i["score"] for i in after["items"]] != [i["score"] for i in before["items"]]
    newcomer = client.post("/v1/recommend", json={**body, "user": "nobody-yet"}).json()
    assert newcomer["cold_start"]  # no events: popular items, marked
    client.post("/v1/events", json={"events": [{**click, "event_id": "e2", "user": "nobody-yet"}]},
                headers={"X-API-Key": "secret"})
    newcomer = client.post("/v1/recommend", json={**body, "user": "nobody-yet", "explain": True}).json()
    assert not newcomer["cold_start"] and newcomer["history_events"] == 1  # read from the logged click alone
    assert newcomer["items"][0]["explanation"]["sentence"]


def test_a_scene_is_filled_from_the_ranked_list_with_the_logged_events(client: TestClient) -> None:
    """POST /v1/slate: the slots come from the top `candidates` of the answer /v1/recommend gives (logged events
    read), at most `per_category` of a category; a logged click changes the list they are filled from."""
    body = {"user": "u00003", "scenario": "vr_showroom", "slots": 4, "candidates": 12, "per_category": 1,
            "diversity": 0.3}
    out = client.post("/v1/slate", json=body).json()
    top = [i["item"] for i in client.post("/v1/recommend", json={"user": "u00003", "scenario": "vr_showroom",
                                                                  "k": 12}).json()["items"]]
    items = out["items"]
    assert 1 <= len(items) <= 4 and [i["slot"] for i in items] == list(range(1, len(items) + 1))
    assert all(top.index(i["item"]) + 1 == i["rank"] for i in items)
    assert out["slate"]["category"] is not None and out["slate"]["candidates"] == 12
    categories = [i["category"] for i in items]
    assert len(set(categories)) == len(categories)  # one item a category
    home = client.post("/v1/recommend", json={"user": "u00003", "scenario": "home_feed", "k": 1}).json()
    click = {"event_id": "s1", "user": "u00003", "item": home["items"][0]["item"], "scenario": "home_feed",
             "type": "click"}
    client.post("/v1/events", json={"events": [click]}, headers={"X-API-Key": "secret"})
    after = client.post("/v1/slate", json={**body, "explain": True}).json()
    assert after["history_events"] == min(out["history_events"] + 1, 10)
    assert after["items"][0]["explanation"]["sentence"]
    for bad, field in (({"slots": 0}, "slots"), ({"diversity": 2}, "diversity"), ({"candidates": 1001}, "candidates"),
                       ({"per_category": 0}, "per_category")):
        r = client.post("/v1/slate", json={**body, **bad})
        assert r.status_code == 422 and field in r.json()["detail"][0]["loc"]
    r = client.post("/v1/slate", json={**body, "scenario": "arcade"})
    assert r.status_code == 422 and "Unknown scenario 'arcade'" in r.json()["detail"]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/recommend", {"user": "u00003", "scenario": "vr_showroom", "k": 0}, "k"),
    ("/v1/recommend", {"user": "u00003", "scenario": "vr_showroom", "k": 101}, "k"),
    ("/v1/recommend", {"user": "", "scenario": "vr_showroom"}, "user"),
    ("/v1/events", {"events": []}, "events"),
    ("/v1/events", {"events": [{"event_id": "x", "user": "u", "item": "i", "scenario": "s", "type": "like"}]},
     "type"),
])
def test_a_bad_request_names_the_field(client: TestClient, path: str, body: dict[str, object], field: str) -> None:
    r = client.post(path, json=body, headers={"X-API-Key": "secret"})
    assert r.status_code == 422
    assert field in r.json()["detail"][0]["loc"]


def test_our_own_checks_are_one_line_4xx_and_the_key_is_required(client: TestClient) -> None:
    r = client.post("/v1/recommend", json={"user": "u00003", "scenario": "arcade"})
    assert r.status_code == 422 and "Unknown scenario 'arcade'" in r.json()["detail"]
    assert "Traceback" not in r.text
    r = client.post("/v1/events", json={"events": [{"event_id": "x", "user": "u", "item": "i", "scenario": "s",
                                                    "type": "click"}]})
    assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]


def test_mistrec_serve_runs_as_a_real_process(run: Path, tmp_path: Path) -> None:
    """`mistrec serve --workers 2` binds 127.0.0.1, loads the run in each worker's lifespan and answers over
    HTTP."""
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mistrec", "serve", str(run), "--port", str(port), "--db",
                             f"sqlite:///{tmp_path / 'events.db'}", "--workers", "2"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if json.loads(r.read())["status"] == "ready":
                        break
            except OSError:
                time.sleep(0.3)
        else:
            raise AssertionError("the service did not become ready")
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/recommend", method="POST",
                                     data=json.dumps({"user": "u00003", "scenario": "vr_showroom", "k": 3}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert len(json.loads(r.read())["items"]) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_metrics_and_a_reload_to_another_run(client: TestClient, run: Path, tmp_path: Path) -> None:
    client.post("/v1/recommend", json={"user": "u00003", "scenario": "vr_showroom", "k": 3})
    client.post("/v1/recommend", json={"user": "u00003", "scenario": "an-unknown-one", "k": 3})
    client.post("/v1/events", json={"events": [{"event_id": "m1", "user": "u1", "item": "i", "scenario": "home_feed",
                                                "type": "click"}]}, headers={"X-API-Key": "secret"})
    text = client.get("/metrics").text
    assert 'mistrec_request_seconds_count{endpoint="/v1/recommend",scenario="vr_showroom"} 1.0' in text
    assert 'scenario="other"' in text and "an-unknown-one" not in text  # label values stay bounded
    assert "mistrec_events_written_total 1.0" in text and 'mistrec_model_info{model="mist"' in text
    other = tmp_path / "popularity"
    fit_run(run.parent / "prepared", "popularity", other, quiet=True)
    assert client.post("/v1/admin/reload", json={"run_dir": str(other)}).status_code == 401  # the key
    r = client.post("/v1/admin/reload", json={"run_dir": str(other)}, headers={"X-API-Key": "secret"})
    assert r.json() == {"model": "popularity", "run": str(other)}
    assert client.get("/readyz").json()["model"] == "popularity"
    assert client.post("/v1/recommend", json={"user": "u00003", "scenario": "vr_showroom", "k": 3}).json()["model"] \
        == "popularity"
    bad = client.post("/v1/admin/reload", json={"run_dir": str(tmp_path / "nothing")},
                      headers={"X-API-Key": "secret"})
    assert bad.status_code == 422 and "Run directory not found" in bad.json()["detail"]
    assert client.get("/readyz").json()["model"] == "popularity"  # a failed reload keeps the run being served


def test_a_body_over_the_limit_is_refused_with_the_limit(client: TestClient) -> None:
    big = {"events": [{"event_id": f"e{i}", "user": "u" * 150, "item": "i" * 150, "scenario": "home_feed",
                       "type": "click"} for i in range(4000)]}
    r = client.post("/v1/events", json=big, headers={"X-API-Key": "secret"})
    assert r.status_code == 413 and "over the limit of 1,048,576" in r.json()["detail"]
    assert client.get("/readyz").json()["events"] == 0
    # sent in chunks without a Content-Length: refused once what arrived passes the limit, and a small body sent
    # so is read whole by the route
    body = json.dumps(big).encode()
    r = client.post("/v1/events", content=(body[i:i + 65536] for i in range(0, len(body), 65536)),
                    headers={"X-API-Key": "secret", "Content-Type": "application/json"})
    assert r.status_code == 413 and "(sent without a Content-Length), over the limit of 1,048,576" in r.json()["detail"]
    small = json.dumps({"events": big["events"][:3]}).encode()
    r = client.post("/v1/events", content=(small[i:i + 100] for i in range(0, len(small), 100)),
                    headers={"X-API-Key": "secret", "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert client.get("/readyz").json()["events"] == 3


def test_every_bad_input_is_a_4xx_that_names_it_and_the_service_stays_healthy(client: TestClient,
                                                                              tmp_path: Path) -> None:
    """The serving issue's list: each answered with a 4xx naming the field or the problem (and the limit where
    there is one), never a stack trace; the service answers normally after all of them."""
    key = {"X-API-Key": "secret"}
    ok = {"user": "u00003", "scenario": "vr_showroom", "k": 3}
    cases: list[tuple[str, dict[str, object], int, str]] = [
        ("malformed JSON", {"content": b'{"user": "u00003", "scenario": ', "headers": {
            "Content-Type": "application/json"}}, 422, "JSON decode error"),
        ("unknown scenario", {"json": {**ok, "scenario": "arcade"}}, 422, "Unknown scenario 'arcade'"),
        ("k = 0", {"json": {**ok, "k": 0}}, 422, "greater than or equal to 1"),
        ("k = -1", {"json": {**ok, "k": -1}}, 422, "greater than or equal to 1"),
        ("k over the limit", {"json": {**ok, "k": 101}}, 422, "less than or equal to 100"),
        ("10,001 candidates", {"json": {**ok, "candidates": [f"i{j}" for j in range(10_001)]}}, 422,
         "at most 5000 items"),
        ("a 10 MB body", {"content": b"{" + b" " * 10_000_000 + b"}", "headers": {
            "Content-Type": "application/json"}}, 413, "over the limit of 1,048,576"),
    ]
    for what, kwargs, status, text in cases:
        r = client.post("/v1/recommend", **kwargs)  # type: ignore[arg-type]
        assert r.status_code == status, (what, r.text)
        assert text in r.text and "Traceback" not in r.text, (what, r.text)
    event = {"event_id": "x", "user": "u", "item": "i", "scenario": "home_feed", "type": "click"}
    r = client.post("/v1/events", json={"events": [{**event, "type": "purchase"}]}, headers=key)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "type" and "click" in r.text
    for headers in ({}, {"X-API-Key": "wrong"}):
        r = client.post("/v1/events", json={"events": [event]}, headers=headers)
        assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]
    (tmp_path / "not-a-run").mkdir()
    r = client.post("/v1/admin/reload", json={"run_dir": str(tmp_path / "not-a-run")}, headers=key)
    assert r.status_code == 422 and "not-a-run" in r.json()["detail"] and "Traceback" not in r.text
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    assert len(client.post("/v1/recommend", json=ok).json()["items"]) == 3
    assert client.get("/readyz").json()["events"] == 0  # nothing of the refused batches was written
