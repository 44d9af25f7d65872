from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
MNIST = Path(os.environ.get("SEARCH_TEST_MNIST", ROOT.parent / "shared" / "datasets" / "mnist")).resolve()

# Tests that train or load data need the real MNIST; parsing and validation tests run without it.
needs_mnist = pytest.mark.skipif(not MNIST.is_dir(), reason=f"real MNIST not found at {MNIST} "
                                                            "(set SEARCH_TEST_MNIST to its folder)")

# A fast space: a slice of the training split, one or two short epochs.
TINY = {
    "dataset": "mnist",
    "n_trials": 3,
    "seed": 0,
    "train_size": 3000,
    "sampler": {"name": "random"},
    "pruner": "none",
    "space": {"model": "mlp", "epochs": 1, "batch_size": 64, "lr": {"low": 1e-3, "high": 3e-3, "log": True},
              "hidden_size": [32, 64]},
}


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    """Every test: real MNIST, its own SQLite file, CPU, a clean working directory."""
    monkeypatch.setenv("SEARCH_DATA_DIR", str(MNIST))
    monkeypatch.setenv("SEARCH_STORAGE", f"sqlite:///{tmp_path}/search.db")
    monkeypatch.setenv("SEARCH_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "search.db"


def write_study(tmp_path: Path, name: str = "tiny", **overrides: Any) -> Path:
    doc = {**TINY, **overrides}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def cli(*args: Any) -> Any:
    """Run the real CLI in-process (the dataset stays cached between tests)."""
    from cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def search(*args: Any, **popen: Any) -> subprocess.Popen:
    """Start the real CLI as its own process (for signals, kills and workers)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **popen.pop("env", {})}
    return subprocess.Popen([sys.executable, "-c", "import cli; cli.main()", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    """Wait for a `search` process; fail the test (and kill it) if it does not end in time."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"search did not finish: {proc.communicate()}")
    return proc.returncode, out, err


def one_line_error(r: Any, *needles: str, code: int = 2) -> str:
    """The CLI result is one error line on stderr holding every needle, with exit `code`."""
    exit_code = getattr(r, "exit_code", getattr(r, "returncode", None))
    stderr = r.stderr
    assert exit_code == code, (exit_code, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def trial_states(db: Path, study: str) -> list[str]:
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT t.state FROM trials t JOIN studies s ON s.study_id = t.study_id "
            "WHERE s.study_name = ? ORDER BY t.number", (study,)).fetchall()
    return [r[0] for r in rows]


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server for the session (skips with the reason where none can start)."""
    from pg import Server, find_bin

    bindir = find_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    server = Server(bindir)
    try:
        server.init()
        server.start()
        server.create_db()
    except Exception as e:  # noqa: BLE001 - report why, then skip
        server.remove()
        pytest.skip(f"could not start PostgreSQL: {getattr(e, 'stderr', e)}")
    yield server
    server.remove()


@pytest.fixture
def pg_url(pg_server, request):
    """A fresh database on the session's server for each test."""
    import uuid

    import sqlalchemy

    name = "t_" + uuid.uuid4().hex[:12]
    admin = sqlalchemy.create_engine(pg_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    yield pg_server.url.rsplit("/", 1)[0] + "/" + name
