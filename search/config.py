"""Stored trial <-> config file: the codec of what `search export` writes and `search train` reads.

A config is self-contained (dataset, seed, training images, numerics, every parameter,
where it came from), so retraining needs neither the study file nor the storage. An
ensemble config (`search ensemble`) lists such configs under `members:`, each with the
weight its member has in the ensemble's average.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from search import _check
from search._files import read_yaml
from search.data import DEFAULT_DATASET, DataSource, parse_dataset, parse_train_size, stored_source
from search.errors import SearchError
from search.params import Params, is_factory
from search.precision import PRECISIONS
from search.records import StudyRecord, TrialRecord
from search.trials import best_trial, params_of, primary

CONFIG_KEYS = ("dataset", "seed", "train_size", "precision", "code", "params", "source")
ENSEMBLE_KEYS = ("members", "source")
MAX_MEMBERS = 100

__all__ = ["CONFIG_KEYS", "ENSEMBLE_HEADER", "ENSEMBLE_KEYS", "EXPORT_HEADER", "EnsembleJob", "Member", "TrainJob", "best_config", "best_job", "config_of", "config_text",
           "ensemble_config", "job_of", "parse_config",
           "load_config", "load_job", "parse_job", "source_of", "trial_seed", "write_config"]


def trial_seed(study_seed: int, trial_number: int) -> int:
    """Trial k of a study seeded s trains with seed s + k (weights, batches, augmentation)."""
    return study_seed + trial_number


@dataclass(frozen=True)
class TrainJob:
    """A config file as data: what `search train` retrains."""

    dataset: DataSource
    params: Params
    seed: int
    train_size: int | None = None  # the first N training images; None: all of them
    source: dict[str, Any] = field(default_factory=dict)
    # The numerics the trial trained with (search/precision.py picks them by timing, which
    # can differ between runs); a retrain on the same kind of device uses the same ones.
    precision: str | None = None
    # The folder the model factory is imported from (`model: module:callable`), absolute.
    code: str | None = None


@dataclass(frozen=True)
class Member:
    """One member of an ensemble: the config that retrains it, and how many times greedy
    selection picked it (its weight in the average of the members' softmax)."""

    job: TrainJob
    weight: int = 1


@dataclass(frozen=True)
class EnsembleJob:
    """An ensemble config as data: its members, and where it came from (study, size, the
    ensemble's validation accuracy)."""

    members: tuple[Member, ...]
    source: dict[str, Any] = field(default_factory=dict)


def best_job(study: optuna.Study, trial_number: int | None = None) -> TrainJob:
    """The best trial (or trial `trial_number`) as a job, ready to retrain or to write out."""
    trial = best_trial(study) if trial_number is None else _complete_trial(study, trial_number)
    return job_of(trial, StudyRecord.of(study), study.study_name)


def job_of(trial: optuna.trial.FrozenTrial, info: StudyRecord, study_name: str) -> TrainJob:
    """A stored trial as the job that retrains it (what its note shows and export writes)."""
    source = source_of(study_name, trial.number, info.metric, primary(trial))
    record = TrialRecord.of(trial)
    seed = record.seed if record.seed is not None else trial_seed(info.seed, trial.number)
    params = params_of(trial)
    return TrainJob(dataset=stored_source(info.dataset), params=params, seed=int(seed), train_size=info.train_size,
                    source=source, precision=record.precision,
                    code=info.code_dir or None if is_factory(params.model) else None)


def source_of(study: str, trial: int, metric: str, value: float | None) -> dict[str, Any]:
    """Where a config or checkpoint came from: its study, trial and value, as configs write it."""
    return {"study": study, "trial": trial, "metric": metric, "value": value}


def best_config(study: optuna.Study, trial_number: int | None = None) -> dict[str, Any]:
    """The config of the best trial (or of trial `trial_number`), as `search export` writes it."""
    return config_of(best_job(study, trial_number))


def config_of(job: TrainJob) -> dict[str, Any]:
    return {"dataset": job.dataset.stored(), "seed": job.seed,
            **({"train_size": job.train_size} if job.train_size is not None else {}),
            **({"precision": job.precision} if job.precision else {}),
            **({"code": job.code} if job.code else {}),
            "params": job.params.active(), "source": job.source}


def _complete_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise SearchError(f"study {study.study_name!r} has no trial #{number} (it has trials 0..{len(trials) - 1})")
    trial = trials[number]
    if trial.state != optuna.trial.TrialState.COMPLETE:
        raise SearchError(f"trial #{number} of {study.study_name!r} is {trial.state.name.lower()}, not complete: "
                          "export a completed trial")
    return trial


class _ConfigDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Mappings as blocks, lists on one line: `widths: [512, 256]`. LibYAML's emitter where
    PyYAML has it: a trial's note dumps its config, 0.34 -> 0.08 ms."""


class _Blocks(list):
    """A list written one item per line (an ensemble's members), not on one line."""


_ConfigDumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
_ConfigDumper.add_representer(_Blocks, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=False))


def config_text(config: dict[str, Any]) -> str:
    """A config as YAML, per-layer lists on one line ([512, 256])."""
    return yaml.dump(config, Dumper=_ConfigDumper, sort_keys=False)


EXPORT_HEADER = "# Exported by `search export`"
ENSEMBLE_HEADER = "# Chosen by `search ensemble`"


def ensemble_config(job: EnsembleJob) -> dict[str, Any]:
    """An ensemble config as a mapping: each member's config with its weight first."""
    return {"members": _Blocks({"weight": m.weight, **config_of(m.job)} for m in job.members), "source": job.source}


def write_config(config: dict[str, Any], out: Path, shown: Path | None = None, header: str = EXPORT_HEADER) -> None:
    """The config as YAML under a header that says how to retrain it (naming `shown`, where
    the file will be once renamed into place: search.outputs.written_together)."""
    header = f"{header}; retrain with: search train --config {shown or out}\n"
    try:
        out.write_text(header + config_text(config))
    except OSError as e:
        raise SearchError(f"cannot write {shown or out}: {e.strerror}") from None


def load_config(path: Path) -> TrainJob:
    """A config file checked whole (one line naming the file and key on any mistake) -> the job."""
    job = load_job(path)
    if isinstance(job, EnsembleJob):
        raise SearchError(f"{path}: an ensemble config (members:) where one model's config is expected: export one "
                          "trial with `search export --trial N`")
    return job


def load_job(path: Path) -> TrainJob | EnsembleJob:
    """A config or an ensemble config, checked whole -> what `search train` retrains."""
    if not path.exists():
        raise SearchError(f"config {path} does not exist: write one with `search export --out {path}`")
    return parse_job(read_yaml(path, "config"), path)


def parse_job(doc: Any, path: Path) -> TrainJob | EnsembleJob:
    """A mapping with `members:` as an ensemble, any other as one config (`parse_config`)."""
    if not isinstance(doc, dict) or "members" not in doc:
        return parse_config(doc, path)
    where = str(path)
    _check.keys(doc, ENSEMBLE_KEYS, where, "")
    members = doc["members"]
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_MEMBERS:
        raise SearchError(f"{where}: members: expected a list of 1 to {MAX_MEMBERS} configs (each as `search export` "
                          f"writes it, with a weight), got {_check.short(members)}")
    jobs = []
    for i, member in enumerate(members):
        at = f"{where}: members[{i}]"
        _check.mapping(member, at, "", "a config (dataset, seed, params) with a weight")
        weight = _check.integer(member.get("weight", 1), at, "weight", 1, 1000)
        jobs.append(Member(parse_config(member, path, where=at, more=("weight",)), weight))
    other = next((i for i, m in enumerate(jobs) if m.job.dataset.stored() != jobs[0].job.dataset.stored()), None)
    if other is not None:
        raise SearchError(f"{where}: members[{other}]: dataset: expected {jobs[0].job.dataset} like members[0] (an "
                          f"ensemble averages its members' outputs on the same images), got {jobs[other].job.dataset}")
    source = doc.get("source") or {}
    _check.mapping(source, where, "source", "a mapping (study, size, metric, value)")
    return EnsembleJob(tuple(jobs), source)


def parse_config(doc: Any, path: Path, *, where: str = "", more: tuple[str, ...] = ()) -> TrainJob:
    """A config as a mapping (what `search export` writes) -> the job; `path` names it in
    errors (or `where`: an ensemble's 'FILE: members[2]') and anchors its relative paths
    (`code`, a dataset path). The mapping may also hold the keys `more`, read by the caller."""
    where = where or str(path)
    _check.mapping(doc, where, "", "a mapping with dataset, seed, params")
    _check.keys(doc, (*CONFIG_KEYS, *more), where, "")
    dataset = parse_dataset(doc.get("dataset", DEFAULT_DATASET), where, path.parent)
    seed = _check.integer(doc.get("seed", 0), where, "seed", 0, _check.MAX_TRIAL_SEED)
    train_size = parse_train_size(doc.get("train_size"), where)
    params = Params.from_dict(doc.get("params", {}), where)
    source = doc.get("source") or {}
    _check.mapping(source, where, "source", "a mapping (study, trial, metric, value)")
    precision = doc.get("precision")
    if precision is not None:
        precision = _check.choice(precision, [str(p) for p in PRECISIONS], where, "precision")
    code = doc.get("code")
    if code is not None:
        if not isinstance(code, str) or not (path.parent / code).is_dir():
            raise SearchError(f"{where}: code: expected the folder your model factory is imported from, got "
                              f"{_check.short(code)}")
        code = str((path.parent / code).resolve())
    return TrainJob(dataset, params, seed, train_size, source, precision, code)
