"""grpc://HOST:PORT -> Optuna's gRPC storage proxy, with the study lock and heartbeats the
service needs through it.

search/proxy_server.py runs Optuna's proxy servicer in front of one RDB storage (PostgreSQL,
MySQL, SQLite) and, on the same port, a small side service (JSON over gRPC generic handlers): a leased study
lock, heartbeats and their ages. `ProxyStorage` is Optuna's `GrpcStorageProxy` plus
`BaseHeartbeat` through that side service, so `fail_stale_trials`, retries of trials whose
worker died, and the exact budget work through the proxy as they do on the database.

The lock is a lease: a holder renews it every RENEW_S while it holds it; a holder that stops
renewing (killed, or cut off from the proxy) loses it after LEASE_S, so the other workers go
on. A holder that lost its lease this way is told when it lets go (`LeasedLock.lapsed`): the
trial it asked meanwhile may overrun the budget, and the trial loop withdraws it unrun.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import optuna
from optuna.storages import GrpcStorageProxy

from search import _optuna
from search._optuna import BaseHeartbeat
from search.errors import SearchError

__all__ = ["CONNECT_S", "DEFAULT_PORT", "DEFAULT_THREADS", "LEASE_S", "RENEW_S", "SERVICE", "SIDE_METHODS",
           "LeasedLock", "ProxyAddress", "ProxyStorage", "connect", "dump", "load"]

SERVICE = "mnist_search.StorageProxy"  # the side service's name, beside Optuna's optuna.StorageService
DEFAULT_PORT = 13000  # Optuna's run_grpc_proxy_server default
DEFAULT_THREADS = 64  # server threads: every call is short (no call waits on the lock), Optuna's 10 queue 64 workers
LEASE_S = 20.0  # a lock holder silent this long (killed, cut off) loses the study lock
RENEW_S = 2.0
CONNECT_S = 5.0  # how long a command waits for the proxy to answer at start (a proxy that is starting too)
SIDE_TIMEOUT_S = 60.0  # one side-service call (a lock poll, a heartbeat) gives up after this
SIDE_METHODS = ("Hello", "Lock", "Renew", "Unlock", "Heartbeat", "HeartbeatAges", "SetTrialUserAttrs", "StateCounts",
                "SetStudySystemAttrs", "StudySystemAttr", "HasConstraints", "BestTrialIds")
LOCK_WAIT_S = 0.25  # a Lock call waits this long in the server for the holder to let go (a few such calls at once)


@dataclass(frozen=True)
class ProxyAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> ProxyAddress:
        rest = url[len("grpc://"):].rstrip("/")
        host, sep, port = rest.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in rest or "@" in rest:
            raise SearchError(f"malformed storage URL {url!r}: expected grpc://HOST:PORT, the address a "
                              f"`search storage-proxy` serves on (e.g. grpc://127.0.0.1:{DEFAULT_PORT})")
        return cls(host, int(port))

    @property
    def target(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def dump(value: Any) -> bytes:
    return json.dumps({"v": value}).encode()


def load(data: bytes) -> Any:
    # wrapped: a deserializer that returns None is taken by grpc for a failure ("Exception
    # deserializing response!"), and a call that answers nothing answers None
    return json.loads(data.decode())


# ---------------------------------------------------------------- client


class LeasedLock:
    """The study lock through the proxy, renewed while held; `lapsed` once it was lost meanwhile."""

    def __init__(self, proxy: ProxyStorage, key: str, lease_s: float = LEASE_S, renew_s: float = RENEW_S) -> None:
        self.proxy, self.key, self.lease_s, self.renew_s = proxy, key, lease_s, renew_s
        self.token = uuid.uuid4().hex
        self.lapsed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _request(self, wait_s: float = 0.0) -> dict[str, Any]:
        return {"key": self.key, "token": self.token, "lease_s": self.lease_s, "wait_s": wait_s}

    def acquire(self) -> None:
        # the server waits up to LOCK_WAIT_S for the holder (handed over on release, no polling
        # gap); when too many calls wait there already it answers at once, and this backs off
        wait = 0.002
        while not self.proxy.side("Lock", self._request(LOCK_WAIT_S)):
            time.sleep(wait * (0.5 + _jitter()))
            wait = min(wait * 2, 0.05)
        self._thread = threading.Thread(target=self._renew, name=f"lease-{self.key}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_s):
            try:
                if not self.proxy.side("Renew", self._request()):
                    self.lapsed = True
                    return
            except Exception:  # cut off: the next renewal, or the release, tells
                continue

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            held = self.proxy.side("Unlock", {"key": self.key, "token": self.token})
        except Exception:  # the proxy is gone: the lease ends by itself, and the next call says so
            held = False
        self.lapsed = self.lapsed or not held

    def __enter__(self) -> LeasedLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _jitter() -> float:
    return (time.perf_counter_ns() % 1000) / 1000


class ProxyStorage(GrpcStorageProxy, BaseHeartbeat):
    """Optuna's gRPC proxy client, with heartbeats (and the study lock) through the side service."""

    def __init__(self, address: ProxyAddress, *, heartbeat_interval: int | None = None,
                 grace_period: int | None = None,
                 stale_callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None) -> None:
        self._interval, self._grace, self._stale_callback = heartbeat_interval, grace_period, stale_callback
        with _optuna.quiet_experimental():
            super().__init__(host=address.host, port=address.port)

    def _setup(self) -> None:
        super()._setup()
        self._side = {name: self._channel.unary_unary(f"/{SERVICE}/{name}", request_serializer=dump,
                                                      response_deserializer=load)
                      for name in SIDE_METHODS}

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state.pop("_side", None)
        return state

    def side(self, name: str, request: dict[str, Any], timeout: float = SIDE_TIMEOUT_S, **kwargs: Any) -> Any:
        return self._side[name](request, timeout=timeout, **kwargs)["v"]

    def study_lock(self, key: str) -> LeasedLock:
        return LeasedLock(self, key)

    def set_trial_user_attrs(self, trial_id: int, attrs: dict[str, Any], system: dict[str, Any] | None = None) -> None:
        """Several user (and system) attributes in one call, one transaction in the proxy (11 calls a trial otherwise)."""
        import grpc

        try:
            self.side("SetTrialUserAttrs", {"trial_id": trial_id, "attrs": attrs, "system": system or {}})
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise optuna.exceptions.UpdateFinishedTrialError(e.details()) from None
            raise

    def set_study_system_attrs(self, study_id: int, attrs: dict[str, Any]) -> None:
        """A trial note's keys in one call, one transaction in the proxy."""
        self.side("SetStudySystemAttrs", {"study_id": study_id, "attrs": attrs})

    def study_system_attr(self, study_id: int, key: str, default: Any = None) -> Any:
        """One study system attribute by key (not all of them, two a trial with notes)."""
        found = self.side("StudySystemAttr", {"study_id": study_id, "key": key})
        return default if found is None else found["value"]

    def state_counts(self, study_id: int) -> list[tuple[str, str | None, int]]:
        return [(str(a), b, int(c)) for a, b, c in self.side("StateCounts", {"study_id": study_id})]

    def has_constraints(self, study_id: int) -> bool | None:
        return self.side("HasConstraints", {"study_id": study_id})

    def best_trial_ids(self, study_id: int, maximize: bool, limit: int, offset: int = 0) -> list[int] | None:
        ids = self.side("BestTrialIds", {"study_id": study_id, "maximize": maximize, "limit": limit, "offset": offset})
        return None if ids is None else [int(i) for i in ids]

    def heartbeat_ages(self, study_id: int) -> dict[int, float]:
        return {int(k): float(v) for k, v in self.side("HeartbeatAges", {"study_id": study_id}).items()}

    # BaseHeartbeat: what fail_stale_trials and the heartbeat thread call
    def record_heartbeat(self, trial_id: int) -> None:
        self.side("Heartbeat", {"trial_id": trial_id})

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        grace = self._grace or 2 * (self._interval or 0)
        return [tid for tid, age in self.heartbeat_ages(study_id).items() if age > grace]

    def get_heartbeat_interval(self) -> int | None:
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None:
        return self._stale_callback


def connect(url: str, *, create: bool, heartbeat_interval: int | None, grace_period: int | None,
            stale_callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None) -> GrpcStorageProxy:
    """The client for grpc://HOST:PORT, once its proxy answers (waiting up to CONNECT_S for one
    that is starting); one line when none does, or when it is Optuna's plain proxy and the
    command writes (no study lock or heartbeats there: workers would overrun the budget)."""
    address = ProxyAddress.parse(url)
    try:
        import grpc
    except ImportError:
        raise SearchError(f"storage {url} needs grpcio: pip install 'mnist-search[grpc]'") from None
    storage = ProxyStorage(address, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                           stale_callback=stale_callback)
    try:
        hello = storage.side("Hello", {}, timeout=CONNECT_S, wait_for_ready=True)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNIMPLEMENTED:  # Optuna's own proxy: it reads and writes, no more
            if create:
                raise SearchError(f"storage {url} is Optuna's own gRPC proxy, which has no study lock or heartbeats "
                                  "(workers would overrun the budget, and a killed worker's trial would stay RUNNING): "
                                  "serve the database with `search storage-proxy --storage URL` instead") from None
            storage.close()  # its plain client: readers fall back to Optuna's own calls
            with _optuna.quiet_experimental():
                return GrpcStorageProxy(host=address.host, port=address.port)
        why = "no proxy answered" if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED else str(e.details())[:160]
        raise SearchError(f"cannot reach storage {url}: {why} within {CONNECT_S:g} s (is `search storage-proxy "
                          f"--port {address.port}` running on {address.host}, and the port open?)") from None
    if not isinstance(hello, dict) or hello.get("service") != "mnist-search":
        raise SearchError(f"storage {url}: what answers there is not a `search storage-proxy`")
    missing = [m for m in SIDE_METHODS if m not in hello.get("methods", ())]
    if missing:  # a proxy started from an older version: its first missing call would fail mid-run
        storage.close()
        raise SearchError(f"storage {url}: that `search storage-proxy` is older than this command (it lacks "
                          f"{', '.join(missing)}): restart it from this version of mnist-search")
    return storage
