"""Numbers -> short text for tables and sentences (no heavy imports: the CLI uses it on every command)."""

from __future__ import annotations

from typing import Any


def fmt(v: Any, digits: int = 4) -> str:
    """Short number formats for tables and sentences: 0.9771, 3.00e-04, true."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, tuple)):
        return "-".join(fmt(x, digits) for x in v)
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.2e}"
        return f"{v:.{digits}g}"
    return str(v)
