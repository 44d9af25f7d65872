"""Stop signals around a running trial: SIGTERM and SIGHUP handled as Ctrl-C, signals held
while a trial is asked for or cleaned up after, and raised only between training steps while
it trains. A second signal never cuts the clean-up of the first short. (No Optuna here: the
fit loop imports it.)"""

from __future__ import annotations

import contextlib
import functools
import signal
from typing import Any, Callable, Iterator, TypeVar

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
        _raised.append(signum)  # if this exception is swallowed, the next training step raises it again
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
        _raised.clear()  # it reached this block (or none came): not lost
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


_pending: list[int] = []  # the stop signals `between_steps` holds, raised by the next `stop_point`
# The stop signal `sigterm_as_interrupt` raised. Raised inside a garbage-collector callback
# (SQLAlchemy's InstanceState._cleanup, seen once in CI), the exception is printed and
# ignored, and with every later signal spent the run went on to its end and exited 0. A
# training step starting after it was raised means it was lost: `between_steps` raises it
# again then (a propagating interrupt never starts another fit).
_raised: list[int] = []

F = TypeVar("F", bound=Callable[..., Any])


def between_steps(fn: F) -> F:
    """While `fn` runs (the fit loop, an evaluation), a stop signal is held and raised at its
    next `stop_point()`, between steps: raised anywhere, it could land inside one of torch's
    context managers (autocast, inference mode, the meta device) and surface as another error
    (a RuntimeError 'pop from empty mode stack' instead of the interrupt, seen once in CI)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _pending
        if _raised and not _pending:  # a stop signal raised where it was swallowed: raised here again, once
            raise_held([_raised.pop()])
        with signals_held() as held:
            outer, _pending = _pending, held
            try:
                result = fn(*args, **kwargs)
            except KeyboardInterrupt:
                raise
            except BaseException:
                if held:  # the interrupt wins over what ended the block (a pruned trial, ...)
                    raise_held(held)
                raise
            finally:
                _pending = outer
            if held:  # one that arrived after the last step: not lost
                raise_held(held)
            return result
    return wrapper  # type: ignore[return-value]


def stop_point() -> None:
    """Raise the stop signal `between_steps` held, if one arrived (a no-op outside it)."""
    if _pending:
        raise_held(_pending)
