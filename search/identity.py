"""A study file + the study stored under its name -> what changed: refused, or allowed and logged.

A study is defined by its identity (dataset, data, goal, seed, training images: never
changed, search/records.py) and its definition: the space, the sampler, the pruner and the
file it came from. A changed definition is refused before anything is written, unless the
run says `--allow-change`; a change Optuna cannot mix into the trials already stored (a
parameter's kind, log scale or choices) is refused even then: only a new study can take it.
"""

from __future__ import annotations

import datetime
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from search._optuna import mixable
from search.errors import Notice, SearchError
from search.records import StudyRecord
from search.space import distribution_of, searched
from search.spec import StudySpec

__all__ = ["Change", "DefinitionChanged", "change_log", "check_definition", "definition_changes", "describe"]


@dataclass(frozen=True)
class Change:
    key: str  # space.lr, sampler, pruner, study file
    then: str
    now: str
    mixable: bool = True  # Optuna can go on with the stored trials (only with --allow-change)

    def __str__(self) -> str:
        return f"{self.key}: {self.then} -> {self.now}"


class DefinitionChanged(Notice):
    """A study resumed with --allow-change under a changed definition (logged in the study)."""


def definition_changes(spec: StudySpec, record: StudyRecord, study: optuna.Study) -> list[Change]:
    """Every way `record` (what this file stores) defines the study otherwise than the stored
    study does: the stored trials' parameters first (those Optuna cannot mix), then the
    space, sampler, pruner and file as stored. Keys a study stored before they existed are
    not compared."""
    out = _unmixable(spec, study)
    have = StudyRecord.stored_definition(study)
    if "space" in have:
        axes, ours = dict(have["space"]), record.space
        for axis in [*axes, *(k for k in ours if k not in axes)]:
            if axes.get(axis) != ours.get(axis) and not any(c.key == f"space.{axis}" for c in out):
                out.append(Change(f"space.{axis}", axes.get(axis, "default"), ours.get(axis, "default")))
    names_only = "study_path" not in have  # stored before options were: 'tpe', not 'tpe (n_startup_trials=5)'
    for key in ("sampler", "pruner"):
        theirs, now = str(have.get(key, "")), str(record.stored(key))
        if key in have and theirs != (now.partition(" (")[0] if names_only else now):
            out.append(Change(key, theirs, now))
    stored_path = have.get("study_path")
    if stored_path and not _same_file(stored_path, record.study_path):
        out.append(Change("study file", stored_path, record.study_path))
    return out


def check_definition(spec: StudySpec, record: StudyRecord, study: optuna.Study, where: str,
                     allow_change: bool) -> list[Change]:
    """Refuse a changed definition in one line (what changed, and the ways on), or, with
    `allow_change`, return the changes for the study's log (`StudyRecord.write`)."""
    changes = definition_changes(spec, record, study)
    if not changes:
        return []
    new = f"--set name={spec.name}-2"
    fixed = next((c for c in changes if not c.mixable), None)
    if fixed is not None:
        raise SearchError(f"study {spec.name!r} in {where}: {spec.path} now samples {fixed.key.removeprefix('space.')} "
                          f"as {fixed.now}, its stored trials as {fixed.then}; Optuna cannot mix the two in one "
                          f"study: run the file as a new study ({new}, or name: in the file)")
    if not allow_change:
        more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
        raise SearchError(f"study {spec.name!r} in {where} was defined otherwise: {changes[0]}{more}; run the file "
                          f"as a new study ({new}, or name: in the file), or go on with this one under the new "
                          "definition with --allow-change")
    warnings.warn(DefinitionChanged(f"study {spec.name!r} goes on under a changed definition (--allow-change): "
                                    + "; ".join(map(str, changes))), stacklevel=2)
    return changes


def change_log(study: optuna.Study, changes: list[Change]) -> list[str]:
    """The lines these changes add to the study's log (when, before which trial)."""
    when = f"{datetime.datetime.now():%Y-%m-%d %H:%M}, before trial #{len(study.trials)}"
    return [f"{when}: {c}" for c in changes]


def _unmixable(spec: StudySpec, study: optuna.Study) -> list[Change]:
    """Stored parameters whose distribution the file now changes in a way Optuna refuses."""
    ours = searched(spec)
    seen: dict[str, BaseDistribution] = {}
    for t in study.get_trials(deepcopy=False):
        for name, dist in t.distributions.items():
            seen.setdefault(name, dist)
    out: list[Change] = []
    for name, dist in seen.items():
        found = distribution_of(name, ours)
        if found is None:
            continue
        key, new = found
        if not mixable(dist, new) and not any(c.key == f"space.{key}" for c in out):
            out.append(Change(f"space.{key}", describe(dist), describe(new), mixable=False))
    return out


def describe(dist: BaseDistribution) -> str:
    """A distribution as the study files write it: {a, b}, low..high [log] [step s]."""
    if isinstance(dist, CategoricalDistribution):
        return "{" + ", ".join(map(str, dist.choices)) + "}"
    assert isinstance(dist, (FloatDistribution, IntDistribution))
    step = dist.step if dist.step and not (isinstance(dist, IntDistribution) and dist.step == 1) else None
    return f"{dist.low:g}..{dist.high:g}{' log' if dist.log else ''}{f' step {step:g}' if step else ''}"


def _same_file(stored: str, ours: str) -> bool:
    """The stored study file is ours, or is not on this machine (another machine's clone, or
    moved): only another file that exists here under the same study name is a different study."""
    if stored == ours or not Path(stored).is_file():
        return True
    try:
        return os.path.samefile(stored, ours)
    except OSError:
        return True
