"""Study files -> validated `StudySpec` objects.

A study file is checked as a whole (before and after `--set` overrides) against the
axis registry (`search.params.AXES`) and the sampler and pruner registries
(`search.samplers`) before anything runs; each mistake is reported with the file, the
key and what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Union

import optuna

from search import _check
from search._files import load_yaml, read_yaml
from search.data import DEFAULT_DATASET, DataSource, parse_dataset, parse_train_size
from search.errors import SearchError
from search.goal import Goal, parse_goal
from search.params import AXES, LAYER_KEY, Axis, arg_name, is_factory
from search.records import StudyRecord
from search.samplers import (
    COST_AWARE_SAMPLER,
    DEFAULT_PRUNER,
    DEFAULT_SAMPLER,
    PRUNERS,
    SAMPLERS,
    check_pruner,
    describe_named,
    make_pruner,
    make_sampler,
    parse_named,
)
from search.tracking import Target, parse_track

__all__ = ["Args", "Choices", "Fixed", "KEEP_CHECKPOINTS", "MAX_LAYERS", "Range", "StudySpec", "TOP_KEYS", "apply_overrides", "space_models",
           "default_studies_dir", "read_study_file", "parse_space", "parse_study", "resolve_study_path"]

KEEP_CHECKPOINTS = StudyRecord.keep_checkpoints  # checkpoints of the best N complete trials are kept


@dataclass(frozen=True)
class Fixed:
    value: Any


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    step: float | None = None
    # True: one value per MLP hidden layer (`hidden_size_l0`, `hidden_size_l1`, ...); a name:
    # one value per layer of a factory, counted by that argument (`widths_l0`, ...)
    per_layer: bool | str = False


@dataclass(frozen=True)
class Choices:
    values: tuple[Any, ...]
    per_layer: bool | str = False


@dataclass(frozen=True)
class Args:
    """`space.model_args`: each of a factory's own arguments, with the axis that checks it
    (its kind told by how the file writes it) and its value, range or choices."""

    dims: tuple[tuple[Axis, Union[Fixed, Range, Choices]], ...]


Dimension = Union[Fixed, Range, Choices, Args]


@dataclass(frozen=True)
class StudySpec:
    name: str
    path: str
    description: str = ""
    dataset: DataSource = DataSource(name=DEFAULT_DATASET)
    goal: Goal = Goal()  # objectives, directions and constraints (search/goal.py)
    n_trials: int = 20
    timeout: float | None = None
    seed: int = 0
    train_size: int | None = None  # the first N training images; None: all of them
    keep_checkpoints: int = KEEP_CHECKPOINTS  # checkpoints of the best N complete trials stay in the artifact store
    sampler: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SAMPLER))
    pruner: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PRUNER))
    space: dict[str, Dimension] = field(default_factory=dict)
    track: tuple[Target, ...] = ()  # MLflow / TensorBoard copies of each trial (search/tracking.py); not the study's identity

    @property
    def metric(self) -> str:
        """The first (for one objective: the only) metric the study optimises."""
        return self.goal.metrics[0]

    @property
    def direction(self) -> str:
        return self.goal.directions[0]

    def fixed_params(self) -> dict[str, Any]:
        """Every axis not searched over, at its fixed (or default) value."""
        out: dict[str, Any] = {}
        for name, axis in AXES.items():
            dim = self.space.get(name, Fixed(axis.default))
            if isinstance(dim, Fixed):
                out[name] = dim.value
        return out

    def describe_space(self) -> dict[str, str]:
        """Each axis of the file as text, for the report and the dashboard."""
        out = {}
        for name, dim in self.space.items():
            if isinstance(dim, Args):
                out[name] = "; ".join(f"{a.name}: {_describe(a, d)}" for a, d in dim.dims)
                continue
            out[name] = _describe(AXES[name], dim)
        return out

    def models(self) -> list[str]:
        """Every model the space may pick (the default when it names none), in the file's order."""
        return space_models(self.space)

    def factories(self) -> list[str]:
        """The user's model factories the space names (module:callable), in the file's order."""
        return [m for m in self.models() if is_factory(m)]

    def max_epochs(self) -> int:
        dim = self.space.get("epochs", Fixed(AXES["epochs"].default))
        if isinstance(dim, Fixed):
            return int(dim.value)
        if isinstance(dim, Range):
            return int(dim.high)
        assert isinstance(dim, Choices)  # epochs is never a factory's arguments
        return int(max(dim.values))

    def grid(self) -> dict[str, list[Any]]:
        """The grid sampler's search space: every searched axis (a factory's arguments under
        their own names), as Optuna stores its choices."""
        dims = [(AXES[k], d) for k, d in self.space.items() if not isinstance(d, Args)]
        dims += [ad for d in self.space.values() if isinstance(d, Args) for ad in d.dims]
        return {a.name: [a.encode(v) for v in d.values] for a, d in dims if isinstance(d, Choices)}

    def make_sampler(self, offset: int = 0) -> optuna.samplers.BaseSampler:
        """The study's sampler, seeded from the study (see search.samplers.make_sampler)."""
        return make_sampler(self.sampler, self.seed, self.grid(), offset)

    def make_pruner(self) -> optuna.pruners.BasePruner:
        return make_pruner(self.pruner, self.max_epochs())

    def record(self, data: dict[str, Any] | None = None) -> StudyRecord:
        """What the storage keeps of this study file (search/records.py), and of its data's
        facts (`Dataset.facts()`) when they have been read."""
        return StudyRecord(dataset=self.dataset.stored(), data=data or {}, metric=self.metric, goal=str(self.goal),
                           seed=self.seed,
                           train_size=self.train_size, study_file=self.path, description=self.description,
                           space=self.describe_space(), sampler=describe_named(self.sampler),
                           pruner=describe_named(self.pruner), study_path=str(Path(self.path).resolve()),
                           keep_checkpoints=self.keep_checkpoints, bounds=self.goal.bounds,
                           code_dir=str(self.code_dir()) if self.factories() else "")

    def code_dir(self) -> Path:
        """The folder model factories are imported from: the study file's."""
        return Path(self.path).resolve().parent


# ---------------------------------------------------------------- loading


TOP_KEYS = ("name", "description", "dataset", "metric", "direction", "floor", "ceiling", "n_trials", "timeout", "seed",
            "train_size", "keep_checkpoints", "sampler", "pruner", "space", "track")


def resolve_study_path(study: str, studies_dir: Path | None = None) -> Path:
    """`quickstart` -> studies/quickstart.yaml; a path (with / or .yaml) is taken as is."""
    if study.endswith((".yaml", ".yml")) or "/" in study or "\\" in study:
        path = Path(study)
    else:
        base = studies_dir if studies_dir is not None else default_studies_dir()
        path = base / f"{study}.yaml"
    if not path.exists():
        folder = path.parent
        close = _check.did_you_mean(path.stem, [p.stem for p in folder.glob("*.yaml")] if folder.is_dir() else [])
        hint = f"did you mean {close}? " if close else ""
        raise SearchError(f"unknown study {study!r}: no file {path} ({hint}pass a study name from "
                          f"{studies_dir or default_studies_dir()}/ or a path to a .yaml file)")
    return path


def default_studies_dir() -> Path:
    """./studies when the working directory has one, else the studies shipped with the project."""
    here = Path("studies")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / "studies"


def read_study_file(study: str, studies_dir: Path | None = None, overrides: list[str] | None = None) -> StudySpec:
    """Read, check and (with `overrides`, `--set KEY=VALUE`) amend a study file."""
    path = resolve_study_path(study, studies_dir)
    doc = read_yaml(path, "study file")
    _check_document(doc, str(path))  # the file as written, before any override
    if not overrides:
        return parse_study(doc, path)
    amended = apply_overrides(doc, overrides)  # a malformed --set names itself
    try:
        return parse_study(amended, path)
    except SearchError as e:
        raise _blamed(e, doc, path, overrides) from None


def _blamed(e: SearchError, doc: dict, path: Path, overrides: list[str]) -> SearchError:
    """The error of a file amended by `--set`, named after the first flag that brings it
    (`--set lr=abc: space.lr: ...`); the file's own when the file alone fails."""
    try:
        parse_study(doc, path)
    except SearchError:
        return e
    for n in range(1, len(overrides) + 1):
        try:
            parse_study(apply_overrides(doc, overrides[:n]), path)
        except SearchError as each:
            return SearchError(f"--set {_check.name(overrides[n - 1])}: {str(each).removeprefix(f'{path}: ')}")
    return e


def apply_overrides(doc: dict, overrides: list[str]) -> dict:
    """`--set KEY=VALUE`: a study key (n_trials=2, train_size=1000) or an axis fixed to a
    value (epochs=1); VALUE is read as YAML. The result is validated like the file."""
    doc = dict(doc)
    space = dict(doc.get("space") or {})
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SearchError(f"--set {_check.short(item)}: expected KEY=VALUE, e.g. --set epochs=1")
        value = load_yaml(raw, f"--set {key}")
        if key in AXES:
            space[key] = value
        elif key in TOP_KEYS and key != "space":
            doc[key] = value
        else:
            close = _check.did_you_mean(key, [*AXES, *(k for k in TOP_KEYS if k != "space")])
            raise SearchError(f"--set {_check.name(key)}: unknown key; " + (
                f"did you mean {close}?" if close else "expected an axis (`search axes` lists them) or a study key "
                f"({', '.join(sorted(set(TOP_KEYS) - {'space'}))})"))
    doc["space"] = space
    return doc


def _check_document(doc: Any, where: str) -> dict:
    if not isinstance(doc, dict):
        raise SearchError(f"{where}: expected a mapping of study keys (dataset, space, ...), got "
                          f"{_check.kind(doc)}")
    if "space" not in doc:
        raise SearchError(f"{where}: space: missing; a study file declares its search space, e.g. "
                          "space: {lr: {low: 1.0e-4, high: 0.1}}")
    return doc


def parse_study(doc: Any, path: Path | str) -> StudySpec:
    where = str(path)
    _check_document(doc, where)
    _check.keys(doc, TOP_KEYS, where, "")
    name = doc.get("name", Path(path).stem)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise SearchError(f"{where}: name: expected a non-empty string of at most 200 characters, got "
                          f"{_check.short(name)}")
    dataset = parse_dataset(doc.get("dataset", DEFAULT_DATASET), where, Path(path).parent)
    goal = parse_goal(doc, where)
    n_trials = _check.integer(doc.get("n_trials", 20), where, "n_trials", 1, _check.MAX_TRIALS)
    timeout = doc.get("timeout")
    if timeout is not None:
        timeout = _check.number(timeout, where, "timeout", 0, math.inf, low_open=True)
    seed = _check.integer(doc.get("seed", 0), where, "seed", 0, _check.MAX_SEED)
    train_size = parse_train_size(doc.get("train_size"), where)
    keep = _check.integer(doc.get("keep_checkpoints", KEEP_CHECKPOINTS), where, "keep_checkpoints", 0, 10_000)
    space = parse_space(doc.get("space"), where)
    cost_aware = goal.multi or bool(goal.bounds)  # QMC ignores constraints; TPE honours them
    sampler = parse_named(doc.get("sampler", COST_AWARE_SAMPLER if cost_aware else DEFAULT_SAMPLER), SAMPLERS,
                          where, "sampler")
    pruner = parse_named(doc.get("pruner", DEFAULT_PRUNER if goal.ranks_curve else {"name": "none"}), PRUNERS,
                         where, "pruner")
    check_pruner(goal, pruner["name"], where)
    if sampler["name"] == "grid":
        dims = [(k, d) for k, d in space.items() if not isinstance(d, Args)]
        dims += [(f"model_args.{a.name}", d) for dim in space.values() if isinstance(dim, Args) for a, d in dim.dims]
        bad = [k for k, d in dims if isinstance(d, Range) or getattr(d, "per_layer", False)]
        if bad:
            raise SearchError(f"{where}: space.{bad[0]}: the grid sampler needs choices, not a range or per_layer "
                              f"(write {bad[0]}: [v1, v2, ...])")
    track = parse_track(doc.get("track", []), where)
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise SearchError(f"{where}: description: expected text, got {_check.kind(description)}")
    return StudySpec(name=name, path=where, description=description, dataset=dataset, goal=goal, n_trials=n_trials,
                     timeout=timeout, seed=seed, train_size=train_size, keep_checkpoints=keep, sampler=sampler,
                     pruner=pruner, space=space, track=track)


def parse_space(raw: Any, where: str) -> dict[str, Dimension]:
    if raw is None:
        return {}
    _check.mapping(raw, where, "space", "a mapping of axis -> value/range/choices")
    space: dict[str, Dimension] = {}
    for key, value in raw.items():
        if key not in AXES:
            raise SearchError(f"{where}: space.{_check.name(key)}: unknown axis; "
                              f"{_check.unknown(key, AXES, '`search axes` lists every axis')}")
        space[key] = _parse_args(value, where) if AXES[key].kind == "args" else _parse_dimension(AXES[key], value,
                                                                                                    where)
    if "model_args" in space:
        models = space_models(space)
        if not any(is_factory(m) for m in models):
            raise SearchError(f"{where}: space.model_args: arguments of your own model factory, but model is "
                              f"{', '.join(map(str, models))}: write model: module:callable (e.g. nets:build)")
    dropouts = space.get("dropouts")
    if isinstance(dropouts, Fixed):
        widths, n_layers = space.get("widths"), space.get("n_layers", Fixed(AXES["n_layers"].default))
        layers = (len(widths.value) if isinstance(widths, Fixed) else
                  n_layers.value if isinstance(n_layers, Fixed) and widths is None else None)
        if layers != len(dropouts.value):
            raise SearchError(f"{where}: space.dropouts: {len(dropouts.value)} values, but the MLP's hidden layers are "
                              f"{'searched' if layers is None else layers}: fix widths or n_layers to match, or "
                              "search dropout with per_layer: true")
    for name, dim in space.items():
        if isinstance(dim, (Fixed, Args)) or not dim.per_layer:
            continue
        target = AXES[name].per_layer
        if target in space:
            raise SearchError(f"{where}: space.{name}: per_layer fills {target}, which the file also sets; "
                              f"keep one of the two")
    return space


def space_models(space: dict[str, Dimension]) -> list[str]:
    """The models a space may pick: its fixed model, its choices, or the default."""
    dim = space.get("model", Fixed(AXES["model"].default))
    return [dim.value] if isinstance(dim, Fixed) else list(dim.values) if isinstance(dim, Choices) else []


def _describe(axis: Axis, dim: Fixed | Range | Choices) -> str:
    """A dimension as the report and the dashboard show it: '512-256', '{relu, tanh}', '1e-4..0.1 log'."""
    if isinstance(dim, Fixed):
        value = axis.encode(dim.value)
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(dim, Choices):
        text = "{" + ", ".join(str(axis.encode(v)) for v in dim.values) + "}"
    else:
        text = f"{dim.low:g}..{dim.high:g}" + (" log" if dim.log else "") + (f" step {dim.step:g}" if dim.step else "")
    if isinstance(dim.per_layer, str):
        return f"{text} per layer ({dim.per_layer} of them)"
    return text + (" per layer" if dim.per_layer else "")


MAX_LAYERS = 64  # the most layers a factory argument may count for per-layer values


def _parse_args(raw: Any, where: str) -> Args:
    """`space.model_args`: name -> value, range ({low, high, log, step}) or choices ([...]);
    `per_layer: COUNT` samples one value per layer, COUNT an integer argument listed before it."""
    _check.mapping(raw, where, "space.model_args", "a mapping of your factory's argument name -> value/range/choices")
    dims: list[tuple[Axis, Fixed | Range | Choices]] = []
    for name, value in raw.items():
        key = f"space.model_args.{arg_name(name, where, 'space.model_args')}"
        if isinstance(value, dict) and "low" in value and "high" in value:
            ints = all(isinstance(value[b], int) and not isinstance(value[b], bool) for b in ("low", "high"))
            axis = Axis(name, "int" if ints else "float", "a factory argument", low=-1e12, high=1e12)
        else:
            axis = Axis(name, "value", "a factory argument")
        count = value.get("per_layer") if isinstance(value, dict) else None
        if count is not None:
            _layer_count(count, dict((a.name, d) for a, d in dims), where, key)
            value = {**value, "per_layer": False}
        dim = _parse_dimension(axis, value, where, key)
        dims.append((axis, replace(dim, per_layer=count) if count is not None and not isinstance(dim, Fixed) else dim))
    layered = {a.name for a, d in dims if getattr(d, "per_layer", False)}
    for a, _ in dims:
        m = LAYER_KEY.fullmatch(a.name)
        if m and m[1] in layered:
            raise SearchError(f"{where}: space.model_args.{a.name}: the name of a per-layer value of {m[1]}; "
                              "rename one of the two")
    return Args(tuple(dims))


def _layer_count(count: Any, before: dict[str, Fixed | Range | Choices], where: str, key: str) -> None:
    """`per_layer: depth` names an integer argument listed before it, of at most MAX_LAYERS."""
    if not isinstance(count, str) or count not in before:
        raise SearchError(f"{where}: {key}.per_layer: expected the name of the argument listed before it that counts "
                          f"the layers (per_layer: depth), got {_check.short(count)}")
    dim = before[count]
    values = (dim.value,) if isinstance(dim, Fixed) else dim.values if isinstance(dim, Choices) else (dim.low, dim.high)
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_LAYERS for v in values):
        raise SearchError(f"{where}: {key}.per_layer: {count} counts the layers, so its values must be integers from "
                          f"1 to {MAX_LAYERS}, got {_check.short(values)}")


def _parse_dimension(axis: Axis, value: Any, where: str, key: str = "") -> Fixed | Range | Choices:
    key = key or f"space.{axis.name}"
    if isinstance(value, list):  # choices, for every axis (a fixed list of widths is written '512-256')
        value = {"choices": value}
    if not isinstance(value, dict):
        return Fixed(axis.check(value, where, key))
    per_layer = value.get("per_layer", False)
    if not isinstance(per_layer, bool):
        raise SearchError(f"{where}: {key}.per_layer: expected true or false, got {_check.short(per_layer)}")
    if per_layer and not axis.per_layer:
        layered = [a.name for a in AXES.values() if a.per_layer]
        raise SearchError(f"{where}: {key}.per_layer: only {' and '.join(layered)} can be searched per layer")
    if "choices" in value:
        _check.keys(value, {"choices", "per_layer"}, where, key)
        choices = value["choices"]
        if not isinstance(choices, list) or not choices:
            raise SearchError(f"{where}: {key}.choices: expected a non-empty list, got {_check.short(choices)}")
        vals = tuple(axis.check(c, where, f"{key}.choices[{i}]") for i, c in enumerate(choices))
        if len(set(vals)) != len(vals):
            raise SearchError(f"{where}: {key}.choices: expected distinct values, got {_check.short(choices)}")
        return Choices(vals, per_layer)
    if axis.kind not in ("float", "int"):
        raise SearchError(f"{where}: {key}: a {axis.kind} axis takes a value or choices: [...], not a range")
    _check.keys(value, {"low", "high", "log", "step", "per_layer"}, where, key)
    for bound in ("low", "high"):
        if bound not in value:
            raise SearchError(f"{where}: {key}: a range needs both low and high (missing {bound})")
    low = axis.check(value["low"], where, f"{key}.low")
    high = axis.check(value["high"], where, f"{key}.high")
    if low > high:
        raise SearchError(f"{where}: {key}: low ({low}) must not exceed high ({high})")
    log = value.get("log", axis.log)
    if not isinstance(log, bool):
        raise SearchError(f"{where}: {key}.log: expected true or false, got {_check.short(log)}")
    step = value.get("step")
    if step is not None:
        step = _check.number(step, where, f"{key}.step", 0, math.inf, low_open=True, integer=axis.kind == "int")
        if log:
            raise SearchError(f"{where}: {key}: step and log cannot be combined (Optuna forbids it)")
    if log and low <= 0:
        raise SearchError(f"{where}: {key}: a log range needs low > 0, got {low}")
    return Range(low, high, log, step, per_layer)
