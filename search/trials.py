"""Stored trials -> typed facts: why a trial stopped, its metrics, its parameters, which
trials are best. The stored keys themselves are search/records.py's."""

from __future__ import annotations

import enum
import heapq
import math
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search import _optuna
from search.errors import SearchError
from search.params import Params
from search.records import StudyRecord, TrialRecord, curve, fail_reason

__all__ = ["Failure", "TrialFailed", "best_first", "best_or_none", "best_trial", "counts_in_budget", "counts_toward_budget",
           "directions",
           "failure_in", "failure_of", "feasible", "last_value", "metric_of", "params_of", "pareto_front", "primary", "rank_key", "ranked",
           "study_facts", "trial_row", "trial_seconds"]


class Failure(enum.Enum):
    """Why a trial failed. Stored as the `fail_reason` attribute, '<value>: <detail>'."""

    DIVERGED = "diverged"  # the training loss became NaN or infinite
    OUT_OF_MEMORY = "out of memory"  # the device ran out of memory while training
    TOO_LARGE = "too large"  # refused before training: the model cannot fit in memory
    INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM, or the worker's parent died
    MODEL = "model"  # the user's model factory raised, or built something that is not a classifier
    WORKER_GONE = "worker gone"  # its process died without heartbeats to tell (found, or `search fail`)
    DISK_FULL = "disk full"  # the storage's disk filled mid-trial: queued again for the run after space is freed
    ERROR = "error"  # an error the service does not handle ended the run (not queued: it would meet it again)

    @property
    def counts(self) -> bool:
        """A finished result (it counts toward the budget), or a cut-off run to retry."""
        return self not in (Failure.INTERRUPTED, Failure.WORKER_GONE, Failure.DISK_FULL, Failure.ERROR)


class TrialFailed(Exception):
    """A trial that ended without a value, for a known reason."""

    def __init__(self, failure: Failure, detail: str = "") -> None:
        super().__init__(f"{failure.value}: {detail}" if detail else failure.value)
        self.failure = failure


def failure_of(trial: FrozenTrial) -> Failure | None:
    """The recorded reason of a failed trial (None: failed by a dead worker, or not failed)."""
    return failure_in(fail_reason(trial))


def failure_in(reason: str | None) -> Failure | None:
    """The Failure a stored fail_reason names ('<value>' or '<value>: <detail>'), if any."""
    text = str(reason or "")
    return next((f for f in Failure if text == f.value or text.startswith(f.value + ":")), None)


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """Finished trials count; one cut off by an interrupt or a crash does not (it is retried)."""
    return counts_in_budget(trial.state.name, fail_reason(trial) if trial.state == TrialState.FAIL else None)


def counts_in_budget(state: str, reason: str | None) -> bool:
    """Whether a trial in `state` (a TrialState name) with that fail_reason counts toward the budget."""
    if state in ("COMPLETE", "PRUNED"):
        return True
    failure = failure_in(reason) if state == "FAIL" else None
    return failure is not None and failure.counts


# ---------------------------------------------------------------- metrics


def trial_seconds(trial: FrozenTrial) -> float:
    """Training and evaluation time inside the trial (0 for one that never finished an epoch)."""
    return float(sum(curve(trial, "epoch_seconds")))


def metric_of(trial: FrozenTrial, name: str) -> float | None:
    """Any metric of search/goal.py's METRICS as the trial measured it after its last epoch,
    whether or not the study optimised it (None where it was not recorded)."""
    if name == "train_seconds":
        c = curve(trial, "epoch_train_seconds")
        return round(sum(c), 4) if c else None
    if name == "n_params":
        n = TrialRecord.of(trial).n_params
        return float(n) if n is not None else None
    c = curve(trial, name)
    return c[-1] if c else None


def primary(trial: FrozenTrial) -> float | None:
    """The trial's (first) objective value; None when it has none."""
    return trial.values[0] if trial.values else None


def feasible(trial: FrozenTrial) -> bool:
    """Within every floor and ceiling of its study (always, for a study without them)."""
    return all(v <= 0 for v in trial.constraints.values())


def last_value(trial: FrozenTrial) -> float | None:
    """The trial's value, or for a pruned one the last value it reported."""
    if trial.values:
        return trial.values[0]
    if trial.intermediate_values:
        return trial.intermediate_values[max(trial.intermediate_values)]
    return None


# ---------------------------------------------------------------- parameters and study facts


def params_of(trial: FrozenTrial) -> Params:
    """Every parameter of a stored trial, typed (the config recorded at its start overlaid
    with the sampled values; studies stored before per-layer axes read the same way)."""
    return Params.from_trial(TrialRecord.of(trial).config, trial.params, f"trial #{trial.number}")


def directions(study: optuna.Study) -> list[str]:
    return [d.name.lower() for d in study.directions]


def best_first(study: optuna.Study) -> int:
    """-1 when the first objective is maximised, 1 when minimised: `sign * value` sorts best first."""
    return -1 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """The feasible trials no other trial beats in every objective, best first objective first
    (empty for a single-objective study)."""
    if len(study.directions) < 2:
        return []
    sign = best_first(study)
    return sorted(study.best_trials, key=lambda t: (sign * t.values[0], t.number))


def best_or_none(study: optuna.Study) -> FrozenTrial | None:
    """The best feasible trial; for several objectives, the Pareto trial best in the first
    (what export, train and report use unless told another trial)."""
    if len(study.directions) > 1:
        return next(iter(pareto_front(study)), None)
    try:
        return study.best_trial
    except ValueError:  # nothing complete, or nothing feasible yet
        return None


def best_trial(study: optuna.Study) -> FrozenTrial:
    best = best_or_none(study)
    if best is None:
        complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
        if complete:
            raise SearchError(f"study {study.study_name!r}: none of its {len(complete)} complete trials meets "
                              f"{StudyRecord.of(study).goal}: run more trials, or export one with --trial N")
        raise SearchError(f"study {study.study_name!r} has no completed trial yet: run it first "
                          f"(search run --study {study.study_name})")
    return best


def study_facts(study: optuna.Study) -> dict[str, Any]:
    """A study's record, trial counts by state and best value(s), as `search studies/show --json`
    print them: counted by the database where it can (RDB, the proxy), so a study of 100,000
    trials answers in a fraction of a second instead of reading every trial (half a minute)."""
    states = {s.name: 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    storage, sid = _optuna.storage_of(study), _optuna.study_id(study)
    rows = _optuna.state_counts(storage, sid)
    constrained = _optuna.has_constraints(storage, sid)
    trials = study.get_trials(deepcopy=False) if rows is None or constrained is None else []
    if rows is None:
        rows = [(t.state.name, None, 1) for t in trials]
    for state, _, n in rows:
        states[state] = states.get(state, 0) + n
    best = best_or_none(study)
    record = StudyRecord.of(study)
    return {
        "study": study.study_name,
        "direction": ", ".join(directions(study)),
        "metrics": study.metric_names or [record.metric],
        "constrained": constrained if constrained is not None else any(t.constraints for t in trials),
        **record.identity(),
        "n_trials": sum(states.values()),
        "states": states,
        "best_value": primary(best) if best else None,
        "best_values": best.values if best else None,
        "best_trial": best.number if best else None,
    }


def ranked(study: optuna.Study, top: int = 0) -> list[FrozenTrial]:
    """All trials in order of number; with `top`, the `top` best complete trials, best first:
    feasible before infeasible, then by the first objective. (Optuna gives a pruned trial
    its last reported value, which in a cost-aware study is not the objective's.) On an RDB
    storage the database orders them and only those read are loaded: flat in the study's size."""
    if top:
        best = _ranked_by_database(study, top)
        if best is not None:
            return best
    trials = study.get_trials(deepcopy=False)
    if not top:
        return trials
    sign = best_first(study)
    done = (t for t in trials if t.state == TrialState.COMPLETE and t.values and not math.isnan(t.values[0]))
    return heapq.nsmallest(top, done, key=lambda t: rank_key(t, sign))  # O(n log top)


def rank_key(trial: FrozenTrial, sign: int) -> tuple[bool, float, int]:
    """The order of `ranked`: smaller is better (`sign` is `best_first(study)`)."""
    return (not feasible(trial), sign * trial.values[0], trial.number)


def _ranked_by_database(study: optuna.Study, top: int) -> list[FrozenTrial] | None:
    """`ranked(study, top)` from the database's order: ids a page at a time, each trial read
    (~5 ms on SQLite) until `top` feasible ones are in hand: `top` reads unless the best trials
    miss the study's constraints."""
    storage, sid = _optuna.storage_of(study), _optuna.study_id(study)
    maximize, page = best_first(study) < 0, max(top, 50)
    good: list[FrozenTrial] = []
    bad: list[FrozenTrial] = []
    offset = 0
    while len(good) < top:
        ids = _optuna.best_trial_ids(storage, sid, maximize, page, offset)
        if ids is None:
            return None
        for trial_id in ids:
            t = storage.get_trial(trial_id)
            (good if feasible(t) else bad).append(t)
            if len(good) == top:
                break
        if len(ids) < page:
            break
        offset += page
    return (good + bad)[:top]


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    """One trial as `search show --json` prints it."""
    failure = failure_of(trial)
    return {"number": trial.number, "state": trial.state.name, "value": primary(trial), "values": trial.values,
            "feasible": feasible(trial),
            "last_value": last_value(trial), "epochs": len(trial.intermediate_values),
            "seconds": round(trial_seconds(trial), 2), "params": trial.params,
            "fail_reason": fail_reason(trial),
            "failure": failure.value if failure else None}
