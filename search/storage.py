"""Storage URL -> Optuna storage. SQLite by default; any SQLAlchemy URL Optuna supports.

Every message that shows a URL shows it with the password masked.
"""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from search.errors import SearchError

DEFAULT_STORAGE = "sqlite:///search.db"
SQLITE_TIMEOUT_S = 60  # several workers on one SQLite file wait for the lock instead of failing


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***; unparseable URLs are cut at the '@'."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return url


def open_storage(url: str, *, create: bool = True) -> optuna.storages.RDBStorage:
    """An RDBStorage for `url`; bad or unreachable URLs raise SearchError with one line.

    With `create=False` a SQLite file that does not exist is an error rather than a new,
    empty database (commands that only read must not leave files behind).
    """
    try:
        parsed = make_url(url)
    except Exception:
        raise SearchError(f"malformed storage URL {mask_url(url)!r}: expected e.g. sqlite:///search.db or "
                          "postgresql+psycopg://user:PASSWORD@127.0.0.1:5432/db") from None
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
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ModuleNotFoundError, ImportError) as e:
        raise SearchError(f"storage URL {mask_url(url)!r} cannot be used: {_first_line(e, url)} "
                          "(is its database driver installed?)") from None
    except sqlalchemy.exc.SQLAlchemyError as e:
        raise SearchError(f"cannot reach storage {mask_url(url)}: {_first_line(e, url)}") from None


def storage_url(explicit: str | None) -> str:
    return explicit or os.environ.get("SEARCH_STORAGE") or DEFAULT_STORAGE


def _first_line(e: BaseException, url: str) -> str:
    text = str(getattr(e, "orig", None) or e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    try:
        password = make_url(url).password
    except Exception:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text[:200]
