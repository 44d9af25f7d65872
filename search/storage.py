"""Storage URL -> Optuna storage. SQLite by default; any SQLAlchemy URL Optuna supports,
or `journal:PATH` for Optuna's journal file storage.

Every message that shows a URL shows it with the password masked.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import sqlite3
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna
import sqlalchemy.event
import sqlalchemy.exc
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage
from sqlalchemy.engine import make_url

from search import _optuna
from search.errors import DiskFull, Notice, SearchError, StorageLost

__all__ = ["CREATION_TRIES", "DEFAULT_STORAGE", "FileGuard", "GRACE_FACTOR", "HEARTBEAT_S", "JournalMended",
           "MAX_JOURNAL_LINE", "MAX_RETRY", "SQLITE_TIMEOUT_S", "StorageURL", "first_line", "heartbeat",
           "is_grpc_error", "is_storage_error", "mask_url",
           "open_storage", "secrets_of", "storage_error", "storage_errors", "storage_url"]

DEFAULT_STORAGE = "sqlite:///search.db"
SQLITE_TIMEOUT_S = 60  # several workers on one SQLite file wait for the lock instead of failing
HEARTBEAT_S = 10  # a worker that stops beating for GRACE_FACTOR intervals is presumed dead
GRACE_FACTOR = 3
MAX_RETRY = 3  # a trial whose worker died is re-run with the same parameters at most this often


# Query values are masked unless their key is one of these, known to hold no secret (a
# password under ?password=, ?passwd=, a misspelt ?pasword= or a driver's token all are).
_PLAIN_QUERY_KEYS = frozenset({"sslmode", "connect_timeout", "application_name", "target_session_attrs", "charset",
                               "mode", "uri", "timeout", "check_same_thread", "sslrootcert", "sslcert", "gssencmode",
                               "client_encoding", "keepalives", "keepalives_idle", "read_timeout", "write_timeout",
                               "unix_socket", "ssl_ca", "host", "port", "dbname", "user"})
_QUERY_VALUE = re.compile(r"((?:^|[&;])([^=&;]*)=)([^&;]*)")
_SECRET_IN_TEXT = re.compile(r"((?:[\w]*(?:pas|pw|secret|token|key|auth|credential)[\w]*)\s*[=:]\s*)"
                             r"('[^']*'|\"[^\"]*\"|[^\s&;,@]+)", re.I)


def _split_credentials(url: str) -> tuple[str, str, str] | None:
    """(scheme://, user[:password], @host...) split by text, before any parsing: the
    credentials end at the last '@' before the query, so a password holding '@' or ':'
    is still found whole. None when the URL has no credentials."""
    scheme, sep, rest = url.partition("://")
    head = rest.split("?", 1)[0]
    at = head.rfind("@")
    if not sep or at < 0:
        return None
    return scheme + sep, rest[:at], rest[at:]


def _check_credentials(url: str) -> None:
    """One line for credentials a URL parser would split wrongly (and then print)."""
    parts = _split_credentials(url)
    if parts is not None and "@" in parts[1]:
        raise SearchError(f"storage URL {mask_url(url)!r}: its user name or password holds '@', which ends the "
                          "credentials too early: write it percent-encoded, '@' as %40 (Python: "
                          "urllib.parse.quote(password, safe=''))")


@dataclass(frozen=True)
class StorageURL:
    """A storage URL parsed once: which kind of storage, and the file behind it (SQLite and
    journal storages), for the storage, the artifact folder, the study lock and the file guard."""

    text: str  # as given (it may hold a password: show it through mask_url)
    kind: str  # "journal" | "sqlite" | "server" (PostgreSQL, MySQL, ...) | "proxy" (grpc://) | "malformed"
    path: Path | None = None  # the SQLite or journal file

    @classmethod
    def parse(cls, url: str) -> StorageURL:
        if url.startswith("journal:"):
            rest = url[len("journal:"):]
            return cls(url, "journal", Path(rest[2:] if rest.startswith("//") else rest))
        if url.startswith("grpc://"):
            return cls(url, "proxy")
        try:
            parsed = make_url(url)
        except Exception:
            return cls(url, "malformed")
        if parsed.get_backend_name() != "sqlite":
            return cls(url, "server")
        db = parsed.database or ""
        path = Path(db.removeprefix("file:").split("?")[0]) if db and db != ":memory:" else None
        return cls(url, "sqlite", path)


def mask_url(url: str) -> str:
    """The URL with every credential replaced by ***: the password (found by text, however
    malformed the URL), and the value of every query key that looks like a secret."""
    parts = _split_credentials(url)
    if parts is not None:
        scheme, credentials, host = parts
        user, colon, _ = credentials.partition(":")
        url = scheme + user + (":***" if colon else "") + host
    base, q, query = url.partition("?")
    return base + q + _QUERY_VALUE.sub(_masked_value, query) if q else url


def _masked_value(m: re.Match) -> str:
    return m[0] if m[2].lower() in _PLAIN_QUERY_KEYS else m[1] + "***"


def secrets_of(url: str) -> list[str]:
    """Every credential value in `url` (the password, each piece of it between '@'s, secret
    query values), so that error text quoting one can be masked."""
    values = []
    parts = _split_credentials(url)
    if parts is not None:
        password = parts[1].partition(":")[2]
        values += [password, *password.split("@"), *parts[1].split("@")[1:]]
    query = url.partition("?")[2]
    values += [m[3] for m in _QUERY_VALUE.finditer(query) if m[2].lower() not in _PLAIN_QUERY_KEYS]
    try:
        parsed = make_url(url)
        values += [parsed.password] if parsed.password else []
    except Exception:
        pass
    return sorted({str(v) for v in values if v and len(str(v)) > 1}, key=len, reverse=True)


def open_storage(url: str, *, create: bool = True, heartbeat: float | None = HEARTBEAT_S) -> BaseStorage:
    """An Optuna storage for `url`; bad, damaged or unreachable storages raise SearchError with one line.

    RDB URLs (sqlite://, postgresql+psycopg://, mysql+pymysql://, ...) get heartbeats
    (unless `heartbeat` is 0/None) so that a trial whose worker was killed is failed and
    retried with the same parameters. `journal:PATH` is Optuna's journal file storage,
    for shared filesystems. `create=False` is for commands that only read: a SQLite or
    journal file that does not exist is an error rather than a new, empty database, and
    a read-only SQLite file is opened read-only. With `create=True` every file the
    storage writes is checked to be writable first.
    """
    parsed = StorageURL.parse(url)
    if parsed.kind == "journal":
        return _journal_storage(parsed, create)
    if parsed.kind == "proxy":  # `search storage-proxy`: heartbeats and the study lock through its side service
        from search import proxy

        interval = max(1, int(heartbeat)) if heartbeat else None
        return proxy.connect(url, create=create, heartbeat_interval=interval,
                             grace_period=GRACE_FACTOR * interval if interval else None,
                             stale_callback=_retry_callback() if interval else None)
    _check_credentials(url)
    if parsed.kind == "malformed":
        raise SearchError(f"malformed storage URL {mask_url(url)!r}: expected e.g. sqlite:///search.db, "
                          "postgresql+psycopg://user:PASSWORD@127.0.0.1:5432/db or journal:PATH")
    engine_kwargs: dict = {}
    sqlite = parsed.kind == "sqlite"
    read_only = False
    if sqlite:
        path = parsed.path
        if path is None:
            raise SearchError(f"storage URL {mask_url(url)!r} names no file: expected sqlite:///PATH.db")
        read_only = _check_sqlite_file(path, url, create)
        if read_only:  # nothing but reads: open the file itself read-only, no WAL set-up
            url = f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    else:
        engine_kwargs["pool_pre_ping"] = True
    try:
        with _optuna.quiet_experimental():
            beat: dict[str, Any] = {}
            if heartbeat and not read_only:
                interval = max(1, int(heartbeat))
                beat = {"heartbeat_interval": interval, "grace_period": GRACE_FACTOR * interval,
                        "heartbeat_stale_trial_callback": _retry_callback()}
            storage = _created_once(lambda: optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **beat))
        if sqlite and not read_only:
            _fast_sqlite(storage.engine)
        return storage
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ModuleNotFoundError, ImportError) as e:
        raise SearchError(f"storage URL {mask_url(url)!r} cannot be used: {first_line(e, url)} "
                          "(is its database driver installed? pip install 'mnist-search[postgres]')") from None
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, RuntimeError, ValueError) as e:
        # Optuna raises RuntimeError for a schema of another version, ValueError for a non-Optuna database
        err = storage_error(e, url)
        if isinstance(err, DiskFull) and sqlite and not create and not read_only and parsed.path is not None:
            # a full disk still reads: open the file read-only (no WAL set-up, nothing written)
            with storage_errors(url):
                return optuna.storages.RDBStorage(f"sqlite:///file:{parsed.path.resolve()}?mode=ro&uri=true",
                                                  engine_kwargs=engine_kwargs)
        if isinstance(err, StorageLost):
            raise SearchError(f"cannot reach storage {mask_url(url)}: {first_line(e, url)}") from None
        raise err from None


def _retry_callback() -> optuna.storages.RetryHeartbeatStaleTrialCallback:
    """A trial whose heartbeat went stale is queued again with its parameters, at most MAX_RETRY times."""
    with _optuna.quiet_experimental():
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


CREATION_TRIES = 10


def _created_once(make: Callable[[], optuna.storages.RDBStorage]) -> optuna.storages.RDBStorage:
    """The storage, tried again while other processes create the same schema at the same
    moment (the many-machines recipe starts one command everywhere): the loser of that race
    sees the winner's tables or version row as a duplicate, and the next try finds them."""
    for attempt in range(CREATION_TRIES):
        try:
            return make()
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError) as e:
            text = str(e).lower()
            racing = any(k in text for k in ("already exists", "duplicate key", "unique constraint failed",
                                             "alembic_version", "database is locked"))
            if not racing or attempt == CREATION_TRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
    raise AssertionError("unreachable")


def _check_sqlite_file(path: Path, url: str, create: bool) -> bool:
    """Check a SQLite file before use; True when it can only be read (and only reads are asked)."""
    where = mask_url(url)
    if path.is_dir():
        raise SearchError(f"storage {where}: {path} is a directory; name a .db file")
    if not path.parent.is_dir():
        raise SearchError(f"storage {where}: directory {path.parent} does not exist")
    if not path.is_file():
        if not create:
            raise SearchError(f"no storage at {where}: the file {path} does not exist "
                              "(run a study first, or pass --storage / SEARCH_STORAGE)")
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise SearchError(f"storage {where}: cannot create {path}: directory {path.parent} is not writable")
        return False
    if path.stat().st_size and _head(path) != b"SQLite format 3\x00":
        raise SearchError(f"storage {where}: {path} is not a SQLite database (damaged, or another kind of "
                          "file): restore it from a backup or pass another --storage")
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
    if not writable and create:
        raise SearchError(f"storage {where} is read-only ({path} or its directory cannot be written): make it "
                          "writable, or copy it and pass --storage with the copy")
    return not writable


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(16)
    except OSError as e:
        raise SearchError(f"storage {path}: cannot read the file ({e.strerror})") from None


def storage_error(e: BaseException, url: str) -> SearchError:
    """A database error as the one line the user sees: a damaged or read-only storage is
    their input to fix (exit 2); anything else means the storage went away (exit 1)."""
    if isinstance(e, optuna.exceptions.StorageInternalError) and e.__cause__ is not None:
        e = e.__cause__  # Optuna's wrapper says "invalid data in the commit"; the cause says what happened
    text = _grpc_text(e, url) if is_grpc_error(e) else first_line(e, url)
    low = text.lower()
    where = mask_url(url)
    if any(k in low for k in ("malformed", "not a database", "file is encrypted", "no such table",
                              "no such column", "table schema")):
        return SearchError(f"storage {where} is damaged or not an Optuna storage ({text}): restore it from a "
                           "backup, or pass another --storage")
    if any(k in low for k in ("disk is full", "no space left", "could not extend file", "disk full")):
        path = StorageURL.parse(url).path if url else None
        folder = f"{path.parent} ({shutil.disk_usage(path.parent).free:,} bytes free)" if path and \
            path.parent.is_dir() else "the server's data folder"
        return DiskFull(f"storage {where}: its disk is full ({text}) in {folder}: free some space and run the "
                        "same command again; finished trials are stored, and a trial it cut off runs again")
    if "readonly" in low or "read-only" in low:
        return SearchError(f"storage {where} is read-only ({text}): make it writable, or copy it and pass "
                           "--storage with the copy")
    if "permission denied" in low or "insufficientprivilege" in low or "must be owner" in low:
        user = _split_credentials(url)
        who = f"the database user {user[1].partition(':')[0]!r}" if user else "the database user"
        return SearchError(f"storage {where}: {who} lacks a privilege the study needs ({text}): grant it "
                           "(GRANT ALL ON SCHEMA public, and on its tables, to that user; creating the first study "
                           "needs CREATE), or pass --storage with a user that has it")
    return StorageLost(f"lost the storage {where} mid-study ({text}); finished trials are stored: run the same "
                       "command again once it is reachable")


def is_grpc_error(e: BaseException) -> bool:
    """A failed call to a storage proxy (grpc.RpcError), told without importing grpc."""
    return any(c.__name__ == "RpcError" and c.__module__ == "grpc" for c in type(e).__mro__)


def _grpc_text(e: BaseException, url: str) -> str:
    details = getattr(e, "details", None)
    code = getattr(e, "code", None)
    text = str(details() if callable(details) else e) or "no answer"
    name = getattr(code() if callable(code) else None, "name", "")
    if name in ("UNAVAILABLE", "DEADLINE_EXCEEDED") and "database" not in text:
        text = f"the proxy does not answer ({text})"
    return first_line(RuntimeError(text), url)


def is_storage_error(e: BaseException) -> bool:
    """An error from the storage itself: the database (SQLAlchemy, Optuna's wrapper) or a storage proxy."""
    return isinstance(e, (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError)) or is_grpc_error(e)


@contextlib.contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Database errors inside the block become the one line `storage_error` gives."""
    try:
        yield
    except Exception as e:
        if not is_storage_error(e):
            raise
        raise storage_error(e, url) from None


class FileGuard:
    """Notices a SQLite or journal file deleted or replaced under a running study (the
    process would keep writing into the unlinked file, and claim trials it cannot keep)."""

    def __init__(self, url: str) -> None:
        self.path = StorageURL.parse(url).path
        self.url = url
        self.identity = self._identity()

    def _identity(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def check(self) -> None:
        if self.path is not None and self._identity() != self.identity:
            raise StorageLost(f"the storage file {self.path} was deleted or replaced mid-study: trials finished "
                              "since then are lost with it; restore the file or start again")


_WAL_TRIES = 100  # about 3.5 s of others holding a new file


def _fast_sqlite(engine) -> None:
    """WAL journal + synchronous=NORMAL: a commit no longer waits for fsync, readers do not
    block the writer. Still safe against a crashed or killed process (the WAL is replayed);
    only an OS crash or power cut can lose the last commits."""

    def on_connect(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        for attempt in range(_WAL_TRIES):
            try:  # the mode is kept in the file: only its first connection changes it
                if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                    cur.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as e:
                # the change needs the file to itself and waits for no busy timeout: six processes
                # opening a new file at once saw "database is locked" here (test_creation_race)
                if "locked" not in str(e) or attempt == _WAL_TRIES - 1:
                    raise
                time.sleep(0.02 + random.random() * 0.03)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    sqlalchemy.event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened while creating the schema predate the listener


def _journal_storage(parsed: StorageURL, create: bool) -> BaseStorage:
    url, path = parsed.text, parsed.path
    assert path is not None
    if not str(path) or path.is_dir():
        raise SearchError(f"storage URL {url!r} names no file: expected journal:PATH (e.g. journal:search.log)")
    if not path.parent.is_dir():
        raise SearchError(f"storage {url}: directory {path.parent} does not exist")
    if not create and not path.is_file():
        raise SearchError(f"no storage at {url}: the file {path} does not exist (run a study first)")
    # the journal, its lock files and the budget lock are all written beside it, even to read
    if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SearchError(f"storage {url}: {path} or its directory {path.parent} is not writable (the journal "
                          "backend writes lock files beside it): make it writable or choose another place")
    kept = _mend_journal(path)  # readers too: a garbage last line stops Optuna's reader
    if kept is not None:
        warnings.warn(JournalMended(f"the journal {path} ended in a broken line (a write cut off: a full disk, a "
                                    f"killed process); it was cut before anything was appended, and the bytes "
                                    f"cut are kept in {kept}"), stacklevel=2)
    try:
        return JournalStorage(JournalFileBackend(str(path)))
    except ValueError as e:  # json.JSONDecodeError too: a line inside the file that is not a journal entry
        raise SearchError(f"storage {url}: {path} has a broken line inside it ({str(e)[:80]}), so nothing after it "
                          "can be read: restore a backup, or keep a copy and cut the file at the line before it") from None


class JournalMended(Notice):
    """A journal's broken last line was cut (and kept beside it) before anything was appended."""


MAX_JOURNAL_LINE = 1 << 24  # the longest journal entry looked for at the end (a trial's attributes: kilobytes)


def _mend_journal(path: Path) -> Path | None:
    """Cut a broken last line (no newline, or not JSON: an append cut off) before anything
    is appended after it and joined to it, under the journal's own lock; the bytes cut are
    kept in PATH.broken-TIME. Returns that copy (None when the tail was whole)."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - MAX_JOURNAL_LINE)
            f.seek(start)
            tail = f.read()
            body = tail[:-1] if tail.endswith(b"\n") else tail
            cut = body.rfind(b"\n") + 1  # the start of the last line, within the tail
            if tail.endswith(b"\n"):
                try:
                    json.loads(body[cut:])
                    return None
                except ValueError:
                    pass
            if cut == 0 and start > 0:
                raise SearchError(f"storage journal:{path}: its last line is broken and longer than "
                                  f"{MAX_JOURNAL_LINE:,} bytes: restore a backup")
            kept = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
            kept.write_bytes(tail[cut:])
            f.truncate(start + cut)
            f.flush()
            os.fsync(f.fileno())
            return kept
    finally:
        lock.release()


def storage_url(explicit: str | None) -> str:
    """The storage URL in force: the flag, else SEARCH_STORAGE, else SQLite in the working directory."""
    return explicit or os.environ.get("SEARCH_STORAGE") or DEFAULT_STORAGE


def first_line(e: BaseException, url: str) -> str:
    """The first line of an error, with every credential of `url` masked, cut to 200 characters."""
    text = str(getattr(e, "orig", None) or e).strip()
    text = text.splitlines()[0] if text else type(e).__name__
    for secret in secrets_of(url):
        text = text.replace(secret, "***")
    return _SECRET_IN_TEXT.sub(r"\1***", text)[:200]


@contextlib.contextmanager
def heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Record a heartbeat every interval while the trial runs (RDB storages only)."""
    interval = _optuna.heartbeat_interval(storage)
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat is retried next interval
                _optuna.record_heartbeat(storage, trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
