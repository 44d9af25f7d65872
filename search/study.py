"""The service: a validated study + a storage -> trials run, stored and summarised."""

from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from search.data import load_dataset
from search.device import resolve_device
from search.errors import SearchError
from search.objective import Objective
from search.space import grid_space
from search.spec import StudySpec
from search.storage import mask_url, open_storage
from search.train import Diverged

# Study-level facts stored with the study, so that show/export/train need no study file.
STUDY_ATTRS = ("dataset", "metric", "seed", "train_size")


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the running trial fails as interrupted, nothing else is lost."""


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    conf = spec.sampler
    seed = conf.get("seed", seed)
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


def open_study(spec: StudySpec, url: str, seed: int | None = None) -> optuna.Study:
    """Create the study or load it to resume; refuse if the stored one is a different experiment."""
    storage = open_storage(url)
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
    if "study_file" not in have:
        study.set_user_attr("study_file", spec.path)
    # Seeding the sampler with the number of trials so far keeps a resumed run from
    # replaying the random start-up suggestions of the first run.
    sampler = make_sampler(spec, seed + len(study.trials))
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
    interrupted: bool = False


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
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


def run_study(
    spec: StudySpec,
    url: str,
    *,
    device: str = "auto",
    data_dir: str | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    seed: int | None = None,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    on_start: Callable[[optuna.Study, int], None] | None = None,
) -> RunResult:
    """Run trials until the study holds `n_trials` finished trials (the file's budget by
    default) or `timeout` seconds pass. Interrupts leave every finished trial stored and
    no trial RUNNING; they are re-raised after cleaning up."""
    dev = resolve_device(device)
    data = load_dataset(spec.dataset, data_dir, dev)  # fail on bad data before touching storage
    study = open_study(spec, url, seed)
    if seed is not None:
        spec = replace(spec, seed=seed)
    objective = Objective(spec, data, dev)
    budget = n_trials if n_trials is not None else spec.n_trials
    timeout = timeout if timeout is not None else spec.timeout
    done = sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))
    remaining = max(budget - done, 0)
    if on_start is not None:
        on_start(study, remaining)

    def stop_at_budget(study: optuna.Study, trial: FrozenTrial) -> None:
        if on_trial is not None:
            on_trial(study, trial)
        if sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False)) >= budget:
            study.stop()

    start = time.perf_counter()
    before = len(study.trials)
    interrupted = False
    if remaining:
        with _sigterm_as_interrupt():
            try:
                study.optimize(objective, n_trials=remaining, timeout=timeout, callbacks=[stop_at_budget],
                               catch=(Diverged, torch.OutOfMemoryError), gc_after_trial=False)
            except KeyboardInterrupt:
                interrupted = True
                raise
            finally:
                _fail_orphan(study, objective.current_trial_id)
    return RunResult(study, len(study.trials) - before, time.perf_counter() - start, interrupted)


def _fail_orphan(study: optuna.Study, trial_id: int | None) -> None:
    """An interrupt that lands between Optuna's bookkeeping steps can leave our trial
    RUNNING; finish it as failed so no zombie stays behind."""
    if trial_id is None:
        return
    storage = study._storage
    with contextlib.suppress(Exception):
        if storage.get_trial(trial_id).state == TrialState.RUNNING:
            storage.set_trial_user_attr(trial_id, "fail_reason", "interrupted")
            storage.set_trial_state_values(trial_id, TrialState.FAIL)


# ---------------------------------------------------------------- summaries


def study_facts(study: optuna.Study) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    states = {s.name: 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    best = _best(study)
    return {
        "study": study.study_name,
        "direction": study.direction.name.lower(),
        **{k: study.user_attrs.get(k) for k in STUDY_ATTRS},
        "n_trials": len(trials),
        "states": states,
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
    }


def _best(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def best_trial(study: optuna.Study) -> FrozenTrial:
    best = _best(study)
    if best is None:
        raise SearchError(f"study {study.study_name!r} has no completed trial yet: run it first "
                          f"(search run --study {study.study_name})")
    return best


def all_studies(url: str) -> list[dict[str, Any]]:
    storage = open_storage(url, create=False)
    return [study_facts(optuna.load_study(study_name=s.study_name, storage=storage))
            for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
