"""Ctrl-C and SIGTERM on a real `search run` process: finished trials stay, nothing stays RUNNING."""

import signal
import subprocess
import sys
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


@pytest.fixture(scope="module")
def digits():
    """A few thousand real MNIST digits on the CPU, and a small MLP to fit on them."""
    import torch

    from search.data import load_dataset
    from search.experiment import subset

    from conftest import MNIST

    data = load_dataset("mnist", MNIST, torch.device("cpu"))
    return subset(data.train, 2000), subset(data.val, 500)


def _fit_with(digits, on_epoch, epochs=2):
    import torch

    from models import build_model as build
    from search.fit import fit
    from search.params import Params

    params = Params(model="mlp", hidden_size=32, epochs=epochs, batch_size=100)
    torch.manual_seed(0)
    return fit(build(params.model_config()), digits[0], digits[1], params, 0, on_epoch)


@pytest.fixture
def restore_signals():
    """The stop signals' handlers put back after a test that spends them."""
    stopping = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {s: signal.getsignal(s) for s in stopping}
    yield
    for s, handler in before.items():
        signal.signal(s, handler)


@pytest.mark.parametrize("when", ["mid-fit", "after the last step"])
def test_a_signal_during_training_is_raised_between_steps_never_lost(digits, when, restore_signals):
    """Raised at the next step (or when fit returns), from `stop_point`, outside torch's
    context managers; after it every stop signal is spent until the process goes."""
    import os
    import traceback

    def on_epoch(r):  # the signal lands while fit holds them (a pruner's storage round trip, say)
        if when == "mid-fit" and r.epoch == 1 or when != "mid-fit" and r.epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # delivered: held, not raised here

    with pytest.raises(KeyboardInterrupt) as caught:
        _fit_with(digits, on_epoch)
    assert getattr(caught.value, "exit_code", None) == 143  # Terminated
    frames = [f.name for f in traceback.extract_tb(caught.value.__traceback__)]
    assert frames[-1] == "raise_held" and ("stop_point" in frames) == (when == "mid-fit")
    assert signal.getsignal(signal.SIGINT).__name__ == "_spent"  # a second signal cuts no clean-up short


def test_an_interrupt_wins_over_an_exception_that_ends_the_fit(digits, restore_signals):
    """A trial pruned (or diverged) after a Ctrl-C arrived ends as interrupted: the run stops."""
    import os

    def on_epoch(r):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        raise RuntimeError("pruned, say")

    with pytest.raises(KeyboardInterrupt):
        _fit_with(digits, on_epoch)


def test_without_a_signal_fit_leaves_the_handlers_as_they_were(digits):
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)]
    assert len(_fit_with(digits, None, epochs=1).history) == 1
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)] == before


def test_a_stop_signal_swallowed_by_a_garbage_collector_callback_stops_the_next_fit(digits, restore_signals):
    """A signal whose exception is raised inside a weakref callback (SQLAlchemy's
    InstanceState._cleanup, once in CI) is printed and ignored by Python; with every later
    signal spent the run then went on to its end and exited 0. The next fit raises it."""
    import gc
    import os
    import weakref

    from search._signals import sigterm_as_interrupt

    class Thing:
        pass

    def callback(_ref):  # the handler runs in here: its exception goes to sys.unraisablehook
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)

    swallowed = []
    hook, sys.unraisablehook = sys.unraisablehook, swallowed.append
    try:
        with pytest.raises(KeyboardInterrupt) as caught, sigterm_as_interrupt():
            thing = Thing()
            ref = weakref.ref(thing, callback)
            del thing
            gc.collect()
            assert ref() is None and [type(u.exc_value).__name__ for u in swallowed] == ["Terminated"]
            _fit_with(digits, None, epochs=1)  # the training step after it stops the run
    finally:
        sys.unraisablehook = hook
    assert getattr(caught.value, "exit_code", None) == 143
    assert len(_fit_with(digits, None, epochs=1).history) == 1  # after the block: nothing left over
