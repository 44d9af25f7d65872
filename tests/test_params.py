"""The typed parameter path: Params and AXES agree, per-layer axes, registries, stored trials."""

import dataclasses
import json

import optuna
import pytest

from models import ACTIVATIONS, MODELS
from search.errors import SearchError
from search.fit import OPTIMIZERS, TrainConfig
from search.params import AXES, Params
from search.samplers import PRUNERS, SAMPLERS
from search.space import suggest_params
from search.spec import parse_study
from search.trials import params_of

from conftest import ROOT, cli


def test_params_fields_and_the_axis_registry_agree():
    fields = {f.name: f for f in dataclasses.fields(Params)}
    assert set(fields) == set(AXES)  # one field per axis (AXES's order is the sampling order)
    for name, axis in AXES.items():
        default = fields[name].default
        assert axis.default == default
        assert axis.check(default, "Params", name) == default, name  # every default is inside its own bounds
        if axis.when:
            assert axis.when[0] in AXES and list(AXES).index(axis.when[0]) < list(AXES).index(name)
        if axis.per_layer:
            assert AXES[axis.per_layer].kind in ("ints", "floats")
        assert axis.help and not axis.help.endswith(".")


def _another(axis):
    """A valid value of `axis` other than its default."""
    d = axis.default
    if axis.kind == "choice":
        return next(c for c in axis.choices if c != d)
    if axis.kind == "bool":
        return not d
    if axis.kind in ("ints", "floats"):
        n = axis.length or 2
        return axis.check([3] * n if axis.kind == "ints" else [0.25] * n, "test", axis.name)
    value = axis.low + (1 if axis.kind == "int" else 0.25) if axis.low is not None else 1
    return value if value != d else value + 1


def _training(p):
    """What the fit loop reads of a Params: its TrainConfig fields."""
    return {f.name: getattr(p, f.name) for f in dataclasses.fields(TrainConfig)}


def test_every_field_of_params_reaches_the_network_or_the_fit_loop():
    """A training or model axis copied into neither config would be silently ignored."""
    base = Params()
    for name, axis in AXES.items():
        changed = dataclasses.replace(base, **{name: _another(axis)})
        if name == "dropouts":  # one per MLP layer
            changed = dataclasses.replace(changed, n_layers=2)
            base_cmp = dataclasses.replace(base, n_layers=2)
        else:
            base_cmp = base
        reaches = (_training(changed) != _training(base_cmp) or changed.model_config() != base_cmp.model_config())
        assert reaches, f"Params.{name} reaches neither the fit loop (TrainConfig) nor the network (ModelConfig)"


def test_choices_come_from_the_registries_that_build_them():
    assert AXES["model"].choices == tuple(MODELS)
    assert AXES["optimizer"].choices == tuple(OPTIMIZERS)
    assert AXES["activation"].choices == tuple(ACTIVATIONS)
    for name in SAMPLERS:
        spec = parse_study({"sampler": name, "space": {"lr": [1e-3, 1e-2]}}, "s.yaml")
        assert isinstance(spec.make_sampler(0), optuna.samplers.BaseSampler)
    for name, entry in PRUNERS.items():
        spec = parse_study({"pruner": {"name": name, **{k: 0.5 for k in entry.one_of[:1]}}, "space": {}}, "s.yaml")
        assert isinstance(spec.make_pruner(), optuna.pruners.BasePruner)
    # a new registry entry is accepted and named in errors without touching the parser
    with pytest.raises(SearchError, match="expected one of " + ", ".join(SAMPLERS)):
        parse_study({"sampler": "cmaes", "space": {}}, "s.yaml")


def test_configs_carry_every_param_and_drop_inactive_ones():
    p = Params.from_dict({"optimizer": "sgd", "momentum": 0.9, "widths": "512-256", "lr": "3e-3"}, "c.yaml")
    assert p.widths == (512, 256) and p.lr == 0.003 and p.model_config().widths == (512, 256)
    active = p.active()
    assert active["momentum"] == 0.9 and active["widths"] == [512, 256]
    assert "hidden_size" not in active and "n_layers" not in active and "rotation" not in active
    assert Params.from_dict(active, "again") == p  # a written config reads back to the same Params
    adam = Params()
    assert "momentum" not in adam.active() and adam.model_config().widths == (128,)
    assert isinstance(p, TrainConfig) and (p.lr, p.momentum, p.optimizer) == (0.003, 0.9, "sgd")  # fit reads it


@pytest.mark.parametrize("values, match", [
    ({"lr": 0}, r"c\.yaml: params\.lr: expected a number > 0 and <= 10, got 0"),
    ({"widths": "512-abc"}, r"params\.widths: expected hidden widths like '512-256'"),
    ({"widths": [512, 0]}, r"params\.widths: expected hidden widths .* \(each 1\.\.65536\)"),
    ({"dropouts": [0.5, 1.0]}, r"params\.dropouts: expected dropouts like \[0\.3, 0\.2\]"),
    ({"optimizer": "lbfgs"}, r"params\.optimizer: unknown value 'lbfgs'; expected one of sgd, adam, adamw, rmsprop"),
    ({"depth": 3}, r"params\.depth: unknown axis"),
    ({"batch_norm": "yes"}, r"params\.batch_norm: expected true or false"),
    ({"lr": "x" * 500}, r"got 'xxxx.*\.\.\.$"),  # a huge value is cut, not echoed whole
    ({"n_layers": 2, "dropouts": [0.3]}, r"params\.dropouts: 1 values for an MLP with 2 hidden layers"),
])
def test_bad_config_values_are_one_line(values, match):
    with pytest.raises(SearchError, match=match) as e:
        Params.from_dict(values, "c.yaml")
    assert "\n" not in str(e.value) and len(str(e.value)) < 400


def _sample(space, n=40, **top):
    spec = parse_study({"space": space, "sampler": "random", **top}, "s.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out = []
    for _ in range(n):
        trial = study.ask()
        params = suggest_params(trial, spec)
        study.tell(trial, 0.5)
        out.append((study.trials[-1], params))
    return out


def test_per_layer_axes_are_sampled_once_per_layer_conditionally():
    # Optuna's pytorch_simple.py: n_units_l{i} and dropout_l{i} for each of n_layers layers
    space = {"n_layers": {"low": 1, "high": 3}, "hidden_size": {"low": 4, "high": 128, "log": True, "per_layer": True},
             "dropout": {"low": 0.2, "high": 0.5, "per_layer": True}}
    seen = set()
    for frozen, params in _sample(space):
        n = params.n_layers
        seen.add(n)
        assert sorted(k for k in frozen.params if k.startswith("hidden_size_l")) == [f"hidden_size_l{i}"
                                                                                      for i in range(n)]
        assert len(params.widths) == n == len(params.dropouts)
        assert params.model_config().widths == params.widths and params.model_config().dropouts == params.dropouts
        assert list(params.widths) == [frozen.params[f"hidden_size_l{i}"] for i in range(n)]
        assert all(0.2 <= d <= 0.5 for d in params.dropouts)
        assert "hidden_size" not in frozen.params and "dropout" not in frozen.params
        # the trial, read back from storage, gives the same typed parameters
        frozen.user_attrs["config"] = params.active()
        assert params_of(frozen) == params
    assert seen == {1, 2, 3}


def test_per_layer_dropout_on_a_cnn_is_one_dropout():
    for frozen, params in _sample({"model": ["mlp", "cnn"], "n_layers": 2,
                                   "dropout": {"low": 0.1, "high": 0.4, "per_layer": True}}, n=20):
        if params.model == "cnn":
            assert set(frozen.params) == {"model", "dropout"} and params.dropouts == ()
        else:
            assert {"dropout_l0", "dropout_l1"} <= set(frozen.params) and len(params.dropouts) == 2


def test_stored_trials_before_per_layer_axes_read_the_same_way():
    frozen = optuna.trial.create_trial(
        params={"lr": 0.05, "widths": "64-32"}, value=0.9,
        distributions={"lr": optuna.distributions.CategoricalDistribution([0.05]),
                       "widths": optuna.distributions.CategoricalDistribution(["32", "64-32"])},
        user_attrs={"config": {"model": "mlp", "lr": 0.05, "hidden_size": 128, "n_layers": 1, "widths": "",
                               "optimizer": "sgd", "momentum": 0.9}})
    p = params_of(frozen)
    assert p.widths == (64, 32) and p.momentum == 0.9 and p.lr == 0.05


def test_axes_lists_every_axis_with_its_help(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    r = cli("axes")
    assert r.exit_code == 0 and max(len(line) for line in r.output.splitlines()) <= 80
    rows = json.loads(cli("axes", "--json").stdout)
    assert [row["axis"] for row in rows] == list(AXES)
    lr = next(row for row in rows if row["axis"] == "lr")
    assert lr == {"axis": "lr", "values": "float (0, 10] log", "default": 0.001, "applies": "always",
                  "help": "learning rate"}
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `")]
    documented = {name.strip(" `") for line in rows for name in line.split("|")[1].split(",")}
    assert set(AXES) <= documented  # the README's axis table lists them all
