"""Value checks shared by study files, configs and flags: each failure is one SearchError
line naming where (file), the key, the value and what was expected."""

from __future__ import annotations

import difflib
import math
from typing import Any, Iterable

from search.errors import SearchError

MAX_SEED = 2**31 - 1  # a study's seed: what torch and numpy accept everywhere
MAX_TRIALS = 1_000_000  # a study's budget
MAX_TRIAL_SEED = MAX_SEED + MAX_TRIALS  # trial k is seeded with seed + k: what a config may carry


def number(value: Any, where: str, key: str, low: float, high: float, low_open: bool = False,
           high_open: bool = False, integer: bool = False) -> Any:
    if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    lo = f"> {low:g}" if low_open else f">= {low:g}"
    hi = "" if high == math.inf else f" and < {high:g}" if high_open else f" and <= {high:g}"
    want = f"{'an integer' if integer else 'a number'} {lo}{hi}"
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and not math.isfinite(value) and not (value == math.inf and high == math.inf))):
        raise SearchError(f"{where}: {key}: expected {want}, got {short(value)}")
    if integer:
        if value != int(value):
            raise SearchError(f"{where}: {key}: expected {want}, got {short(value)}")
        value = int(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        raise SearchError(f"{where}: {key}: expected {want}, got {short(value)}")
    return value


def integer(value: Any, where: str, key: str, low: int, high: int) -> int:
    return int(number(value, where, key, low, high, integer=True))


def boolean(value: Any, where: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise SearchError(f"{where}: {key}: expected true or false, got {short(value)}")
    return value


def did_you_mean(word: Any, known: Iterable[str]) -> str | None:
    """The known word closest to a misspelt one (difflib, as git and pip suggest), or None."""
    if not isinstance(word, str):
        return None
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.75)  # 0.6 offered lenet5 for resnet
    return close[0] if close else None


def unknown(word: Any, known: Iterable[str], what: str) -> str:
    """'did you mean epochs?' for a near miss, else 'expected one of ...' (or `what`, when
    the list is long: 'see `search axes`')."""
    known = list(known)
    close = did_you_mean(word, known)
    if close is not None:
        return f"did you mean {close}?"
    return f"expected one of {', '.join(known)}" if len(known) <= 12 or not what else what


def choice(value: Any, allowed: Iterable[str], where: str, key: str, *more: str) -> str:
    """`value` if it is one of `allowed`; `more` adds words to the expectation ('or module:callable')."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        close = did_you_mean(value, allowed)
        hint = f"did you mean {close}? (expected one of " if close else "expected one of "
        raise SearchError(f"{where}: {key}: unknown value {short(value)}; {hint}"
                          f"{' '.join([', '.join(allowed), *more])}{')' if close else ''}")
    return value


def keys(doc: dict, allowed: Iterable[str], where: str, prefix: str) -> None:
    allowed = set(allowed)
    for k in doc:
        if k not in allowed:
            dot = f"{prefix}." if prefix else ""
            close = did_you_mean(k, allowed)
            hint = f"did you mean {close}?" if close else f"expected one of {', '.join(sorted(allowed))}"
            raise SearchError(f"{where}: {dot}{name(k)}: unknown key; {hint}")


def mapping(value: Any, where: str, key: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise SearchError(f"{where}: {key + ': ' if key else ''}expected {what}, got {kind(value)}")
    return value


_KINDS = {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping"}


def kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{_KINDS.get(type(value), 'a ' + type(value).__name__)} ({short(value, 40)})"


def name(key: Any, limit: int = 60) -> str:
    """A key as written in the file, cut to `limit` characters."""
    text = str(key)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def short(value: Any, limit: int = 60) -> str:
    """repr() cut to `limit` characters, so that a huge value never floods an error line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
