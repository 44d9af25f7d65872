"""Trials and studies <-> the keys the service stores: the one module that names them.

A trial's user attributes are written when it starts (`TrialStart`), after training
(`write_outcome`: curves and numerics) or when it fails (`write_fail_reason`), and read
back whole as a `TrialRecord`. A study's user attributes are a `StudyRecord`: its identity
(dataset, goal, seed, training images) fixed when the study is created, the rest refreshed
from the study file on every run, the report's note added by `search report`, the last ensemble by `search ensemble`. Floors and
ceilings are stored with their metric (`bounds`); studies stored before that read them
back from the goal's text, here and nowhere else. Optuna's own retry bookkeeping (system
attributes) is named here too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar, Mapping, Sequence

import optuna
from optuna.trial import FrozenTrial

from models import Shape
from search import _optuna
from search.data import DEFAULT_DATASET, TRAIN_POOL
from search.fit import EpochResult
from search.goal import BOUND_OPS, Bound

__all__ = ["CONFIG", "CURVES", "FAILED_TRIAL", "FAIL_REASON", "PRECISION", "RETRY_HISTORY", "CheckpointParts", "StudyRecord",
           "TrialRecord", "TrialStart", "checkpoint", "checkpoint_parts", "curve", "curve_point", "fail_reason",
           "retries", "retry_attrs", "retry_of", "take_join_number", "member_label", "write_fail_reason", "write_n_params", "write_ensemble", "write_outcome",
           "write_report_note"]

JOINS = "mnist_search:joins"  # study system attribute: how many processes have opened the study to run it


def take_join_number(study: optuna.Study, lock: Any) -> int:
    """A number no other process opening this study gets (0 for the first), under the study
    lock `lock` (a context manager): workers on other hosts, started by one command each at
    the same moment (a SLURM array, a Kubernetes Job), seed their samplers apart with it."""
    storage, study_id = _optuna.storage_of(study), _optuna.study_id(study)
    with lock:
        n = int(_optuna.study_system_attr(storage, study_id, JOINS, 0))
        storage.set_study_system_attr(study_id, JOINS, n + 1)
    return n


# ---------------------------------------------------------------- trials

CONFIG = "config"  # every parameter of a trial: a system attribute (a user attribute in studies stored before)
FAIL_REASON = "fail_reason"  # why a trial failed: '<Failure value>: <detail>'
PRECISION = "precision"  # the numerics fit chose ('fp32', 'channels_last+bf16', ...)
# Optuna's retry bookkeeping (RetryHeartbeatStaleTrialCallback's system attributes)
FAILED_TRIAL = "failed_trial"  # on a retry: the number of the trial it re-runs
RETRY_HISTORY = "retry_history"  # on a retry: every trial number it re-runs, oldest first

# Per-epoch curves stored as user attributes (one list each), and the EpochResult field each holds.
CURVES: dict[str, str] = {"train_loss": "train_loss", "train_loss_sum": "train_loss_sum", "val_loss": "val_loss",
                          "val_accuracy": "val_accuracy", "epoch_seconds": "seconds",
                          "epoch_train_seconds": "train_seconds"}


@dataclass(frozen=True)
class TrialStart:
    """What a trial records as it starts, before any training: enough to retrain it."""

    config: dict[str, Any]  # every parameter, fixed or sampled (Params.active())
    seed: int
    device: str
    n_params: int | None  # None for the user's factory until it is built (write_n_params)
    worker: str  # host:pid
    retry_of: int | None = None  # a re-run of this trial (its worker died or was stopped)

    def write(self, trial: optuna.Trial) -> None:
        values = asdict(self)
        # the config a system attribute: one JSON line of ~400 characters made the dashboard's
        # trial page 2,967 px wide; the trial's note shows it whole. One transaction for both.
        config = values.pop(CONFIG)
        _optuna.set_user_attrs(trial, {key: value for key, value in values.items() if value is not None},
                               system={CONFIG: config})


def write_n_params(trial: optuna.Trial, n_params: int) -> None:
    """The parameter count of a model known only once built (the user's factory)."""
    trial.set_user_attr("n_params", n_params)


def curve_point(result: EpochResult) -> dict[str, float]:
    """One epoch as the curves store it (5 digits)."""
    return {name: round(getattr(result, attr), 5) for name, attr in CURVES.items()}


def write_outcome(trial: optuna.Trial, curves: Mapping[str, list[float]], precision: str | None) -> None:
    """After training (or its interruption): one write per curve per trial, not per epoch
    (storage round trips dominate a short trial), and the numerics fit chose."""
    attrs: dict[str, Any] = dict(curves) if any(curves.values()) else {}
    if precision is not None:
        attrs[PRECISION] = precision
    _optuna.set_user_attrs(trial, attrs)


def write_fail_reason(storage: optuna.storages.BaseStorage, trial_id: int, reason: str) -> None:
    storage.set_trial_user_attr(trial_id, FAIL_REASON, reason)


def retry_of(system_attrs: Mapping[str, Any]) -> int | None:
    """The trial a running trial re-runs, from Optuna's system attributes (None: a new trial)."""
    return system_attrs.get(FAILED_TRIAL)


def retry_attrs(failed: FrozenTrial) -> dict[str, Any]:
    """The system attributes of a retry of `failed`, as Optuna's RetryHeartbeatStaleTrialCallback
    writes them (so that its `retried_trial_number` works)."""
    history = [*failed.system_attrs.get(RETRY_HISTORY, []), failed.number]
    return {FAILED_TRIAL: failed.system_attrs.get(FAILED_TRIAL, failed.number), RETRY_HISTORY: history}


def retries(trial: FrozenTrial) -> int:
    """How often this trial's parameters have been re-run before it."""
    return len(trial.system_attrs.get(RETRY_HISTORY, []))


@dataclass(frozen=True)
class TrialRecord:
    """Everything the service stored on a trial, typed (None where it was never written:
    a trial cut off before it started, or stored by an older version)."""

    config: dict[str, Any]
    seed: int | None
    device: str | None
    n_params: int | None
    worker: str | None
    retry_of: int | None
    precision: str | None
    fail_reason: str | None
    curves: dict[str, list[float]]

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialRecord:
        a = trial.user_attrs
        return cls(config=dict(trial.system_attrs.get(CONFIG) or a.get(CONFIG) or {}), seed=a.get("seed"), device=a.get("device"),
                   n_params=a.get("n_params"), worker=a.get("worker"), retry_of=a.get("retry_of"),
                   precision=a.get(PRECISION), fail_reason=a.get(FAIL_REASON),
                   curves={name: list(a.get(name) or []) for name in CURVES})


def curve(trial: FrozenTrial, name: str) -> list[float]:
    """One stored per-epoch curve of a trial (empty before its first epoch)."""
    if name not in CURVES:
        raise KeyError(f"unknown curve {name!r}: expected one of {', '.join(CURVES)}")
    return list(trial.user_attrs.get(name) or [])


def fail_reason(trial: FrozenTrial) -> str | None:
    """Why a failed trial failed, as stored ('<Failure value>: <detail>'); None when not recorded."""
    return trial.user_attrs.get(FAIL_REASON)


# ---------------------------------------------------------------- studies


@dataclass(frozen=True)
class StudyRecord:
    """Study-level facts stored with the study, so that show, export, train, the report and
    the dashboard need no study file. Defaults are what a study stored before a key existed
    reads as."""

    # identity: fixed when the study is created; a run whose file disagrees is refused
    dataset: str | dict[str, Any] = DEFAULT_DATASET  # a known name, or the user's files (DataSource.stored())
    data: dict[str, Any] = field(default_factory=dict)  # shape, classes, mean, std, images (Dataset.facts())
    metric: str = "val_accuracy"  # the first objective
    goal: str = "maximize val_accuracy"  # every objective and bound, as search.goal.Goal prints it
    seed: int = 0
    train_size: int | None = TRAIN_POOL  # None: all training images (a study stored before: 55,000)
    # definition: changed only with --allow-change (search/identity.py), each change logged
    space: dict[str, str] = field(default_factory=dict)  # axis -> how it is searched
    sampler: str = "-"  # its name, and its options: 'tpe (n_startup_trials=5)'
    pruner: str = "-"
    study_path: str = ""  # the study file, resolved (another file here under the same name is refused)
    changes: tuple[str, ...] = ()  # 'when, before trial #N: space.lr: 0.001..0.1 log -> 0.0001..0.1 log'
    # description: the study file's latest words, written on every run
    study_file: str = "-"
    description: str = ""
    keep_checkpoints: int = 3
    code_dir: str = ""  # where the study's model factories are imported from (its file's folder)
    bounds: tuple[Bound, ...] = ()  # floors and ceilings, each with its metric
    # written by `search report`: its summary, shown in the dashboard's note
    report_note: str = ""
    # written by `search ensemble`: its members and accuracies (search.ensembles.Chosen.stored())
    ensemble: dict[str, Any] = field(default_factory=dict)

    IDENTITY: ClassVar[tuple[str, ...]] = ("dataset", "data", "metric", "goal", "seed", "train_size")
    DEFINITION: ClassVar[tuple[str, ...]] = ("space", "sampler", "pruner", "study_path")
    DESCRIPTION: ClassVar[tuple[str, ...]] = ("study_file", "description", "keep_checkpoints", "code_dir", "bounds")

    @classmethod
    def of(cls, study: optuna.Study) -> StudyRecord:
        attrs = study.user_attrs
        values = {f.name: attrs[f.name] for f in fields(cls) if f.name in attrs}
        values["bounds"] = (tuple(Bound(m, kind, float(v)) for m, kind, v in attrs["bounds"]) if "bounds" in attrs
                            else _bounds_in_goal(str(values.get("goal", ""))))
        values["changes"] = tuple(values.get("changes", ()))
        return cls(**values)

    def stored(self, name: str) -> Any:
        """A field as it is stored (bounds as [metric, kind, value] lists)."""
        value = getattr(self, name)
        return [[b.metric, b.kind, b.value] for b in value] if name == "bounds" else value

    def train_images(self) -> int | None:
        """How many training images each trial has: train_size, or all the data's when that
        is fewer (or train_size is None); None when neither is known."""
        pool = self.data.get("images", [None])[0]
        return pool if self.train_size is None or (pool is not None and pool < self.train_size) else self.train_size

    def mismatch(self, study: optuna.Study) -> tuple[str, Any, Any] | None:
        """(key, stored, ours) for the first identity key the stored study holds otherwise
        (`data` only once both sides have read it; train_size as the images it leaves)."""
        have = study.user_attrs

        def same(k: str) -> bool:
            if k == "train_size":
                theirs = replace(self, train_size=have[k], data=self.data or have.get("data") or {})
                return theirs.train_images() == replace(theirs, train_size=self.train_size).train_images()
            return have[k] == self.stored(k) or (k == "data" and not self.data)

        return next(((k, have[k], self.stored(k)) for k in self.IDENTITY if k in have and not same(k)), None)

    @classmethod
    def stored_definition(cls, study: optuna.Study) -> dict[str, Any]:
        """The definition keys the stored study holds (one stored before a key existed lacks it)."""
        return {k: study.user_attrs[k] for k in cls.DEFINITION if k in study.user_attrs}

    def write(self, study: optuna.Study, changes: Sequence[str] = ()) -> None:
        """Store the identity and definition keys the study lacks, the definition that
        changed when `changes` (lines for the study's log, search/identity.py) say so, and
        every description key that changed."""
        have = study.user_attrs
        for key in self.IDENTITY:
            if key not in have and (key != "data" or self.data):
                study.set_user_attr(key, self.stored(key))
        for key in self.DEFINITION:
            if key not in have or (changes and have[key] != self.stored(key)):
                study.set_user_attr(key, self.stored(key))
        if changes:
            study.set_user_attr("changes", [*have.get("changes", []), *changes])
        for key in self.DESCRIPTION:
            if have.get(key) != self.stored(key):  # the file may have grown since the study began
                study.set_user_attr(key, self.stored(key))

    def identity(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.IDENTITY}


def write_report_note(study: optuna.Study, text: str) -> None:
    study.set_user_attr("report_note", text)


def write_ensemble(study: optuna.Study, chosen: Mapping[str, Any]) -> None:
    """The ensemble `search ensemble` chose last (the report and the dashboard note show it)."""
    study.set_user_attr("ensemble", dict(chosen))


def member_label(member: Mapping[str, Any], studies: Sequence[str] = ()) -> str:
    """An ensemble member as its tables name it: '#25', or 'mnist-vgg #3' where the ensemble
    drew on several studies (`studies`, as Chosen.stored() keeps them)."""
    return f"{member['study']} #{member['trial']}" if len(studies) > 1 and member.get("study") else f"#{member['trial']}"


def _bounds_in_goal(goal: str) -> tuple[Bound, ...]:
    """A study stored before bounds had their own key: 'minimize train_seconds subject to
    val_accuracy >= 0.991, ...' (Goal's text) -> its bounds."""
    _, sep, rest = goal.partition(" subject to ")
    bounds = []
    for part in rest.split(", ") if sep else []:
        metric, op, value = part.split()
        bounds.append(Bound(metric, BOUND_OPS[op], float(value)))
    return tuple(bounds)


# ---------------------------------------------------------------- checkpoint files


def checkpoint(state_dict: Mapping[str, Any], params: Mapping[str, Any], dataset: str | dict[str, Any], seed: int,
               data: Mapping[str, Any], code: str | None, **more: Any) -> dict[str, Any]:
    """A checkpoint file's contents (a study's kept checkpoint, `search train --save`):
    the weights, the parameters that rebuild the network, the data it trained on and that
    data's facts (shape, class names, mean and std: what a user feeding it images needs),
    the folder its model factory is imported from, the seed, and what more the writer adds
    (`source`, `summary`). Loadable with weights_only=True."""
    return {"state_dict": dict(state_dict), "params": dict(params), "dataset": dataset, "data": dict(data),
            **({"code": code} if code else {}), "seed": seed, **more}


@dataclass(frozen=True)
class CheckpointParts:
    weights: dict[str, Any]
    params: Any
    data: dict[str, Any]  # empty in a checkpoint written before it had the data's facts (MNIST's 28x28, 10 classes)
    code: str | None

    @property
    def shape(self) -> Shape:
        """The input and classes the network was built for."""
        if not self.data:
            return Shape()
        channels, height, width = self.data["shape"]
        return Shape(channels, height, width, len(self.data["classes"]))


def checkpoint_parts(blob: Any) -> CheckpointParts | None:
    """What rebuilds a loaded checkpoint's network; None when it is not one of ours."""
    if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), dict) or "params" not in blob:
        return None
    data, code = blob.get("data"), blob.get("code")
    return CheckpointParts(blob["state_dict"], blob["params"], data if isinstance(data, dict) else {},
                           code if isinstance(code, str) else None)
