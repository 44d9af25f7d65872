"""An output path -> checked against what the service stores; files written whole or not at all.

An output (`export --out` and the checkpoint beside it, `train --save`, `report --out`) is
refused in one line, before any work, when it is (or resolves through links to) the
storage's file, its SQLite sidecars, the journal's lock, the study lock, or lies inside the
artifact store; and when the file there is any SQLite database or Optuna journal, whoever's
it is. Files are written under temporary names in their own folder and renamed into place
once every one of them is complete, so a config and its checkpoint land as a pair or not
at all, and a report is never half there. A full disk is one line naming the folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Iterator

from search._files import writable_dir, writable_file
from search._lock import LOCK_SUFFIX
from search.errors import DiskFull, SearchError
from search.storage import StorageURL, mask_url

__all__ = ["SQLITE_SIDECARS", "check_output", "check_output_dir", "disk_error", "stored_kind", "written_together"]

SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_JOURNAL_START = b'{"op_code":'  # every line of an Optuna journal file


def _protected(url: str | None, artifacts: Path | None) -> list[tuple[Path, str]]:
    """(path, what it is) for everything the storage at `url` keeps on this machine."""
    out: list[tuple[Path, str]] = []
    parsed = StorageURL.parse(url) if url else None
    if parsed is not None and parsed.path is not None:
        p = parsed.path
        kind = "the journal file" if parsed.kind == "journal" else "the SQLite database"
        out.append((p, f"{kind} of {mask_url(url or '')}"))
        sidecars = (".lock",) if parsed.kind == "journal" else SQLITE_SIDECARS
        out += [(p.with_name(p.name + s), f"a file the storage {mask_url(url or '')} keeps") for s in
                (*sidecars, LOCK_SUFFIX)]
    if artifacts is not None:
        out.append((artifacts, "the artifact store of the study (its checkpoints)"))
    return out


def stored_kind(path: Path) -> str | None:
    """'an SQLite database' or 'an Optuna journal' when the file at `path` is one (else None)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError:
        return None
    if head == _SQLITE_MAGIC:
        return "an SQLite database"
    if head.startswith(_JOURNAL_START):
        return "an Optuna journal"
    return None


def _refuse(path: Path, url: str | None, artifacts: Path | None, what: str, folder: bool) -> None:
    real = path.resolve()
    for p, desc in _protected(url, artifacts):
        rp = p.resolve()
        inside = rp.is_dir() or p == artifacts
        if real == rp or (inside and real.is_relative_to(rp)):
            where = "is" if real == rp else "lies inside"
            raise SearchError(f"cannot write {what} {'into ' if folder else ''}{path}: it {where} {desc}; "
                              "choose another path")
    kind = None if folder else stored_kind(real)
    if kind:
        raise SearchError(f"cannot write {what} {path}: the file there is {kind}, which may hold a study; "
                          "choose another path (or move that file first)")


def check_output(path: Path, url: str | None, artifacts: Path | None, what: str) -> Path:
    """`path` can be written as a file and overwrites nothing the service stores."""
    writable_file(path, what)
    _refuse(path, url, artifacts, what, folder=False)
    return path


def check_output_dir(path: Path, url: str | None, artifacts: Path | None, what: str) -> Path:
    """`path` can be a folder of outputs that is no storage file and not inside the artifact store."""
    writable_dir(path, what)
    _refuse(path, url, artifacts, what, folder=True)
    return path


def disk_error(e: OSError | RuntimeError, where: Path, what: str) -> SearchError:
    """A failed write as one line: a full disk names its folder and the space free. torch.save
    reports a failed write as a RuntimeError ("unexpected pos ..."), not an OSError."""
    folder = where if where.is_dir() else where.parent
    if isinstance(e, RuntimeError):
        e = OSError(errno.ENOSPC if _full(folder) else errno.EIO, str(e).splitlines()[0][:120])
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        free = shutil.disk_usage(folder).free if folder.exists() else 0
        return DiskFull(f"cannot write {what}: no space left in {folder} ({free:,} bytes free); free some space "
                        "and run the command again (nothing was replaced)")
    return SearchError(f"cannot write {what} {where}: {e.strerror or e} (nothing was replaced)")


@contextlib.contextmanager
def written_together(paths: list[Path], what: str) -> Iterator[list[Path]]:
    """Temporary paths, one beside each of `paths`, to write into; once the block ends every
    file written is renamed into place, and on any error (a full disk, Ctrl-C) each is deleted
    and nothing is replaced."""
    temps = [p.with_name(f".{p.name}.{os.getpid()}.part") for p in paths]
    try:
        yield temps
        for tmp, path in zip(temps, paths, strict=True):
            if tmp.exists():
                tmp.replace(path)
    except (OSError, RuntimeError) as e:
        raise disk_error(e, paths[0], what) from None
    finally:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False
