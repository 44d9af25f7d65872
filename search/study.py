"""The service: a validated study + a storage -> trials run, stored and summarised."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import optuna
import sqlalchemy.exc
import torch
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

from search.data import load_dataset
from search.device import resolve_device
from search.errors import SearchError, StorageLost
from search.objective import Objective
from search.space import grid_space
from search.spec import StudySpec
from search._lock import study_lock
from search.storage import HEARTBEAT_S, MAX_RETRY, first_line, mask_url, open_storage
from search.train import Diverged

# Study-level facts stored with the study, so that show/export/train need no study file.
STUDY_ATTRS = ("dataset", "metric", "seed", "train_size")


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the running trial fails as interrupted, nothing else is lost."""


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    conf = spec.sampler
    if conf["name"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if conf["name"] == "grid":
        return optuna.samplers.GridSampler(grid_space(spec), seed=seed)
    kwargs = {k: conf[k] for k in ("n_startup_trials", "multivariate") if k in conf}
    return optuna.samplers.TPESampler(seed=seed, **kwargs)


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    conf = {k: v for k, v in spec.pruner.items() if k != "name"}
    name = spec.pruner["name"]
    if name == "median":
        return optuna.pruners.MedianPruner(**{"n_startup_trials": 3, "n_warmup_steps": 1, **conf})
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(**conf)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(max_resource=spec.max_epochs(), **conf)
    return optuna.pruners.NopPruner()


def counts_toward_budget(t: FrozenTrial) -> bool:
    """Finished trials count; one failed by an interrupt or a crash does not (it is retried)."""
    if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return t.state == TrialState.FAIL and str(t.user_attrs.get("fail_reason", "")).startswith("diverged")


def open_study(spec: StudySpec, url: str, seed: int | None = None, *, heartbeat: float | None = HEARTBEAT_S,
               worker_index: int = 0) -> optuna.Study:
    """Create the study or load it to resume; refuse if the stored one is a different experiment."""
    storage = open_storage(url, heartbeat=heartbeat)
    seed = spec.seed if seed is None else seed
    study = optuna.create_study(storage=storage, study_name=spec.name, direction=spec.direction,
                                load_if_exists=True)
    stored_direction = study.direction.name.lower()
    if stored_direction != spec.direction:
        raise SearchError(f"study {spec.name!r} in {mask_url(url)} was created to {stored_direction}, "
                          f"but {spec.path} says {spec.direction}: rename the study or use another storage")
    want = {"dataset": spec.dataset, "metric": spec.metric, "seed": seed, "train_size": spec.train_size}
    have = study.user_attrs
    for key, value in want.items():
        if key in have and have[key] != value:
            raise SearchError(f"study {spec.name!r} in {mask_url(url)} was created with {key}={have[key]!r}, "
                              f"not {value!r}: rename the study or use another storage")
        if key not in have:
            study.set_user_attr(key, value)
    described = {"study_file": spec.path, "description": spec.description, "space": spec.describe_space(),
                 "sampler": spec.sampler["name"], "pruner": spec.pruner["name"]}
    for key, value in described.items():
        if have.get(key) != value:  # the file may have grown since the study began: show its latest
            study.set_user_attr(key, value)
    # Seeding the sampler with the number of trials so far keeps a resumed run from
    # replaying the random start-up suggestions of the first run; workers differ too.
    base = spec.sampler.get("seed", seed)
    sampler = make_sampler(spec, base + len(study.trials) + 100_003 * worker_index)
    return optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=make_pruner(spec))


def load_stored_study(name: str, url: str) -> optuna.Study:
    storage = open_storage(url, create=False)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if name not in names:
        known = ", ".join(names) if names else "none"
        raise SearchError(f"unknown study {name!r} in {mask_url(url)} (stored studies: {known})")
    return optuna.load_study(study_name=name, storage=storage)


@dataclass
class RunResult:
    study: optuna.Study
    ran: int  # trials finished by this run
    seconds: float


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
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
def _heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Record a heartbeat every interval while the trial runs (RDB storages only)."""
    interval = storage.get_heartbeat_interval() if isinstance(storage, BaseHeartbeat) else None
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat is retried next interval
                storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def run_study(
    spec: StudySpec,
    url: str,
    *,
    device: str = "auto",
    data_dir: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    seed: int | None = None,
    heartbeat: float | None = HEARTBEAT_S,
    worker_index: int = 0,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    on_start: Callable[[optuna.Study, int], None] | None = None,
) -> RunResult:
    """Run trials until the study holds `n_trials` finished trials (the file's budget by
    default) or `timeout` seconds pass. Several processes may call this on one study at
    once: they share the budget and never exceed it. An interrupt fails the running trial
    as "interrupted", queues a retry of its parameters, and is re-raised."""
    dev = resolve_device(device)
    data = load_dataset(spec.dataset, data_dir, dev)  # fail on bad data before touching storage
    study = open_study(spec, url, seed, heartbeat=heartbeat, worker_index=worker_index)
    if seed is not None:
        spec = replace(spec, seed=seed)
    objective = Objective(spec, data, dev)
    budget = n_trials if n_trials is not None else spec.n_trials
    if on_start is not None:
        on_start(study, max(budget - budget_used(study)[0], 0))
    timeout = timeout if timeout is not None else spec.timeout
    return optimize(study, objective, url, budget, timeout=timeout, on_trial=on_trial)


def optimize(study: optuna.Study, objective: Callable[[optuna.Trial], float], url: str, budget: int, *,
             timeout: float | None = None,
             on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None) -> RunResult:
    """The trial loop: under the study lock, fail stale trials, check the shared budget and
    ask; then run the trial with heartbeats and tell. Returns when the study holds
    `budget` finished trials or `timeout` seconds have passed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    start, ran = time.perf_counter(), 0
    with sigterm_as_interrupt(), _optimize_loop(study), _storage_loss_is_one_line(url):
        while (deadline is None or time.monotonic() < deadline) and not study._stop_flag:
            with study_lock(study._storage, url, study.study_name):
                optuna.storages.fail_stale_trials(study)  # no-op without heartbeats
                done, running = budget_used(study)
                trial = study.ask() if done + running < budget else None
            if trial is None:
                # Trials of other workers may still fail (and free budget) or go stale.
                if done >= budget or not running or not _has_heartbeat(study):
                    break
                time.sleep(min(1.0, study._storage.get_heartbeat_interval()))
                continue
            frozen = _run_trial(study, trial, objective)
            ran += 1
            if on_trial is not None:
                on_trial(study, frozen)
    return RunResult(study, ran, time.perf_counter() - start)


@contextlib.contextmanager
def _storage_loss_is_one_line(url: str) -> Iterator[None]:
    try:
        yield
    except (sqlalchemy.exc.DBAPIError, optuna.exceptions.StorageInternalError) as e:
        cause = e.__cause__ if isinstance(e.__cause__, sqlalchemy.exc.DBAPIError) else e
        raise StorageLost(f"lost the storage {mask_url(url)} mid-study ({first_line(cause, url)}); finished trials "
                          "are stored: run the same command again once it is reachable") from None


@contextlib.contextmanager
def _optimize_loop(study: optuna.Study) -> Iterator[None]:
    """What `study.optimize` sets up, for this loop that asks under the budget lock: the
    grid sampler may call `study.stop()`, and heartbeats are expected, only inside it."""
    study._stop_flag = False
    study._thread_local.in_optimize_loop = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            yield
        finally:
            study._thread_local.in_optimize_loop = False


def budget_used(study: optuna.Study) -> tuple[int, int]:
    """(finished trials that count toward the budget, trials running now)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                      TrialState.FAIL, TrialState.RUNNING))
    return (sum(counts_toward_budget(t) for t in trials),
            sum(t.state == TrialState.RUNNING for t in trials))


def _has_heartbeat(study: optuna.Study) -> bool:
    storage = study._storage
    return isinstance(storage, BaseHeartbeat) and bool(storage.get_heartbeat_interval())


def _run_trial(study: optuna.Study, trial: optuna.Trial, objective: Callable[[optuna.Trial], float]) -> FrozenTrial:
    value, state = None, TrialState.COMPLETE
    try:
        with _heartbeat(study._storage, trial._trial_id):
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                state = TrialState.PRUNED
            except (Diverged, torch.OutOfMemoryError):
                state = TrialState.FAIL  # the objective recorded the reason
        return study.tell(trial, value, state=state, skip_if_finished=True)
    except KeyboardInterrupt:
        _fail_and_retry(study, trial._trial_id)
        raise


def _fail_and_retry(study: optuna.Study, trial_id: int) -> None:
    """After an interrupt: fail the trial as interrupted (unless it already finished) and
    queue its parameters again, recorded as a retry of it, for the next run to pick up."""
    storage = study._storage
    with contextlib.suppress(Exception):
        if storage.get_trial(trial_id).state == TrialState.RUNNING:
            storage.set_trial_user_attr(trial_id, "fail_reason", "interrupted")
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            _queue_retry(study, storage.get_trial(trial_id))


def _queue_retry(study: optuna.Study, failed: FrozenTrial) -> None:
    """The same bookkeeping as Optuna's RetryHeartbeatStaleTrialCallback (so its
    `retried_trial_number` works), without copying the failed trial's user attributes."""
    history = [*failed.system_attrs.get("retry_history", []), failed.number]
    if len(history) > MAX_RETRY:
        return
    system_attrs = {"failed_trial": failed.system_attrs.get("failed_trial", failed.number), "retry_history": history}
    study.add_trial(optuna.create_trial(state=TrialState.WAITING, params=failed.params,
                                        distributions=failed.distributions, system_attrs=system_attrs))


# ---------------------------------------------------------------- summaries


def study_facts(study: optuna.Study) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    states = {s.name: 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    best = best_or_none(study)
    return {
        "study": study.study_name,
        "direction": study.direction.name.lower(),
        **{k: study.user_attrs.get(k) for k in STUDY_ATTRS},
        "n_trials": len(trials),
        "states": states,
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
    }


def best_or_none(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def best_trial(study: optuna.Study) -> FrozenTrial:
    best = best_or_none(study)
    if best is None:
        raise SearchError(f"study {study.study_name!r} has no completed trial yet: run it first "
                          f"(search run --study {study.study_name})")
    return best


def all_studies(url: str) -> list[dict[str, Any]]:
    storage = open_storage(url, create=False)
    return [study_facts(optuna.load_study(study_name=s.study_name, storage=storage))
            for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
