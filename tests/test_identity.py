"""A study remembers what defines it: a changed study file resumed under the same name is
refused in one line before anything is written (or, with --allow-change, goes on and is
logged), a change Optuna cannot mix is refused even then, and another file with the same
stem is another study. `search delete` removes a study whole, `--dry-run` locks nothing
real. Real MNIST, real SQLite."""

from __future__ import annotations

import json

import optuna
import pytest

from conftest import TINY, cli, needs_mnist, one_line_error, write_study

pytestmark = needs_mnist

SMALL = {"n_trials": 1, "train_size": 600}


def _study(db):
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")


def _space(**axes):
    return {**TINY["space"], **axes}


@pytest.fixture
def stored(tmp_path, db):
    """The tiny study with one trial, and a snapshot of what it stored."""
    r = cli("run", "--study", write_study(tmp_path, **SMALL))
    assert r.exit_code == 0, r.output
    study = _study(db)
    return study.user_attrs, [(t.number, t.state, t.params) for t in study.trials]


@pytest.mark.parametrize("change, words", [
    ({"space": _space(lr={"low": 1e-4, "high": 3e-3, "log": True})}, "space.lr: 0.001..0.003 log -> 0.0001..0.003 log"),
    ({"space": _space(epochs=2)}, "space.epochs: 1 -> 2"),
    ({"space": _space(momentum=0.5)}, "space.momentum: default -> 0.5"),
    ({"sampler": "tpe"}, "sampler: random -> tpe"),
    ({"sampler": {"name": "tpe", "n_startup_trials": 5}}, "sampler: random -> tpe (n_startup_trials=5)"),
    ({"pruner": "median"}, "pruner: none -> median"),
])
def test_a_changed_definition_is_refused_before_anything_is_written(tmp_path, db, stored, change, words):
    r = cli("run", "--study", write_study(tmp_path, **{**SMALL, **change}), "--n-trials", 2)
    one_line_error(r, "study 'tiny' in sqlite:///", "was defined otherwise", words, "--set name=tiny-2",
                   "--allow-change")
    study = _study(db)
    assert (study.user_attrs, [(t.number, t.state, t.params) for t in study.trials]) == stored


@pytest.mark.parametrize("axis, value, then, now", [
    ("hidden_size", [32, 64, 128], "{32, 64}", "{32, 64, 128}"),  # a choice added
    ("lr", {"low": 1e-3, "high": 3e-3, "log": False}, "0.001..0.003 log", "0.001..0.003"),  # log switched off
    ("lr", [1e-3, 3e-3], "0.001..0.003 log", "{0.001, 0.003}"),  # a range turned into choices
])
def test_a_change_optuna_cannot_mix_is_refused_even_when_allowed(tmp_path, db, stored, axis, value, then, now):
    for allow in ([], ["--allow-change"]):
        r = cli("run", "--study", write_study(tmp_path, **SMALL, space=_space(**{axis: value})), "--n-trials", 2,
                *allow)
        one_line_error(r, f"now samples {axis} as {now}, its stored trials as {then}", "Optuna cannot mix",
                       "--set name=tiny-2")
        study = _study(db)
        assert (study.user_attrs, [(t.number, t.state, t.params) for t in study.trials]) == stored


def test_allow_change_goes_on_under_the_new_definition_and_logs_it(tmp_path, db, stored):
    path = write_study(tmp_path, **{**SMALL, "sampler": "tpe"}, space=_space(lr={"low": 1e-4, "high": 3e-3,
                                                                                  "log": True}))
    r = cli("run", "--study", path, "--n-trials", 2, "--allow-change")
    assert r.exit_code == 0, r.output
    assert ("warning: study 'tiny' goes on under a changed definition (--allow-change): space.lr: 0.001..0.003 log "
            "-> 0.0001..0.003 log; sampler: random -> tpe") in r.stderr
    study = _study(db)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert study.trials[1].distributions["lr"].low == 1e-4  # sampled from the new range
    assert study.user_attrs["space"]["lr"] == "0.0001..0.003 log" and study.user_attrs["sampler"] == "tpe"
    log = study.user_attrs["changes"]
    assert len(log) == 2 and all(", before trial #1: " in line for line in log)
    r = cli("run", "--study", path, "--n-trials", 3)  # the new definition is the study's now
    assert r.exit_code == 0, r.output
    assert len(_study(db).trials) == 3 and _study(db).user_attrs["changes"] == log
    r = cli("report", "--study", "tiny", "--out", tmp_path / "rep")  # the report says so
    assert r.exit_code == 0, r.output
    assert "| definition changed | " + "; ".join(log) in (tmp_path / "rep" / "report.md").read_text()


def test_a_file_of_the_same_stem_in_another_folder_is_another_study(tmp_path, db):
    """The same words in b/tiny.yaml: still not the study a/tiny.yaml made (a moved file is)."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert cli("run", "--study", write_study(a, **SMALL)).exit_code == 0
    r = cli("run", "--study", write_study(b, **SMALL), "--n-trials", 2)
    one_line_error(r, f"study file: {a / 'tiny.yaml'} -> {b / 'tiny.yaml'}", "--set name=tiny-2", "--allow-change")
    assert len(_study(db).trials) == 1
    (a / "tiny.yaml").rename(tmp_path / "moved.yaml")  # a/ gone: b/tiny.yaml is where it lives now
    r = cli("run", "--study", b / "tiny.yaml", "--n-trials", 2)
    assert r.exit_code == 0, r.output
    assert len(_study(db).trials) == 2


def test_a_new_name_runs_the_changed_file_as_a_new_study(tmp_path, db, stored):
    path = write_study(tmp_path, **SMALL, space=_space(hidden_size=[32, 64, 128]))
    r = cli("run", "--study", path, "--set", "name=tiny-2")
    assert r.exit_code == 0, r.output
    assert optuna.load_study(study_name="tiny-2", storage=f"sqlite:///{db}").trials[0].state.name == "COMPLETE"
    assert _study(db).user_attrs == stored[0]


def test_an_error_inside_a_trial_never_leaves_it_running(tmp_path):
    """An exception the loop does not handle fails the trial with its reason, and propagates."""
    from search.study import optimize

    url = f"sqlite:///{tmp_path / 'e.db'}"
    study = optuna.create_study(storage=url, study_name="e")

    def objective(trial):
        trial.suggest_float("x", 0, 1)
        raise ValueError("Cannot set different distribution kind to the same parameter name.")

    with pytest.raises(ValueError):
        optimize(study, objective, url, budget=3)
    (trial,) = optuna.load_study(study_name="e", storage=url).trials
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["fail_reason"] == ("error: ValueError: Cannot set different distribution kind to the same "
                                               "parameter name.")


def test_delete_says_what_it_would_delete_then_deletes_the_study_and_its_files(tmp_path, db):
    assert cli("run", "--study", write_study(tmp_path)).exit_code == 0  # 3 trials, 3 checkpoints
    assert cli("run", "--study", write_study(tmp_path, "other", **SMALL)).exit_code == 0
    store = tmp_path / "search-artifacts"
    kept = set(store.iterdir())
    r = cli("delete", "--study", "tiny")
    one_line_error(r, f"would delete study 'tiny' from sqlite:///{db}: 3 trials and 3 stored files", "add --yes")
    assert len(_study(db).trials) == 3 and set(store.iterdir()) == kept
    r = cli("delete", "--study", tmp_path / "tiny.yaml", "--yes")  # by its file, as run takes it
    assert r.exit_code == 0, r.output
    assert "deleted study tiny from sqlite:///" in r.stdout and "3 trials, 3 stored files" in r.stdout
    assert [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{db}")] == ["other"]
    other = optuna.load_study(study_name="other", storage=f"sqlite:///{db}")
    assert len(set(store.iterdir())) == 1 and len(other.trials) == 1  # the other study's checkpoint stays
    one_line_error(cli("delete", "--study", "tiny", "--yes"), "unknown study 'tiny'", "stored studies: other")
    gone = json.loads(cli("delete", "--study", "other", "--yes", "--json").stdout)
    assert gone == {"deleted": "other", "storage": f"sqlite:///{db}", "trials": 1, "files": 1}


def test_delete_refuses_a_study_with_a_running_trial(tmp_path, db):
    assert cli("run", "--study", write_study(tmp_path, **SMALL)).exit_code == 0
    _study(db).ask()  # a trial some run holds
    one_line_error(cli("delete", "--study", "tiny", "--yes"), "has 1 RUNNING trial(s) (#1): stop its run first",
                   "search fail --study tiny --trial 1")
    assert len(_study(db).trials) == 2


def test_a_dry_run_stores_nothing_and_leaves_the_real_study_free(tmp_path, db):
    path = write_study(tmp_path)
    r = cli("run", "--study", path, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "dry run of study tiny (n_trials=2, epochs=1, train_size=2000) on a throwaway storage" in r.stdout
    assert "ran 2 trials" in r.stdout
    assert not db.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]
    r = cli("run", "--study", path)  # the real study: its own definition, not the dry run's
    assert r.exit_code == 0, r.output
    study = _study(db)
    assert len(study.trials) == 3 and study.user_attrs["train_size"] == 3000


def test_a_changed_identity_names_every_way_on(tmp_path, db, stored):
    """What never changes (the seed, the training images, the goal): a new name, a delete, or a dry run."""
    r = cli("run", "--study", write_study(tmp_path, **{**SMALL, "train_size": 700}))
    one_line_error(r, "was created with train_size=600, not 700", "--set name=tiny-2",
                   "search delete --study tiny", "search run --dry-run")
    assert _study(db).user_attrs == stored[0]
