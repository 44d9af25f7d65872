"""Signals and heartbeats around a running trial: SIGTERM handled as Ctrl-C, signals held
while a trial is asked for, and a thread that records the trial's heartbeat."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

import optuna

from search import _optuna
from search.errors import Terminated


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises Terminated (a KeyboardInterrupt) inside the block (main thread only)."""
    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signals_held() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM for the block; the list says which arrived (main thread only)."""
    held: list[int] = []

    def hold(signum, frame):  # noqa: ARG001 - signal handler signature
        held.append(signum)

    try:
        previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield held
        return
    try:
        yield held
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def raise_held(held: list[int]) -> None:
    """Re-raise the first held signal as the interrupt it stands for."""
    raise Terminated() if held[0] == signal.SIGTERM else KeyboardInterrupt()


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
