"""What every bench script shares with the service's CLI: one-line errors with exit code 2,
`--json` on stdout, progress on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, NoReturn


def fail(script: str, message: str) -> NoReturn:
    """Bad input: one line (what, where, what to do) on stderr, exit code 2, before any work."""
    print(f"{script}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def choose(script: str, flag: str, given: str, known: list[str] | dict) -> list[str]:
    """A comma-separated flag value checked against the names it may list (in the given order)."""
    names = [n for n in given.split(",") if n]
    unknown = [n for n in names if n not in known]
    if unknown:
        fail(script, f"{flag} {unknown[0]!r}: unknown; expected some of {', '.join(known)}")
    return names


def emit_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def guarded(script: str, main: Callable[[], None]) -> None:
    """Run a bench script's main: the package's one-line errors (a bad storage URL, a missing
    file) end as one line with their exit code, as in the CLI, never as a traceback."""
    from search import SearchError, exit_code

    try:
        main()
    except SearchError as e:
        print(f"{script}: error: {e}", file=sys.stderr)
        raise SystemExit(exit_code(e)) from None
