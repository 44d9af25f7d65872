from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from search.errors import SearchError

__all__ = ["DEVICES", "free_memory", "gib", "resolve_device"]

DEVICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda, then mps, then cpu; an explicit device must exist here."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if re.fullmatch(r"cuda(:\d+)?", name):
        if not torch.cuda.is_available():
            raise SearchError(f"device {name!r} asked for, but this machine has no CUDA GPU that torch "
                              f"can use: pass --device cpu (or auto)")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise SearchError(f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} "
                              f"CUDA device(s): pick cuda:0..cuda:{torch.cuda.device_count() - 1}")
        return torch.device(name)
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise SearchError("device 'mps' asked for, but Apple's MPS is not available here: pass --device cpu")
        return torch.device("mps")
    raise SearchError(f"unknown device {name!r}: expected {DEVICES}")


def free_memory(device: torch.device) -> int | None:
    """Bytes free for tensors on `device` (None where it cannot be told)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except OSError:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            return None
    try:  # a container's own limit (cgroup v2), when lower than the machine's
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            free = min(free, int(limit) - used) if free is not None else int(limit) - used
    except (OSError, ValueError):
        pass
    return free



def gib(n: float) -> str:
    """Bytes as people read them: 1.5 GiB, 300 MiB."""
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
