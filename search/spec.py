"""Study files -> validated plain objects.

One registry (`AXES`) defines every axis of the search space: its type, valid bounds,
default and, for conditional axes, when it applies. A study file is checked against it
before anything runs; each mistake is reported with the file, the key and what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from models import ACTIVATIONS, MODELS
from search.errors import SearchError

DATASETS = ("mnist", "fashion-mnist")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
METRICS = {"val_accuracy": "maximize", "val_loss": "minimize"}
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "successive_halving", "hyperband", "none")
TRAIN_POOL = 55_000  # the 60,000 training images split 55,000 train / 5,000 validation


@dataclass(frozen=True)
class Axis:
    """One hyperparameter: `kind` is float, int, bool or choice (a closed set of strings)."""

    name: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True when `low` itself is not allowed (lr > 0)
    high_open: bool = False
    choices: tuple[str, ...] = ()
    log: bool = False  # ranges of this axis are log-uniform unless the file says otherwise
    when: tuple[str, tuple[Any, ...]] | None = None  # (axis, values) under which it applies
    help: str = ""

    def applies(self, params: dict[str, Any]) -> bool:
        return self.when is None or params.get(self.when[0]) in self.when[1]


AXES: dict[str, Axis] = {
    a.name: a
    for a in [
        Axis("model", "choice", "mlp", choices=MODELS, help="network family"),
        Axis("lr", "float", 1e-3, low=0.0, high=10.0, low_open=True, log=True, help="learning rate"),
        Axis("batch_size", "int", 128, low=1, high=65536, help="images per step"),
        Axis("epochs", "int", 5, low=1, high=1000, help="passes over the training split"),
        Axis("hidden_size", "int", 128, low=1, high=65536, when=("model", ("mlp",)), help="MLP width"),
        Axis("n_layers", "int", 1, low=0, high=16, when=("model", ("mlp",)), help="MLP hidden layers"),
        Axis("activation", "choice", "relu", choices=tuple(ACTIVATIONS), help="non-linearity"),
        Axis("dropout", "float", 0.0, low=0.0, high=1.0, high_open=True, help="dropout probability"),
        Axis("batch_norm", "bool", False, help="batch normalisation after each hidden layer"),
        Axis("optimizer", "choice", "adam", choices=OPTIMIZERS, help="optimiser"),
        Axis("momentum", "float", 0.0, low=0.0, high=1.0, high_open=True, when=("optimizer", ("sgd",)),
             help="SGD momentum"),
        Axis("nesterov", "bool", False, when=("optimizer", ("sgd",)), help="Nesterov momentum (SGD)"),
        Axis("weight_decay", "float", 0.0, low=0.0, high=1.0, help="L2 penalty"),
        Axis("widths", "widths", "", when=("model", ("mlp",)),
             help="MLP hidden widths as '512-256' (overrides hidden_size x n_layers; '' keeps them)"),
        Axis("iterations", "int", 0, low=0, high=10_000_000,
             help="stop after this many steps (0: train for `epochs` full epochs)"),
        Axis("augment", "bool", False, help="random rotation and Gaussian blur of training images"),
        Axis("rotation", "float", 10.0, low=0.0, high=180.0, when=("augment", (True,)),
             help="max rotation in degrees"),
        Axis("blur_sigma", "float", 1.0, low=0.0, high=5.0, when=("augment", (True,)), help="max blur sigma"),
    ]
}


@dataclass(frozen=True)
class Fixed:
    value: Any


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    step: float | None = None


@dataclass(frozen=True)
class Choices:
    values: tuple[Any, ...]


Dimension = Union[Fixed, Range, Choices]


@dataclass(frozen=True)
class StudySpec:
    name: str
    path: str
    description: str = ""
    dataset: str = "mnist"
    metric: str = "val_accuracy"
    direction: str = "maximize"
    n_trials: int = 20
    timeout: float | None = None
    seed: int = 0
    train_size: int = TRAIN_POOL
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "median"})
    space: dict[str, Dimension] = field(default_factory=dict)

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
            if isinstance(dim, Fixed):
                out[name] = str(dim.value)
            elif isinstance(dim, Choices):
                out[name] = "{" + ", ".join(map(str, dim.values)) + "}"
            else:
                out[name] = f"{dim.low:g}..{dim.high:g}" + (" log" if dim.log else "") + (
                    f" step {dim.step:g}" if dim.step else "")
        return out

    def max_epochs(self) -> int:
        dim = self.space.get("epochs", Fixed(AXES["epochs"].default))
        if isinstance(dim, Fixed):
            return int(dim.value)
        if isinstance(dim, Range):
            return int(dim.high)
        return int(max(dim.values))


# ---------------------------------------------------------------- loading


_TOP_KEYS = {"name", "description", "dataset", "metric", "direction", "n_trials", "timeout", "seed",
             "train_size", "sampler", "pruner", "space"}
_SAMPLER_KEYS = {"tpe": {"name", "seed", "n_startup_trials", "multivariate"}, "random": {"name", "seed"},
                 "grid": {"name", "seed"}}
_PRUNER_KEYS = {
    "median": {"name", "n_startup_trials", "n_warmup_steps"},
    "successive_halving": {"name", "min_resource", "reduction_factor"},
    "hyperband": {"name", "min_resource", "reduction_factor"},
    "none": {"name"},
}


def resolve_study_path(study: str, studies_dir: Path | None = None) -> Path:
    """`quickstart` -> studies/quickstart.yaml; a path (with / or .yaml) is taken as is."""
    if study.endswith((".yaml", ".yml")) or "/" in study or "\\" in study:
        path = Path(study)
    else:
        base = studies_dir if studies_dir is not None else default_studies_dir()
        path = base / f"{study}.yaml"
    if not path.is_file():
        raise SearchError(f"unknown study {study!r}: no file {path} (pass a study name from "
                          f"{studies_dir or default_studies_dir()}/ or a path to a .yaml file)")
    return path


def default_studies_dir() -> Path:
    """./studies when the working directory has one, else the studies shipped with the project."""
    here = Path("studies")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / "studies"


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as e:
        raise SearchError(f"{path}: cannot read file ({e.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SearchError(f"{path}: malformed YAML at {where}{problem}") from None


def load_study(study: str, studies_dir: Path | None = None, overrides: list[str] | None = None) -> StudySpec:
    path = resolve_study_path(study, studies_dir)
    doc = load_yaml(path)
    if overrides:
        doc = apply_overrides(doc, overrides, str(path))
    return parse_study(doc, path)


def apply_overrides(doc: Any, overrides: list[str], where: str) -> dict:
    """`--set KEY=VALUE`: a study key (n_trials=2, train_size=1000) or an axis fixed to a
    value (epochs=1); VALUE is read as YAML. The result is validated like the file."""
    doc = dict(doc) if isinstance(doc, dict) else {}
    space = dict(doc.get("space") or {})
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SearchError(f"--set {item!r}: expected KEY=VALUE, e.g. --set epochs=1")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise SearchError(f"--set {item!r}: the value is not valid YAML") from None
        if key in AXES:
            space[key] = value
        elif key in _TOP_KEYS - {"space"}:
            doc[key] = value
        else:
            raise SearchError(f"--set {key}: unknown key; expected an axis ({', '.join(AXES)}) or a study key "
                              f"({', '.join(sorted(_TOP_KEYS - {'space'}))})")
    doc["space"] = space
    return doc


def parse_study(doc: Any, path: Path | str) -> StudySpec:
    where = str(path)
    if not isinstance(doc, dict):
        raise SearchError(f"{where}: expected a mapping of study keys (dataset, space, ...), got {_kind(doc)}")
    _check_keys(doc, _TOP_KEYS, where, "")
    name = doc.get("name", Path(path).stem)
    if not isinstance(name, str) or not name:
        raise SearchError(f"{where}: name: expected a non-empty string, got {name!r}")
    dataset = _choice(doc.get("dataset", "mnist"), DATASETS, where, "dataset")
    metric = _choice(doc.get("metric", "val_accuracy"), tuple(METRICS), where, "metric")
    direction = _choice(doc.get("direction", METRICS[metric]), ("maximize", "minimize"), where, "direction")
    n_trials = _int(doc.get("n_trials", 20), where, "n_trials", 1, 1_000_000)
    timeout = doc.get("timeout")
    if timeout is not None:
        timeout = _number(timeout, where, "timeout", 0, math.inf, low_open=True)
    seed = _int(doc.get("seed", 0), where, "seed", 0, 2**31 - 1)
    train_size = _int(doc.get("train_size", TRAIN_POOL), where, "train_size", 1, TRAIN_POOL)
    space = parse_space(doc.get("space", {}), where)
    sampler = _parse_named(doc.get("sampler", "tpe"), _SAMPLER_KEYS, where, "sampler")
    pruner = _parse_named(doc.get("pruner", "median"), _PRUNER_KEYS, where, "pruner")
    if sampler["name"] == "grid":
        bad = [k for k, d in space.items() if isinstance(d, Range)]
        if bad:
            raise SearchError(f"{where}: space.{bad[0]}: the grid sampler needs choices, not a range "
                              f"(write {bad[0]}: [v1, v2, ...])")
    description = str(doc.get("description", ""))
    return StudySpec(name=name, path=where, description=description, dataset=dataset, metric=metric, direction=direction,
                     n_trials=n_trials, timeout=timeout, seed=seed, train_size=train_size,
                     sampler=sampler, pruner=pruner, space=space)


def parse_space(raw: Any, where: str) -> dict[str, Dimension]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SearchError(f"{where}: space: expected a mapping of axis -> value/range/choices, got {_kind(raw)}")
    space: dict[str, Dimension] = {}
    for key, value in raw.items():
        if key not in AXES:
            raise SearchError(f"{where}: space.{key}: unknown axis; expected one of {', '.join(AXES)}")
        space[key] = _parse_dimension(AXES[key], value, where)
    return space


def check_params(params: Any, where: str, key_prefix: str = "params") -> dict[str, Any]:
    """Validate fixed values (an exported config) against the registry; fill defaults."""
    if not isinstance(params, dict):
        raise SearchError(f"{where}: {key_prefix}: expected a mapping of axis -> value, got {_kind(params)}")
    out = {name: axis.default for name, axis in AXES.items()}
    for key, value in params.items():
        if key not in AXES:
            raise SearchError(f"{where}: {key_prefix}.{key}: unknown axis; expected one of {', '.join(AXES)}")
        out[key] = _value(AXES[key], value, where, f"{key_prefix}.{key}")
    return out


def _parse_dimension(axis: Axis, value: Any, where: str) -> Dimension:
    key = f"space.{axis.name}"
    if isinstance(value, list):
        value = {"choices": value}
    if not isinstance(value, dict):
        return Fixed(_value(axis, value, where, key))
    if "choices" in value:
        _check_keys(value, {"choices"}, where, key)
        choices = value["choices"]
        if not isinstance(choices, list) or not choices:
            raise SearchError(f"{where}: {key}.choices: expected a non-empty list, got {choices!r}")
        vals = tuple(_value(axis, c, where, f"{key}.choices[{i}]") for i, c in enumerate(choices))
        if len(set(vals)) != len(vals):
            raise SearchError(f"{where}: {key}.choices: expected distinct values, got {choices!r}")
        return Choices(vals)
    if axis.kind not in ("float", "int"):
        raise SearchError(f"{where}: {key}: a {axis.kind} axis takes a value or choices: [...], not a range")
    _check_keys(value, {"low", "high", "log", "step"}, where, key)
    for bound in ("low", "high"):
        if bound not in value:
            raise SearchError(f"{where}: {key}: a range needs both low and high (missing {bound})")
    low = _value(axis, value["low"], where, f"{key}.low")
    high = _value(axis, value["high"], where, f"{key}.high")
    if low > high:
        raise SearchError(f"{where}: {key}: low ({low}) must not exceed high ({high})")
    log = value.get("log", axis.log)
    if not isinstance(log, bool):
        raise SearchError(f"{where}: {key}.log: expected true or false, got {log!r}")
    step = value.get("step")
    if step is not None:
        step = _number(step, where, f"{key}.step", 0, math.inf, low_open=True, integer=axis.kind == "int")
        if log:
            raise SearchError(f"{where}: {key}: step and log cannot be combined (Optuna forbids it)")
    if log and low <= 0:
        raise SearchError(f"{where}: {key}: a log range needs low > 0, got {low}")
    return Range(low, high, log, step)


def _value(axis: Axis, value: Any, where: str, key: str) -> Any:
    if axis.kind == "widths":
        return _widths(value, where, key)
    if axis.kind == "choice":
        return _choice(value, axis.choices, where, key)
    if axis.kind == "bool":
        if not isinstance(value, bool):
            raise SearchError(f"{where}: {key}: expected true or false, got {value!r}")
        return value
    return _number(value, where, key, axis.low, axis.high, axis.low_open, axis.high_open, axis.kind == "int")


def _number(value: Any, where: str, key: str, low: float, high: float, low_open: bool = False,
            high_open: bool = False, integer: bool = False) -> Any:
    if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    lo = f"> {low:g}" if low_open else f">= {low:g}"
    hi = "" if high == math.inf else f" and < {high:g}" if high_open else f" and <= {high:g}"
    want = f"{'an integer' if integer else 'a number'} {lo}{hi}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
        raise SearchError(f"{where}: {key}: expected {want}, got {value!r}")
    if integer:
        if value != int(value):
            raise SearchError(f"{where}: {key}: expected {want}, got {value!r}")
        value = int(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        raise SearchError(f"{where}: {key}: expected {want}, got {value!r}")
    return value


def _widths(value: Any, where: str, key: str) -> str:
    """'512-256', [512, 256] or 64 -> '512-256' (a string, so that Optuna can sample it)."""
    parts = value if isinstance(value, list) else str(value).split("-") if value != "" else []
    try:
        sizes = [int(p) for p in parts]
    except (TypeError, ValueError):
        sizes = []
    if (parts and not sizes) or any(not 1 <= w <= 65536 for w in sizes) or isinstance(value, (bool, float)):
        raise SearchError(f"{where}: {key}: expected hidden widths like '512-256' or [512, 256], got {value!r}")
    return "-".join(map(str, sizes))


def _int(value: Any, where: str, key: str, low: int, high: int) -> int:
    return int(_number(value, where, key, low, high, integer=True))


def _choice(value: Any, allowed: tuple[str, ...], where: str, key: str) -> str:
    if value not in allowed:
        raise SearchError(f"{where}: {key}: unknown value {value!r}; expected one of {', '.join(allowed)}")
    return value


def _parse_named(raw: Any, known: dict[str, set[str]], where: str, key: str) -> dict[str, Any]:
    conf = {"name": raw} if isinstance(raw, str) else raw
    if not isinstance(conf, dict) or "name" not in conf:
        raise SearchError(f"{where}: {key}: expected a name or a mapping with name: ({', '.join(known)}), "
                          f"got {raw!r}")
    name = _choice(conf["name"], tuple(known), where, f"{key}.name")
    _check_keys(conf, known[name], where, key)
    for opt, v in conf.items():
        if opt == "multivariate":
            if not isinstance(v, bool):
                raise SearchError(f"{where}: {key}.{opt}: expected true or false, got {v!r}")
        elif opt != "name":
            minimum = 1 if opt in ("min_resource", "reduction_factor") else 0
            conf[opt] = _int(v, where, f"{key}.{opt}", minimum + (opt == "reduction_factor"), 2**31 - 1)
    return dict(conf)


def _check_keys(doc: dict, allowed: set[str], where: str, prefix: str) -> None:
    for k in doc:
        if k not in allowed:
            dot = f"{prefix}." if prefix else ""
            raise SearchError(f"{where}: {dot}{k}: unknown key; expected one of {', '.join(sorted(allowed))}")


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"a {type(value).__name__} ({value!r:.40})"
