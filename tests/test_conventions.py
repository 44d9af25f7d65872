"""The CLI conventions people expect of a uv-, ruff- or gh-like tool: -h, --version, shell
completion, bare `search` prints help with success, help that fits 80 columns with examples,
"did you mean" for near misses, and errors from a flag that name the flag. The real CLI,
in a real process where the terminal matters."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, cli, one_line_error, write_study

COMMANDS = ("run", "studies", "axes", "show", "export", "train", "report", "fail", "delete", "dashboard",
            "storage-proxy")


def _search(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-c", "import cli; cli.main()", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_bare_search_prints_the_help_and_succeeds():
    r = _search()
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("Usage: search [OPTIONS] COMMAND [ARGS]...")
    assert "search run --study quickstart" in r.stdout
    for command in COMMANDS:  # every command listed, its summary whole (no '...')
        line = next(line for line in r.stdout.splitlines() if line.strip().startswith(command + " "))
        assert not line.endswith("..."), line


def test_version_and_short_help():
    from importlib.metadata import version

    r = _search("--version")
    assert r.returncode == 0 and r.stdout.startswith(f"search {version('mnist-search')} (optuna ")
    assert _search("-h").stdout == _search("--help").stdout
    assert _search("run", "-h").stdout.startswith("Usage: search run [OPTIONS]")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_fits_80_columns_and_shows_an_example(command):
    r = _search(command, "--help")
    assert r.returncode == 0, r.stderr
    assert max(map(len, r.stdout.splitlines())) <= 80
    assert f"  search {command} " in r.stdout  # an example of the command itself


def test_shell_completion_is_offered():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # the shell it completes for is its parent's (`; exit` keeps bash from exec-ing the command in its place)
    r = subprocess.run(["bash", "-c", f"'{sys.executable}' -c 'import cli; cli.main()' --show-completion; exit $?"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "_search_completion" in r.stdout and "complete " in r.stdout, r.stderr
    env = {**os.environ, "PYTHONPATH": str(ROOT), "_SEARCH_COMPLETE": "complete_bash", "COMP_WORDS": "search ru",
           "COMP_CWORD": "1"}
    words = subprocess.run([sys.executable, "-c", "import cli; cli.main()"], env=env, capture_output=True,
                           text=True, timeout=60).stdout
    assert words.split() == ["run"]  # what bash would complete `search ru` to


@pytest.mark.parametrize("args, needles", [
    (["--set", "epoch=2"], ["--set epoch: unknown key; did you mean epochs?"]),
    (["--set", "lr=abc"], ["--set lr=abc: space.lr: expected a number", "got 'abc'"]),
    (["--set", "optimizer=adm"], ["--set optimizer=adm: space.optimizer: unknown value 'adm'; did you mean adam?"]),
    (["--set", "n_trials=0"], ["--set n_trials=0: n_trials: expected an integer >= 1"]),
])
def test_a_mistake_in_a_flag_names_the_flag_and_the_near_miss(tmp_path, args, needles):
    one_line_error(cli("run", "--study", write_study(tmp_path), *args), *needles)


def test_a_mistake_in_the_file_still_names_the_file(tmp_path):
    path = write_study(tmp_path, space={"epoch": 2})
    one_line_error(cli("run", "--study", path, "--set", "lr=0.01"), f"{path}: space.epoch: unknown axis; "
                   "did you mean epochs?")
    path = write_study(tmp_path, space={"colour": 2})  # no near miss: where the list is
    one_line_error(cli("run", "--study", path), "space.colour: unknown axis; `search axes` lists every axis")
    path = write_study(tmp_path, n_trails=3)
    one_line_error(cli("run", "--study", path), f"{path}: n_trails: unknown key; did you mean n_trials?")


def test_a_misspelt_study_name_is_suggested(tmp_path):
    one_line_error(cli("run", "--study", "quickstrat"), "unknown study 'quickstrat'", "did you mean quickstart?")
    assert cli("run", "--study", write_study(tmp_path, n_trials=1, train_size=500)).exit_code == 0
    one_line_error(cli("show", "--study", "tiyn"), "unknown study 'tiyn'", "did you mean tiny?",
                   "stored studies: tiny")


def test_every_command_that_prints_results_speaks_json(tmp_path):
    import json

    study = write_study(tmp_path, n_trials=2, train_size=600)
    r = cli("run", "--study", study, "--json")
    assert r.exit_code == 0, r.output
    ran = json.loads(r.stdout)  # the whole of stdout is one JSON object
    assert ran["ran"] == 2 and ran["n_trials"] == 2 and ran["states"]["COMPLETE"] == 2 and not ran["dry_run"]
    assert ran["storage"].startswith("sqlite:///") and ran["best_trial"] in (0, 1)
    dry = json.loads(cli("run", "--study", study, "--dry-run", "--json", "--workers", 2).stdout)
    assert dry["done"] == dry["budget"] == 2 and "finished" not in dry
    exported = json.loads(cli("export", "--study", "tiny", "--out", tmp_path / "b.yaml", "--json").stdout)
    assert exported["config"] == str(tmp_path / "b.yaml") and exported["trial"] == ran["best_trial"]
    assert exported["weights"] == str(tmp_path / "b.pt")
    reported = json.loads(cli("report", "--study", "tiny", "--out", tmp_path / "rep", "--json").stdout)
    assert str(tmp_path / "rep" / "report.md") in reported["files"] and reported["evaluated"] is False
    for command in (["studies"], ["axes"], ["show", "--study", "tiny"]):
        assert json.loads(cli(*command, "--json").stdout)
    trained = json.loads(cli("train", "--config", tmp_path / "b.yaml", "--json").stdout)
    assert trained["test_accuracy"] > 0.5


def test_quiet_prints_only_the_summary(tmp_path):
    r = cli("run", "--study", write_study(tmp_path, n_trials=2, train_size=600), "-q")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().splitlines()[0].startswith("ran 2 trials in ") and "COMPLETE" not in r.stdout


def test_verbose_adds_optunas_own_log(tmp_path):
    r = _search("run", "--study", str(write_study(tmp_path, n_trials=1, train_size=600)), "-v")
    assert r.returncode == 0, r.stderr
    assert "A new study created in RDB with name: tiny" in r.stderr and "#0   COMPLETE" in r.stdout


@pytest.mark.parametrize("command", [["studies"], ["axes"]])
def test_listings_fit_80_columns_and_keep_names_whole(tmp_path, command):
    assert cli("run", "--study", write_study(tmp_path, "a-study-with-a-long-name", n_trials=1,
                                             train_size=600)).exit_code == 0
    r = _search(*command)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(map(len, lines)) <= 80 and all(line == line.rstrip() for line in lines)  # piped: no padding
    assert "─" not in r.stdout  # piped: no box characters
    if command == ["studies"]:
        assert any(line.startswith("a-study-with-a-long-name ") for line in lines)
    else:
        from search.params import AXES

        assert all(any(line.startswith(name + " ") for line in lines) for name in AXES)  # each axis named whole


def test_the_cluster_recipes_parse_and_use_only_real_flags():
    """docs/cluster.md: the Kubernetes manifests are valid YAML, and every `search` command in
    them and in the SLURM script uses flags its command has."""
    import re

    import yaml

    text = (ROOT / "docs" / "cluster.md").read_text()
    manifests = [d for block in re.findall(r"```yaml\n(.*?)```", text, re.S) for d in yaml.safe_load_all(block)]
    assert {d["kind"] for d in manifests} == {"Secret", "Deployment", "Service", "Job"}
    commands = [c["command"] for d in manifests if d["kind"] in ("Deployment", "Job")
                for c in d["spec"]["template"]["spec"]["containers"]]
    commands += [line.split()[1:] for line in text.splitlines() if line.startswith("exec search ")]
    assert len(commands) == 3
    for argv in commands:
        assert argv[0] == "search"
        r = _search(argv[1], "--help", columns=200)
        assert r.returncode == 0, r.stderr
        for flag in (a for a in argv if a.startswith("--")):
            assert flag in r.stdout, (argv[1], flag)
