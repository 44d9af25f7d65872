"""Notes and artifacts the dashboard shows: written by real runs on real MNIST and SQLite."""

import io
import signal
import time

import optuna
import pytest
import torch

from search import _dashboard
from search.artifacts import CHECKPOINT, checkpoints
from search.trained import load_weights

from conftest import cli, finish, needs_mnist, search, trial_states, write_study

pytestmark = needs_mnist

SPACE = {"epochs": 2, "hidden_size": [32, 64, 128], "lr": {"low": 1e-4, "high": 0.1}}


def _study(db):
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")


def test_notes_checkpoints_and_the_disk_they_use(tmp_path, db):
    study_file = write_study(tmp_path, n_trials=8, keep_checkpoints=2, space=SPACE, description="a :x: [b]note[/b]",
                             pruner={"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0})
    assert cli("run", "--study", study_file).exit_code == 0
    st = _study(db)
    note = _dashboard.study_note(st)
    assert "a :x: [b]note[/b]" in note and "| hidden_size | {32, 64, 128} |" in note and "pruner **median (n_startup_trials=2, n_warmup_steps=0)**" in note
    assert st.metric_names == ["val_accuracy"]
    for t in st.trials:  # every finished trial: its config, its epochs and why it stopped
        text = _dashboard.trial_note(st, t._trial_id)
        assert f"### Trial {t.number}: " + ("complete" if t.state.name == "COMPLETE" else "pruned at epoch") in text
        assert f"seed: {t.number}" in text and f"hidden_size: {t.params['hidden_size']}" in text
        assert text.count("\n| ") == len(t.intermediate_values) + 1  # header + one row per epoch
    complete = sorted((t for t in st.trials if t.state.name == "COMPLETE"), key=lambda t: -t.value)
    kept = checkpoints(st)
    assert set(kept) == {t.number for t in complete[:2]}  # the best two, the rest deleted
    folder = tmp_path / "search-artifacts"
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(kept.values())  # nothing else on disk
    # the disk bound the docs state: keep_checkpoints x the largest checkpoint
    largest = 4 * (784 * 128 + 128 + 128 * 10 + 10) + 4096
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 2 * largest
    # a stored checkpoint loads with weights_only=True and is the trial's model
    best = complete[0]
    model = load_weights(folder / kept[best.number])
    assert model[1].out_features == best.params["hidden_size"]
    blob = torch.load(folder / kept[best.number], weights_only=True)
    assert blob["source"]["trial"] == best.number and blob["seed"] == best.number
    # search export writes it beside the config
    r = cli("export", "--study", "tiny", "--out", tmp_path / "best.yaml")
    assert r.exit_code == 0 and "best.pt" in r.output, r.output
    assert (tmp_path / "best.pt").read_bytes() == (folder / kept[best.number]).read_bytes()


def test_report_evaluate_attaches_images_to_the_best_trial_and_the_summary_to_the_study(tmp_path, db):
    assert cli("run", "--study", write_study(tmp_path, n_trials=3, space=SPACE)).exit_code == 0
    r = cli("report", "--study", "tiny", "--out", tmp_path / "rep", "--evaluate")
    assert r.exit_code == 0, r.output
    st = _study(db)
    names = {m["filename"] for m in _dashboard.trial_artifacts(st)[st.best_trial._trial_id]}
    assert names == {CHECKPOINT, "confusion.png", "curves.png"}
    note = _dashboard.study_note(st)
    assert "## Report (search report)" in note and "**lr**:" in note
    # a second report replaces the images instead of piling them up
    assert cli("report", "--study", "tiny", "--out", tmp_path / "rep", "--evaluate").exit_code == 0
    metas = _dashboard.trial_artifacts(_study(db))[st.best_trial._trial_id]
    assert sorted(m["filename"] for m in metas) == sorted([CHECKPOINT, "confusion.png", "curves.png"])
    assert len(list((tmp_path / "search-artifacts").iterdir())) == len(checkpoints(st)) + 2


def test_an_interrupted_trial_leaves_no_listed_artifact(tmp_path, db):
    study_file = write_study(tmp_path, n_trials=40, train_size=10000, space={"epochs": 3, "hidden_size": 64})
    proc = search("run", "--study", study_file)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            states = trial_states(db, "tiny")
            if states.count("COMPLETE") >= 2 and states[-1] == "RUNNING":
                break
        except Exception:  # the schema may not exist yet
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    rc, _, err = finish(proc, timeout=60)
    assert rc == 130, err
    st = _study(db)
    listed = _dashboard.trial_artifacts(st)
    folder = tmp_path / "search-artifacts"
    for t in st.trials:
        for meta in listed.get(t._trial_id, []):
            assert t.state.name == "COMPLETE"  # only finished, complete trials have checkpoints
            torch.load(io.BytesIO((folder / meta["artifact_id"]).read_bytes()), weights_only=True)
        if t.state.name == "FAIL":
            assert "interrupted" in _dashboard.trial_note(st, t._trial_id)


def test_no_artifact_folder_for_a_server_storage_without_artifacts(tmp_path, pg_url):
    r = cli("run", "--study", write_study(tmp_path, n_trials=1, space={"epochs": 1}), "--storage", pg_url)
    assert r.exit_code == 0, r.output
    st = optuna.load_study(study_name="tiny", storage=pg_url)
    assert checkpoints(st) == {} and "### Trial 0: complete" in _dashboard.trial_note(st, st.trials[0]._trial_id)
    r = cli("run", "--study", write_study(tmp_path, n_trials=2, space={"epochs": 1}), "--storage", pg_url,
            "--artifacts", tmp_path / "shared")
    assert r.exit_code == 0, r.output
    assert list(checkpoints(optuna.load_study(study_name="tiny", storage=pg_url))) == [1]


@pytest.mark.parametrize("keep", [0])
def test_keep_checkpoints_zero_keeps_none(tmp_path, db, keep):
    assert cli("run", "--study", write_study(tmp_path, n_trials=2, keep_checkpoints=keep, space=SPACE)).exit_code == 0
    assert checkpoints(_study(db)) == {}


def test_show_leaves_the_dashboard_unimported_and_its_artifact_key_is_the_dashboards(tmp_path, db):
    """optuna-dashboard (its app, optuna.importance, scikit-learn) is imported by what writes a
    note, not by `search show`; the artifact key prefix copied from it is its own."""
    import subprocess
    import sys

    from optuna_dashboard.artifact._backend import DASHBOARD_ARTIFACTS_ATTR_PREFIX

    from conftest import ROOT

    assert _dashboard.DASHBOARD_ARTIFACTS_ATTR_PREFIX == DASHBOARD_ARTIFACTS_ATTR_PREFIX
    study = optuna.create_study(study_name="tiny", storage=f"sqlite:///{db}", direction="maximize")
    study.tell(study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 0.1)}), 0.9)
    code = ("import sys, cli\nsys.argv = ['search', 'show', '--study', 'tiny', '--top', '5']\ntry:\n    cli.main()\n"
            "except SystemExit as e:\n    assert not e.code, e.code\nprint('dashboard imported:', 'optuna_dashboard' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "lr=" in r.stdout and r.stdout.rstrip().endswith("dashboard imported: False"), r.stdout
