"""Axis registry + `Params`: the one typed parameter object from a study file to the fit loop.

`Params` is composed of the fit loop's `TrainConfig` (search/fit.py) and the networks'
`ModelAxes` (models/_config.py), where each axis is declared once with its default, plus
the MLP's layer axes declared here. `AXES` keeps, for each field, its kind, bounds, log
scale, the condition under which it applies and a line of help; a test checks that the two
agree. `fit` takes a Params as its TrainConfig; `Params.model_config(shape)` resolves the
layer widths and hands the network its config whole. A new training axis is its
TrainConfig field, its `AXES` entry and its use; a field of Params that reaches neither
the fit loop nor the network fails a test.

Per-layer axes: `hidden_size` and `dropout` may be searched per hidden layer of the MLP
(Optuna's `n_units_l{i}` / `dropout_l{i}`, conditional on `n_layers`); the sampled values
travel as `widths` and `dropouts`, one entry per layer.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Mapping

from models import ACTIVATIONS, MODELS, ModelAxes, ModelConfig, Shape
from search import _check
from search.errors import SearchError
from search.fit import OPTIMIZERS, SCHEDULES, TrainConfig

__all__ = ["ARG_NAME", "AXES", "BUILT_IN_AXES", "Axis", "DEFAULTS", "FACTORY", "LAYER_KEY", "MAX_WIDTH", "Params",
           "arg_name", "is_factory", "layered"]

MAX_WIDTH = 65536


@dataclass(frozen=True)
class Params(ModelAxes, TrainConfig):
    """Every hyperparameter of one trial or config, with its default: the training axes
    (TrainConfig), the model axes (ModelAxes) and the MLP's layer widths."""

    hidden_size: int = 128
    n_layers: int = 1
    widths: tuple[int, ...] = ()  # MLP hidden widths, one per layer; () means hidden_size x n_layers

    def model_config(self, shape: Shape = Shape()) -> ModelConfig:
        """The network's config; `shape` (input and classes) comes from the data."""
        widths = self.layer_widths() if layered(self.model) else (self.hidden_size,)
        axes = {f.name: getattr(self, f.name) for f in dataclasses.fields(ModelAxes)}
        return ModelConfig(widths=widths, shape=shape, **axes)

    def layer_widths(self) -> tuple[int, ...]:
        return self.widths or (self.hidden_size,) * self.n_layers

    def active(self) -> dict[str, Any]:
        """The parameters that shape this model and run (momentum only under sgd, widths only
        when set, ...), in registry order, lists for per-layer values, a mapping for a
        factory's arguments: the form of configs."""
        return {name: _plain(name, v) for name, v in ((n, getattr(self, n)) for n in AXES)
                if AXES[name].applies(self) and v != ()}

    @classmethod
    def from_dict(cls, values: Any, where: str, prefix: str = "params") -> Params:
        """Validate a mapping of axis -> value (an exported config, a trial's parameters);
        missing axes take their defaults."""
        values = _check.mapping(values, where, prefix, "a mapping of axis -> value")
        checked = {}
        for key, value in values.items():
            axis = AXES.get(key) if isinstance(key, str) else None
            if axis is None:
                raise SearchError(f"{where}: {prefix}.{_check.name(key)}: unknown axis; "
                                  f"{_check.unknown(key, AXES, '`search axes` lists every axis')}")
            checked[key] = axis.check(value, where, f"{prefix}.{key}")
        params = cls(**checked)
        layers = len(params.layer_widths())
        if layered(params.model) and params.dropouts and len(params.dropouts) != layers:
            raise SearchError(f"{where}: {prefix}.dropouts: {len(params.dropouts)} values for an MLP with {layers} "
                              "hidden layers; give one per layer")
        return params

    @classmethod
    def from_trial(cls, config: Mapping[str, Any], sampled: Mapping[str, Any], where: str) -> Params:
        """A stored trial's parameters: the `config` recorded at its start (every value,
        fixed or not) overlaid with Optuna's sampled `params`, per-layer names folded."""
        values = dict(config)
        args = dict(config.get("model_args") or {})  # a factory's arguments are sampled under their own names
        layers: dict[str, dict[int, Any]] = {}
        arg_layers: dict[str, dict[int, Any]] = {}
        for key, value in sampled.items():
            m = LAYER_KEY.fullmatch(key)
            if m and m[1] in AXES and AXES[m[1]].per_layer:
                layers.setdefault(AXES[m[1]].per_layer, {})[int(m[2])] = value
            elif key not in AXES and key in args:
                args[key] = value
            elif m and m[1] in args:  # a factory argument with one value per layer
                arg_layers.setdefault(m[1], {})[int(m[2])] = value
            else:
                values[key] = value
        for name, by_index in arg_layers.items():
            args[name] = [by_index[i] for i in sorted(by_index)]
        if args:
            values["model_args"] = args
        for field, by_index in layers.items():
            values[field] = [by_index[i] for i in sorted(by_index)]
        return cls.from_dict(values, where)


FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")  # the user's own network: module.path:callable
ARG_NAME = re.compile(r"[A-Za-z_]\w*")


def is_factory(model: object) -> bool:
    """`model` names the user's factory (module:callable) rather than a built-in model."""
    return isinstance(model, str) and FACTORY.fullmatch(model) is not None


# The model axes of the built-in networks (activation, dropout, channels, ...): a factory
# reads none of them.
BUILT_IN_AXES = frozenset(f.name for f in dataclasses.fields(ModelAxes)) - {"model", "model_args"}


def layered(model: object) -> bool:
    """A model of hidden layers counted by `n_layers` (the MLP): per-layer axes fill one value each."""
    return isinstance(model, str) and model in MODELS and "n_layers" in MODELS[model].reads


def _plain(name: str, value: Any) -> Any:
    """A value as configs write it: lists for per-layer tuples, a mapping for model_args."""
    if name == "model_args":
        return {k: list(v) if isinstance(v, tuple) else v for k, v in value}
    return list(value) if isinstance(value, tuple) else value


def _args(value: Any, where: str, key: str) -> tuple[tuple[str, Any], ...]:
    """A factory's arguments: a mapping of names to plain values (numbers, text, true/false,
    lists of them), kept in the file's order."""
    if isinstance(value, tuple):  # already in Params' own form: (name, value) pairs
        value = dict(value)
    value = _check.mapping(value, where, key, "a mapping of argument name -> value")
    out = []
    for name, v in value.items():
        arg_name(name, where, key)
        items = v if isinstance(v, (list, tuple)) else [v]
        if not all(_plain_value(x) for x in items):
            raise SearchError(f"{where}: {key}.{name}: expected a number, text, true/false or a list of them, got "
                              f"{_check.short(v)}")
        out.append((name, tuple(v) if isinstance(v, (list, tuple)) else v))
    return tuple(out)


def arg_name(name: Any, where: str, key: str) -> str:
    """A factory argument's name: a Python identifier that no axis uses (Optuna samples it
    under that name, beside the axes)."""
    if not isinstance(name, str) or not ARG_NAME.fullmatch(name) or name in DEFAULTS:
        raise SearchError(f"{where}: {key}.{_check.name(name)}: expected an argument name (a Python identifier "
                          "that is not one of the axes)")
    return name


def _plain_value(value: Any) -> bool:
    """What a factory argument may hold: nothing, a number, text or true/false."""
    return value is None or isinstance(value, (bool, int, float, str))


def _reading(axis: str) -> tuple[str, tuple[str, ...]]:
    """The condition of a model-specific axis: the models whose entry reads it."""
    return "model", tuple(name for name, e in MODELS.items() if axis in e.reads)


LAYER_KEY = re.compile(r"(\w+)_l(\d+)")
DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Params)}


@dataclass(frozen=True)
class Axis:
    """One hyperparameter: `kind` is float, int, bool, choice (a closed set of names) or
    ints / floats (a list, one entry per hidden layer, written '512-256' or [512, 256])."""

    name: str
    kind: str
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True when `low` itself is not allowed (lr > 0)
    high_open: bool = False
    choices: tuple[str, ...] = ()
    log: bool = False  # ranges of this axis are log-uniform unless the file says otherwise
    when: tuple[str, tuple[Any, ...]] | None = None  # (axis, values) under which it applies
    per_layer: str = ""  # the list field that `per_layer: true` fills (hidden_size -> widths)
    length: int = 0  # ints / floats: exactly this many values (0: any number)
    factories: bool = False  # a choice that may also name the user's factory (module:callable)

    @property
    def default(self) -> Any:
        return DEFAULTS[self.name]

    def applies(self, values: Params | Mapping[str, Any]) -> bool:
        get = values.get if isinstance(values, Mapping) else lambda k, d=None: getattr(values, k, d)
        if self.when is not None and get(self.when[0]) not in self.when[1]:
            return False
        if self.name in ("hidden_size", "n_layers") and get("widths"):
            return False  # explicit widths replace hidden_size x n_layers
        if self.name == "dropout" and get("dropouts") and layered(get("model")):
            return False
        if self.kind == "args":
            return is_factory(get("model"))
        if self.name in BUILT_IN_AXES and is_factory(get("model")):
            return False  # what the built-in networks read; the user's factory takes model_args instead
        return True

    def check(self, value: Any, where: str, key: str) -> Any:
        """`value` validated against this axis (lists become tuples), or SearchError."""
        if self.kind == "choice":
            if self.factories and is_factory(value):
                return value
            return _check.choice(value, self.choices, where, key, *(["or module:callable"] if self.factories else []))
        if self.kind == "args":
            return _args(value, where, key)
        if self.kind == "value":  # a factory argument: any plain value
            if _plain_value(value):
                return value
            raise SearchError(f"{where}: {key}: expected a number, text or true/false, got {_check.short(value)}")
        if self.kind == "bool":
            return _check.boolean(value, where, key)
        if self.kind in ("ints", "floats"):
            return self._layers(value, where, key)
        return self._number(value, where, key, self.kind == "int")

    def _number(self, value: Any, where: str, key: str, integer: bool) -> Any:
        assert self.low is not None and self.high is not None, f"numeric axis {self.name} needs low and high"
        return _check.number(value, where, key, self.low, self.high, self.low_open, self.high_open, integer)

    def encode(self, value: Any) -> Any:
        """A value as Optuna stores a categorical choice (lists as '512-256')."""
        return "-".join(f"{v:g}" for v in value) if isinstance(value, tuple) else value

    def condition(self) -> str:
        """When the axis applies, as a study file would say it ('' for always)."""
        if self.kind == "args":
            return "model=module:callable"
        if self.when is None:
            return ""
        return f"{self.when[0]}={'|'.join(str(v).lower() for v in self.when[1])}"

    def describe(self) -> str:
        if self.kind == "choice":
            return ", ".join(self.choices) + (", module:callable" if self.factories else "")
        if self.kind == "args":
            return "name: value, range or choices"
        if self.kind == "bool":
            return "true, false"
        if self.kind in ("ints", "floats"):
            return f"[{self.low:g}..{self.high:g}, ...] per layer"
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        return f"{self.kind} {lo}{self.low:g}, {self.high:g}{hi}" + (" log" if self.log else "")

    def _layers(self, value: Any, where: str, key: str) -> tuple:
        integer = self.kind == "ints"
        want = "hidden widths like '512-256' or [512, 256]" if integer else "dropouts like [0.3, 0.2]"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        elif isinstance(value, str):
            value = [p for p in value.split("-")] if value.strip() else []
        if self.length:
            want = f"{self.length} integers like {'-'.join(map(str, self.default))}"
        if not isinstance(value, (list, tuple)) or len(value) > 64 or (self.length and len(value) != self.length):
            raise SearchError(f"{where}: {key}: expected {want}, got {_check.short(value)}")
        try:
            return tuple(self._number(v, where, key, integer) for v in value)
        except SearchError:
            raise SearchError(f"{where}: {key}: expected {want} (each {self.low:g}..{self.high:g}), "
                              f"got {_check.short(value)}") from None


_WARMUP = ("schedule", tuple(name for name, s in SCHEDULES.items() if s.warmup))
AXES: dict[str, Axis] = {a.name: a for a in [
    Axis("model", "choice", "network family, or your own factory (module:callable beside the study file)",
         choices=tuple(MODELS), factories=True),
    Axis("model_args", "args", "your factory's own arguments, each a value, range or choices: "
                               "build(input_shape, num_classes, **model_args)"),
    Axis("lr", "float", "learning rate", low=0.0, high=10.0, low_open=True, log=True),
    Axis("batch_size", "int", "images per step", low=1, high=65536),
    Axis("epochs", "int", "passes over the training split (the pruners' resource)", low=1, high=1000),
    Axis("hidden_size", "int", "width of every MLP hidden layer (per_layer: true samples one per layer), "
                               "or of the convnet's and vgg's dense layer",
         low=1, high=MAX_WIDTH, when=_reading("hidden_size"), per_layer="widths"),
    Axis("n_layers", "int", "MLP hidden layers (0: logistic regression)", low=0, high=16, when=_reading("n_layers")),
    Axis("activation", "choice", "non-linearity", choices=tuple(ACTIVATIONS)),
    Axis("dropout", "float", "dropout probability (per_layer: true samples one per MLP layer)",
         low=0.0, high=1.0, high_open=True, per_layer="dropouts"),
    Axis("batch_norm", "bool", "batch normalisation after each hidden layer"),
    Axis("optimizer", "choice", "optimiser", choices=tuple(OPTIMIZERS)),
    Axis("momentum", "float", "SGD momentum", low=0.0, high=1.0, high_open=True, when=("optimizer", ("sgd",))),
    Axis("nesterov", "bool", "Nesterov momentum (SGD)", when=("optimizer", ("sgd",))),
    Axis("weight_decay", "float", "L2 penalty", low=0.0, high=1.0),
    Axis("channels", "ints", "the convnet's two convolutions or the vgg's two stages, e.g. '24-32'", low=1, high=4096, length=2,
         when=_reading("channels")),
    Axis("widths", "ints", "MLP hidden widths, e.g. '512-256' (replaces hidden_size x n_layers)",
         low=1, high=MAX_WIDTH, when=_reading("widths")),
    Axis("dropouts", "floats", "MLP dropout per hidden layer, e.g. [0.3, 0.2] (replaces dropout)",
         low=0.0, high=1.0, high_open=True, when=_reading("dropouts")),
    Axis("iterations", "int", "stop after this many steps (0: train for `epochs` full epochs)",
         low=0, high=10_000_000),
    Axis("augment", "bool", "random rotation, shift, zoom and Gaussian blur of training batches, on the device"),
    Axis("rotation", "float", "max rotation in degrees", low=0.0, high=180.0, when=("augment", (True,))),
    Axis("blur_sigma", "float", "max blur sigma", low=0.0, high=5.0, when=("augment", (True,))),
    Axis("shift", "float", "max shift in pixels, each axis", low=0.0, high=14.0, when=("augment", (True,))),
    Axis("scale", "float", "max zoom in or out (0.1: 90-110 %)", low=0.0, high=0.5, high_open=True,
         when=("augment", (True,))),
    Axis("hflip", "bool", "mirror half the training images left-right (natural images, never characters)",
         when=("augment", (True,))),
    Axis("cutout", "float", "erase a square of this fraction of the image side at a random place in every "
         "training image (Cutout; 0: off)", low=0.0, high=1.0, when=("augment", (True,))),
    Axis("schedule", "choice", "learning-rate schedule: constant, onecycle (up to lr, then down), cosine (down "
                               "to 0 after a linear warm-up)", choices=tuple(SCHEDULES)),
    Axis("warmup_epochs", "int", "epochs of linear warm-up (onecycle: 0 means its usual 30 % of the run)",
         low=0, high=1000, when=_WARMUP),
    Axis("label_smoothing", "float", "label smoothing of the training loss", low=0.0, high=1.0, high_open=True),
]}
