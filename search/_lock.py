"""A lock shared by every worker of a study, held while a worker checks the budget and
asks for a trial, so that N workers never start more trials than the study's budget.

SQLite and journal files: an flock on `<file>.search-lock` beside the database (one
machine or a shared filesystem; not `<file>.lock`, which Optuna's journal backend uses). PostgreSQL: a session advisory lock; MySQL: GET_LOCK. A killed
worker releases either kind (its file descriptor or its connection goes away). A storage
proxy (grpc://): a lease held in the proxy process, renewed while held (search/proxy.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from pathlib import Path
from typing import Iterator

import optuna
from sqlalchemy import text

from search import _optuna
from search.storage import StorageURL

LOCK_SUFFIX = ".search-lock"


def _key(study_name: str) -> int:
    return int.from_bytes(hashlib.sha1(study_name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _db_lock(engine, acquire: str, release: str, params: dict) -> Iterator[None]:
    with engine.connect() as conn:
        conn.execute(text(acquire), params)
        try:
            yield
        finally:
            conn.execute(text(release), params)
            conn.commit()


def study_lock(storage: optuna.storages.BaseStorage, url: str, study_name: str):
    """A context manager that serialises budget checks across the study's workers."""
    parsed = StorageURL.parse(url)
    if parsed.path is not None:  # a SQLite or journal file
        return _file_lock(Path(str(parsed.path) + LOCK_SUFFIX))
    lease = getattr(storage, "study_lock", None)  # search/proxy.py's client
    if lease is not None:
        return lease(study_name)
    storage = _optuna.rdb_of(storage)  # load_study wraps RDBStorage in a cache
    if not isinstance(storage, optuna.storages.RDBStorage):
        return contextlib.nullcontext()
    engine = storage.engine
    backend = engine.url.get_backend_name()
    if backend == "postgresql":
        return _db_lock(engine, "SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)",
                        {"k": _key(study_name)})
    if backend in ("mysql", "mariadb"):
        name = f"mnist-search:{study_name}"[:64]
        return _db_lock(engine, "SELECT GET_LOCK(:n, -1)", "SELECT RELEASE_LOCK(:n)", {"n": name})
    return contextlib.nullcontext()
