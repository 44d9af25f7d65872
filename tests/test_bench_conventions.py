"""bench/ scripts keep the package's conventions: bad input is one line and exit code 2
before any work, and figures come as JSON on stdout with --json."""

import json
import subprocess
import sys

import optuna

from conftest import ROOT


def _script(*args, timeout=120):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_a_bad_flag_or_storage_is_one_line_and_exit_2():
    for args, expect in (
        ([ROOT / "bench" / "bench.py", "--only", "epoch,nothing"], "bench: error: --only 'nothing': unknown"),
        ([ROOT / "bench" / "studies.py", "--storage", "sqlite:////nonexistent/s.db"],
         "studies: error: storage sqlite:////nonexistent/s.db: directory /nonexistent does not exist"),
        ([ROOT / "bench" / "curves" / "table.py", "--storage", "nonsense://"],
         "table: error: storage URL 'nonsense://' cannot be used"),
    ):
        r = _script(*args)
        assert r.returncode == 2 and r.stdout == "", (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(expect), lines


def test_studies_table_as_json(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=url, study_name="toy", direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    r = _script(ROOT / "bench" / "studies.py", "--storage", url, "--json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert row["study"] == "toy" and row["n_trials"] == 3 and row["best_value"] == study.best_value
    assert row["best_params"] == study.best_params
