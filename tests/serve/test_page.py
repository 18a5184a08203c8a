"""The web page at / in headless Chromium (Debian's, through Playwright, as the report test): it loads, asks for
recommendations, shows their explanation, and a click on a recommended item changes another scenario's list; no
console error. The screenshot is kept as a test artifact (MISTREC_ARTIFACTS, default the test's tmp_path)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from mistrec.serve.app import create_app
from tests.conftest import headless_page


@pytest.fixture
def server(run: Path, tmp_path: Path) -> Iterator[str]:
    """The app under a real uvicorn on a loopback port, in a thread of this process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(run, f"sqlite:///{tmp_path / 'events.db'}"), host="127.0.0.1", port=port,
                            log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not srv.started:
        if time.time() > deadline or not thread.is_alive():
            raise AssertionError("the service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


def test_the_page_recommends_explains_and_a_click_changes_another_scenario(server: str, tmp_path: Path) -> None:
    with headless_page(1280, 1000) as (page, problems):
        page.goto(server + "/")
        page.wait_for_selector("body[data-state='ready']", timeout=60_000)
        assert page.locator("#error").inner_text() == ""
        # a user with history in several scenarios (the picker's first) and the scenario picked: vr_showroom
        page.select_option("[data-testid=scenario]", "vr_showroom")
        page.wait_for_selector(".list.focus[data-scenario='vr_showroom']", timeout=60_000)
        page.wait_for_selector("body[data-state='ready']")
        focus = page.locator(".list.focus")
        assert focus.locator("li.rec").count() == 10
        # its explanation: a sentence and bars per source scenario, and history events
        assert focus.locator(".explanation .sentence").first.inner_text().strip()
        assert focus.locator("[data-testid=source-bars] .bar").count() >= 1
        assert focus.locator(".explanation ol.events li").count() >= 1
        assert page.locator("#timeline circle.event").count() >= 5  # the training history drawn
        others = page.locator(".list:not(.focus)")
        assert others.count() == 3
        before = {others.nth(i).get_attribute("data-scenario"): others.nth(i).get_attribute("data-key")
                  for i in range(others.count())}
        # a click on the first vr_showroom recommendation is logged, and the other scenarios are asked again
        clicked = focus.locator("button.item").first.get_attribute("data-item")
        focus.locator("button.item").first.click()
        page.wait_for_selector("#timeline circle.event[data-logged='true']", timeout=60_000)
        page.wait_for_selector("body[data-state='ready']")
        after = {s: page.locator(f".list[data-scenario='{s}']").get_attribute("data-key") for s in before}
        changed = [s for s in before if before[s] != after[s]]
        assert changed, "no other scenario's list changed after the click"
        assert page.locator(".list.changed:not(.focus)").count() == len(changed)  # and the page marks them
        # the clicked item is no longer recommended in the scenario it was clicked in
        assert clicked not in page.locator(".list.focus").get_attribute("data-key").split(":")[0].split(",")
        artifacts = Path(os.environ.get("MISTREC_ARTIFACTS", tmp_path))
        artifacts.mkdir(parents=True, exist_ok=True)
        png = page.screenshot(path=str(artifacts / "serve_page.png"), full_page=True)
        assert len(png) > 20_000  # a page of lists, bars and a timeline, not a blank one
    assert not problems, problems
