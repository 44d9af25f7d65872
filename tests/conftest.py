from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
MNIST = Path(os.environ.get("SEARCH_TEST_MNIST", ROOT.parent / "shared" / "datasets" / "mnist")).resolve()

if not MNIST.is_dir():
    raise pytest.UsageError(f"real MNIST not found at {MNIST}: set SEARCH_TEST_MNIST to its folder")

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


def cli(*args: str) -> Any:
    """Run the real CLI in-process (the dataset stays cached between tests)."""
    from cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def trial_states(db: Path, study: str) -> list[str]:
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT t.state FROM trials t JOIN studies s ON s.study_id = t.study_id "
            "WHERE s.study_name = ? ORDER BY t.number", (study,)).fetchall()
    return [r[0] for r in rows]
