"""A storage URL -> optuna-dashboard served on one address (loopback by default), with the
study's artifact store so that checkpoints and report images are listed and downloadable.

Served by gunicorn (a dependency) in one worker process with threads; where gunicorn
cannot be imported (Windows), by wsgiref, with a line saying so. Read-only unless
`allow_writes`: optuna-dashboard's API also creates, renames and deletes studies (with
their checkpoints), edits notes and tells trials, for anyone who reaches the port; every
method but GET and HEAD is answered 405 with the reason, which the dashboard shows.
"""

from __future__ import annotations

import json
import wsgiref.simple_server
from typing import Any, Callable, Iterable

import optuna_dashboard

from search._net import check_address, is_loopback
from search.artifacts import artifact_dir, open_store
from search.errors import SearchError
from search.storage import mask_url, open_storage

__all__ = ["READ_METHODS", "check_address", "is_loopback", "read_only", "serve"]

READ_METHODS = ("GET", "HEAD")


def read_only(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """The WSGI app, answering 405 (and why) to every method but GET and HEAD."""
    reason = json.dumps({"reason": "this dashboard is read-only: start it with `search dashboard --allow-writes` to "
                                   "edit notes or change studies"}).encode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if str(environ.get("REQUEST_METHOD", "GET")).upper() in READ_METHODS:
            return app(environ, start_response)
        start_response("405 Method Not Allowed", [("Content-Type", "application/json"), ("Allow", "GET, HEAD"),
                                                  ("Content-Length", str(len(reason)))])
        return [reason]

    return guarded


def serve(url: str, host: str, port: int, artifacts: str | None = None, say: Callable[[str], None] = print,
          allow_writes: bool = False) -> None:
    """Serve until interrupted (read-only unless `allow_writes`)."""
    open_storage(url, create=False)  # one line for a storage that is not there, before anything is served
    folder = artifact_dir(url, artifacts)
    store = open_store(folder, create=False)
    where = f"artifacts in {folder}" if store else "no artifact folder (pass --artifacts DIR for checkpoints)"
    where += "; changes allowed (--allow-writes)" if allow_writes else "; read-only"

    def make_app() -> Callable[..., Iterable[bytes]]:
        app = optuna_dashboard.wsgi(open_storage(url, create=False), artifact_store=store)
        return app if allow_writes else read_only(app)

    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        say(f"optuna-dashboard for {mask_url(url)} on http://{host}:{port}/, {where} (gunicorn is not installed: "
            "serving with wsgiref, for one user; pip install gunicorn)")
        _run(lambda: wsgiref.simple_server.make_server(host, port, make_app()).serve_forever(), host, port)
        return

    class Dashboard(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}", "workers": 1,
                               "threads": 4, "worker_class": "gthread", "accesslog": None, "loglevel": "warning",
                               "timeout": 120, "preload_app": False}.items():
                self.cfg.set(key, value)

        def load(self):
            # built in the worker, after the fork: database connections are not shared across it
            return make_app()

    say(f"optuna-dashboard for {mask_url(url)} on http://{host}:{port}/ (gunicorn), {where}; Ctrl-C stops")
    _run(Dashboard().run, host, port)


def _run(target: Callable[[], None], host: str, port: int) -> None:
    try:
        target()
    except OSError as e:
        raise SearchError(f"cannot serve on {host}:{port}: {e.strerror}") from None
    except (KeyboardInterrupt, SystemExit):
        pass
