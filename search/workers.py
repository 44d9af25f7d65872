"""N worker processes on this machine sharing one study through its storage.

The parent checks everything (study file, device, data, storage) before starting any
worker, then watches the storage and reports progress; the workers run `run_study` with
the shared budget. Workers run in their own process group, so a Ctrl-C at the terminal
reaches the parent only, which passes it on once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from search.data import find_data_dir
from search.device import resolve_device
from search.errors import SearchError
from search.spec import StudySpec
from search.storage import HEARTBEAT_S
from search.study import Terminated, budget_used, open_study, run_study, sigterm_as_interrupt, study_facts


@dataclass
class WorkersResult:
    facts: dict[str, Any]
    exit_codes: list[int]
    seconds: float


def threads_per_worker(n_workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // n_workers)


def _worker(index: int, spec: StudySpec, url: str, device: str, data_dir: str | None, n_trials: int | None,
            timeout: float | None, seed: int | None, heartbeat: float | None, threads: int) -> None:
    os.setpgrp()
    import optuna
    import torch

    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        run_study(spec, url, device=device, data_dir=data_dir, n_trials=n_trials, timeout=timeout, seed=seed,
                  heartbeat=heartbeat, worker_index=index)
    except SearchError as e:
        print(f"worker {index}: error: {e}", file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 2))
    except Terminated:
        sys.exit(143)
    except KeyboardInterrupt:
        sys.exit(130)


def run_workers(
    spec: StudySpec,
    url: str,
    n_workers: int,
    *,
    device: str = "auto",
    data_dir: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    seed: int | None = None,
    heartbeat: float | None = HEARTBEAT_S,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
    poll_s: float = 1.0,
) -> WorkersResult:
    """Run the study with `n_workers` processes; returns when all have exited.

    Ctrl-C / SIGTERM in the parent is passed on to the workers (each fails its running
    trial as interrupted and queues it again), then re-raised once they have exited.
    """
    resolve_device(device)
    find_data_dir(spec.dataset, data_dir)
    study = open_study(spec, url, seed, heartbeat=heartbeat)  # creates it once, checks the storage
    budget = n_trials if n_trials is not None else spec.n_trials
    done_before = budget_used(study)[0]
    ctx = multiprocessing.get_context("spawn")  # no fork: torch threads and DB connections don't survive it
    threads = threads_per_worker(n_workers)
    procs = [ctx.Process(target=_worker, name=f"search-worker-{i}",
                         args=(i, spec, url, device, data_dir, n_trials, timeout, seed, heartbeat, threads))
             for i in range(n_workers)]
    start = time.monotonic()
    for p in procs:
        p.start()
    try:
        with sigterm_as_interrupt():
            while any(p.is_alive() for p in procs):
                if on_poll is not None:
                    on_poll(_progress(study, budget, done_before, start, procs))
                _join_any(procs, poll_s)
    except KeyboardInterrupt as e:
        sig = signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT
        _stop(procs, sig)
        raise
    facts = _progress(study, budget, done_before, start, procs)
    if on_poll is not None:
        on_poll(facts)
    return WorkersResult(facts, [p.exitcode for p in procs], time.monotonic() - start)


def _join_any(procs, timeout: float) -> None:
    from multiprocessing.connection import wait

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


def _progress(study, budget: int, done_before: int, start: float, procs) -> dict[str, Any]:
    facts = study_facts(study)
    done = budget_used(study)[0]
    elapsed = time.monotonic() - start
    ran = done - done_before
    left = max(budget - done, 0)
    facts.update(budget=budget, done=done, elapsed=elapsed,
                 eta=(elapsed / ran * left) if ran and left else (0.0 if not left else None),
                 workers_alive=sum(p.is_alive() for p in procs), workers=len(procs),
                 worker_exit_codes=[p.exitcode for p in procs])
    return facts


__all__ = ["run_workers", "threads_per_worker", "WorkersResult"]
