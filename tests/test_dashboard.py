"""`search dashboard` in a real browser: headless Chromium driven by Playwright."""

import io
import json
import os
import shutil
import signal
import socket
import time
import urllib.error
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
    study = write_study(tmp_path, n_trials=3, description="Dashboard note check",
                        space={"epochs": 2, "hidden_size": [32, 64], "lr": {"low": 1e-3, "high": 3e-3}})
    assert cli("run", "--study", study).exit_code == 0
    assert cli("report", "--study", "tiny", "--out", tmp_path / "rep", "--evaluate").exit_code == 0
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
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert "(gunicorn)" in out and "Traceback" not in err, (out, err)


def test_dashboard_api_lists_the_study(dashboard):
    studies = json.load(urllib.request.urlopen(dashboard + "/api/studies"))["study_summaries"]
    assert [s["study_name"] for s in studies] == ["tiny"]


def test_dashboard_in_a_real_browser(dashboard):
    """The study's note, the best trial's note and artifacts, and its checkpoint downloaded
    through the dashboard and loaded: with nothing but `search dashboard` started."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium here (apt-get install chromium)")
    import optuna
    import torch

    best = optuna.load_study(study_name="tiny", storage=os.environ["SEARCH_STORAGE"]).best_trial
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--no-first-run", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.goto(dashboard + "/dashboard/")
        page.get_by_text("tiny").first.wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "dashboard-studies.png"))
        page.get_by_text("tiny").first.click()
        page.wait_for_url("**/studies/*", timeout=30_000)
        page.get_by_text("Best Trial").first.wait_for(timeout=30_000)  # the study page: history, best trial
        page.screenshot(path=str(SHOTS / "dashboard-study.png"))
        study_url = page.url.rstrip("/")
        page.goto(study_url + "/note")  # the side bar's "Note"
        page.get_by_text("Dashboard note check").first.wait_for(timeout=30_000)  # the study's note
        page.get_by_text("Report (search report)").first.wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "dashboard-note.png"), full_page=True)
        page.goto(study_url + f"/trials?numbers={best.number}")
        page.get_by_text(f"Trial {best.number}: complete").first.wait_for(timeout=30_000)  # the trial's note
        page.get_by_text("checkpoint.pt").first.wait_for(timeout=30_000)  # its artifacts
        page.get_by_text("confusion.png").first.wait_for(timeout=30_000)
        body = page.inner_text("body")
        page.set_viewport_size({"width": 1280, "height": 1000})  # a laptop's window: the trial page fits it
        page.wait_for_timeout(500)
        wide = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(SHOTS / "dashboard-trial.png"), full_page=True)
        # download the checkpoint through the dashboard's own link
        with page.expect_download(timeout=30_000) as info:
            page.locator("a[download='checkpoint.pt']").first.click()
        downloaded = Path(info.value.path()).read_bytes()  # the file goes with the browser
        browser.close()
    assert "val_accuracy" in body and "train_loss" in body  # the per-epoch table of the note
    assert "optimizer: " in body and "batch_size: " in body  # the whole config, in the note
    assert wide <= 1280, f"the trial page is {wide} px wide in a 1280 px window"
    blob = torch.load(io.BytesIO(downloaded), weights_only=True)
    assert blob["source"]["trial"] == best.number and "state_dict" in blob


def _serve(*args):
    """`search dashboard` on a free port, up and answering; (base URL, process)."""
    port = _free_port()
    proc = search("dashboard", "--port", port, *args)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/api/studies", timeout=2)
            return base, proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"dashboard did not start: {proc.communicate()}")
            time.sleep(0.2)


def _call(method, url, body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_dashboard_is_read_only_unless_writes_are_allowed(tmp_path, db):
    import optuna

    from search._optuna import study_id

    assert cli("run", "--study", write_study(tmp_path, n_trials=1)).exit_code == 0
    sid = study_id(optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}"))
    base, proc = _serve()
    try:
        status, body = _call("DELETE", f"{base}/api/studies/{sid}")
        assert status == 405 and "--allow-writes" in json.loads(body)["reason"]
        assert _call("POST", f"{base}/api/studies", {"study_name": "new", "directions": ["minimize"]})[0] == 405
        assert _call("PUT", f"{base}/api/studies/{sid}/note", {"version": 1, "body": "x"})[0] == 405
        assert _call("GET", f"{base}/api/studies/{sid}")[0] == 200  # reading is as before
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert "read-only" in out and "Traceback" not in err
    assert [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{db}")] == ["tiny"]  # nothing changed
    base, proc = _serve("--allow-writes")
    try:
        note = json.loads(_call("GET", f"{base}/api/studies/{sid}")[1])["note"]
        status, _ = _call("PUT", f"{base}/api/studies/{sid}/note", {"version": note["version"] + 1, "body": "mine"})
        assert status in (200, 204)
        assert json.loads(_call("GET", f"{base}/api/studies/{sid}")[1])["note"]["body"] == "mine"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
