"""Files in and out: every file the service reads goes through `read_bytes` / `read_text` /
`read_yaml`, every path it writes through `writable_file` / `writable_dir`, checked before
the work. Undecodable, unreadable, empty, oversized or damaged input ends as one
SearchError line (what, where, what to do).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from search.errors import SearchError

MAX_TEXT = 1 << 20  # study files and configs: a few hundred bytes in practice
MAX_YAML_SIZE = 1 << 20  # values + characters of a YAML document with its aliases expanded


def read_bytes(path: Path, what: str, limit: int, fix: str = "") -> bytes:
    """The file's bytes; a missing, unreadable, empty or oversized file is one error line."""
    fix = f"; {fix}" if fix else ""
    try:
        if path.is_dir():
            raise SearchError(f"{path}: is a directory, not a {what}{fix}")
        size = path.stat().st_size
        if size > limit:
            raise SearchError(f"{path}: {size:,} bytes is too large for a {what} (at most {limit:,}){fix}")
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        if isinstance(e, FileNotFoundError):
            raise SearchError(f"{path}: no such {what}{fix}") from None
        raise SearchError(f"{path}: cannot read the {what} ({e.strerror or e}){fix}") from None
    if not raw:
        raise SearchError(f"{path}: the {what} is empty{fix}")
    return raw


def read_text(path: Path, what: str, fix: str = "") -> str:
    raw = read_bytes(path, what, MAX_TEXT, fix)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SearchError(f"{path}: the {what} is not UTF-8 text (byte {e.start}); "
                          f"{fix or 'write it as plain YAML'}") from None
    if "\x00" in text:
        raise SearchError(f"{path}: the {what} is binary, not text; {fix or 'write it as plain YAML'}")
    return text


def read_yaml(path: Path, what: str) -> Any:
    text = read_text(path, what)
    return load_yaml(text, str(path))


def load_yaml(text: str, where: str) -> Any:
    """`yaml.safe_load`, with syntax errors as one line and the expanded size bounded:
    aliases (`*a`) share one object in memory, but anything that walks the result pays
    for every copy, so a few hundred bytes of nested aliases would become gigabytes."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SearchError(f"{where}: malformed YAML at {at}{problem}") from None
    except RecursionError:
        raise SearchError(f"{where}: YAML nested too deeply") from None
    size = expanded_size(doc, where)
    if size > MAX_YAML_SIZE:
        raise SearchError(f"{where}: YAML expands to {size:,} values and characters through its aliases "
                          f"(at most {MAX_YAML_SIZE:,}): write the values out instead of nesting aliases")
    return doc


def expanded_size(doc: Any, where: str) -> int:
    """Values + characters `doc` would have with every alias copied out, computed without
    copying (shared objects are sized once); a document that contains itself is an error."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(x: Any, depth: int = 0) -> int:
        if isinstance(x, (dict, list)):
            key = id(x)
            if key in sizes:
                return sizes[key]
            if key in open_ or depth > 200:
                raise SearchError(f"{where}: YAML refers to itself through an alias (or nests over 200 levels)")
            open_.add(key)
            items = [*x.keys(), *x.values()] if isinstance(x, dict) else x
            total = 1 + sum(size(v, depth + 1) for v in items)
            open_.discard(key)
            sizes[key] = total
            return total
        return 1 + (len(x) if isinstance(x, (str, bytes)) else 0)

    return size(doc)


def writable_file(path: Path, what: str) -> Path:
    """Check, before any work, that `path` can be written as a file (its folder exists and
    is writable; the path itself is not a folder and, if it exists, is writable)."""
    if path.is_dir():
        raise SearchError(f"cannot write {what} {path}: it is a directory; name a file inside it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise SearchError(f"cannot write {what} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SearchError(f"cannot write {what} {path}: permission denied; choose a writable place")
    return path


def writable_dir(path: Path, what: str) -> Path:
    """Check that `path` is (or can be created as) a writable folder."""
    if path.exists() and not path.is_dir():
        raise SearchError(f"cannot write {what} into {path}: it is a file, not a directory")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise SearchError(f"cannot write {what} into {path}: {existing} is not writable; choose a writable place")
    return path
