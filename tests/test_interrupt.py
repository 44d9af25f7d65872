"""Ctrl-C and SIGTERM on a real `search run` process: finished trials stay, nothing stays RUNNING."""

import signal
import subprocess
import time

import pytest

from conftest import finish, needs_mnist, search, trial_states, write_study

pytestmark = needs_mnist


def _wait_for(db, study, predicate, proc, limit=120):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if db.exists():
            try:
                if predicate(trial_states(db, study)):
                    return
            except Exception:  # the schema may not exist yet
                pass
        if proc.poll() is not None:
            pytest.fail(f"search run ended early: {proc.communicate()}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail("timed out waiting for trials")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_interrupt_keeps_finished_trials_and_leaves_none_running(tmp_path, db, sig, code):
    # ~1 s trials: long enough to interrupt one in the middle
    study = write_study(tmp_path, n_trials=50, train_size=10000, space={"epochs": 3, "hidden_size": 64})
    proc = search("run", "--study", study)
    _wait_for(db, "tiny", lambda s: s.count("COMPLETE") >= 2 and s[-1] == "RUNNING", proc)
    time.sleep(0.3)
    proc.send_signal(sig)
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("search run did not exit promptly after the signal")
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and "run the same command again to resume" in stderr
    states = trial_states(db, "tiny")
    assert "RUNNING" not in states and states.count("COMPLETE") >= 2

    import optuna

    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert len(failed) <= 1
    if failed:  # the signal landed mid-trial: failed as interrupted, and queued again
        assert failed[0].user_attrs["fail_reason"] == "interrupted"
        waiting = [t for t in trials if t.state.name == "WAITING"]
        assert len(waiting) == 1 and waiting[0].params == failed[0].params

    # running again resumes the same study: the queued retry runs first
    finished = states.count("COMPLETE")
    rc, _, stderr = finish(search("run", "--study", study, "--n-trials", finished + 1), timeout=120)
    assert rc == 0, stderr
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
    assert [t.state.name for t in trials].count("COMPLETE") == finished + 1
    if failed:
        retry = [t for t in trials if t.user_attrs.get("retry_of") == failed[0].number]
        assert len(retry) == 1 and retry[0].state.name == "COMPLETE" and retry[0].params == failed[0].params


@pytest.mark.parametrize("delay", [0.0, 0.005])
def test_repeated_interrupts_are_handled_once_with_one_outcome(tmp_path, db, delay):
    """Ctrl-C four times in a row (an impatient user): the first is handled, the others are
    not allowed to cut its clean-up short or land in the interpreter's exit."""
    import optuna

    study = write_study(tmp_path, n_trials=50, train_size=10000, space={"epochs": 3, "hidden_size": 64})
    proc = search("run", "--study", study)
    _wait_for(db, "tiny", lambda s: s.count("COMPLETE") >= 1 and s[-1] == "RUNNING", proc)
    time.sleep(0.3)
    for _ in range(4):
        proc.send_signal(signal.SIGINT)
        time.sleep(delay)
    rc, _, stderr = finish(proc, 60)
    assert rc == 130, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
    states = [t.state.name for t in trials]
    assert "RUNNING" not in states
    failed = [t for t in trials if t.state.name == "FAIL"]
    waiting = [t for t in trials if t.state.name == "WAITING"]
    assert len(failed) <= 1 and len(waiting) == len(failed)  # between two trials: nothing to fail
    if failed:  # the trial it cut: failed as interrupted, its retry queued once
        assert failed[0].user_attrs["fail_reason"] == "interrupted" and waiting[0].params == failed[0].params
