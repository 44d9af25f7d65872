"""An RDB storage URL -> `search storage-proxy`: Optuna's gRPC proxy servicer in front of it and,
on the same port, the side service of search/proxy.py (the leased study lock, heartbeats)."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import optuna

from search import _optuna
from search._net import check_address
from search._signals import sigterm_as_interrupt
from search.errors import SearchError
from search.proxy import DEFAULT_THREADS, SERVICE, SIDE_METHODS, ProxyAddress, dump, load
from search.storage import StorageURL, first_line, mask_url, open_storage

__all__ = ["make_server", "serve_storage_proxy", "serving"]


class _Locks:
    """Leased locks by key, in the proxy process: (holder token, monotonic expiry). A caller may
    wait for the holder, but only `max_waiting` at once: every waiting call holds a server thread,
    and the holder needs threads to ask its trial."""

    def __init__(self, max_waiting: int = 8) -> None:
        self._held: dict[str, tuple[str, float]] = {}
        self._cond = threading.Condition()
        self._waiting = threading.BoundedSemaphore(max_waiting)

    def acquire(self, key: str, token: str, lease_s: float, wait_s: float = 0.0) -> bool:
        may_wait = wait_s > 0 and self._waiting.acquire(blocking=False)
        deadline = time.monotonic() + (wait_s if may_wait else 0.0)
        try:
            with self._cond:
                while True:
                    now = time.monotonic()
                    held = self._held.get(key)
                    if held is None or held[1] <= now or held[0] == token:
                        self._held[key] = (token, now + lease_s)
                        return True
                    if now >= deadline:
                        return False
                    self._cond.wait(min(deadline, held[1]) - now)
        finally:
            if may_wait:
                self._waiting.release()

    def renew(self, key: str, token: str, lease_s: float) -> bool:
        """Extend the lease; False when `token` no longer holds it (it lapsed, maybe taken)."""
        now = time.monotonic()
        with self._cond:
            held = self._held.get(key)
            if held is None or held[0] != token or held[1] <= now:
                return False
            self._held[key] = (token, now + lease_s)
            return True

    def release(self, key: str, token: str) -> bool:
        """Let go; True when `token` held the lock, unlapsed, up to now."""
        now = time.monotonic()
        with self._cond:
            held = self._held.get(key)
            if held is None or held[0] != token:
                return False
            del self._held[key]
            self._cond.notify_all()  # the callers waiting in acquire: one of them takes it now
            return held[1] > now


_ABSENT = object()


def _one_attr(storage: optuna.storages.BaseStorage, study_id: int, key: str) -> dict[str, Any] | None:
    value = _optuna.study_system_attr(storage, study_id, key, _ABSENT)
    return None if value is _ABSENT else {"value": value}


def _side_handler(storage: optuna.storages.BaseStorage, hello: dict[str, Any], threads: int):
    import grpc

    locks = _Locks(max_waiting=max(1, threads // 4))
    methods: dict[str, Callable[[dict[str, Any]], Any]] = {  # search/proxy.py's SIDE_METHODS
        "Hello": lambda r: hello,
        "Lock": lambda r: locks.acquire(r["key"], r["token"], float(r["lease_s"]), float(r.get("wait_s", 0))),
        "Renew": lambda r: locks.renew(r["key"], r["token"], float(r["lease_s"])),
        "Unlock": lambda r: locks.release(r["key"], r["token"]),
        "Heartbeat": lambda r: _optuna.rdb_of(storage).record_heartbeat(int(r["trial_id"])),  # type: ignore[attr-defined]
        "HeartbeatAges": lambda r: {str(k): v for k, v in _optuna.heartbeat_ages(storage, int(r["study_id"])).items()},
        "SetTrialUserAttrs": lambda r: _optuna.set_trial_user_attrs(storage, int(r["trial_id"]), dict(r["attrs"]),
                                                                   dict(r.get("system") or {})),
        "StateCounts": lambda r: _optuna.state_counts(storage, int(r["study_id"])),
        "SetStudySystemAttrs": lambda r: _optuna.set_study_system_attrs(storage, int(r["study_id"]), dict(r["attrs"])),
        "StudySystemAttr": lambda r: _one_attr(storage, int(r["study_id"]), str(r["key"])),
        "HasConstraints": lambda r: _optuna.has_constraints(storage, int(r["study_id"])),
        "BestTrialIds": lambda r: _optuna.best_trial_ids(storage, int(r["study_id"]), bool(r["maximize"]),
                                                         int(r["limit"]), int(r["offset"])),
    }

    def unary(fn: Callable[[dict[str, Any]], Any]):
        def call(request, context):
            try:
                return fn(request["v"])
            except optuna.exceptions.UpdateFinishedTrialError as e:  # as Optuna's servicer answers it
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
            except KeyError as e:
                context.abort(grpc.StatusCode.NOT_FOUND, str(e))

        return grpc.unary_unary_rpc_method_handler(call, request_deserializer=load, response_serializer=dump)

    assert set(methods) == set(SIDE_METHODS)
    return grpc.method_handlers_generic_handler(SERVICE, {name: unary(fn) for name, fn in methods.items()})


def _masking_interceptor(url: str):
    """Every error a call meets in the proxy (the database gone, its disk full) reaches the
    worker as UNAVAILABLE with one masked line; the codes Optuna's servicer sets stay as they are."""
    import grpc

    class Masked(grpc.ServerInterceptor):
        def intercept_service(self, continuation, details):
            handler = continuation(details)
            if handler is None or handler.unary_unary is None:
                return handler
            inner = handler.unary_unary

            def call(request, context):
                try:
                    return inner(request, context)
                except Exception as e:
                    if context.code() is not None:  # aborted on purpose (NOT_FOUND, ALREADY_EXISTS, ...)
                        raise
                    context.abort(grpc.StatusCode.UNAVAILABLE,
                                  f"the storage proxy's database {mask_url(url)}: {first_line(e, url)}")

            return grpc.unary_unary_rpc_method_handler(call, request_deserializer=handler.request_deserializer,
                                                       response_serializer=handler.response_serializer)

    return Masked()


def make_server(url: str, host: str, port: int, threads: int = DEFAULT_THREADS):  # -> grpc.Server, bound
    """Optuna's proxy for the RDB storage `url` and the side service, bound to host:port (not started)."""
    kind = StorageURL.parse(url).kind
    if kind == "journal":
        raise SearchError(f"storage {url}: Optuna's gRPC proxy serves RDB storages only (Optuna #6084): run the "
                          "workers on the journal file itself, or keep the study in PostgreSQL")
    if kind == "proxy":
        raise SearchError(f"storage {mask_url(url)} is a storage proxy already: serve the database behind it "
                          "(--storage postgresql+psycopg://...)")
    rdb = open_storage(url, heartbeat=None)  # creates the schema where there is none; heartbeats are the workers'
    storage = optuna.storages.get_storage(rdb)  # Optuna's in-process cache of finished trials
    backend = rdb.engine.url.get_backend_name() if isinstance(rdb, optuna.storages.RDBStorage) else "?"
    hello = {"service": "mnist-search", "storage": mask_url(url), "backend": backend, "methods": list(SIDE_METHODS)}
    server = _optuna.grpc_proxy_server(storage, ThreadPoolExecutor(max_workers=threads, thread_name_prefix="proxy"),
                                       [_masking_interceptor(url)])
    server.add_generic_rpc_handlers((_side_handler(storage, hello, threads),))
    target = ProxyAddress(host, port).target
    try:
        bound = server.add_insecure_port(target)
    except RuntimeError:
        bound = 0
    if not bound:
        raise SearchError(f"cannot serve on {target}: the port is in use or not an address of this machine: "
                          "pick another --port or --host")
    return server


@contextlib.contextmanager
def serving(server) -> Iterator[None]:
    """The server started, and stopped (its calls given a few seconds to end) however the block ends."""
    server.start()
    try:
        yield
    finally:
        server.stop(grace=3).wait(5)


def serve_storage_proxy(url: str, host: str, port: int, threads: int = DEFAULT_THREADS, say: Callable[[str], None] = print) -> None:
    """Serve the storage `url` through the proxy on host:port until interrupted (Ctrl-C, SIGTERM)."""
    check_address(host, port)
    server = make_server(url, host, port, threads)
    with contextlib.suppress(KeyboardInterrupt), sigterm_as_interrupt(), serving(server):
        say(f"storage proxy for {mask_url(url)} on grpc://{ProxyAddress(host, port).target} ({threads} threads); "
            "Ctrl-C stops")
        server.wait_for_termination()
