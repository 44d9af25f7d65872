from pathlib import Path

import optuna
import pytest

from search.errors import SearchError
from search.space import suggest_params
from search.spec import Choices, Fixed, Range, parse_study, read_study_file

from conftest import ROOT


def parse(space=None, **top):
    return parse_study({"space": space or {}, **top}, "s.yaml")


def test_shipped_studies_validate():
    files = sorted((ROOT / "studies").glob("*.yaml"))
    assert files, "no study files shipped"
    for path in files:
        spec = read_study_file(str(path))
        assert spec.name == path.stem


def test_forms_of_an_axis():
    spec = parse({"lr": {"low": "1e-4", "high": 0.1}, "batch_size": [64, 128], "epochs": 3,
                  "hidden_size": {"low": 32, "high": 256, "step": 32}})
    assert spec.space["lr"] == Range(1e-4, 0.1, log=True)  # lr is log-uniform by default
    assert spec.space["batch_size"] == Choices((64, 128))
    assert spec.space["epochs"] == Fixed(3)
    assert spec.space["hidden_size"] == Range(32, 256, False, 32)
    assert spec.direction == "maximize" and parse(metric="val_loss").direction == "minimize"


@pytest.mark.parametrize("space, top, match", [
    ({"learning_rate": 0.1}, {}, r"space\.learning_rate: unknown axis"),
    ({"lr": "fast"}, {}, r"space\.lr: expected a number > 0 and <= 10, got 'fast'"),
    ({"batch_size": 12.5}, {}, r"space\.batch_size: expected an integer"),
    ({"batch_norm": "yes"}, {}, r"space\.batch_norm: expected true or false"),
    ({"lr": {"low": 0.1, "high": 0.01}}, {}, r"space\.lr: low \(0\.1\) must not exceed high \(0\.01\)"),
    ({"activation": {"choices": []}}, {}, r"space\.activation\.choices: expected a non-empty list"),
    ({"activation": []}, {}, r"space\.activation\.choices: expected a non-empty list"),
    ({"model": "resnet"}, {}, r"space\.model: unknown value 'resnet'; expected one of mlp, lenet5, cnn"),
    ({"optimizer": ["adam", "lbfgs"]}, {}, r"space\.optimizer\.choices\[1\]: unknown value 'lbfgs'"),
    ({"activation": "swish2"}, {}, r"space\.activation: unknown value 'swish2'"),
    ({"dropout": 1.0}, {}, r"space\.dropout: expected a number >= 0 and < 1"),
    ({"lr": {"low": 0.1}}, {}, r"space\.lr: a range needs both low and high"),
    ({}, {"dataset": "emnist"}, r"dataset: unknown dataset 'emnist'; expected one of mnist, fashion-mnist, kmnist, "
                                r"emnist-letters, emnist-balanced, qmnist, or your own images as \{path: "),
    ({}, {"dataset": "cifar10"}, r"dataset: 'cifar10' is read from its python batches, not by name: download and "
                                 r"unpack them, then write dataset: \{path: cifar-10-batches-py\}"),
    ({}, {"sampler": "cmaes"}, r"sampler\.name: unknown value 'cmaes'"),
    ({}, {"pruner": {"name": "median", "patience": 3}}, r"pruner\.patience: unknown key"),
    ({}, {"n_trials": 0}, r"n_trials: expected an integer >= 1"),
    ({}, {"budget": 3}, r"budget: unknown key"),
    ({"lr": {"low": 1e-3, "high": 1e-1}}, {"sampler": "grid"}, r"grid sampler needs choices"),
])
def test_each_mistake_names_file_key_and_expectation(space, top, match):
    with pytest.raises(SearchError, match=match) as e:
        parse(space, **top)
    assert str(e.value).startswith("s.yaml: ") and "\n" not in str(e.value)


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("space:\n  lr: [0.1, 0.2\n  epochs: 3\n")
    with pytest.raises(SearchError, match=r"bad\.yaml: malformed YAML at line \d+"):
        read_study_file(str(path))


def test_unknown_study_name():
    with pytest.raises(SearchError, match="unknown study 'nope'"):
        read_study_file("nope", studies_dir=Path("."))


def test_conditional_axes_only_sampled_where_they_apply():
    spec = parse({"optimizer": ["adam", "sgd"], "momentum": {"low": 0.5, "high": 0.99},
                  "model": ["mlp", "lenet5"], "hidden_size": [32, 64]})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        params = suggest_params(trial, spec)
        assert ("momentum" in trial.params) == (params.optimizer == "sgd")
        assert ("hidden_size" in trial.params) == (params.model == "mlp")
        assert ("momentum" in params.active()) == (params.optimizer == "sgd")
        seen.add((params.optimizer, params.model))
        study.tell(trial, 0.0)
    assert len(seen) == 4


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    marker = tmp_path / "ran"
    path.write_text(f"space: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(SearchError, match="malformed YAML"):
        read_study_file(str(path))
    assert not marker.exists()  # the tag was refused, not executed


def test_qmc_workers_that_start_at_once_do_not_train_the_same_first_point(tmp_path):
    """QMC draws a study's first trials (asked before any trial has suggested its parameters)
    with its independent sampler; seeded per worker, two workers asking at once get two points,
    and once a trial has suggested, both take the study's one Sobol sequence in turn."""
    spec = parse({"lr": {"low": 1e-4, "high": 1e-1, "log": True}, "hidden_size": {"low": 16, "high": 512}},
                 sampler="qmc")
    storage = f"sqlite:///{tmp_path}/q.db"
    optuna.create_study(storage=storage, study_name="q", direction="maximize")
    a, b = (optuna.load_study(study_name="q", storage=storage, sampler=spec.make_sampler(offset))
            for offset in (0, 100_003))
    ta, tb = a.ask(), b.ask()  # both asked before either suggests: the race of workers starting together
    ta.relative_params, tb.relative_params  # noqa: B018 - sampled when asked, as the service's loop does
    first = suggest_params(ta, spec), suggest_params(tb, spec)
    assert first[0].lr != first[1].lr
    a.tell(ta, 0.5)
    b.tell(tb, 0.5)
    later = [suggest_params(s.ask(), spec).lr for s in (a, b, a, b)]
    assert len(set(later + [p.lr for p in first])) == 6
