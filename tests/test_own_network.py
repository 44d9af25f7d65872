"""Your own network (model: module:callable, model_args) on your own images: the worked
example in examples/own-network, run end to end on scikit-learn's real 8x8 digits, and a
factory that misbehaves failing only its trial."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest
import yaml

from search._optuna import study_id

from conftest import ROOT, cli, finish, search

pytest.importorskip("sklearn.datasets", reason="scikit-learn (its digits) is a test dependency")
EXAMPLE = ROOT / "examples" / "own-network"


@pytest.fixture
def example(tmp_path):
    """The example as a user would copy it: nets.py, the study file and the digits beside them."""
    for name in ("nets.py", "digits.yaml", "make_digits.py"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    r = subprocess.run([sys.executable, "make_digits.py", "digits"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load((tmp_path / "digits.yaml").read_text())
    doc["n_trials"] = 4
    doc["space"]["epochs"] = 2
    (tmp_path / "digits.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp_path


def test_own_factory_with_its_axes_runs_shows_exports_retrains_and_reports(example):
    r = cli("run", "--study", example / "digits.yaml")
    assert r.exit_code == 0, r.output
    assert "code nets:build from" in r.output and "names code runs it" in r.output  # said, as Hydra says
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{example / 'search.db'}")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert complete and all({"width", "depth", "drop", "lr"} <= set(t.params) for t in study.trials)
    assert all(t.user_attrs["n_params"] > 1000 for t in complete)  # counted once built
    plain = cli("show", "--study", "digits").stdout
    assert "width=" in plain and "model_args=" not in plain  # its arguments read like the other axes
    shown = json.loads(cli("show", "--study", "digits", "--json").stdout)
    assert shown["best_params"]["model"] == "nets:build" and set(shown["best_params"]["model_args"]) == {
        "width", "depth", "drop"}
    out = example / "exported"
    out.mkdir()
    assert cli("export", "--study", "digits", "--out", out / "best.yaml").exit_code == 0
    config = yaml.safe_load((out / "best.yaml").read_text())
    assert config["params"]["model"] == "nets:build" and config["code"] == str(example)
    assert config["params"]["model_args"] == {k: study.best_params[k] for k in ("width", "depth", "drop")}
    trained = json.loads(cli("train", "--config", out / "best.yaml", "--json", "--save", out / "model.pt").stdout)
    assert trained["val_accuracy"] == study.best_value  # the trial reproduced exactly on CPU
    # the saved network loads in a fresh process elsewhere: its factory imported from the
    # folder the checkpoint names, built for the 8x8 images it trained on
    elsewhere = example / "elsewhere"
    elsewhere.mkdir()
    tested = subprocess.run([sys.executable, "-c", _LOAD_AND_TEST, str(out / "model.pt")], cwd=elsewhere,
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert tested.returncode == 0, tested.stderr
    loaded = json.loads(tested.stdout)
    assert loaded["shape"] == [1, 8, 8] and loaded["accuracy"] == pytest.approx(trained["test_accuracy"], abs=1e-6)
    r = cli("report", "--study", "digits", "--out", example / "rep")
    assert r.exit_code == 0, r.output
    report = (example / "rep" / "report.md").read_text()
    assert "model_args: width: {8, 16, 32}; depth: 1..3; drop: 0..0.3" in report and "**width**" in report
    detail = _dashboard_detail(example, study)  # what optuna-dashboard shows: the factory's axes as axes
    assert all({"width", "depth", "drop"} <= {p["name"] for p in t["params"]} for t in detail["trials"])
    assert "nets:build" in detail["note"]["body"] and "model_args" in detail["note"]["body"]


_LOAD_AND_TEST = """
import json, sys
from pathlib import Path
import torch
from search import load_weights
from search.data import load_dataset, stored_source

path = Path(sys.argv[1])
model = load_weights(path).eval()
blob = torch.load(path, weights_only=True)
test = load_dataset(stored_source(blob["dataset"]), None, "cpu").test
with torch.inference_mode():
    accuracy = (model(test.images()).argmax(1) == test.y).float().mean().item()
print(json.dumps({"shape": blob["data"]["shape"], "accuracy": accuracy}))
"""


def _dashboard_detail(folder, study) -> dict:
    """`search dashboard` on the study's storage: its /api/studies/<id> answer."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = search("dashboard", "--port", port, "--storage", f"sqlite:///{folder / 'search.db'}", cwd=folder)
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{study_id(study)}",
                                                        timeout=2))
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        finish(proc, 20)


@pytest.mark.parametrize("body, reason", [
    ("raise RuntimeError('out of ideas')", "model: nets:build(width=8) raised RuntimeError: out of ideas"),
    ("return 42", "model: nets:build(width=8) returned int, not a torch nn.Module"),
    ("return nn.Sequential(nn.Flatten(), nn.Linear(64, 7))",
     "model: nets:build: its model maps 2 images to shape (2, 7); expected (2, 10): one logit per class"),
])
def test_a_factory_that_misbehaves_fails_its_trial_and_the_study_goes_on(example, body, reason):
    (example / "nets.py").write_text("from torch import nn\n\n\ndef build(input_shape, num_classes, width):\n"
                                     f"    {body}\n")
    doc = yaml.safe_load((example / "digits.yaml").read_text())
    doc["space"]["model_args"] = {"width": 8}
    doc["n_trials"] = 2
    (example / "digits.yaml").write_text(yaml.safe_dump(doc))
    r = cli("run", "--study", example / "digits.yaml")
    assert r.exit_code == 0, r.output
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{example / 'search.db'}")
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]  # counted: the same call fails again
    assert {t.user_attrs["fail_reason"] for t in study.trials} == {reason}


@pytest.mark.parametrize("model, message", [
    ("nowhere:build", "model: nowhere:build: no module 'nowhere' beside the study file or on the Python path; "
                      "put it there (or fix the name)"),
    ("nets:missing", "model: nets:missing: nets has no callable 'missing'"),
])
def test_a_factory_that_cannot_be_imported_ends_the_run_before_any_trial(example, model, message):
    doc = yaml.safe_load((example / "digits.yaml").read_text())
    doc["space"]["model"] = model
    (example / "digits.yaml").write_text(yaml.safe_dump(doc))
    r = cli("run", "--study", example / "digits.yaml")
    assert r.exit_code == 2 and r.stderr.strip().splitlines() == [f"error: {example / 'digits.yaml'}: {message}"]
    assert not (example / "search.db").exists()


def test_model_args_need_a_factory(example):
    doc = yaml.safe_load((example / "digits.yaml").read_text())
    doc["space"]["model"] = "mlp"
    (example / "digits.yaml").write_text(yaml.safe_dump(doc))
    r = cli("run", "--study", example / "digits.yaml")
    assert r.exit_code == 2 and "space.model_args: arguments of your own model factory, but model is mlp" in r.stderr


PER_LAYER_NET = """
from math import prod
from torch import nn


def build(input_shape, num_classes, depth, sizes, act="relu"):
    assert isinstance(sizes, list) and len(sizes) == depth, (depth, sizes)
    layers, n = [nn.Flatten()], prod(input_shape)
    for w in sizes:
        layers += [nn.Linear(n, w), nn.ReLU() if act == "relu" else nn.Tanh()]
        n = w
    return nn.Sequential(*layers, nn.Linear(n, num_classes))
"""


def test_a_factory_argument_searched_per_layer_is_a_list_counted_by_another(example):
    (example / "nets.py").write_text(PER_LAYER_NET)
    doc = yaml.safe_load((example / "digits.yaml").read_text())
    doc["space"]["model_args"] = {"depth": {"low": 1, "high": 3}, "sizes": {"low": 8, "high": 64, "log": True,
                                                                            "per_layer": "depth"}, "act": "tanh"}
    doc["n_trials"], doc["sampler"], doc["pruner"] = 4, "random", "none"
    (example / "digits.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    r = cli("run", "--study", example / "digits.yaml")
    assert r.exit_code == 0, r.output
    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{example / 'search.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    for t in study.trials:  # one sampled value per layer, as Optuna's own per-layer examples name them
        assert {k for k in t.params if k.startswith("sizes_")} == {f"sizes_l{i}" for i in range(t.params["depth"])}
    best = json.loads(cli("show", "--study", "digits", "--json").stdout)["best_params"]["model_args"]
    assert len(best["sizes"]) == best["depth"] and best["act"] == "tanh"
    assert cli("export", "--study", "digits", "--out", example / "best.yaml").exit_code == 0
    config = yaml.safe_load((example / "best.yaml").read_text())
    assert config["params"]["model_args"] == best
    trained = json.loads(cli("train", "--config", example / "best.yaml", "--json").stdout)
    assert trained["val_accuracy"] == study.best_value
    assert "sizes: 8..64 log per layer (depth of them)" in study.user_attrs["space"]["model_args"]
    r = cli("report", "--study", "digits", "--out", example / "rep")
    assert r.exit_code == 0, r.output
    report = (example / "rep" / "report.md").read_text()
    assert "sizes: 8..64 log per layer (depth of them)" in report and "**sizes_l0**" in report


@pytest.mark.parametrize("args, message", [
    ({"depth": 2, "sizes": {"low": 8, "high": 64, "per_layer": True}},
     "space.model_args.sizes.per_layer: expected the name of the argument listed before it that counts the layers"),
    ({"sizes": {"low": 8, "high": 64, "per_layer": "depth"}, "depth": 2},
     "space.model_args.sizes.per_layer: expected the name of the argument listed before it"),
    ({"depth": {"low": 0, "high": 3}, "sizes": {"choices": [8, 16], "per_layer": "depth"}},
     "space.model_args.sizes.per_layer: depth counts the layers, so its values must be integers from 1 to 64"),
    ({"depth": 2, "sizes": {"low": 8, "high": 64, "per_layer": "depth"}, "sizes_l0": 3},
     "space.model_args.sizes_l0: the name of a per-layer value of sizes; rename one of the two"),
])
def test_per_layer_factory_arguments_are_checked_in_one_line(tmp_path, args, message):
    from search.errors import SearchError
    from search.spec import parse_study

    with pytest.raises(SearchError, match=re.escape(message)):
        parse_study({"space": {"model": "nets:build", "model_args": args}}, str(tmp_path / "s.yaml"))


def test_the_grid_sampler_refuses_a_factory_argument_range(tmp_path):
    from search.errors import SearchError
    from search.spec import parse_study

    with pytest.raises(SearchError, match=r"space\.model_args\.width: the grid sampler needs choices"):
        parse_study({"sampler": "grid", "space": {"model": "nets:build", "model_args": {"width": {"low": 8, "high": 9}}}},
                    str(tmp_path / "s.yaml"))
