"""Cost-aware search on real MNIST: a cost objective under a floor (Optuna constraints) and
two objectives (a Pareto front), through run, show, export, train, report and the dashboard's
metric names."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.request

import optuna
import pytest
import yaml

from search._optuna import study_id
from search.goal import Bound, parse_goal
from search.trials import best_or_none, feasible, metric_of, pareto_front

from conftest import cli, finish, needs_mnist, search, write_study

pytestmark = needs_mnist

SPACE = {"model": "mlp", "epochs": [1, 2], "batch_size": 128, "lr": {"low": 3e-4, "high": 3e-3},
         "hidden_size": [16, 64, 256]}


def _load(db, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{db}")


def test_cheapest_trial_above_a_floor_is_the_best_and_is_exported(tmp_path, db):
    path = write_study(tmp_path, "cheap", n_trials=8, train_size=2000, sampler={"name": "tpe", "n_startup_trials": 4},
                       metric="train_seconds", floor={"val_accuracy": 0.85}, space=SPACE)
    del_pruner = yaml.safe_load(path.read_text())
    del del_pruner["pruner"]  # the default for a cost objective: no pruning
    path.write_text(yaml.safe_dump(del_pruner))
    r = cli("run", "--study", path)
    assert r.exit_code == 0, r.output
    study = _load(db, "cheap")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 8 and study.directions == [optuna.study.StudyDirection.MINIMIZE]
    for t in complete:  # every trial carries its constraint: floor minus its last validation accuracy
        (key, violation), = t.constraints.items()
        assert key == "val_accuracy >= 0.85"
        assert violation == pytest.approx(0.85 - metric_of(t, "val_accuracy"), abs=1e-5)  # curves keep 5 digits
        assert t.value == pytest.approx(metric_of(t, "train_seconds"), abs=1e-3)  # training steps only
        assert 0 < t.value < sum(t.user_attrs["epoch_seconds"])  # evaluation excluded
    ok = [t for t in complete if feasible(t)]
    assert ok, "the space reaches 85 % in some trials"
    best = best_or_none(study)
    assert best.number == min(ok, key=lambda t: t.value).number  # the cheapest feasible trial ...
    cheapest = min(complete, key=lambda t: t.value)
    assert feasible(cheapest) or best.number != cheapest.number  # ... not the cheapest overall

    shown = json.loads(cli("show", "--study", "cheap", "--json").stdout)
    assert shown["best_trial"] == best.number and shown["goal"] == "minimize train_seconds subject to " \
                                                                   "val_accuracy >= 0.85"
    assert {r["number"]: r["feasible"] for r in shown["trials"]} == {t.number: feasible(t) for t in study.trials}
    assert cli("export", "--study", "cheap", "--out", "cheap.yaml").exit_code == 0
    config = yaml.safe_load((tmp_path / "cheap.yaml").read_text())
    assert config["source"] == {"study": "cheap", "trial": best.number, "metric": "train_seconds",
                                "value": best.value}
    trained = json.loads(cli("train", "--config", "cheap.yaml", "--json").stdout)
    assert trained["val_accuracy"] == pytest.approx(metric_of(best, "val_accuracy"), abs=1e-9)  # reproduced

    r = cli("report", "--study", "cheap", "--out", "rep")
    assert r.exit_code == 0, r.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "minimize train_seconds subject to val_accuracy >= 0.85" in md and "meets bounds" in md
    assert (tmp_path / "rep" / "tradeoff.png").stat().st_size > 10_000


def test_two_objectives_give_a_pareto_front_and_export_its_most_accurate_trial(tmp_path, db):
    path = write_study(tmp_path, "front", n_trials=6, train_size=2000, sampler={"name": "nsga2", "population_size": 4},
                       metric=["val_accuracy", "n_params"], space=SPACE)
    doc = yaml.safe_load(path.read_text())
    del doc["pruner"]
    path.write_text(yaml.safe_dump(doc))
    r = cli("run", "--study", path)
    assert r.exit_code == 0, r.output
    study = _load(db, "front")
    assert study.metric_names == ["val_accuracy", "n_params"]  # the dashboard names both objectives
    done = [t for t in study.trials if t.values]
    front = pareto_front(study)
    assert front
    for t in front:  # nobody beats a front trial in both objectives
        assert not any(o.values[0] >= t.values[0] and o.values[1] <= t.values[1] and o.values != t.values
                       for o in done)
    for t in done:
        assert t.values[1] == t.user_attrs["n_params"] and not t.intermediate_values  # nothing reported
    best = best_or_none(study)
    assert best.values[0] == max(t.values[0] for t in front)
    shown = json.loads(cli("show", "--study", "front", "--json").stdout)
    assert set(shown["pareto_front"]) == {t.number for t in front} and shown["best_trial"] == best.number
    assert cli("export", "--study", "front", "--out", "f.yaml").exit_code == 0
    assert yaml.safe_load((tmp_path / "f.yaml").read_text())["source"]["trial"] == best.number
    assert cli("report", "--study", "front", "--out", "rep").exit_code == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Pareto front" in md and (tmp_path / "rep" / "tradeoff.png").is_file()
    r = cli("show", "--study", "front")
    assert "Pareto front" in r.stdout and r.exit_code == 0

    # the dashboard (served by `search dashboard`) names both objectives and shows the same front
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = search("dashboard", "--port", port)
    deadline = time.monotonic() + 60
    while True:
        try:
            detail = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{study_id(study)}",
                                                      timeout=2))
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    finish(proc, 20)
    assert detail["objective_names"] == ["val_accuracy", "n_params"]
    assert detail["directions"] == ["maximize", "minimize"]
    assert sorted(t["number"] for t in detail["best_trials"]) == sorted(t.number for t in front)


def test_threshold_pruner_stops_trials_below_the_floor_and_marks_them_infeasible(tmp_path, db):
    path = write_study(tmp_path, "thr", n_trials=3, train_size=1000, metric="train_seconds",
                       floor={"val_accuracy": 0.999}, pruner={"name": "threshold", "lower": 0.999},
                       space={**SPACE, "epochs": 3})
    assert cli("run", "--study", path).exit_code == 0
    study = _load(db, "thr")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 3
    for t in study.trials:
        assert len(t.intermediate_values) == 1 and not feasible(t)  # stopped after epoch 1, infeasible for TPE
    r = cli("export", "--study", "thr", "--out", "x.yaml")
    assert r.exit_code == 2 and "no completed trial" in r.stderr


def test_goal_parsing():
    g = parse_goal({"metric": "train_seconds", "floor": {"val_accuracy": 0.99}, "ceiling": {"n_params": 1e5}}, "f")
    assert g.directions == ("minimize",) and g.curve == "val_accuracy" and not g.ranks_curve
    assert g.bounds == (Bound("val_accuracy", "floor", 0.99), Bound("n_params", "ceiling", 1e5))
    measured = {"val_accuracy": 0.995, "n_params": 2e5, "train_seconds": 3.0, "val_loss": 0.1}
    assert g.violations(measured) == {"val_accuracy >= 0.99": pytest.approx(-0.005), "n_params <= 100000": 1e5}
    two = parse_goal({"metric": ["val_accuracy", "train_seconds"]}, "f")
    assert two.multi and two.directions == ("maximize", "minimize") and two.curve is None
    assert parse_goal({}, "f").ranks_curve and str(parse_goal({}, "f")) == "maximize val_accuracy"
