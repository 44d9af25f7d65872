from __future__ import annotations

import re

import torch

from search.errors import SearchError

__all__ = ["DEVICES", "resolve_device"]

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
