"""A StudySpec's space -> `trial.suggest_*` calls -> Params. The one place that talks to the sampler."""

from __future__ import annotations

import re
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from search.params import AXES, Axis, Params, layered
from search.spec import Args, Choices, Fixed, Range, StudySpec


def suggest_params(trial: optuna.Trial, spec: StudySpec) -> Params:
    """Every axis's value for this trial: fixed ones as given, searched ones suggested.

    Axes are visited in registry order so that a conditional axis (momentum) is only
    suggested once the axis it depends on (optimizer) has its value. Per-layer axes come
    last: one value per MLP hidden layer, `hidden_size_l0` ... `hidden_size_l{n_layers-1}`,
    as in Optuna's PyTorch example.
    """
    values: dict[str, Any] = {}
    per_layer: list[tuple[Axis, Range | Choices]] = []
    for name, axis in AXES.items():
        dim = spec.space.get(name, Fixed(axis.default))
        if not axis.applies(values):
            values[name] = axis.default
        elif isinstance(dim, Args):  # a factory's own arguments, sampled under their own names
            values[name] = _suggest_args(trial, dim)
        elif isinstance(dim, Fixed):
            values[name] = dim.value
        elif dim.per_layer:
            values[name] = axis.default
            per_layer.append((axis, dim))
        else:
            values[name] = _suggest(trial, name, axis, dim)
    for axis, dim in per_layer:
        if not layered(values["model"]):
            if axis.applies(values):  # one value for a network without MLP layers (a convnet's dropout, width)
                values[axis.name] = _suggest(trial, axis.name, axis, dim)
            continue
        values[axis.per_layer] = tuple(_suggest(trial, f"{axis.name}_l{i}", axis, dim)
                                       for i in range(values["n_layers"]))
    return Params(**values)


def _suggest_args(trial: optuna.Trial, dim: Args) -> tuple[tuple[str, Any], ...]:
    """A factory's arguments in the file's order; a per-layer one as a list of one value per
    layer (`widths_l0`, `widths_l1`, ...), counted by the argument it names."""
    args: dict[str, Any] = {}
    for a, d in dim.dims:
        if isinstance(d, Fixed):
            args[a.name] = d.value
        elif isinstance(d.per_layer, str):
            args[a.name] = tuple(_suggest(trial, f"{a.name}_l{i}", a, d) for i in range(args[d.per_layer]))
        else:
            args[a.name] = _suggest(trial, a.name, a, d)
    return tuple(args.items())


def _suggest(trial: optuna.Trial, name: str, axis: Axis, dim: Range | Choices) -> Any:
    dist = distribution(axis, dim)
    if isinstance(dist, CategoricalDistribution):
        by_code = {axis.encode(v): v for v in dim.values}  # type: ignore[union-attr]
        return by_code[trial.suggest_categorical(name, list(by_code))]
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, FloatDistribution)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


def distribution(axis: Axis, dim: Range | Choices) -> BaseDistribution:
    """The Optuna distribution an axis is sampled from (choices as Optuna stores them: lists
    as '512-256')."""
    if isinstance(dim, Choices):
        return CategoricalDistribution([axis.encode(v) for v in dim.values])
    if axis.kind == "int":
        return IntDistribution(int(dim.low), int(dim.high), step=int(dim.step or 1), log=dim.log)
    return FloatDistribution(dim.low, dim.high, step=dim.step, log=dim.log)


def searched(spec: StudySpec) -> dict[str, tuple[str, BaseDistribution]]:
    """Every parameter name a trial of this study may sample -> (the file's key for it,
    its distribution); a per-layer axis under its own name (a network without layers samples
    it so) and as the base of `NAME_l0`, `NAME_l1`, ... (see `distribution_of`)."""
    out: dict[str, tuple[str, BaseDistribution]] = {}
    for name, dim in spec.space.items():
        if isinstance(dim, Args):
            for a, d in dim.dims:
                if not isinstance(d, Fixed):
                    out[a.name] = (f"model_args.{a.name}", distribution(a, d))
        elif not isinstance(dim, Fixed):
            out[name] = (name, distribution(AXES[name], dim))
    return out


def distribution_of(name: str, searched: dict[str, tuple[str, BaseDistribution]]) -> tuple[str, BaseDistribution] | None:
    """A stored parameter's (key, distribution) in `searched(spec)`, per-layer names included;
    None when the study file no longer searches it."""
    if name in searched:
        return searched[name]
    layer = re.fullmatch(r"(.+)_l\d+", name)
    return searched.get(layer.group(1)) if layer else None


__all__ = ["distribution", "distribution_of", "searched", "suggest_params"]
