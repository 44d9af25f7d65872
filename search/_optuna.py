"""Optuna's private names, in one place. Everything else uses Optuna's public API.

The service runs its own trial loop (the budget check and `ask` happen under a study
lock), so it needs a few things `study.optimize` does with private attributes. They are
checked against the pinned major version at import; tests/test_optuna_adapter.py fails
loudly if an Optuna release renames any of them.
"""

from __future__ import annotations

import contextlib
import json
import warnings
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
    """[(state, fail_reason or None, how many)] of a study's trials, counted by the database
    in one grouped query (what the budget needs, without reading every trial into Python on
    every ask); through search/proxy.py's client, by its server; None on other storages."""
    counts = getattr(storage, "state_counts", None)
    if counts is not None:
        return counts(study_id)
    rdb = rdb_of(storage)
    if not isinstance(rdb, optuna.storages.RDBStorage):
        return None
    query = sqlalchemy.text("SELECT t.state, a.value_json, COUNT(*) FROM trials t LEFT JOIN trial_user_attributes a "
                            "ON a.trial_id = t.trial_id AND a.key = 'fail_reason' WHERE t.study_id = :study "
                            "GROUP BY t.state, a.value_json")
    with rdb.engine.connect() as c:
        rows = c.execute(query, {"study": study_id}).all()
    return [(str(state), json.loads(reason) if reason is not None else None, int(n)) for state, reason, n in rows]


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


def set_user_attrs(trial: optuna.Trial, attrs: dict) -> None:
    """Several user attributes of a running trial at once (`set_trial_user_attrs`), kept in
    step with the trial's own copy as `Trial.set_user_attr` keeps it."""
    set_trial_user_attrs(trial.storage, trial._trial_id, attrs)
    trial._cached_frozen_trial.user_attrs.update(attrs)


def set_trial_user_attrs(storage: optuna.storages.BaseStorage, trial_id: int, attrs: dict) -> None:
    """Several user attributes of a running trial in one transaction on an RDB storage (one
    commit each through `Trial.set_user_attr`: the 11 a trial writes were a fifth of a short
    trial's cost on SQLite), in one call through search/proxy.py's client, one call each on
    other storages (a journal)."""
    if not attrs:
        return
    many = getattr(storage, "set_trial_user_attrs", None)  # search/proxy.py's client: one call to its server
    if many is not None:
        many(trial_id, attrs)
        return
    rdb = rdb_of(storage)
    if isinstance(rdb, optuna.storages.RDBStorage):
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        with _create_scoped_session(rdb.scoped_session, True) as session:
            for key, value in attrs.items():
                rdb._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)
        return
    for key, value in attrs.items():
        storage.set_trial_user_attr(trial_id, key, value)


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
