"""`search dashboard` in a real browser: headless Chromium driven by Playwright."""

import json
import os
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, cli, needs_mnist, search, write_study

pytestmark = needs_mnist

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("SEARCH_SCREENSHOTS", ROOT / "build" / "screenshots"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dashboard(tmp_path, db):
    assert cli("run", "--study", write_study(tmp_path, n_trials=3, space={"epochs": 2, "hidden_size": [32, 64],
                                                                          "lr": {"low": 1e-3, "high": 3e-3}}))\
        .exit_code == 0
    port = _free_port()
    proc = search("dashboard", "--port", port)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/api/studies", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"dashboard did not start: {proc.communicate()}")
            time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(10)


def test_dashboard_api_lists_the_study(dashboard):
    studies = json.load(urllib.request.urlopen(dashboard + "/api/studies"))["study_summaries"]
    assert [s["study_name"] for s in studies] == ["tiny"]


def test_dashboard_in_a_real_browser(dashboard):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium here (apt-get install chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--no-first-run", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(dashboard + "/dashboard/")
        page.get_by_text("tiny").first.wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "dashboard-studies.png"))
        page.get_by_text("tiny").first.click()
        page.wait_for_url("**/studies/*", timeout=30_000)
        page.get_by_text("Best Trial").first.wait_for(timeout=30_000)  # the study page: history, best trial
        page.screenshot(path=str(SHOTS / "dashboard-study.png"))
        page.goto(page.url.rstrip("/") + "/trials")  # the "Trials (List)" entry of the collapsed side bar
        page.get_by_text("Trial 2").first.wait_for(timeout=30_000)
        body = page.inner_text("body")
        page.screenshot(path=str(SHOTS / "dashboard-trials.png"), full_page=True)
        browser.close()
    assert "Trial 0" in body and "Trial 1" in body
    assert "val_accuracy" in body and "n_params" in body  # the user attributes are shown
    assert (SHOTS / "dashboard-trials.png").stat().st_size > 10_000
