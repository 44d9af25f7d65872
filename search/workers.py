"""N worker processes on this machine sharing one study through its storage.

The parent checks everything (study file, device, data, storage) before starting any
worker, then watches the storage and reports progress; the workers run `run_study` with
the shared budget. Workers run in their own process group, so a Ctrl-C at the terminal
reaches the parent only, which passes it on once. A worker whose parent dies (kill -9)
stops as after SIGTERM: its trial is failed as interrupted and queued again.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Callable

from optuna.trial import TrialState

from search._signals import sigterm_as_interrupt
from search.data import locate
from search.device import resolve_device
from search.errors import Notice, SearchError, StorageLost, Terminated, exit_code
from search.records import TrialRecord
from search.spec import StudySpec
from search.study import RunOptions, Unbeaten, budget_used, check_factories, open_study, run_study, tracking
from search.tracking import check_installed
from search.trials import study_facts

PARENT_CHECK_S = 1.0


@dataclass
class WorkersResult:
    facts: dict[str, Any]
    exit_codes: list[int | None]  # None: still running (never, once run_workers returns)
    seconds: float
    errors: list[str]  # distinct error lines the workers reported
    notes: list[str] = field(default_factory=list)  # trials no heartbeat will free (search.study.Unbeaten)


def threads_per_worker(n_workers: int) -> int:
    """CPU threads each of `n_workers` local workers gets: the cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // n_workers)


def _watch_parent(parent: int) -> None:
    """SIGTERM this process once its parent is gone (re-parented to init or a subreaper)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker(index: int, spec: StudySpec, url: str, opts: RunOptions, threads: int, parent: int, errors) -> None:
    os.setpgrp()
    _watch_parent(parent)
    import optuna
    import torch

    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("always", Notice)  # what the library mended or dropped: one line each
    warnings.showwarning = lambda message, *_, **__: print(f"warning: worker {index}: {message}", file=sys.stderr,
                                                           flush=True)
    try:
        run_study(spec, url, opts)
    except (SearchError, KeyboardInterrupt) as e:
        if isinstance(e, SearchError):
            errors.put(str(e))
        os._exit(exit_code(e))  # no atexit or queue flush waits on a dead parent


def run_workers(
    spec: StudySpec,
    url: str,
    opts: RunOptions,
    *,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
    poll_s: float = 1.0,
) -> WorkersResult:
    """Run the study with `opts.workers` processes; returns when all have exited.

    Ctrl-C / SIGTERM in the parent is passed on to the workers (each fails its running
    trial as interrupted and queues it again), then re-raised once they have exited. If
    the storage goes away, the parent stops watching it, waits for the workers and raises
    one StorageLost.
    """
    spec = opts.apply(spec)
    dev = resolve_device(opts.device)
    locate(spec.dataset, opts.data_dir)
    check_factories(spec)
    check_installed(spec.track)
    study = open_study(spec, url, opts)  # creates it once, checks the storage
    tracking(study, spec, str(dev), url)  # MLflow's store, experiment and parent run made once, before the workers
    done_before = budget_used(study)[0]
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    ctx = multiprocessing.get_context("spawn")  # no fork: torch threads and DB connections don't survive it
    errors = ctx.SimpleQueue()
    threads = threads_per_worker(opts.workers)
    procs = [ctx.Process(target=_worker, name=f"search-worker-{i}",
                         args=(i, spec, url, opts, threads, os.getpid(), errors))
             for i in range(opts.workers)]
    start = time.monotonic()
    for p in procs:
        p.start()
    lost: StorageLost | None = None
    try:
        with sigterm_as_interrupt():
            while any(p.is_alive() for p in procs):
                if on_poll is not None and lost is None:
                    try:
                        on_poll(_progress(study, spec.n_trials, done_before, start, procs, seen))
                    except SearchError:
                        raise
                    except Exception as e:  # the storage went away: the workers will say so too
                        lost = StorageLost(f"lost the storage mid-study ({type(e).__name__})")
                _join_any(procs, poll_s)
    except KeyboardInterrupt as e:
        sig = signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT
        _stop(procs, sig)
        raise
    messages = []
    while not errors.empty():
        message = errors.get()
        if message not in messages:
            messages.append(message)
    if lost is not None:
        raise StorageLost(messages[0]) if messages else lost
    facts = _progress(study, spec.n_trials, done_before, start, procs, seen)
    if on_poll is not None:
        on_poll(facts)
    notes = [Unbeaten.note(study, t) for t in Unbeaten.of(study).old] if facts["done"] < spec.n_trials else []
    return WorkersResult(facts, [p.exitcode for p in procs], time.monotonic() - start, messages, notes)


def _join_any(procs, timeout: float) -> None:
    alive = [p.sentinel for p in procs if p.is_alive()]
    if alive:
        wait(alive, timeout)


def _stop(procs, sig: int, grace_s: float = 60.0) -> None:
    for p in procs:
        if p.is_alive():
            os.kill(p.pid, sig)
    deadline = time.monotonic() + grace_s
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()


def _progress(study, budget: int, done_before: int, start: float, procs, seen: set[int]) -> dict[str, Any]:
    """The study as the workers' parent shows it: counts, best, ETA, the trials finished since
    the last poll (`finished`, oldest first; `seen` keeps the numbers already given) and each
    running trial's epoch (`running`: number, epochs done, epochs planned, last value)."""
    facts = study_facts(study)
    done = budget_used(study)[0]
    elapsed = time.monotonic() - start
    ran = done - done_before
    left = max(budget - done, 0)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.is_finished() and t.number not in seen]
    seen.update(t.number for t in finished)
    running = [(t.number, len(t.intermediate_values), int(TrialRecord.of(t).config.get("epochs") or 0),
                next(reversed(t.intermediate_values.values()), None))
               for t in trials if t.state == TrialState.RUNNING]
    facts.update(budget=budget, done=done, elapsed=elapsed,
                 eta=(elapsed / ran * left) if ran and left else (0.0 if not left else None),
                 workers_alive=sum(p.is_alive() for p in procs), workers=len(procs),
                 worker_exit_codes=[p.exitcode for p in procs], finished=finished, running=running)
    return facts


__all__ = ["PARENT_CHECK_S", "WorkersResult", "run_workers", "threads_per_worker"]
