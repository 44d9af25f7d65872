"""`search report` on a small real study: every file, valid images, numbers that match the storage."""

import json
import re

import optuna
import pytest
from matplotlib.image import imread

from conftest import cli, needs_mnist, write_study

pytestmark = needs_mnist


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A small real study with completed and pruned trials, in its own SQLite file."""
    tmp = tmp_path_factory.mktemp("report")
    study = write_study(tmp, n_trials=8, sampler={"name": "grid", "seed": 3},
                        pruner={"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
                        space={"epochs": 2, "batch_size": 256, "lr": [1e-7, 3e-3], "hidden_size": [32, 48, 64, 80]})
    return study, f"sqlite:///{tmp}/report.db"


def _run(finished):
    study, url = finished
    if not optuna.get_all_study_summaries(optuna.storages.RDBStorage(url)):
        assert cli("run", "--study", study, "--storage", url).exit_code == 0
    return url


def test_report_writes_every_file_with_numbers_from_the_storage(finished, tmp_path):
    url = _run(finished)
    r = cli("report", "--study", "tiny", "--storage", url, "--out", tmp_path / "rep")
    assert r.exit_code == 0, r.output
    out = tmp_path / "rep"
    for name in ("report.md", "report.html", "history.png", "curves.png", "slices.png", "parallel.png",
                 "importances.png"):
        assert (out / name).is_file(), name
    for png in out.glob("*.png"):
        img = imread(png)
        assert img.shape[0] > 200 and img.shape[1] > 300, png
        assert png.stat().st_size > 5_000 and img.std() > 0.01, png  # not blank
    md = (out / "report.md").read_text()
    st = optuna.load_study(study_name="tiny", storage=url)
    states = [t.state.name for t in st.trials]
    assert f"{len(states)}: {states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned" in md
    assert f"{st.best_value:.4g} (trial #{st.best_trial.number})" in md
    # the top-trials table lists the best trials with their stored values, best first
    rows = re.findall(r"^\| (\d+) \| ([0-9.]+) \|", md, re.M)
    ranked = sorted((t for t in st.trials if t.state.name == "COMPLETE"), key=lambda t: -t.value)
    assert [int(n) for n, _ in rows] == [t.number for t in ranked[:len(rows)]]
    assert all(abs(float(v) - t.value) < 1e-4 for (_, v), t in zip(rows, ranked, strict=True))
    # a sentence per axis, computed from the trials: lr 1e-7 is pruned in k of n trials
    pruned_small = sum(t.params["lr"] == 1e-7 and t.state.name == "PRUNED" for t in st.trials)
    n_small = sum(t.params["lr"] == 1e-7 for t in st.trials)
    assert pruned_small and len(ranked) >= 2  # the study is built to show both
    lr_line = next(line for line in md.splitlines() if line.startswith("- **lr**"))
    assert f"1.00e-07 pruned in {pruned_small} of {n_small} trials" in lr_line
    good = [t.value for t in st.trials if t.params["lr"] == 3e-3 and t.state.name == "COMPLETE"]
    assert f"mean val_accuracy {sum(good) / len(good):.4g}" in lr_line
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5 and "<table>" in html  # self-contained


def test_report_evaluate_adds_test_accuracy_and_confusion_matrix(finished, tmp_path):
    url = _run(finished)
    r = cli("report", "--study", "tiny", "--storage", url, "--out", tmp_path / "rep", "--evaluate")
    assert r.exit_code == 0, r.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert (tmp_path / "rep" / "confusion.png").stat().st_size > 5_000
    # the same number `search export` + `search train` gives
    assert cli("export", "--study", "tiny", "--storage", url, "--out", tmp_path / "b.yaml").exit_code == 0
    trained = json.loads(cli("train", "--config", tmp_path / "b.yaml", "--json").stdout)
    assert f"test accuracy {trained['test_accuracy']:.4f}" in md
    summary = md.split("\n## ")[1]  # the report leads with the answer: the best trial and its test accuracy
    assert summary.startswith("Summary") and f"test accuracy {trained['test_accuracy']:.4f}**" in summary
    assert f"| test accuracy (best config retrained) | {trained['test_accuracy']:.4f} |" in summary
    assert "`" not in "".join(re.findall(r"^#+ .*$", md, re.M))  # headings read as words, not code
    per_class = re.findall(r"^\| (\d) \| (\d+) \| ([01]\.\d{4}) \|$", md, re.M)
    assert [int(c) for c, _, _ in per_class] == list(range(10))
    assert sum(int(n) for _, n, _ in per_class) == 10_000
    assert "Most-confused pairs" in md


def test_report_errors(tmp_path):
    r = cli("report", "--study", "nope", "--out", tmp_path / "r")
    assert r.exit_code == 2 and "no storage" in r.stderr


def test_sigterm_during_report_evaluate_leaves_nothing_half_written(finished, tmp_path):
    """Terminated mid-report (the retraining or the plots): exit 143 in one line, and the
    output folder holds what it held before: no PNGs without report.md, no work folder."""
    import signal
    import time

    from conftest import finish, search

    url = _run(finished)
    out = tmp_path / "rep"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    proc = search("report", "--study", "tiny", "--storage", url, "--out", out, "--evaluate")
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".report-") for p in out.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    code, _, stderr = finish(proc)
    assert code == 143 and "Traceback" not in stderr, stderr
    assert stderr.strip() == "terminated: finished trials are stored; run the same command again to resume"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_the_html_report_fits_a_1280_px_window_in_a_real_browser(finished, tmp_path):
    """report.html opened in headless Chromium: no horizontal scrolling, every plot loaded and
    shown within the page (the PNGs are embedded, so the file alone is the report)."""
    import shutil
    from pathlib import Path

    playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("no chromium here (apt-get install chromium)")
    url = _run(finished)
    out = tmp_path / "rep"
    assert cli("report", "--study", "tiny", "--storage", url, "--out", out).exit_code == 0
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((out / "report.html").as_uri())
        page.wait_for_load_state("load")
        wide = page.evaluate("document.documentElement.scrollWidth")
        images = page.evaluate("[...document.images].map(i => [i.naturalWidth, i.getBoundingClientRect().right])")
        first = page.evaluate("document.querySelector('h2').textContent")
        browser.close()
    assert wide <= 1280, f"report.html is {wide} px wide in a 1280 px window"
    assert len(images) == 5 and all(natural > 0 and right <= 1280 for natural, right in images), images
    assert first == "Summary"


def test_the_plots_of_a_large_study_draw_a_sample_and_say_so(finished, tmp_path, monkeypatch):
    """Beyond PLOT_SAMPLE trials the plots draw the best KEEP_BEST and others evenly spaced, and
    each caption says how many of how many (made small here: 5 of the study's 8)."""
    from search.report import _plots
    from search.trials import ranked

    url = _run(finished)
    st = optuna.load_study(study_name="tiny", storage=url)
    monkeypatch.setattr(_plots, "PLOT_SAMPLE", 5)
    monkeypatch.setattr(_plots, "KEEP_BEST", 2)
    trials = st.get_trials(deepcopy=False)
    shown = _plots.plot_sample(st, trials)
    assert len(shown) == 5 and [t.number for t in shown] == sorted(t.number for t in shown)
    assert {t.number for t in ranked(st, 2)} <= {t.number for t in shown}
    r = cli("report", "--study", "tiny", "--storage", url, "--out", tmp_path / "rep")
    assert r.exit_code == 0, r.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert md.count(f"(a sample of 5 of the {len(trials)} trials: the best 2 and others evenly spaced") >= 4
    assert (tmp_path / "rep" / "history.png").is_file()
