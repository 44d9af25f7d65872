"""Outputs never overwrite what the service stores, and land whole or not at all: export's
config and checkpoint as a pair, a report complete, a full disk one line (exit 1) with
nothing replaced. Real SQLite and journal storages, a real tmpfs for the full disk."""

from __future__ import annotations

import json
import subprocess

import optuna
import pytest
import yaml

from conftest import cli, needs_mnist, one_line_error, write_study

pytestmark = needs_mnist


@pytest.fixture
def studied(tmp_path):
    """The tiny study run (3 trials, only the best checkpoint kept) on SQLite."""
    r = cli("run", "--study", write_study(tmp_path, keep_checkpoints=1))
    assert r.exit_code == 0, r.output
    return tmp_path


def _trials(db) -> int:
    return len(optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials)


@pytest.mark.parametrize("target, words", [
    ("search.db", "is the SQLite database of sqlite:///"),
    ("search.db-wal", "is a file the storage sqlite:///"),
    ("search-artifacts/best.yaml", "lies inside the artifact store of the study"),
])
def test_export_never_writes_over_the_storage_or_its_artifacts(studied, target, words):
    before = (studied / "search.db").read_bytes()
    r = cli("export", "--study", "tiny", "--out", studied / target)
    one_line_error(r, words, "choose another path")
    assert (studied / "search.db").read_bytes() == before and _trials(studied / "search.db") == 3


def test_a_link_to_the_storage_and_another_studys_database_are_refused(studied, tmp_path):
    (tmp_path / "link.yaml").symlink_to(studied / "search.db")
    one_line_error(cli("export", "--study", "tiny", "--out", tmp_path / "link.yaml"), "is the SQLite database")
    other = tmp_path / "s2.db"  # not the storage in force: told by its content
    optuna.create_study(storage=f"sqlite:///{other}", study_name="other")
    export = cli("export", "--study", "tiny", "--out", tmp_path / "best.yaml")
    assert export.exit_code == 0, export.output
    r = cli("train", "--config", tmp_path / "best.yaml", "--save", other)
    one_line_error(r, f"cannot write the weights {other}: the file there is an SQLite database")
    assert optuna.load_study(study_name="other", storage=f"sqlite:///{other}") is not None


def test_a_journal_storage_is_never_overwritten(tmp_path):
    journal = tmp_path / "j0.log"
    url = f"journal:{journal}"
    assert cli("run", "--study", write_study(tmp_path, n_trials=1), "--storage", url).exit_code == 0
    before = journal.read_bytes()
    one_line_error(cli("export", "--study", "tiny", "--storage", url, "--out", journal), "is the journal file of")
    one_line_error(cli("report", "--study", "tiny", "--storage", url, "--out", tmp_path / "j0-artifacts"),
                   "it is the artifact store of the study")
    assert journal.read_bytes() == before


def test_export_writes_config_and_checkpoint_as_a_pair(studied):
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{studied / 'search.db'}")
    best = study.best_trial.number
    other = next(t.number for t in study.trials if t.number != best and t.state.name == "COMPLETE")
    r = cli("export", "--study", "tiny", "--out", studied / "best.yaml")
    assert r.exit_code == 0 and (studied / "best.pt").is_file(), r.output
    # a trial whose checkpoint was not kept: the config changes, and the weights of the
    # previous export go with it (never another trial's weights beside this config)
    r = cli("export", "--study", "tiny", "--trial", other, "--out", studied / "best.yaml")
    assert r.exit_code == 0, r.output
    assert "removed" in r.stderr + r.stdout and not (studied / "best.pt").exists()
    assert yaml.safe_load((studied / "best.yaml").read_text())["source"]["trial"] == other
    # a best.pt that no export wrote is left alone, and nothing is written beside it
    (studied / "mine.pt").write_bytes(b"my own weights")
    r = cli("export", "--study", "tiny", "--trial", other, "--out", studied / "mine.yaml")
    one_line_error(r, "mine.pt is there and is not the checkpoint of an earlier export")
    assert not (studied / "mine.yaml").exists() and (studied / "mine.pt").read_bytes() == b"my own weights"
    assert not [p.name for p in studied.iterdir() if p.name.endswith(".part")]


def _tmpfs(tmp_path, size):
    mount = tmp_path / f"disk-{size}"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
    return mount


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs: room for a config, not for a checkpoint of the tiny study's MLP (100 KB and more)."""
    mount = _tmpfs(tmp_path, "64k")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def storage_disk(tmp_path):
    """A 512 KiB tmpfs: room for a SQLite study's schema and its first trial, not for many."""
    mount = _tmpfs(tmp_path, "512k")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_replaces_nothing(studied, small_disk):
    (small_disk / "best.yaml").write_text("# Exported by `search export`; an earlier config\n")
    r = cli("export", "--study", "tiny", "--out", small_disk / "best.yaml")
    line = one_line_error(r, f"no space left in {small_disk}", "nothing was replaced", code=1)
    assert "bytes free" in line
    assert (small_disk / "best.yaml").read_text().endswith("an earlier config\n")  # the old one, whole
    assert sorted(p.name for p in small_disk.iterdir()) == ["best.yaml"]  # no .part left
    # a retrain whose weights do not fit: one line, exit 1, nothing left behind
    assert cli("export", "--study", "tiny", "--out", studied / "best.yaml").exit_code == 0
    r = cli("train", "--config", studied / "best.yaml", "--save", small_disk / "model.pt")
    one_line_error(r, f"no space left in {small_disk}", code=1)
    assert sorted(p.name for p in small_disk.iterdir()) == ["best.yaml"]


def test_a_report_is_never_half_written(studied, small_disk):
    r = cli("report", "--study", "tiny", "--out", small_disk / "rep")
    one_line_error(r, "cannot write the report: no space left in", code=1)
    assert list((small_disk / "rep").iterdir()) == []  # no PNG without its report.md, no work folder
    assert cli("report", "--study", "tiny", "--out", studied / "rep").exit_code == 0
    names = sorted(p.name for p in (studied / "rep").iterdir())
    assert "report.md" in names and "report.html" in names and not [n for n in names if n.startswith(".")]


def test_artifacts_that_cannot_be_a_folder_refuse_before_the_study_exists(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    r = cli("run", "--study", write_study(tmp_path, n_trials=1), "--artifacts", tmp_path / "a-file")
    one_line_error(r, "cannot write artifacts into", "it is a file, not a directory")
    assert not (tmp_path / "search.db").exists() or not optuna.get_all_study_summaries(
        f"sqlite:///{tmp_path / 'search.db'}")


def test_a_full_artifact_disk_keeps_the_trials_value_and_stops_in_one_line(tmp_path, small_disk, db):
    r = cli("run", "--study", write_study(tmp_path, n_trials=3), "--artifacts", small_disk)
    one_line_error(r, "cannot write the trial's checkpoint (the trial keeps its value): no space left in "
                   f"{small_disk}", "free some space", code=1)
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
    assert [t.state.name for t in trials] == ["COMPLETE"] and trials[0].value > 0.5  # told, value kept
    assert list(small_disk.iterdir()) == []  # no half-written checkpoint left, none listed


def test_a_full_storage_disk_is_one_line_and_keeps_what_was_stored(tmp_path, storage_disk):
    url = f"sqlite:///{storage_disk / 's.db'}"
    study = write_study(tmp_path, n_trials=200, train_size=200, keep_checkpoints=0)
    r = cli("run", "--study", study, "--storage", url, "--heartbeat", 1)
    line = one_line_error(r, f"storage {url}: its disk is full", f"in {storage_disk} (", " bytes free)",
                          "finished trials are stored", "a trial it cut off runs again", code=1)
    assert "lost the storage" not in line and "#0   COMPLETE" in r.stdout  # it filled mid-run
    shown = cli("show", "--study", "tiny", "--storage", url, "--json")  # a full disk still reads
    assert shown.exit_code == 0, shown.stderr
    states = [t["state"] for t in json.loads(shown.stdout)["trials"]]
    assert "COMPLETE" in states
    # space freed: the next run fails the trial the full disk cut off, runs it again and goes on
    subprocess.run(["mount", "-o", "remount,size=8m", str(storage_disk)], check=True)
    cut = next(i for i, state in enumerate(states) if state != "COMPLETE")  # RUNNING, or FAIL "disk full"
    r = cli("run", "--study", study, "--storage", url, "--heartbeat", 1, "--n-trials", states.count("COMPLETE") + 2)
    assert r.exit_code == 0, r.output
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    assert "RUNNING" not in [t.state.name for t in trials]
    retry = [t for t in trials if t.user_attrs.get("retry_of") == cut]
    assert trials[cut].state.name == "FAIL" and len(retry) == 1 and retry[0].state.name == "COMPLETE"
