"""Bad input as a hostile user gives it: every case is one line on stderr, exit 2, nothing written.

None of these needs MNIST: files are checked before any data is read.
"""

import os

import numpy as np
import pytest
import yaml

from search._files import MAX_YAML_SIZE
from search.storage import mask_url

from conftest import cli, needs_mnist, one_line_error, write_study


def _bomb(levels: int) -> str:
    """The billion-laughs shape: each level a list of nine aliases of the one before."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "space: {}\ndescription: &d\n  " + "\n  ".join(lines) + "\n"


@pytest.mark.parametrize("content, needles", [
    (os.urandom(200) + b"\xff\xfe", ["bad.yaml", "not UTF-8 text"]),
    (b"space: {}\n\x00\x01\x02", ["bad.yaml", "binary, not text"]),
    (b"", ["bad.yaml", "is empty"]),
    (b"- 1\n- 2\n", ["bad.yaml", "expected a mapping of study keys", "a list"]),
    (b"42\n", ["bad.yaml", "expected a mapping of study keys", "an integer"]),
    (b"n_trials: 3\n", ["bad.yaml: space: missing"]),
    (_bomb(6).encode(), ["bad.yaml", "YAML expands to", "aliases"]),
    (_bomb(10).encode(), ["bad.yaml", "YAML expands to", "aliases"]),
    (b"space: &s {lr: [*s]}\n", ["bad.yaml", "refers to itself"]),
    (b"space: {}\ndescription: [1, 2]\n", ["bad.yaml", "description: expected text"]),
    (b"space:\n  lr: {low: 1e-3, high: 1e-2, per_layer: true}\n", ["space.lr.per_layer", "hidden_size and dropout"]),
    (b"space:\n  widths: '64-32'\n  hidden_size: {low: 8, high: 64, per_layer: true}\n",
     ["space.hidden_size", "per_layer fills widths"]),
    (b"sampler: grid\nspace:\n  n_layers: 2\n  hidden_size: {choices: [8, 16], per_layer: true}\n",
     ["space.hidden_size", "grid sampler"]),
    (b"space:\n  activation: ':x: :smile: [bold]boom[/]'\n", ["':x: :smile: [bold]boom[/]'"]),
    (b"space:\n  n_layers: {low: 1, high: 3}\n  dropouts: '0.3-0.2'\n", ["space.dropouts", "per_layer: true"]),
    # cost-aware goals: metrics, bounds, and pruning only where it compares like with like
    (b"metric: speed\nspace: {}\n", ["bad.yaml: metric: unknown value 'speed'", "train_seconds"]),
    (b"metric: [val_accuracy, val_accuracy]\nspace: {}\n", ["metric:", "names a metric twice"]),
    (b"metric: []\nspace: {}\n", ["metric: expected one metric or a list"]),
    (b"metric: [val_accuracy, n_params]\ndirection: maximize\nspace: {}\n", ["direction: 1 given for 2 metrics"]),
    (b"floor: 0.99\nspace: {}\n", ["floor: expected a mapping of metric -> value"]),
    (b"floor: {accuracy: 0.99}\nspace: {}\n", ["floor.accuracy: unknown value"]),
    (b"ceiling: {n_params: lots}\nspace: {}\n", ["ceiling.n_params: expected a number"]),
    (b"metric: [val_accuracy, train_seconds]\npruner: median\nspace: {}\n",
     ["pruner: median", "2 objectives cannot prune", "pruner: none"]),
    (b"metric: train_seconds\nfloor: {val_accuracy: 0.99}\npruner: successive_halving\nspace: {}\n",
     ["pruner: successive_halving ranks trials by val_accuracy", "minimize", "threshold"]),
    (b"metric: n_params\npruner: {name: threshold, lower: 0.5}\nspace: {}\n", ["no per-epoch metric to prune on"]),
    (b"pruner: threshold\nspace: {}\n", ["pruner: threshold needs lower or upper"]),
    (b"space:\n  model: convnet\n  channels: 8-16-32\n", ["space.channels", "2 integers like 24-32"]),
    (b"track: wandb\nspace: {}\n", ["bad.yaml: track: unknown tracker 'wandb'", "mlflow[:URI], tensorboard[:DIR]"]),
    (b"track: [mlflow, 'mlflow:sqlite:///x.db']\nspace: {}\n", ["bad.yaml: track: mlflow named twice"]),
    (b"track: {mlflow: 1}\nspace: {}\n", ["bad.yaml: track: expected mlflow[:URI]", "a mapping"]),
])
def test_bad_study_files_are_one_line(tmp_path, db, content, needles):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    line = one_line_error(cli("run", "--study", path), *needles)
    assert len(line) < 400 and "\u274c" not in line  # no emoji for :x:, no markup eaten
    assert not db.exists()


@pytest.mark.parametrize("doc", ["", "[]", "7", "n_trials: 3"])
def test_set_does_not_skip_the_whole_file_check(tmp_path, db, doc):
    path = tmp_path / "s.yaml"
    path.write_text(doc)
    r = cli("run", "--study", path, "--set", "epochs=1", "--set", "n_trials=1")
    one_line_error(r, "s.yaml")
    assert not db.exists()


@pytest.mark.parametrize("sets, needles", [
    (["epochs=0"], ["space.epochs"]),
    (["depth=3"], ["--set depth: unknown key"]),
    (["epochs"], ["expected KEY=VALUE"]),
    (["lr=[unclosed"], ["--set lr: malformed YAML"]),
    (["description=" + "[*a, " * 3], ["--set description"]),
])
def test_set_values_are_checked_like_the_file(tmp_path, db, sets, needles):
    args = ["run", "--study", write_study(tmp_path)]
    for s in sets:
        args += ["--set", s]
    one_line_error(cli(*args), *needles)
    assert not db.exists()


def test_expanded_size_bound_is_far_above_real_study_files():
    from search._files import expanded_size

    from conftest import ROOT

    for path in (ROOT / "studies").glob("*.yaml"):
        assert expanded_size(yaml.safe_load(path.read_text()), str(path)) < MAX_YAML_SIZE / 100


@pytest.mark.parametrize("content, needles", [
    (b"\xff\xfe\x00garbage", ["c.yaml", "not UTF-8 text"]),
    (b"", ["c.yaml", "is empty"]),
    (b"params: [1, 2]\n", ["c.yaml: params", "expected a mapping"]),
    (b"dataset: mnist\nparams:\n  lr: -1\n", ["params.lr", "expected a number > 0"]),
    (b"dataset: mnist\nparams:\n  hidden: 3\n", ["params.hidden", "unknown axis"]),
    (b"seed: -4\nparams: {}\n", ["c.yaml: seed", "expected an integer >= 0"]),
    (b"source: 3\nparams: {}\n", ["c.yaml: source", "expected a mapping"]),
    # ensemble configs (search ensemble): a list of configs, each with a weight, on one dataset
    (b"members: {weight: 1}\n", ["c.yaml: members", "a list of 1 to 100 configs"]),
    (b"members: []\n", ["c.yaml: members", "a list of 1 to 100 configs"]),
    (b"members: [3]\n", ["c.yaml: members[0]", "a config (dataset, seed, params) with a weight"]),
    (b"members:\n- {weight: 0, params: {}}\n", ["c.yaml: members[0]: weight", "expected an integer >= 1"]),
    (b"members:\n- {params: {lr: -1}}\n", ["c.yaml: members[0]: params.lr", "expected a number > 0"]),
    (b"members:\n- {params: {}, weights: 2}\n", ["c.yaml: members[0]: weights: unknown key", "weight"]),
    (b"members:\n- {params: {}}\n- {dataset: fashion-mnist, params: {}}\n",
     ["c.yaml: members[1]: dataset", "like members[0]"]),
    (b"members:\n- {params: {}}\nmodels: 2\n", ["c.yaml: models: unknown key"]),
])
def test_bad_configs_are_one_line(tmp_path, content, needles):
    (tmp_path / "c.yaml").write_bytes(content)
    one_line_error(cli("train", "--config", tmp_path / "c.yaml"), *needles)


def test_paths_that_are_not_files(tmp_path):
    (tmp_path / "d").mkdir()
    one_line_error(cli("train", "--config", tmp_path / "d"), "is a directory, not a config")
    one_line_error(cli("train", "--config", tmp_path / "none.yaml"), "does not exist")
    one_line_error(cli("run", "--study", tmp_path / "d"), "is a directory, not a study file")
    big = tmp_path / "big.yaml"
    big.write_text("space: {}\n" + "# pad\n" * 300_000)
    one_line_error(cli("run", "--study", big), "too large for a study file")


def test_secrets_in_url_parameters_are_masked(tmp_path):
    for url in ("postgresql+psycopg://alice@127.0.0.1:1/db?password=s3cret-pw",
                "postgresql+psycopg://alice:s3cret-pw@127.0.0.1:1/db?sslpassword=s3cret-pw&connect_timeout=2",
                "mysql+pymysql://bob@127.0.0.1:1/db?passwd=s3cret-pw"):
        r = cli("studies", "--storage", url)
        line = one_line_error(r)
        assert "s3cret" not in r.output and "***" in line, line
        assert "s3cret" not in mask_url(url)
    assert mask_url("garbage://u:s3cret-pw@h/db?token=abc") == "garbage://u:***@h/db?token=***"
    assert mask_url("postgresql://u:s3cret@h:port/db?password=x1") == "postgresql://u:***@h:port/db?password=***"


@pytest.mark.parametrize("url, needles", [
    # an unescaped '@' in the password: a URL parser takes 'secret99@127.0.0.1' for the host
    ("postgresql+psycopg://u:TOP@secret99@127.0.0.1:1/db", ["holds '@'", "%40", "u:***@127.0.0.1:1/db"]),
    ("postgresql+psycopg://u@127.0.0.1:1/db?pasword=secret99&connect_timeout=1", ["pasword=***"]),
    ("postgresql+psycopg://u:secret99@127.0.0.1:1/db?api_tok=secret99", ["u:***@127.0.0.1"]),
])
def test_credentials_are_masked_however_malformed_the_url(tmp_path, url, needles):
    for command in (("studies",), ("run", "--study", write_study(tmp_path, n_trials=1))):
        r = cli(*command, "--storage", url)
        line = one_line_error(r, *needles)
        assert "secret99" not in r.output and "secret99" not in line, line


def test_dashboard_addresses():
    one_line_error(cli("dashboard", "--host", "no-such-host.invalid"), "--host 'no-such-host.invalid'",
                   "127.0.0.1")
    one_line_error(cli("dashboard", "--host", "203.0.113.7"), "cannot serve on 203.0.113.7", "127.0.0.1")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        one_line_error(cli("dashboard", "--port", port), f"port {port}", "pick another --port")


def test_output_paths_are_checked_before_the_work(tmp_path):
    (tmp_path / "c.yaml").write_text("params: {epochs: 1}\ntrain_size: 1000\n")
    (tmp_path / "d").mkdir()
    one_line_error(cli("train", "--config", tmp_path / "c.yaml", "--save", tmp_path / "d"),
                   "cannot write the weights", "is a directory")
    one_line_error(cli("train", "--config", tmp_path / "c.yaml", "--save", tmp_path / "no" / "m.pt"),
                   "directory", "does not exist")
    one_line_error(cli("export", "--study", "x", "--out", tmp_path / "d"), "is a directory")
    (tmp_path / "f").write_text("")
    one_line_error(cli("report", "--study", "x", "--out", tmp_path / "f"), "is a file, not a directory")


@pytest.mark.parametrize("flags, message", [
    (["--n-trials", "2000000"], "command line: --n-trials: expected an integer >= 1 and <= 1e+06"),
    (["--timeout", "0"], "command line: --timeout: expected a number > 0"),
    (["--seed", str(2**31)], "command line: --seed: expected an integer >= 0 and <= 2.14748e+09"),
    (["--set", "train_size=1"], "train_size: expected an integer >= 2"),
    (["--track", "mlfow"], "command line: --track: unknown tracker 'mlfow' (did you mean mlflow?)"),
    (["--track", ""], "command line: --track: expected mlflow[:URI], tensorboard[:DIR] or none"),
])
def test_flags_are_checked_with_the_files_bounds_before_anything_is_stored(tmp_path, db, flags, message):
    one_line_error(cli("run", "--study", write_study(tmp_path), *flags), message)
    assert not db.exists()


@needs_mnist
def test_the_largest_seed_runs_and_its_trials_configs_retrain(tmp_path):
    study = write_study(tmp_path, n_trials=2, train_size=500)
    assert cli("run", "--study", study, "--seed", 2**31 - 1).exit_code == 0
    assert cli("export", "--study", "tiny", "--trial", 1, "--out", tmp_path / "t1.yaml").exit_code == 0
    assert yaml.safe_load((tmp_path / "t1.yaml").read_text())["seed"] == 2**31  # seed + trial number
    r = cli("train", "--config", tmp_path / "t1.yaml", "--json")
    assert r.exit_code == 0, r.output


def test_splits_too_small_to_train_or_test_are_refused_before_training(tmp_path):
    x = np.zeros((3, 8, 8), np.uint8)
    np.savez(tmp_path / "tiny.npz", x_train=x[:1], y_train=np.array([0]), x_val=x[1:2], y_val=np.array([0]),
             x_test=x[2:], y_test=np.array([0]))
    one_line_error(cli("run", "--study", write_study(tmp_path, dataset={"path": "tiny.npz"})),
                   "tiny.npz: 1 training image; expected at least 2")


def test_a_gzip_that_expands_past_the_bound_is_refused_while_decompressing():
    import gzip

    from search._idx import gunzip, parse_idx
    from search.errors import SearchError

    bomb = gzip.compress(b"\0" * 100_000)  # 100 KB of zeros in ~100 bytes
    with pytest.raises(SearchError, match="expands past 1,000 bytes uncompressed"):
        gunzip(bomb, "bomb.gz", limit=1_000)
    assert gunzip(bomb, "ok.gz", limit=100_000) == b"\0" * 100_000
    huge = bytes([0, 0, 8, 3]) + (2**31).to_bytes(4, "big") * 3 + b"\0" * 16  # dimensions past any memory
    with pytest.raises(SearchError, match="corrupt IDX file: header says"):
        parse_idx(huge, "huge-idx3-ubyte")


@needs_mnist
def test_names_that_look_like_markup_are_printed_as_written(tmp_path):
    """Rich reads '[/bold]' as markup: a study of that name once ended `search show` in a MarkupError."""
    study = write_study(tmp_path, n_trials=1)
    doc = yaml.safe_load(study.read_text())
    study.write_text(yaml.safe_dump({**doc, "name": "[/bold]x"}))
    r = cli("run", "--study", study)
    assert r.exit_code == 0, r.output
    for command in (("show", "--study", "[/bold]x"), ("studies",), ("export", "--study", "[/bold]x", "--out",
                                                                      tmp_path / "b.yaml")):
        r = cli(*command)
        assert r.exit_code == 0 and "[/bold]x" in r.output, (command, r.output)
