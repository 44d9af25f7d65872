"""Storage URL -> Optuna storage. SQLite by default; any SQLAlchemy URL Optuna supports,
or `journal:PATH` for Optuna's journal file storage.

Every message that shows a URL shows it with the password masked.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import optuna
import sqlalchemy.event
import sqlalchemy.exc
from optuna.storages import BaseStorage
from sqlalchemy.engine import make_url

from search.errors import SearchError

DEFAULT_STORAGE = "sqlite:///search.db"
SQLITE_TIMEOUT_S = 60  # several workers on one SQLite file wait for the lock instead of failing
HEARTBEAT_S = 10  # a worker that stops beating for GRACE_FACTOR intervals is presumed dead
GRACE_FACTOR = 3
MAX_RETRY = 3  # a trial whose worker died is re-run with the same parameters at most this often


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***; unparseable URLs are cut at the '@'."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return url


def open_storage(url: str, *, create: bool = True, heartbeat: float | None = HEARTBEAT_S) -> BaseStorage:
    """An Optuna storage for `url`; bad or unreachable URLs raise SearchError with one line.

    RDB URLs (sqlite://, postgresql+psycopg://, mysql+pymysql://, ...) get heartbeats
    (unless `heartbeat` is 0/None) so that a trial whose worker was killed is failed and
    retried with the same parameters. `journal:PATH` is Optuna's journal file storage,
    for shared filesystems. With `create=False` a SQLite or journal file that does not
    exist is an error rather than a new, empty database.
    """
    if url.startswith("journal:"):
        return _journal_storage(url, create)
    try:
        parsed = make_url(url)
    except Exception:
        raise SearchError(f"malformed storage URL {mask_url(url)!r}: expected e.g. sqlite:///search.db, "
                          "postgresql+psycopg://user:PASSWORD@127.0.0.1:5432/db or journal:PATH") from None
    engine_kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if not db or db == ":memory:":
            raise SearchError(f"storage URL {mask_url(url)!r} names no file: expected sqlite:///PATH.db")
        if not create and not Path(db).is_file():
            raise SearchError(f"no storage at {mask_url(url)}: the file {db} does not exist "
                              "(run a study first, or pass --storage / SEARCH_STORAGE)")
        parent = Path(db).parent
        if not parent.is_dir():
            raise SearchError(f"storage {mask_url(url)}: directory {parent} does not exist")
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    else:
        engine_kwargs["pool_pre_ping"] = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            beat = {}
            if heartbeat:
                interval = max(1, int(heartbeat))
                beat = {"heartbeat_interval": interval, "grace_period": GRACE_FACTOR * interval,
                        "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(
                            max_retry=MAX_RETRY)}
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **beat)
        if parsed.get_backend_name() == "sqlite":
            _fast_sqlite(storage.engine)
        return storage
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ModuleNotFoundError, ImportError) as e:
        raise SearchError(f"storage URL {mask_url(url)!r} cannot be used: {first_line(e, url)} "
                          "(is its database driver installed? pip install 'mnist-search[postgres]')") from None
    except sqlalchemy.exc.SQLAlchemyError as e:
        raise SearchError(f"cannot reach storage {mask_url(url)}: {first_line(e, url)}") from None


def _fast_sqlite(engine) -> None:
    """WAL journal + synchronous=NORMAL: a commit no longer waits for fsync, readers do not
    block the writer. Still safe against a crashed or killed process (the WAL is replayed);
    only an OS crash or power cut can lose the last commits."""

    def on_connect(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    sqlalchemy.event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened while creating the schema predate the listener


def _journal_storage(url: str, create: bool) -> BaseStorage:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    path = Path(journal_path(url))
    if not str(path) or path.is_dir():
        raise SearchError(f"storage URL {url!r} names no file: expected journal:PATH (e.g. journal:search.log)")
    if not path.parent.is_dir():
        raise SearchError(f"storage {url}: directory {path.parent} does not exist")
    if not create and not path.is_file():
        raise SearchError(f"no storage at {url}: the file {path} does not exist (run a study first)")
    return JournalStorage(JournalFileBackend(str(path)))


def journal_path(url: str) -> str:
    rest = url[len("journal:"):]
    return rest[2:] if rest.startswith("//") else rest


def storage_url(explicit: str | None) -> str:
    return explicit or os.environ.get("SEARCH_STORAGE") or DEFAULT_STORAGE


def first_line(e: BaseException, url: str) -> str:
    text = str(getattr(e, "orig", None) or e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    try:
        password = make_url(url).password
    except Exception:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text[:200]
