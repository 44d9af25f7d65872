"""Many workers, one study: real PostgreSQL and SQLite, real worker processes, real signals."""

import os
import signal
import time

import optuna
import pytest

from conftest import finish, needs_mnist, search, write_study
from pg import PASSWORD

pytestmark = needs_mnist

SHORT = {"n_trials": 30, "train_size": 2000, "sampler": "random", "pruner": "none",
         "space": {"epochs": 1, "hidden_size": 32, "lr": {"low": 1e-3, "high": 1e-2}}}
# 8-epoch trials, long enough to hit one in the middle: on a fast CPU 3-epoch ones took 0.6 s and
# the whole run ended before the poller saw one running
LONG = {"n_trials": 6, "train_size": 20000, "sampler": "random", "pruner": "none",
        "space": {"epochs": 8, "hidden_size": 64, "lr": {"low": 1e-3, "high": 1e-2}}}


def trials(url):
    return optuna.load_study(study_name="tiny", storage=url).trials


def assert_budget_exact(url, n):
    ts = trials(url)
    finished = [t for t in ts if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == n
    assert not [t for t in ts if t.state.name in ("RUNNING", "WAITING")]
    assert sorted(t.number for t in ts) == list(range(len(ts)))
    params = [t.params["lr"] for t in finished]
    assert len(set(params)) == n  # nothing duplicated
    assert all(t.system_attrs["config"]["lr"] == t.params["lr"] for t in finished)  # nothing lost
    return ts


def test_three_workers_on_postgresql_run_exactly_the_budget(tmp_path, pg_url):
    rc, out, err = finish(search("run", "--study", write_study(tmp_path, **SHORT), "--workers", 3,
                                 "--storage", pg_url))
    assert rc == 0, err
    assert PASSWORD not in out + err and "search:***@127.0.0.1" in out
    ts = assert_budget_exact(pg_url, 30)
    assert len(ts) == 30
    assert len({t.user_attrs["worker"] for t in ts}) == 3  # all three workers took trials


def test_two_workers_on_sqlite_run_exactly_the_budget(tmp_path, db):
    rc, out, err = finish(search("run", "--study", write_study(tmp_path, **SHORT), "--workers", 2))
    assert rc == 0, err
    assert "database is locked" not in out + err
    ts = assert_budget_exact(f"sqlite:///{db}", 30)
    assert len({t.user_attrs["worker"] for t in ts}) == 2


def _running_worker_pid(url, proc, limit=120, after_complete=False):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            ts = trials(url)
            complete = any(t.state.name == "COMPLETE" for t in ts)
            for t in ts:
                if (t.state.name == "RUNNING" and t.intermediate_values and "worker" in t.user_attrs
                        and (complete or not after_complete)):
                    return t.number, int(t.user_attrs["worker"].rsplit(":", 1)[1])
        except Exception:  # the study may not exist yet
            pass
        if proc.poll() is not None:
            pytest.fail(f"search run ended early: {proc.communicate()}")
        time.sleep(0.1)
    pytest.fail("no running trial appeared")


# SIGKILL on both storages (heartbeats are each storage's own); SIGINT's clean-up is the
# storage-independent interrupt path, on SQLite only (the pair on PostgreSQL cost 14 s of suite)
@pytest.mark.parametrize("storage, sig", [("sqlite", signal.SIGKILL), ("postgresql", signal.SIGKILL),
                                          ("sqlite", signal.SIGINT)])
def test_a_worker_stopped_mid_trial_is_failed_and_retried(tmp_path, db, request, storage, sig):
    url = request.getfixturevalue("pg_url") if storage == "postgresql" else f"sqlite:///{db}"
    proc = search("run", "--study", write_study(tmp_path, **LONG), "--workers", 2, "--heartbeat", 1,
                  "--storage", url)
    number, pid = _running_worker_pid(url, proc)  # a trial past its first epoch
    os.kill(pid, sig)
    rc, out, err = finish(proc)
    assert rc == 0, err
    assert ("killed by SIGKILL" if sig == signal.SIGKILL else "exit code 130") in err
    ts = assert_budget_exact(url, LONG["n_trials"])
    failed = [t for t in ts if t.state.name == "FAIL"]
    mine = [t for t in failed if t.user_attrs.get("worker", "").endswith(f":{pid}")]
    assert len(mine) == 1, [(t.number, t.user_attrs) for t in failed]
    if sig == signal.SIGINT:
        assert mine[0].user_attrs["fail_reason"] == "interrupted"
    retries = [t for t in ts if t.user_attrs.get("retry_of") == mine[0].number]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert retries[0].params == mine[0].params
    assert retries[0].system_attrs["failed_trial"] == mine[0].number  # Optuna's own retry record
    assert PASSWORD not in out + err


@pytest.mark.parametrize("workers", [1, 2])
def test_storage_going_away_is_one_line_and_resume_completes(tmp_path, pg_server, pg_url, workers):
    study = write_study(tmp_path, **{**LONG, "n_trials": 40})
    proc = search("run", "--study", study, "--storage", pg_url, "--workers", workers)
    _running_worker_pid(pg_url, proc, after_complete=True)
    pg_server.stop(mode="immediate")
    try:
        rc, out, err = finish(proc, timeout=120)
    finally:
        pg_server.start()
    assert rc == 1, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "lost the storage" in lines[0] and "search:***@127.0.0.1" in lines[0], err
    assert PASSWORD not in out + err and "Traceback" not in out + err
    before = [t for t in trials(pg_url) if t.state.name == "COMPLETE"]
    assert before  # nothing stored was lost
    r = search("run", "--study", study, "--storage", pg_url, "--n-trials", len(before) + 2, "--heartbeat", 1)
    rc, out, err = finish(r)
    assert rc == 0, err
    after = trials(pg_url)
    assert {t.number for t in before} <= {t.number for t in after if t.state.name == "COMPLETE"}
    assert sum(t.state.name == "COMPLETE" for t in after) == len(before) + 2, [
        (t.number, t.state.name, t.user_attrs.get("fail_reason"), t.user_attrs.get("retry_of")) for t in after]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for init to reap it has stopped too
        return f.read().split(") ", 1)[1][0] != "Z"


def test_workers_stop_when_their_parent_is_killed(tmp_path, db):
    url = f"sqlite:///{db}"
    proc = search("run", "--study", write_study(tmp_path, **{**LONG, "n_trials": 40}), "--workers", 2,
                  "--heartbeat", 1)
    _running_worker_pid(url, proc)
    proc.kill()  # SIGKILL: the parent cannot pass anything on
    proc.communicate()
    workers = {int(t.user_attrs["worker"].rsplit(":", 1)[1]) for t in trials(url) if "worker" in t.user_attrs}
    deadline = time.monotonic() + 30
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "orphaned workers kept training"
    ts = trials(url)
    assert not [t for t in ts if t.state.name == "RUNNING"]
    interrupted = [t for t in ts if t.user_attrs.get("fail_reason") == "interrupted"]
    assert interrupted  # the workers stopped mid-trial, as after Ctrl-C
    waiting = [t for t in ts if t.state.name == "WAITING"]
    # each interrupted trial was queued again: a later trial records it as the one it retries
    # (still WAITING, or already run by the other worker before it stopped)
    for t in interrupted:
        retries = [r for r in ts if r.system_attrs.get("retry_history", [])[-1:] == [t.number]]
        assert len(retries) == 1, t.number
        if t.system_attrs.get("config"):  # it had sampled: the retry repeats its parameters
            assert retries[0].params == t.params, t.number
        else:  # cut off between ask and its suggestions (seen in CI): the retry samples what it lacked
            assert t.params.items() <= retries[0].params.items(), t.number
    assert all(w.system_attrs.get("retry_history") for w in waiting)


def test_a_worker_paused_past_its_heartbeats_drops_its_result_and_goes_on(tmp_path, db):
    """SIGSTOP past three heartbeats, then SIGCONT: the other worker fails the paused
    worker's trial and retries it with the same seed; the resumed worker finds its trial
    finished, drops its result in one line and goes on; the budget stays exact."""
    url = f"sqlite:///{db}"
    proc = search("run", "--study", write_study(tmp_path, **LONG), "--workers", 2, "--heartbeat", 1,
                  "--storage", url)
    number, pid = _running_worker_pid(url, proc)
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 60
    while trials(url)[number].state.name == "RUNNING":  # failed by the other worker once stale (3 s)
        assert time.monotonic() < deadline, "the paused worker's trial was never failed"
        time.sleep(0.2)
    os.kill(pid, signal.SIGCONT)
    rc, out, err = finish(proc)
    assert rc == 0, err
    assert "Traceback" not in err and "UpdateFinishedTrialError" not in err, err
    assert f"trial #{number} was finished by another worker while this one was paused" in err
    assert "worker" not in [line.split(":")[0] for line in err.splitlines() if "exit" in line]  # none died
    ts = assert_budget_exact(url, LONG["n_trials"])
    retry = next(t for t in ts if t.user_attrs.get("retry_of") == number)
    assert retry.state.name == "COMPLETE" and retry.params == ts[number].params
    assert retry.user_attrs["seed"] == ts[number].user_attrs["seed"]  # it reports what the original would have
