"""A validated space -> `trial.suggest_*` calls. The one place that talks to the sampler."""

from __future__ import annotations

from typing import Any

import optuna

from search.spec import AXES, Choices, Fixed, StudySpec


def suggest_params(trial: optuna.Trial, spec: StudySpec) -> dict[str, Any]:
    """Every axis's value for this trial: fixed ones as given, searched ones suggested.

    Axes are visited in registry order so that a conditional axis (momentum) is only
    suggested once the axis it depends on (optimizer) has its value.
    """
    params: dict[str, Any] = {}
    for name, axis in AXES.items():
        dim = spec.space.get(name, Fixed(axis.default))
        if not axis.applies(params):
            params[name] = axis.default
        elif isinstance(dim, Fixed):
            params[name] = dim.value
        elif isinstance(dim, Choices):
            params[name] = trial.suggest_categorical(name, list(dim.values))
        elif axis.kind == "int":
            step = int(dim.step or 1)
            params[name] = trial.suggest_int(name, int(dim.low), int(dim.high), step=step, log=dim.log)
        else:
            params[name] = trial.suggest_float(name, dim.low, dim.high, step=dim.step, log=dim.log)
    return params


def active_params(params: dict[str, Any]) -> dict[str, Any]:
    """Drop conditional axes that do not apply (momentum under adam), for configs and tables."""
    return {k: v for k, v in params.items() if k not in AXES or AXES[k].applies(params)}


def grid_space(spec: StudySpec) -> dict[str, list[Any]]:
    """The grid sampler's search space: every axis given as choices."""
    return {k: list(d.values) for k, d in spec.space.items() if isinstance(d, Choices)}


__all__ = ["suggest_params", "active_params", "grid_space"]
