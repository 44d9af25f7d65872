"""Signals and heartbeats around a running trial: SIGTERM and SIGHUP handled as Ctrl-C,
signals held while a trial is asked for or cleaned up after, and a thread that records the
trial's heartbeat. A second signal never cuts the clean-up of the first short."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

import optuna

from search import _optuna
from search.errors import Terminated

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # the signals that stop a run


def _spent(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    """A stop signal after the first: the run is already stopping, cleanly; nothing to add."""


def _stop_once() -> None:
    for sig in STOPPING:
        signal.signal(sig, _spent)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block the first SIGINT raises KeyboardInterrupt, SIGTERM or SIGHUP
    Terminated; every stop signal after it is spent, so that none cuts the clean-up of
    the first short (Ctrl-C four times in a row left a trial RUNNING). Left by an interrupt,
    the block leaves them spent: the process is on its way out. Main thread only."""
    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        _stop_once()
        raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)

    try:
        previous = {sig: signal.signal(sig, handler) for sig in STOPPING}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    stopped = False
    try:
        yield
    except KeyboardInterrupt:
        stopped = True
        _stop_once()
        raise
    finally:
        if not stopped:
            for sig, old in previous.items():
                signal.signal(sig, old)


@contextlib.contextmanager
def signals_held() -> Iterator[list[int]]:
    """Hold SIGINT, SIGTERM and SIGHUP for the block; the list says which arrived (main thread only)."""
    held: list[int] = []

    def hold(signum, frame):  # noqa: ARG001 - signal handler signature
        held.append(signum)

    try:
        previous = {sig: signal.signal(sig, hold) for sig in STOPPING}
    except ValueError:  # not the main thread
        yield held
        return
    try:
        yield held
    finally:
        if held:  # the run stops: later signals are spent, not raised into its clean-up
            _stop_once()
        else:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def raise_held(held: list[int]) -> None:
    """Re-raise the first held signal as the interrupt it stands for."""
    raise KeyboardInterrupt() if held[0] == signal.SIGINT else Terminated(held[0])


def ignore_stopping() -> None:
    """Once the process is on its way out after an interrupt: further signals are ignored,
    so that none lands in the clean-up or in the interpreter's exit (main thread only)."""
    with contextlib.suppress(ValueError):
        for sig in STOPPING:
            signal.signal(sig, signal.SIG_IGN)


@contextlib.contextmanager
def heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Record a heartbeat every interval while the trial runs (RDB storages only)."""
    interval = _optuna.heartbeat_interval(storage)
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat is retried next interval
                _optuna.record_heartbeat(storage, trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
