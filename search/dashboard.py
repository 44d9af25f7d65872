from __future__ import annotations

from search.errors import SearchError
from search.storage import open_storage


def serve(url: str, host: str, port: int) -> None:
    """Serve optuna-dashboard (wsgiref, for local use) until interrupted."""
    import optuna_dashboard

    storage = open_storage(url, create=False)
    try:
        optuna_dashboard.run_server(storage, host=host, port=port)
    except OSError as e:
        raise SearchError(f"cannot serve on {host}:{port}: {e.strerror}; pick another --port") from None
    except KeyboardInterrupt:
        pass
