"""No silent wait: a trial left RUNNING without heartbeats (--heartbeat 0, a journal) never
holds a study's budget for good. Its worker gone on this machine: the next run fails it
and runs its retry; on another machine: one line saying how to free it, and `search fail`.
Real `search run` processes, real SIGKILL, real SQLite."""

import json
import sqlite3
import time

import optuna
import pytest

from conftest import cli, finish, needs_mnist, one_line_error, search, write_study

pytestmark = needs_mnist

LONG = {"n_trials": 2, "train_size": 50000, "sampler": "random", "pruner": "none",  # ~2 s trials
        "space": {"epochs": 4, "hidden_size": 64, "lr": {"low": 1e-3, "high": 1e-2}}}


def _trials(db, url=None):
    from search.storage import open_storage

    return optuna.load_study(study_name="tiny", storage=open_storage(url or f"sqlite:///{db}", create=False)).trials


def _running_with_worker(db, proc, url=None, limit=120):
    """The first RUNNING trial seen with its worker and an epoch: polled through one storage
    (opening one per poll took long enough under CI's load to miss both ~1.5 s windows once)."""
    from search.storage import open_storage

    deadline = time.monotonic() + limit
    storage = None
    while time.monotonic() < deadline:
        try:
            storage = storage or open_storage(url or f"sqlite:///{db}", create=False)
            for t in optuna.load_study(study_name="tiny", storage=storage).trials:
                if t.state.name == "RUNNING" and "worker" in t.user_attrs and t.intermediate_values:
                    return t
        except Exception:  # the study may not exist yet
            pass
        if proc.poll() is not None:
            pytest.fail(f"search run ended early: {proc.communicate()}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail("no running trial appeared")


@pytest.mark.parametrize("storage, heartbeat", [("sqlite", 1), ("journal", 0)])
def test_a_trial_whose_worker_died_without_heartbeats_is_failed_and_rerun(tmp_path, db, storage, heartbeat):
    study = write_study(tmp_path, **LONG)
    url = f"sqlite:///{db}" if storage == "sqlite" else f"journal:{tmp_path / 'j.log'}"  # a journal has no heartbeats
    proc = search("run", "--study", study, "--heartbeat", 0, "--storage", url)
    orphan = _running_with_worker(db, proc, url)
    proc.kill()  # SIGKILL: no handler runs, and --heartbeat 0 left no heartbeat to go stale
    finish(proc, 30)
    again = search("run", "--study", study, "--heartbeat", heartbeat, "--storage", url)
    rc, out, err = finish(again, 300)  # it used to wait here forever (or run nothing with --heartbeat 0)
    assert rc == 0, err
    ts = _trials(db, url)
    failed = ts[orphan.number]
    assert failed.state.name == "FAIL"
    assert failed.user_attrs["fail_reason"] == f"worker gone: its process {orphan.user_attrs['worker']} is gone"
    assert sum(t.state.name == "COMPLETE" for t in ts) == 2 and not [t for t in ts if t.state.name == "RUNNING"]
    retry = next(t for t in ts if t.user_attrs.get("retry_of") == orphan.number)
    assert retry.params == orphan.params and retry.state.name == "COMPLETE"


def test_a_trial_running_elsewhere_without_heartbeats_is_reported_and_freed_by_search_fail(tmp_path, db):
    study = write_study(tmp_path, n_trials=1)
    assert cli("run", "--study", study).exit_code == 0
    # a worker on another machine, run with --heartbeat 0, asked trial #1 long ago and was never heard of again
    st = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    trial = st.ask()
    trial.set_user_attr("worker", "elsewhere:4242")
    with sqlite3.connect(db) as con:
        con.execute("UPDATE trials SET datetime_start = '2026-01-01 00:00:00' WHERE number = 1")
    proc = search("run", "--study", study, "--n-trials", 2)
    rc, out, err = finish(proc, 120)  # ends: no silent wait
    assert rc == 0, err
    assert ("warning: trial #1 is RUNNING without heartbeats (worker elsewhere:4242, started 2026-01-01 00:00:00) "
            "and holds a place in the budget: if that worker is gone, `search fail --study tiny --trial 1` frees it"
            in err.replace("\n", " ")), err
    one_line_error(cli("fail", "--study", "tiny", "--trial", 0), "trial #0 is COMPLETE; only a RUNNING trial")
    r = cli("fail", "--study", "tiny", "--trial", 1, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"study": "tiny", "trial": 1, "state": "FAIL", "queued_again": True}
    assert _trials(db)[1].user_attrs["fail_reason"] == "worker gone: failed by `search fail`"
    assert cli("run", "--study", study, "--n-trials", 2).exit_code == 0
    ts = _trials(db)
    assert [t.state.name for t in ts] == ["COMPLETE", "FAIL", "COMPLETE"] and ts[2].user_attrs["retry_of"] == 1
