"""The service end to end through the real CLI, on real MNIST and real SQLite files."""

import json
import re

import optuna
import pytest
import torch
import yaml

from search.config import load_config
from search.data import load_dataset
from search.trained import load_weights

from conftest import MNIST, cli, needs_mnist, one_line_error, trial_states, write_study

pytestmark = needs_mnist


def test_run_stores_trials_with_curves_and_attributes(tmp_path, db):
    study = write_study(tmp_path)
    r = cli("run", "--study", study)
    assert r.exit_code == 0, r.output
    assert "ran 3 trials" in r.output
    assert trial_states(db, "tiny") == ["COMPLETE"] * 3
    st = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    for t in st.trials:
        assert len(t.user_attrs["val_accuracy"]) == 1 and len(t.user_attrs["train_loss"]) == 1
        assert t.user_attrs["val_accuracy"][0] == pytest.approx(t.value, abs=1e-5)
        assert t.user_attrs["seed"] == t.number and t.user_attrs["device"] == "cpu"
        assert t.user_attrs["n_params"] == 784 * t.params["hidden_size"] + t.params["hidden_size"] * 11 + 10
        assert t.intermediate_values == {1: t.value}
        assert 0.8 < t.value < 1.0  # 3,000 images, one epoch: well above chance
    assert st.user_attrs["dataset"] == "mnist" and st.user_attrs["train_size"] == 3000


def test_running_again_resumes_the_same_study(tmp_path, db):
    study = write_study(tmp_path, n_trials=2)
    assert cli("run", "--study", study).exit_code == 0
    r = cli("run", "--study", study)
    assert r.exit_code == 0 and "0 to run" in r.output  # budget already met
    r = cli("run", "--study", study, "--n-trials", 4)
    assert r.exit_code == 0, r.output
    assert trial_states(db, "tiny") == ["COMPLETE"] * 4
    params = [tuple(sorted(t.params.items())) for t in
              optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials]
    assert len(set(params)) == 4  # the resumed run did not replay the first run's suggestions


def test_studies_and_show_json(tmp_path):
    assert cli("run", "--study", write_study(tmp_path)).exit_code == 0
    rows = json.loads(cli("studies", "--json").stdout)
    assert [r["study"] for r in rows] == ["tiny"]
    assert rows[0]["states"]["COMPLETE"] == 3 and rows[0]["n_trials"] == 3
    shown = json.loads(cli("show", "--study", "tiny", "--json").stdout)
    values = [t["value"] for t in shown["trials"]]
    assert shown["best_value"] == max(values)
    assert shown["best_params"]["hidden_size"] in (32, 64) and shown["best_params"]["epochs"] == 1
    table = cli("show", "--study", "tiny")
    assert table.exit_code == 0 and "best trial #" in table.output


def test_export_then_train_reproduces_the_trials_validation_accuracy(tmp_path):
    assert cli("run", "--study", write_study(tmp_path, n_trials=2)).exit_code == 0
    r = cli("export", "--study", "tiny", "--out", tmp_path / "best.yaml")
    assert r.exit_code == 0, r.output
    config = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert set(config) == {"dataset", "seed", "train_size", "precision", "params", "source"}
    assert config["precision"] == "fp32"  # MLPs are not timed: fp32
    assert config["params"]["model"] == "mlp" and "momentum" not in config["params"]  # adam: no momentum
    r = cli("train", "--config", tmp_path / "best.yaml", "--json", "--save", tmp_path / "model.pt")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["val_accuracy"] == config["source"]["value"]  # exact on CPU
    assert 0.8 < result["test_accuracy"] < 1.0 and result["test_loss"] > 0 and result["train_seconds"] > 0
    model = load_weights(tmp_path / "model.pt")
    test = load_dataset("mnist", MNIST, "cpu").test
    with torch.inference_mode():
        acc = (model.eval()(test.images()).argmax(1) == test.y).float().mean().item()
    assert acc == pytest.approx(result["test_accuracy"], abs=1e-6)
    assert load_config(tmp_path / "best.yaml").seed == config["seed"]


def test_pruning_prunes_trials_that_learn_nothing(tmp_path, db):
    # lr 1e-7 leaves the network at chance level; once one trial has completed, the
    # median pruner must stop every such trial after its first epoch.
    study = write_study(tmp_path, n_trials=8, sampler={"name": "grid", "seed": 3},
                        pruner={"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
                        space={"epochs": 3, "batch_size": 256, "lr": [1e-7, 3e-3], "hidden_size": [32, 48, 64, 80]})
    assert cli("run", "--study", study).exit_code == 0
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").trials
    first_complete = min(t.number for t in trials if t.state.name == "COMPLETE")
    hopeless = [t for t in trials if t.params["lr"] == 1e-7 and t.number > first_complete]
    assert hopeless, "the grid order left no hopeless trial after the first completed one"
    assert all(t.state.name == "PRUNED" and list(t.intermediate_values) == [1] for t in hopeless)
    assert all(len(t.intermediate_values) == 3 for t in trials if t.state.name == "COMPLETE")
    assert all(len(t.intermediate_values) < 3 for t in trials if t.state.name == "PRUNED")


def test_diverging_trial_fails_with_its_reason_and_the_study_goes_on(tmp_path, db):
    study = write_study(tmp_path, n_trials=2, sampler="grid",
                        space={"epochs": 1, "optimizer": "sgd", "momentum": 0.99, "lr": [10, 1e-2],
                               "n_layers": 6, "hidden_size": 256})
    r = cli("run", "--study", study)
    assert r.exit_code == 0, r.output
    st = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    by_lr = {t.params["lr"]: t for t in st.trials}
    assert by_lr[10].state.name == "FAIL"
    assert by_lr[10].user_attrs["fail_reason"].startswith("diverged: training loss became")
    assert by_lr[1e-2].state.name == "COMPLETE"
    assert "Traceback" not in r.output


# ---------------------------------------------------------------- errors: one line, exit 2, no writes


@pytest.mark.parametrize("content, needles", [
    ("space: [unclosed\n", ["bad.yaml", "malformed YAML"]),
    ("space:\n  depth: 3\n", ["space.depth", "unknown axis"]),
    ("space:\n  batch_size: big\n", ["space.batch_size", "expected an integer"]),
    ("space:\n  lr: {low: 0.1, high: 0.001}\n", ["space.lr", "must not exceed"]),
    ("space:\n  activation: {choices: []}\n", ["space.activation.choices", "non-empty"]),
    ("space:\n  model: resnet\n", ["space.model", "'resnet'", "mlp, lenet5, cnn"]),
    ("space:\n  optimizer: lbfgs\n", ["space.optimizer", "'lbfgs'"]),
    ("space:\n  activation: swish9\n", ["space.activation", "'swish9'"]),
    ("dataset: cifar10\nspace: {}\n", ["dataset", "'cifar10'"]),
    ("dataset: mnist\n", ["bad.yaml: space: missing"]),
])
def test_bad_study_files(tmp_path, db, content, needles):
    (tmp_path / "bad.yaml").write_text(content)
    one_line_error(cli("run", "--study", tmp_path / "bad.yaml"), *needles)
    assert not db.exists()


def test_unknown_study(db):
    one_line_error(cli("run", "--study", "no-such-study"), "unknown study 'no-such-study'")
    one_line_error(cli("show", "--study", "x"), "no storage")
    assert not db.exists()


def test_unknown_stored_study(tmp_path):
    assert cli("run", "--study", write_study(tmp_path, n_trials=1)).exit_code == 0
    one_line_error(cli("export", "--study", "other"), "unknown study 'other'", "tiny")


def test_missing_data_dir_and_corrupt_idx(tmp_path, db):
    study = write_study(tmp_path)
    one_line_error(cli("run", "--study", study, "--data-dir", tmp_path / "nowhere"), "nowhere", "does not exist")
    bad = tmp_path / "bad-mnist"
    bad.mkdir()
    for f in MNIST.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    one_line_error(cli("run", "--study", study, "--data-dir", bad), "t10k-images-idx3-ubyte.gz")
    assert not db.exists()


@pytest.mark.parametrize("url, needles", [
    ("nonsense", ["malformed storage URL"]),
    ("postgresql+psycopg2://alice:s3cret-pw@127.0.0.1:1/db", ["alice:***@127.0.0.1"]),
    ("postgresql://alice:s3cret-pw@127.0.0.1:1/db", ["cannot", "alice:***@127.0.0.1"]),
    ("sqlite:////no/such/dir/x.db", ["/no/such/dir", "does not exist"]),
])
def test_bad_storage_urls_mask_the_password(tmp_path, url, needles):
    r = cli("run", "--study", write_study(tmp_path), "--storage", url)
    line = one_line_error(r, *needles)
    assert "s3cret" not in r.output and "s3cret" not in line


@pytest.mark.parametrize("device, needle", [("tpu", "unknown device 'tpu'"), ("cuda", "no CUDA GPU"),
                                            ("cuda:3", "cuda:3")])
def test_bad_devices(tmp_path, db, device, needle):
    if torch.cuda.is_available() and device == "cuda":
        pytest.skip("this machine has CUDA")
    one_line_error(cli("run", "--study", write_study(tmp_path), "--device", device), needle)
    assert not db.exists()


def test_bad_configs(tmp_path):
    one_line_error(cli("train", "--config", tmp_path / "none.yaml"), "does not exist")
    (tmp_path / "c.yaml").write_text("dataset: mnist\nparams:\n  lr: -1\n")
    one_line_error(cli("train", "--config", tmp_path / "c.yaml"), "params.lr", "expected a number > 0")
    (tmp_path / "c.yaml").write_text("dataset: mnist\nparams:\n  hidden: 3\n")
    one_line_error(cli("train", "--config", tmp_path / "c.yaml"), "params.hidden", "unknown axis")


def test_help_shows_defaults_as_written():
    # rich markup once ate '[default: the file's]', leaving "Study seed ." in the help
    for command in ("run", "studies", "show", "export", "train", "report", "dashboard", "axes"):
        r = cli(command, "--help")
        assert r.exit_code == 0
        text = " ".join(r.output.split())
        assert " ." not in text and "[default: ]" not in text, (command, text)
    text = " ".join(cli("run", "--help").output.split())
    assert "Study seed: trial k is seeded with seed + k. [default: (the file's seed); x>=0]" in text


def test_journal_storage_runs_and_resumes(tmp_path):
    url = f"journal:{tmp_path}/search.log"
    study = write_study(tmp_path, n_trials=2)
    assert cli("run", "--study", study, "--storage", url).exit_code == 0
    r = cli("run", "--study", study, "--storage", url, "--n-trials", 4, "--workers", 2)
    assert r.exit_code == 0, r.output
    rows = json.loads(cli("studies", "--storage", url, "--json").stdout)
    assert rows[0]["states"]["COMPLETE"] == 4 and rows[0]["n_trials"] == 4
    # our budget lock must not share a name with the journal backend's own lock (search.log.lock):
    # when it did, every trial waited for Optuna to break its "stale" lock
    assert (tmp_path / "search.log.search-lock").exists()
    one_line_error(cli("studies", "--storage", f"journal:{tmp_path}/none.log"), "does not exist")


def test_export_a_chosen_trial(tmp_path):
    assert cli("run", "--study", write_study(tmp_path, n_trials=2)).exit_code == 0
    r = cli("export", "--study", "tiny", "--trial", 0, "--out", tmp_path / "t0.yaml")
    assert r.exit_code == 0, r.output
    config = yaml.safe_load((tmp_path / "t0.yaml").read_text())
    assert config["source"]["trial"] == 0 and config["seed"] == 0
    one_line_error(cli("export", "--study", "tiny", "--trial", 7, "--out", tmp_path / "x.yaml"), "no trial #7")


PER_LAYER = {"n_layers": {"low": 1, "high": 3}, "epochs": 1,
             "hidden_size": {"low": 8, "high": 64, "log": True, "per_layer": True},
             "dropout": {"low": 0.0, "high": 0.3, "per_layer": True}, "optimizer": ["adam", "sgd"],
             "momentum": {"low": 0.5, "high": 0.9}}


def test_per_layer_axes_through_export_train_and_report(tmp_path, db):
    assert cli("run", "--study", write_study(tmp_path, n_trials=6, space=PER_LAYER)).exit_code == 0
    st = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    for t in st.trials:
        n = t.params["n_layers"]
        assert {f"hidden_size_l{i}" for i in range(n)} | {f"dropout_l{i}" for i in range(n)} <= set(t.params)
        assert t.system_attrs["config"]["widths"] == [t.params[f"hidden_size_l{i}"] for i in range(n)]
        assert t.user_attrs["n_params"] == sum(a * b + b for a, b in zip([784, *t.system_attrs["config"]["widths"]],
                                                                        [*t.system_attrs["config"]["widths"], 10], strict=True))
    assert cli("export", "--study", "tiny", "--out", tmp_path / "b.yaml").exit_code == 0
    config = yaml.safe_load((tmp_path / "b.yaml").read_text())
    best = st.best_trial
    n = best.params["n_layers"]
    assert config["params"]["widths"] == [best.params[f"hidden_size_l{i}"] for i in range(n)]
    assert config["params"]["dropouts"] == [best.params[f"dropout_l{i}"] for i in range(n)]
    assert "hidden_size" not in config["params"] and "dropout" not in config["params"]
    result = json.loads(cli("train", "--config", tmp_path / "b.yaml", "--json").stdout)
    assert result["val_accuracy"] == best.value  # the per-layer model retrains exactly
    assert cli("report", "--study", "tiny", "--out", tmp_path / "rep").exit_code == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "hidden_size: 8..64 log per layer" in md and "- **hidden_size_l0**:" in md
    assert "widths: [" in md  # the best config, exported in the report


def test_show_fits_an_80_column_terminal(tmp_path, monkeypatch):
    assert cli("run", "--study", write_study(tmp_path, n_trials=4, space=PER_LAYER)).exit_code == 0
    monkeypatch.setenv("COLUMNS", "80")
    brief = cli("show", "--study", "tiny")  # one line per trial, parameters cut to fit
    assert brief.exit_code == 0, brief.output
    rows = [line for line in brief.output.splitlines() if re.match(r"\d+  (complete|pruned|fail)", line)]
    assert len(rows) == 4 and max(len(line) for line in brief.output.splitlines()) <= 80
    r = cli("show", "--study", "tiny", "--wide")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in r.output
    shown = json.loads(cli("show", "--study", "tiny", "--json").stdout)
    text = " ".join(r.output.split())
    for t in shown["trials"]:
        assert f"{t['last_value']:.4g}" in text  # short number formats, never cut
        for k in t["params"]:
            assert f"{k}=" in r.output.replace("\n", "").replace(" ", "")  # parameters folded, not dropped
    assert all(isinstance(v, float) for t in shown["trials"] for k, v in t["params"].items() if k.startswith("dr"))
