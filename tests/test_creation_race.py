"""Concurrent first runs: the many-machines recipe starts the same command everywhere at
once, so several processes create the schema and the study of a new storage together.
Six real processes, released by a barrier, on fresh SQLite files and fresh PostgreSQL
databases: every one opens the storage and the study, none fails."""

from __future__ import annotations

import multiprocessing
import uuid

import optuna

from conftest import ROOT

N = 6


def _open(url: str, barrier, results) -> None:
    import sys

    sys.path.insert(0, str(ROOT))
    from search.errors import SearchError
    from search.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    barrier.wait()
    try:
        optuna.create_study(storage=open_storage(url), study_name="tiny", load_if_exists=True)
        results.put("ok")
    except SearchError as e:
        results.put(str(e))


def _race(url: str) -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(N), ctx.Queue()
    procs = [ctx.Process(target=_open, args=(url, barrier, results)) for _ in range(N)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    return [results.get(timeout=5) for _ in procs]


def test_concurrent_first_runs_on_a_new_sqlite_file_all_succeed(tmp_path):
    for round_ in range(3):  # without the retry, every round here had a loser
        url = f"sqlite:///{tmp_path / f'new{round_}.db'}"
        assert _race(url) == ["ok"] * N
        assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["tiny"]  # one study, not six


def test_concurrent_first_runs_on_a_new_postgresql_database_all_succeed(pg_server):
    import sqlalchemy

    for _ in range(2):
        name = "race_" + uuid.uuid4().hex[:10]
        admin = sqlalchemy.create_engine(pg_server.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql(f"CREATE DATABASE {name}")
        admin.dispose()
        url = pg_server.url.rsplit("/", 1)[0] + "/" + name
        assert _race(url) == ["ok"] * N
        assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["tiny"]
