"""Optuna's private names, in one place. Everything else uses Optuna's public API.

The service runs its own trial loop (the budget check and `ask` happen under a study
lock), so it needs a few things `study.optimize` does with private attributes. They are
checked against the pinned major version at import; tests/test_optuna_adapter.py fails
loudly if an Optuna release renames any of them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import warnings
import weakref
from pathlib import Path
from typing import Iterator

import optuna
import optuna.artifacts
import sqlalchemy
from optuna.storages._heartbeat import BaseHeartbeat  # private module: the heartbeat protocol

SUPPORTED_MAJOR = 5  # pyproject pins optuna>=5,<6: these names are checked against 5.x

if int(optuna.__version__.split(".")[0]) != SUPPORTED_MAJOR:  # pragma: no cover - caught by the pin
    raise ImportError(f"mnist-search needs Optuna {SUPPORTED_MAJOR}.x (its private names are used in "
                      f"search/_optuna.py); found {optuna.__version__}: pip install 'optuna>=5,<6'")


@contextlib.contextmanager
def quiet_experimental() -> Iterator[None]:
    """The one guard on Optuna's ExperimentalWarning: the features the service uses on
    purpose (heartbeats, QMC and GP samplers, PatientPruner, metric names, the loop below)
    would otherwise print a warning on every run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def mixable(old: optuna.distributions.BaseDistribution, new: optuna.distributions.BaseDistribution) -> bool:
    """Whether a storage takes `new` for a parameter stored with `old` (the check every
    `set_trial_param` runs; public, but documented as not meant for library users)."""
    try:
        optuna.distributions.check_distribution_compatibility(old, new)
    except ValueError:
        return False
    return True


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    return study._storage


def artifact_file(store: optuna.artifacts.FileSystemArtifactStore, artifact_id: str) -> Path:
    """Where FileSystemArtifactStore keeps an artifact: one file per id in its base folder."""
    return Path(store._base_path) / artifact_id


def study_id(study: optuna.Study) -> int:
    return study._study_id


def trial_id(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    return trial._trial_id


def rdb_of(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """The RDBStorage behind `optuna.load_study`'s caching wrapper (or the storage itself)."""
    return getattr(storage, "_backend", storage)


def beating_trials(storage: optuna.storages.BaseStorage, study_id: int) -> set[int]:
    """Ids of the study's RUNNING trials that have recorded a heartbeat (RDB storages and the
    storage proxy; a journal has none): the others never go stale, whatever the interval."""
    ages = getattr(storage, "heartbeat_ages", None)  # search/proxy.py's client asks its server
    return set(ages(study_id)) if ages is not None else set(heartbeat_ages(storage, study_id))


def heartbeat_ages(storage: optuna.storages.BaseStorage, study_id: int) -> dict[int, float]:
    """{trial id: seconds since its last heartbeat} for the study's RUNNING trials that have
    recorded one, by the database's clock (as RDBStorage's own stale check): one indexed
    query over the running trials, whatever the size of the study."""
    rdb = rdb_of(storage)
    if not isinstance(rdb, optuna.storages.RDBStorage):
        return {}
    query = sqlalchemy.text("SELECT h.trial_id, h.heartbeat FROM trial_heartbeats h JOIN trials t ON "
                            "t.trial_id = h.trial_id WHERE t.study_id = :study AND t.state = 'RUNNING'"
                            ).columns(trial_id=sqlalchemy.Integer, heartbeat=sqlalchemy.DateTime)
    with rdb.engine.connect() as c:
        now = c.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar_one().replace(tzinfo=None)
        rows = c.execute(query, {"study": study_id}).all()
    return {int(tid): (now - beat.replace(tzinfo=None)).total_seconds() for tid, beat in rows}


def state_counts(storage: optuna.storages.BaseStorage, study_id: int) -> list[tuple[str, str | None, int]] | None:
    """[(state, fail_reason or None, how many)] of a study's trials (what the budget needs,
    without reading every trial into Python on every ask), counted by the database and kept
    up to date by `_StateCounter`; through search/proxy.py's client, by its server; None on
    other storages."""
    counts = getattr(storage, "state_counts", None)
    if counts is not None:
        return counts(study_id)
    rdb = rdb_of(storage)
    if not isinstance(rdb, optuna.storages.RDBStorage):
        return None
    with _COUNTERS_LOCK:
        counter = _COUNTERS.setdefault(rdb, {}).setdefault(study_id, _StateCounter(study_id))
    return counter.read(rdb)


_COUNTERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # RDBStorage -> {study id: _StateCounter}
_COUNTERS_LOCK = threading.Lock()


@functools.cache
def _new_trials_query(sqlite: bool) -> sqlalchemy.TextClause:
    """What `_StateCounter.read` fetches: a study's trials above an id or among some ids, with
    their fail_reason. SQLite's planner takes the study_id index (every trial of the study:
    13 ms at 100,000) over the primary key's range unless told not to: `+study_id` is not
    indexable."""
    study = "+t.study_id" if sqlite else "t.study_id"
    return sqlalchemy.text(
        "SELECT t.trial_id, t.state, a.value_json, t.datetime_complete FROM trials t LEFT JOIN trial_user_attributes a "
        f"ON a.trial_id = t.trial_id AND a.key = 'fail_reason' WHERE {study} = :study AND "
        "(t.trial_id > :last OR t.trial_id IN :open)").bindparams(sqlalchemy.bindparam("open", expanding=True))


_FINISHED = ("COMPLETE", "PRUNED", "FAIL")  # trial states that never change again


class _StateCounter:
    """A finished trial never changes its state or fail_reason (the reason is written before
    the state, and a finished trial takes no more writes), so each is counted once; a read
    fetches only the trials unfinished at the last read and those above the highest finished
    trial id, as Optuna's own `_CachedStorage` reads trials. A grouped count over the whole
    study cost 5.6 ms at 10,000 trials and ~56 ms at 100,000 on SQLite, per ask; this reads
    the few trials running. A study deleted and made again under the same id (SQLite reuses
    ids) is noticed by one trial it counted, looked up by id, and counted afresh."""

    _ANCHOR = sqlalchemy.text("SELECT datetime_complete FROM trials WHERE trial_id = :trial AND study_id = :study")
    # The first read: finished trials counted by the database per (state, fail_reason), with
    # their highest id, and unfinished trials one row each, in one statement (one snapshot: a
    # trial finishing meanwhile is in one group or the other). Fetching every trial instead
    # took 0.5 s at 100,000 trials on SQLite, in every `show` and every worker's first ask.
    _FIRST = sqlalchemy.text(
        f"SELECT t.state, a.value_json, CASE WHEN t.state IN {_FINISHED} THEN NULL ELSE t.trial_id END AS open_id, "
        "count(*), max(t.trial_id) FROM trials t LEFT JOIN trial_user_attributes a "
        "ON a.trial_id = t.trial_id AND a.key = 'fail_reason' WHERE t.study_id = :study GROUP BY t.state, a.value_json, "
        "open_id")

    def __init__(self, study_id: int) -> None:
        self.study_id = study_id
        self.lock = threading.Lock()  # the proxy's threads share one
        self._reset()

    def _reset(self) -> None:
        self.done: dict[tuple[str, str | None], int] = {}
        self.last = -1  # the highest finished trial id counted
        self.open: set[int] = set()  # unfinished at the last read
        self.anchor: tuple[int, object] | None = None  # (a counted trial's id, its datetime_complete)

    def read(self, rdb: optuna.storages.RDBStorage) -> list[tuple[str, str | None, int]]:
        with self.lock:
            with rdb.engine.connect() as c:
                if self.anchor is not None:
                    tid, at = self.anchor
                    row = c.execute(self._ANCHOR, {"trial": tid, "study": self.study_id}).first()
                    if row is None or row[0] != at:
                        self._reset()
                if self.last < 0 and not self.open:
                    return self._first(c)
                query = _new_trials_query(rdb.engine.dialect.name == "sqlite")
                rows = c.execute(query, {"study": self.study_id, "last": self.last, "open": sorted(self.open)}).all()
            running: dict[str, int] = {}
            for tid, state, reason, complete in rows:
                if state in _FINISHED:
                    self._count(state, reason, 1)
                    self.open.discard(tid)
                    self.last = max(self.last, tid)
                    if self.anchor is None:
                        self.anchor = (tid, complete)
                else:
                    self.open.add(tid)
                    running[state] = running.get(state, 0) + 1
            return self._counts(running)

    def _first(self, c) -> list[tuple[str, str | None, int]]:
        running: dict[str, int] = {}
        for state, reason, open_id, n, top in c.execute(self._FIRST, {"study": self.study_id}):
            if open_id is None:
                self._count(state, reason, n)
                self.last = max(self.last, top)
            else:
                self.open.add(open_id)
                running[state] = running.get(state, 0) + 1
        if self.last >= 0:  # a finished trial never changes: its datetime_complete tells a study made again
            at = c.execute(self._ANCHOR, {"trial": self.last, "study": self.study_id}).first()
            self.anchor = (self.last, at[0] if at else None)
        return self._counts(running)

    def _count(self, state: str, reason_json: str | None, n: int) -> None:
        key = (state, json.loads(reason_json) if reason_json is not None else None)
        self.done[key] = self.done.get(key, 0) + n

    def _counts(self, running: dict[str, int]) -> list[tuple[str, str | None, int]]:
        return ([(state, reason, n) for (state, reason), n in self.done.items()]
                + [(state, None, n) for state, n in running.items()])


def best_trial_ids(storage: optuna.storages.BaseStorage, study_id: int, maximize: bool, limit: int,
                   offset: int = 0) -> list[int] | None:
    """Ids of a study's COMPLETE trials best first by the first objective (ties by number),
    `limit` from `offset`: one indexed query, ordered as Optuna's own best-trial query
    (-inf, finite, +inf); through search/proxy.py's client, by its server; None on storages
    without SQL (a journal, Optuna's own proxy)."""
    ask = getattr(storage, "best_trial_ids", None)
    if ask is not None:
        return ask(study_id, maximize, limit, offset)
    rdb = rdb_of(storage)
    if not isinstance(rdb, optuna.storages.RDBStorage):
        return None
    way = "DESC" if maximize else "ASC"
    query = sqlalchemy.text(
        "SELECT t.trial_id FROM trials t JOIN trial_values v ON v.trial_id = t.trial_id AND v.objective = 0 "
        "WHERE t.study_id = :study AND t.state = 'COMPLETE' ORDER BY CASE v.value_type WHEN 'INF_NEG' THEN -1 "
        f"WHEN 'FINITE' THEN 0 ELSE 1 END {way}, v.value {way}, t.number LIMIT :limit OFFSET :offset")
    with rdb.engine.connect() as c:
        return [int(r[0]) for r in c.execute(query, {"study": study_id, "limit": limit, "offset": offset})]


def has_constraints(storage: optuna.storages.BaseStorage, study_id: int) -> bool | None:
    """Whether any trial of the study recorded constraint values, in either of the forms
    `FrozenTrial.constraints` reads (a non-empty list under `constraints`, or one key
    `constraints:NAME` each, as Optuna 5 writes them): one query, stopping at the first;
    through search/proxy.py's client, by its server; None on storages without SQL."""
    from optuna.study._constrained_optimization import _CONSTRAINTS_KEY

    ask = getattr(storage, "has_constraints", None)
    if ask is not None:
        return ask(study_id)
    rdb = rdb_of(storage)
    if not isinstance(rdb, optuna.storages.RDBStorage):
        return None
    query = sqlalchemy.text("SELECT 1 FROM trial_system_attributes a JOIN trials t ON t.trial_id = a.trial_id "
                            "WHERE t.study_id = :study AND ((a.key = :key AND a.value_json != '[]') "
                            "OR a.key LIKE :named) LIMIT 1")
    with rdb.engine.connect() as c:
        return c.execute(query, {"study": study_id, "key": _CONSTRAINTS_KEY,
                                 "named": f"{_CONSTRAINTS_KEY}:%"}).first() is not None


def grpc_proxy_server(storage: optuna.storages.BaseStorage, pool, interceptors=()):  # -> grpc.Server
    """Optuna's gRPC storage proxy (`optuna.storages.run_grpc_proxy_server` without its own
    start and wait), in a server that takes interceptors and more services: its servicer
    and its registration live in private modules."""
    import grpc
    from optuna.storages._grpc.auto_generated import api_pb2_grpc
    from optuna.storages._grpc.servicer import OptunaStorageProxyService

    server = grpc.server(pool, interceptors=list(interceptors))
    api_pb2_grpc.add_StorageServiceServicer_to_server(OptunaStorageProxyService(storage), server)
    return server


def heartbeat_interval(storage: optuna.storages.BaseStorage) -> int | None:
    """Seconds between heartbeats when the storage has them on (RDB storages), else None."""
    if isinstance(storage, BaseHeartbeat):
        return storage.get_heartbeat_interval() or None
    return None


def record_heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> None:
    """One heartbeat of a running trial (a no-op for storages without heartbeats)."""
    if isinstance(storage, BaseHeartbeat):
        storage.record_heartbeat(trial_id)


def set_user_attrs(trial: optuna.Trial, attrs: dict, system: dict | None = None) -> None:
    """Several user attributes of a running trial at once, and system attributes (`system`)
    in the same transaction (`set_trial_user_attrs`), kept in step with the trial's own copy
    as `Trial.set_user_attr` keeps it."""
    set_trial_user_attrs(trial.storage, trial._trial_id, attrs, system)
    trial._cached_frozen_trial.user_attrs.update(attrs)
    trial._cached_frozen_trial.system_attrs.update(system or {})


def set_trial_user_attrs(storage: optuna.storages.BaseStorage, trial_id: int, attrs: dict,
                         system: dict | None = None) -> None:
    """Several user attributes of a running trial, and system attributes (`system`), in one
    transaction on an RDB storage (one commit each through `Trial.set_user_attr`: the 11 a
    trial writes were a fifth of a short trial's cost on SQLite), in one call through
    search/proxy.py's client, one call each on other storages (a journal)."""
    system = system or {}
    if not attrs and not system:
        return
    many = getattr(storage, "set_trial_user_attrs", None)  # search/proxy.py's client: one call to its server
    if many is not None:
        many(trial_id, attrs, system)
        return
    rdb = rdb_of(storage)
    if isinstance(rdb, optuna.storages.RDBStorage):
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        with _create_scoped_session(rdb.scoped_session, True) as session:
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
            rdb.check_trial_is_updatable(trial_id, trial.state)
            for model, values in ((models.TrialUserAttributeModel, attrs), (models.TrialSystemAttributeModel, system)):
                if values:
                    _upsert(rdb, session, model, model.trial_id, trial_id, values)
        return
    for key, value in attrs.items():
        storage.set_trial_user_attr(trial_id, key, value)
    for key, value in system.items():
        storage.set_trial_system_attr(trial_id, key, value)


def set_study_system_attrs(storage: optuna.storages.BaseStorage, study_id: int, attrs: dict) -> None:
    """Several study system attributes (a trial note's version and chunks) in one transaction
    on an RDB storage, one call through search/proxy.py's client, one call each elsewhere."""
    if not attrs:
        return
    many = getattr(storage, "set_study_system_attrs", None)
    if many is not None:
        many(study_id, attrs)
        return
    rdb = rdb_of(storage)
    if isinstance(rdb, optuna.storages.RDBStorage):
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        with _create_scoped_session(rdb.scoped_session, True) as session:
            models.StudyModel.find_or_raise_by_id(study_id, session)
            _upsert(rdb, session, models.StudySystemAttributeModel, models.StudySystemAttributeModel.study_id, study_id,
                    attrs)
        return
    for key, value in attrs.items():
        storage.set_study_system_attr(study_id, key, value)


def _upsert(rdb: optuna.storages.RDBStorage, session, model, owner, owner_id: int, attrs: dict) -> None:
    """Insert or update the attributes `attrs` of the trial or study `owner_id` (`owner` is the
    model's id column) in one statement where the database has upserts (SQLite, PostgreSQL:
    12 attributes were 24 statements), else row by row as RDBStorage writes one."""
    import sqlite3

    from sqlalchemy.dialects import postgresql, sqlite

    rows = [{owner.key: owner_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]
    name = rdb.engine.name
    if name == "postgresql" or (name == "sqlite" and sqlite3.sqlite_version_info >= (3, 24, 0)):
        stmt = (postgresql if name == "postgresql" else sqlite).insert(model).values(rows)
        session.execute(stmt.on_conflict_do_update(index_elements=[owner, model.key],
                                                   set_={"value_json": stmt.excluded.value_json}))
        return
    for row in rows:
        found = session.query(model).filter(owner == row[owner.key], model.key == row["key"]).one_or_none()
        if found is None:
            session.add(model(**row))
        else:
            found.value_json = row["value_json"]


def study_system_attr(storage: optuna.storages.BaseStorage, study_id: int, key: str, default=None):
    """One study system attribute, read by its key (`get_study_system_attrs` reads them all:
    with a note per trial, two rows a trial, 0.6 s a call at 10,000 trials on SQLite)."""
    one = getattr(storage, "study_system_attr", None)
    if one is not None:
        return one(study_id, key, default)
    rdb = rdb_of(storage)
    if not isinstance(rdb, optuna.storages.RDBStorage):
        return storage.get_study_system_attrs(study_id).get(key, default)
    query = sqlalchemy.text("SELECT value_json FROM study_system_attributes WHERE study_id = :study AND key = :key")
    with rdb.engine.connect() as c:
        row = c.execute(query, {"study": study_id, "key": key}).first()
    return default if row is None else json.loads(row[0])


class _OneKey:
    """What QMCSampler._find_sample_id reads of a study: `_storage.get_study_system_attrs(id).get(key, -1)`
    answered by one keyed read; its write goes to the storage itself."""

    def __init__(self, study: optuna.Study) -> None:
        self._study, self._study_id, self._storage = study, study._study_id, self

    def get_study_system_attrs(self, study_id: int) -> _OneKey:
        return self

    def get(self, key: str, default=None):
        return study_system_attr(self._study._storage, self._study_id, key, default)

    def set_study_system_attr(self, study_id: int, key: str, value) -> None:
        self._study._storage.set_study_system_attr(study_id, key, value)


class QMCSampler(optuna.samplers.QMCSampler):
    """Optuna's QMCSampler reading its one counter by key: its own read of every study system
    attribute on each trial grew with the service's trial notes (0.6 s a trial at 10,000)."""

    def _find_sample_id(self, study: optuna.Study, search_space: dict) -> int:
        return super()._find_sample_id(_OneKey(study), search_space)  # type: ignore[arg-type]


def trial_system_attrs(trial: optuna.Trial) -> dict:
    """A running trial's system attributes as it was asked (`failed_trial` marks a retry): the
    copy `Trial` read when it was made, not a storage round trip more per trial."""
    return trial._cached_frozen_trial.system_attrs


def stop_requested(study: optuna.Study) -> bool:
    """True once `study.stop()` was called (the grid sampler does when the grid is done)."""
    return study._stop_flag


@contextlib.contextmanager
def optimize_loop(study: optuna.Study) -> Iterator[None]:
    """What `study.optimize` sets up, for a loop of our own: `study.stop()` and heartbeats
    are only honoured inside it."""
    study._stop_flag = False
    study._thread_local.in_optimize_loop = True
    with quiet_experimental():
        try:
            yield
        finally:
            study._thread_local.in_optimize_loop = False
