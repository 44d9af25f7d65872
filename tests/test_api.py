"""The notebook API as a user runs it: the README's snippet, as written, in a fresh folder and
a fresh interpreter, runs a study on real MNIST, exports it (ONNX too) and retrains it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import optuna
import pytest
import yaml

from conftest import ROOT, needs_mnist

pytestmark = needs_mnist

SNIPPET = re.search(r"<!-- api -->\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)


def test_the_readme_snippet_runs_exports_and_retrains_from_a_fresh_folder(tmp_path):
    assert len(SNIPPET.strip().splitlines()) < 20
    fresh = tmp_path / "notebook"
    fresh.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SEARCH_STORAGE"}  # the default: ./search.db
    r = subprocess.run([sys.executable, "-I", "-c", SNIPPET], cwd=fresh, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    number, value, val, test = r.stdout.split("\n")[-2].split()
    assert float(val) == float(value) and float(test) > 0.8  # the best trial, reproduced exactly on CPU
    for name in ("search.db", "best.yaml", "best.pt", "best.onnx", "model.ts"):
        assert (fresh / name).is_file(), name
    study = optuna.load_study(study_name="notebook", storage=f"sqlite:///{fresh / 'search.db'}")
    assert len(study.trials) == 4 and study.best_trial.number == int(number)
    assert yaml.safe_load((fresh / "best.yaml").read_text())["source"]["trial"] == int(number)
    assert "study notebook: 0 trials stored, 4 to run" in r.stdout  # the CLI's progress lines


def test_run_resumes_takes_sets_and_mistakes_raise_the_clis_line(tmp_path):
    import search

    doc = {"name": "api", "n_trials": 2, "seed": 0, "train_size": 2000, "sampler": "random", "pruner": "none",
           "space": {"model": "mlp", "epochs": 1, "lr": {"low": 1e-3, "high": 1e-2, "log": True}}}
    first = search.run(doc, progress=False)
    assert first.ran == 2 and (tmp_path / "search.db").is_file()  # the CLI's default storage, in the folder
    again = search.run(doc, n_trials=3, progress=False, track=["tensorboard"])  # the CLI's --track values
    assert again.ran == 1 and len(again.study.trials) == 3
    assert [p.name for p in (tmp_path / "runs" / "api").iterdir()] == ["trial-00002"]  # only the trial it ran
    config = search.best_config("api")
    assert config["source"]["trial"] == again.study.best_trial.number
    trained = search.train(config, progress=False)
    assert trained.summary["val_accuracy"] == again.study.best_value
    with pytest.raises(search.SearchError, match=r"did you mean lr\?"):
        search.run(doc, sets=["lrr=0.1"], progress=False)
    with pytest.raises(search.SearchError, match=r"unknown study 'apii'.*did you mean api\?"):
        search.best_config("apii")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = search.load_study(str(ROOT / "studies" / "quickstart.yaml"))
    assert spec.name == "quickstart" and any(issubclass(w.category, DeprecationWarning) and
                                             "read_study_file" in str(w.message) for w in caught)
