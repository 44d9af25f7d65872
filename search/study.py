"""The service: a validated study + a storage + RunOptions -> trials run, stored and summarised."""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import socket
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from models import Shape, planned_params
from search import _check, _optuna, records
from search._files import writable_dir
from search._lock import study_lock
from search._signals import raise_held, signals_held, sigterm_as_interrupt
from search.artifacts import Recorder, artifact_dir, artifact_ids, open_store, write_study_note
from search.data import load_dataset
from search.device import resolve_device
from search.errors import DiskFull, Notice, SearchError
from search.factory import load_factory, use_code_dir
from search.fit import Step
from search.identity import change_log, check_definition
from search.objective import Objective
from search.params import Params, is_factory
from search.records import TrialRecord
from search.spec import StudySpec
from search.storage import (
    GRACE_FACTOR,
    HEARTBEAT_S,
    MAX_RETRY,
    FileGuard,
    heartbeat,
    is_storage_error,
    mask_url,
    open_storage,
    storage_error,
    storage_errors,
)
from search.tracking import Tracker, check_installed, open_tracker, parse_track
from search.trials import Failure, TrialFailed, counts_in_budget, counts_toward_budget, study_facts

MAX_WORKERS = 256  # worker processes on one machine


@dataclass(frozen=True)
class RunOptions:
    """How to run a study, from the CLI through the workers to the trial loop. `n_trials`,
    `timeout` and `seed` override the study file's values when given."""

    device: str = "auto"
    data_dir: str | None = None
    n_trials: int | None = None  # the total finished trials the study should hold
    timeout: float | None = None  # seconds for this invocation
    seed: int | None = None
    heartbeat: float = HEARTBEAT_S  # seconds; 0 turns heartbeats off
    workers: int = 1
    artifacts: str | None = None  # artifact folder [default: beside a SQLite or journal file; none for servers]
    allow_change: bool = False  # resume under a changed space, sampler, pruner or file (search/identity.py)
    track: tuple[str, ...] | None = None  # --track mlflow[:URI] / tensorboard[:DIR] / none; None: the file's `track`

    def __post_init__(self) -> None:
        """The flags are checked with the bounds of the file (search/spec.py), before anything runs."""
        where = "command line"
        if self.n_trials is not None:
            _check.integer(self.n_trials, where, "--n-trials", 1, _check.MAX_TRIALS)
        if self.timeout is not None:
            _check.number(self.timeout, where, "--timeout", 0, math.inf, low_open=True)
        if self.seed is not None:
            _check.integer(self.seed, where, "--seed", 0, _check.MAX_SEED)
        _check.integer(self.workers, where, "--workers", 1, MAX_WORKERS)
        _check.number(self.heartbeat, where, "--heartbeat", 0, 3600)
        if self.track is not None:
            parse_track(list(self.track), where, "--track")

    def apply(self, spec: StudySpec) -> StudySpec:
        """The study as this run sees it (the file's budget, timeout, seed and trackers, or ours)."""
        return replace(spec, n_trials=spec.n_trials if self.n_trials is None else self.n_trials,
                       timeout=spec.timeout if self.timeout is None else self.timeout,
                       seed=spec.seed if self.seed is None else self.seed,
                       track=spec.track if self.track is None else parse_track(list(self.track), "command line",
                                                                                "--track"))


def open_study(spec: StudySpec, url: str, opts: RunOptions, *, data: dict[str, Any] | None = None) -> optuna.Study:
    """Create the study or load it to resume; refuse if the stored one is a different
    experiment (another dataset, goal, seed, ... or, given the data's facts, other data)."""
    spec = opts.apply(spec)
    storage = open_storage(url, heartbeat=opts.heartbeat)
    with storage_errors(url):
        directions = [optuna.study.StudyDirection[d.upper()] for d in spec.goal.directions]
        study = optuna.create_study(storage=storage, study_name=spec.name, directions=directions,
                                    load_if_exists=True)
        return _checked(study, spec, url, storage, data, opts.allow_change)


def _checked(study: optuna.Study, spec: StudySpec, url: str, storage, data: dict[str, Any] | None,
             allow_change: bool) -> optuna.Study:
    stored = ", ".join(d.name.lower() for d in study.directions)
    # identity never changes: the ways on are a new name, or deleting the stored study
    ways = (f"run the file as a new study (--set name={spec.name}-2, or name: in the file), or delete the stored "
            f"one first (search delete --study {spec.name})")
    if stored != ", ".join(spec.goal.directions):
        raise SearchError(f"study {spec.name!r} in {mask_url(url)} was created to {stored}, "
                          f"but {spec.path} says {spec.goal}: {ways}")
    record = spec.record(data)
    mismatch = record.mismatch(study)
    if mismatch is not None and mismatch[0] == "data":
        have, want = mismatch[1], mismatch[2]
        sub = next(k for k in want if have.get(k) != want[k])
        raise SearchError(f"study {spec.name!r} in {mask_url(url)} was created on other data than {spec.dataset} "
                          f"holds now ({sub}: {_check.short(have.get(sub))} then, {_check.short(want[sub])} now): "
                          f"restore the data, or {ways}")
    if mismatch is not None:
        key, have, want = mismatch
        raise SearchError(f"study {spec.name!r} in {mask_url(url)} was created with {key}={have!r}, "
                          f"not {want!r}: {ways}; a dry run that stores nothing: search run --dry-run")
    changes = check_definition(spec, record, study, mask_url(url), allow_change)
    record.write(study, change_log(study, changes) if changes else ())
    if study.metric_names != list(spec.goal.metrics):
        with _optuna.quiet_experimental():
            study.set_metric_names(list(spec.goal.metrics))  # the dashboard names the objectives
    write_study_note(study)
    # Offsetting the seed by the trials so far keeps a resumed run from replaying the first
    # run's random start-up suggestions; each process that opens the study to run it (a worker
    # here, a command on another host started at the same moment) takes its own join number.
    join = records.take_join_number(study, study_lock(storage, url, spec.name))
    sampler = spec.make_sampler(trial_count(study) + 100_003 * join)
    return optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=spec.make_pruner())


def load_stored_study(name: str, url: str) -> optuna.Study:
    """The stored study `name` (read-only where the storage is), or one line naming the studies there."""
    storage = open_storage(url, create=False)
    with storage_errors(url):
        names = optuna.get_all_study_names(storage)  # not the summaries: they read every trial of every study
        if name not in names:
            known = ", ".join(names) if names else "none"
            close = _check.did_you_mean(name, names)
            hint = f"did you mean {close}? " if close else ""
            raise SearchError(f"unknown study {name!r} in {mask_url(url)} ({hint}stored studies: {known})")
        return optuna.load_study(study_name=name, storage=storage)


@dataclass
class RunResult:
    study: optuna.Study
    ran: int  # trials finished by this run
    seconds: float
    notes: list[str] = field(default_factory=list)  # why the budget is not full: trials no heartbeat will free


def run_study(
    spec: StudySpec,
    url: str,
    opts: RunOptions = RunOptions(),
    *,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    on_start: Callable[[optuna.Study, int, list[str]], None] | None = None,
    on_step: Callable[[int, Step], None] | None = None,
) -> RunResult:
    """Run trials until the study holds its budget of finished trials or the timeout
    passes. Several processes may call this on one study at once: they share the budget
    and never exceed it. An interrupt fails the running trial as interrupted, queues a
    retry of its parameters, and is re-raised."""
    spec = opts.apply(spec)
    dev = resolve_device(opts.device)
    data = load_dataset(spec.dataset, opts.data_dir, dev)  # fail on bad data before touching storage
    check_factories(spec)  # and on a model module that cannot be imported
    check_models(spec, data.shape)  # or a built-in model too big for the images
    check_installed(spec.track)  # or a tracker's package missing
    store_dir = artifact_dir(url, opts.artifacts)
    if store_dir is not None:
        writable_dir(store_dir, "artifacts")  # a bad --artifacts: one line before the study exists
    study = open_study(spec, url, opts, data=data.facts())
    tracker = tracking(study, spec, str(dev), url)
    recorder = Recorder(open_store(store_dir), spec.keep_checkpoints, tracker)
    objective = Objective(spec, data, dev, recorder=recorder, on_step=on_step)
    if on_start is not None:
        code = (f"code {', '.join(spec.factories())} from {spec.code_dir()}: a study file that names code runs it"
                if spec.factories() else "")
        where = f"device {dev}" + (f", {torch.get_num_threads()} CPU threads" if dev.type == "cpu" else "")
        on_start(study, max(spec.n_trials - budget_used(study)[0], 0),
                 [f"data {data.describe()}", where, *filter(None, [code])])
    done = False
    try:
        result = optimize(study, objective, url, spec.n_trials, timeout=spec.timeout, on_trial=on_trial,
                          recorder=recorder)
        done = budget_used(study)[0] >= spec.n_trials
        return result
    finally:
        tracker.close(study, study_done=done)


def tracking(study: optuna.Study, spec: StudySpec, device: str, url: str) -> Tracker:
    """The trackers of one worker, from `spec.track` (MLflow's parent run made once, under the study lock)."""
    if not spec.track:
        return Tracker()
    storage = _optuna.storage_of(study)
    return open_tracker(spec.track, study, spec, device, url, lambda: study_lock(storage, url, study.study_name))


def check_factories(spec: StudySpec) -> None:
    """Import every model factory the study names (from beside its file), before any trial:
    one that cannot be imported ends the run in one line."""
    if spec.factories():
        use_code_dir(spec.code_dir())
        for ref in spec.factories():
            load_factory(ref, spec.path)


def check_models(spec: StudySpec, shape: Shape) -> None:
    """Every built-in model the space may pick can take the data's images (one line if not)."""
    for model in spec.models():
        if not is_factory(model):
            try:
                planned_params(Params(model=model).model_config(shape))
            except ValueError as e:
                raise SearchError(f"{spec.path}: space.model: {e}") from None


def optimize(study: optuna.Study, objective: Callable[[optuna.Trial], float | list[float]], url: str, budget: int, *,
             timeout: float | None = None,
             on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
             recorder: Recorder | None = None) -> RunResult:
    """The trial loop: under the study lock, fail stale trials, check the shared budget and
    ask; then run the trial with heartbeats and tell. Returns when the study holds
    `budget` finished trials or `timeout` seconds have passed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    start, ran, notes = time.perf_counter(), 0, []
    recorder = recorder or Recorder(None)
    storage = _optuna.storage_of(study)
    guard = FileGuard(url)
    stale_checked = -math.inf
    with sigterm_as_interrupt(), _optuna.optimize_loop(study), storage_errors(url):
        while (deadline is None or time.monotonic() < deadline) and not _optuna.stop_requested(study):
            guard.check()
            with signals_held() as held:  # an interrupt between ask and the trial's own handler
                with study_lock(storage, url, study.study_name) as lock:  # would leave the trial RUNNING
                    # stale trials are looked for once a heartbeat interval, not before every trial as
                    # in study.optimize: a query less inside the lock, which every worker waits for
                    if time.monotonic() - stale_checked >= (_optuna.heartbeat_interval(storage) or 0):
                        optuna.storages.fail_stale_trials(study)  # no-op without heartbeats
                        stale_checked = time.monotonic()
                    done, running = budget_used(study)
                    trial = study.ask() if done + running < budget else None
                    if trial is not None and isinstance(study.sampler, optuna.samplers.QMCSampler):
                        # QMC numbers its points in a study attribute, read then written when the trial
                        # first samples: taken here, under the lock, no two workers get the same point
                        # (4 workers on a journal file duplicated one trial in 12 without it)
                        trial.relative_params  # noqa: B018 - sampled for its side effect
                if trial is not None and getattr(lock, "lapsed", False):
                    # cut off from the proxy while holding its lease: another worker may have
                    # asked meanwhile, so this trial could overrun the budget: it goes back unrun
                    _fail_and_queue(study, _optuna.trial_id(trial), f"{Failure.WORKER_GONE.value}: its worker lost "
                                    "the study lock before the trial started; queued again", recorder)
                    continue
            if held:
                if trial is not None:
                    with signals_held():
                        _fail_and_retry(study, _optuna.trial_id(trial), recorder)
                raise_held(held)
            if trial is None:
                # Trials of other workers may still end, fail (and free budget) or go stale.
                if done >= budget or not running:
                    break
                unbeaten = Unbeaten.of(study)
                for t in unbeaten.dead:  # its process on this machine is gone: no heartbeat will tell
                    worker = TrialRecord.of(t).worker
                    why = (f"its process {worker} is gone" if worker else
                           "its worker never started it (cut off between ask and its first write)")
                    fail_trial(study, t.number, why, recorder)
                if unbeaten.dead:
                    continue
                interval = _optuna.heartbeat_interval(storage)
                beating = running - len(unbeaten.live) - len(unbeaten.young) - len(unbeaten.old)
                if not (unbeaten.live or unbeaten.young or (beating and interval)):
                    notes = [unbeaten.note(study, t) for t in unbeaten.old]
                    break
                time.sleep(min(1.0, interval or 1.0))
                continue
            frozen = _run_trial(study, trial, objective, recorder)
            if recorder.unsaved is not None:  # told with its value; nothing more fits on that disk
                raise recorder.unsaved
            guard.check()
            if frozen is None:  # another worker finished it first: nothing of ours to count
                continue
            ran += 1
            if on_trial is not None:
                on_trial(study, frozen)
    return RunResult(study, ran, time.perf_counter() - start, notes)


ORPHAN_AFTER_S = GRACE_FACTOR * HEARTBEAT_S  # a trial elsewhere without a heartbeat this long is reported


@dataclass(frozen=True)
class Unbeaten:
    """A study's RUNNING trials that have never recorded a heartbeat (run with --heartbeat 0,
    or on a journal storage), so no heartbeat will ever fail them if their worker dies."""

    dead: list[FrozenTrial]  # their process on this machine is gone, or they never started (long ago)
    live: list[FrozenTrial]  # their process on this machine still runs: they will end
    young: list[FrozenTrial]  # elsewhere, started moments ago (a first heartbeat may be on its way)
    old: list[FrozenTrial]  # elsewhere (or never recorded a worker), for longer: only a person can tell

    @classmethod
    def of(cls, study: optuna.Study) -> Unbeaten:
        beating = _optuna.beating_trials(_optuna.storage_of(study), _optuna.study_id(study))
        groups: dict[str, list[FrozenTrial]] = {"dead": [], "live": [], "young": [], "old": []}
        now = datetime.datetime.now()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if _optuna.trial_id(t) in beating:
                continue
            worker = TrialRecord.of(t).worker
            host, _, pid = (worker or "").rpartition(":")
            age = (now - t.datetime_start).total_seconds() if t.datetime_start else math.inf
            if host == socket.gethostname() and pid.isdigit():
                groups["live" if _alive(int(pid)) else "dead"].append(t)
            elif worker is None:  # cut off between ask and its first write: a live worker writes it at once
                groups["young" if age < ORPHAN_AFTER_S else "dead"].append(t)
            else:
                groups["young" if age < ORPHAN_AFTER_S else "old"].append(t)
        return cls(**groups)

    @staticmethod
    def note(study: optuna.Study, t: FrozenTrial) -> str:
        worker = TrialRecord.of(t).worker or "not recorded"
        return (f"trial #{t.number} is RUNNING without heartbeats (worker {worker}, started "
                f"{t.datetime_start:%Y-%m-%d %H:%M:%S}) and holds a place in the budget: if that worker is gone, "
                f"`search fail --study {study.study_name} --trial {t.number}` frees it")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def fail_trial(study: optuna.Study, number: int, why: str, recorder: Recorder | None = None) -> FrozenTrial:
    """Fail a RUNNING trial whose worker is gone (`fail_reason: worker gone: ...`) and queue its
    parameters again, as a heartbeat would have; one line for a trial that is not running."""
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if trial is None or trial.state != TrialState.RUNNING:
        state = "no such trial" if trial is None else f"trial #{number} is {trial.state.name}"
        raise SearchError(f"study {study.study_name!r}: {state}; only a RUNNING trial can be failed")
    return _fail_and_queue(study, _optuna.trial_id(trial), f"{Failure.WORKER_GONE.value}: {why}",
                           recorder or Recorder(None))


def trial_count(study: optuna.Study) -> int:
    """How many trials the study holds, counted by the database where it can (a deep copy of
    100,000 trials through `study.trials` takes half a minute)."""
    rows = _optuna.state_counts(_optuna.storage_of(study), _optuna.study_id(study))
    return sum(n for *_, n in rows) if rows is not None else len(study.get_trials(deepcopy=False))


def budget_used(study: optuna.Study) -> tuple[int, int]:
    """(finished trials that count toward the budget, trials running now): counted by the
    database in one grouped query where it can (RDB, the proxy), else from the trials."""
    rows = _optuna.state_counts(_optuna.storage_of(study), _optuna.study_id(study))
    if rows is not None:
        return (sum(n for state, reason, n in rows if counts_in_budget(state, reason)),
                sum(n for state, _, n in rows if state == "RUNNING"))
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                      TrialState.FAIL, TrialState.RUNNING))
    return (sum(counts_toward_budget(t) for t in trials),
            sum(t.state == TrialState.RUNNING for t in trials))


def _run_trial(study: optuna.Study, trial: optuna.Trial, objective: Callable[[optuna.Trial], float | list[float]],
               recorder: Recorder) -> FrozenTrial | None:
    """Run one trial and tell its outcome; None when another worker had already finished it
    (this one was paused past its heartbeats, and the trial failed and was retried meanwhile)."""
    value, state = None, TrialState.COMPLETE
    try:
        with heartbeat(_optuna.storage_of(study), _optuna.trial_id(trial)):
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                state = TrialState.PRUNED
            except TrialFailed as e:
                records.write_fail_reason(_optuna.storage_of(study), _optuna.trial_id(trial), str(e))
                state = TrialState.FAIL
        frozen = study.tell(trial, value, state=state, skip_if_finished=True)
        if frozen.state != state:  # finished elsewhere meanwhile (failed by its heartbeat): not ours to count
            raise optuna.exceptions.UpdateFinishedTrialError(f"trial #{trial.number} is finished")
    except KeyboardInterrupt:
        with signals_held():  # a second Ctrl-C must not cut the clean-up short: one stored outcome, always
            _fail_and_retry(study, _optuna.trial_id(trial), recorder)
        raise
    except optuna.exceptions.UpdateFinishedTrialError:
        warnings.warn(TrialTaken(f"trial #{trial.number} was finished by another worker while this one was paused "
                                 "past its heartbeats (its retry runs elsewhere): this worker's result is dropped "
                                 "and it goes on with the next trial"), stacklevel=2)
        return None
    except Exception as e:
        with signals_held():
            _fail_on_error(study, _optuna.trial_id(trial), e, recorder)
        raise
    recorder.finished(study, frozen)
    return frozen


def _fail_on_error(study: optuna.Study, trial_id: int, e: Exception, recorder: Recorder) -> None:
    """A trial cut short by an error the loop does not handle is not left RUNNING: the storage's
    disk full fails it `disk full` and queues it again (for the run after space is freed); any
    other error but a lost storage (which a heartbeat or the next run tells) fails it `error`."""
    disk_full = is_storage_error(e)
    if disk_full:
        if not isinstance(storage_error(e, ""), DiskFull):
            return
        reason = f"{Failure.DISK_FULL.value}: the storage's"
    else:
        reason = f"{Failure.ERROR.value}: {type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}"
    with contextlib.suppress(Exception):  # a full disk may take no write at all: the next run fails it then
        if _optuna.storage_of(study).get_trial(trial_id).state == TrialState.RUNNING:
            if disk_full:
                _fail_and_queue(study, trial_id, reason, recorder)
            else:
                records.write_fail_reason(_optuna.storage_of(study), trial_id, reason)
                _optuna.storage_of(study).set_trial_state_values(trial_id, TrialState.FAIL)


class TrialTaken(Notice):
    """A worker's result dropped: its trial had been finished by another worker meanwhile."""


def _fail_and_retry(study: optuna.Study, trial_id: int, recorder: Recorder) -> None:
    """After an interrupt: fail the trial as interrupted (unless it already finished) and
    queue its parameters again, recorded as a retry of it, for the next run to pick up."""
    with contextlib.suppress(Exception):
        if _optuna.storage_of(study).get_trial(trial_id).state == TrialState.RUNNING:
            _fail_and_queue(study, trial_id, Failure.INTERRUPTED.value, recorder)


def _fail_and_queue(study: optuna.Study, trial_id: int, reason: str, recorder: Recorder) -> FrozenTrial:
    """Fail a running trial with `reason`, queue its parameters again and write its note."""
    storage = _optuna.storage_of(study)
    records.write_fail_reason(storage, trial_id, reason)
    storage.set_trial_state_values(trial_id, TrialState.FAIL)
    failed = storage.get_trial(trial_id)
    _queue_retry(study, failed)
    recorder.finished(study, failed)
    return failed


def _queue_retry(study: optuna.Study, failed: FrozenTrial) -> None:
    """The same bookkeeping as Optuna's RetryHeartbeatStaleTrialCallback (so its
    `retried_trial_number` works), without copying the failed trial's user attributes."""
    if records.retries(failed) >= MAX_RETRY:
        return
    study.add_trial(optuna.create_trial(state=TrialState.WAITING, params=failed.params,
                                        distributions=failed.distributions, system_attrs=records.retry_attrs(failed)))


@dataclass(frozen=True)
class Deleted:
    study: str
    trials: int
    files: int  # checkpoints and report images removed from the artifact store


def delete_study(name: str, url: str, artifacts: str | None = None, *, yes: bool = False) -> Deleted:
    """Delete a stored study and the files its trials keep in the artifact store, under the
    study lock; without `yes`, one line saying what would go. A study with RUNNING trials is
    refused: its run would lose them (a trial whose worker is gone: `search fail` it first)."""
    study = load_stored_study(name, url)
    storage = _optuna.storage_of(study)
    with storage_errors(url), study_lock(storage, url, name):
        running = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
        if running:
            listed = ", ".join(f"#{n}" for n in running[:5]) + (" ..." if len(running) > 5 else "")
            raise SearchError(f"study {name!r} in {mask_url(url)} has {len(running)} RUNNING trial(s) ({listed}): "
                              f"stop its run first; a trial whose worker is gone: `search fail --study {name} "
                              f"--trial {running[0]}`")
        files = artifact_ids(study)
        n_trials = len(study.get_trials(deepcopy=False))
        if not yes:
            raise SearchError(f"would delete study {name!r} from {mask_url(url)}: {n_trials} trials and {len(files)} "
                              "stored files (checkpoints, report images), for good: add --yes to delete it")
        store = open_store(artifact_dir(url, artifacts), create=False)
        optuna.delete_study(study_name=name, storage=storage)
    removed = 0
    for artifact_id in files:  # after the study: never a study without its files
        with contextlib.suppress(Exception):  # already gone
            if store is not None:
                store.remove(artifact_id)
                removed += 1
    return Deleted(name, n_trials, removed)


DRY_RUN_SETS = ("n_trials=2", "epochs=1", "train_size=2000")  # what `search run --dry-run` sets first


@contextlib.contextmanager
def dry_run_storage() -> Iterator[str]:
    """A SQLite storage in a temporary folder, removed afterwards with its checkpoints: a dry run
    runs the study file's whole path (data, models, trials, workers) and locks nothing real."""
    with tempfile.TemporaryDirectory(prefix="search-dry-run-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'dry-run.db'}"


def all_studies(url: str) -> list[dict]:
    """Every study in the storage, as `study_facts` describes it (what `search studies` lists)."""
    storage = open_storage(url, create=False)
    with storage_errors(url):
        return [study_facts(optuna.load_study(study_name=name, storage=storage))
                for name in optuna.get_all_study_names(storage)]


__all__ = ["DRY_RUN_SETS", "Deleted", "MAX_WORKERS", "ORPHAN_AFTER_S", "RunOptions", "RunResult", "TrialTaken",
           "Unbeaten", "all_studies", "budget_used", "check_factories", "check_models", "delete_study",
           "dry_run_storage", "fail_trial", "load_stored_study", "open_study", "optimize", "run_study", "tracking", "trial_count"]
