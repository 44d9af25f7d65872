"""Params + seed -> a network on the device, checked to fit in memory first. Shared by
search trials, `search train` and checkpoints, which is what makes an exported trial
reproduce its validation accuracy."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from models import Shape, build_model, entry, planned_params
from search.data import Split
from search.factory import build_factory_model
from search.params import Params, is_factory
from search.trials import Failure, TrialFailed

__all__ = ["EVAL_BATCH", "build", "check_fits", "free_memory", "is_out_of_memory", "subset"]

_OPTIMIZER_STATES = {"sgd": 1, "adam": 2, "adamw": 2, "rmsprop": 1}  # tensors kept per parameter
EVAL_BATCH = 4096


def build(params: Params, seed: int, device: torch.device, shape: Shape) -> nn.Module:
    """The network for `params` and data of `shape` (a built-in model, or the user's factory),
    its weights drawn from `seed`, on `device`."""
    torch.manual_seed(seed)  # weights and dropout masks follow from the seed
    if is_factory(params.model):
        return build_factory_model(params.model, shape, dict(params.model_args)).to(device)
    return build_model(params.model_config(shape)).to(device)


def check_fits(params: Params, device: torch.device, shape: Shape, n_params: int | None = None) -> int:
    """The model's parameter count (`n_params` when already counted); raises
    TrialFailed(TOO_LARGE) when training it would need more memory than `device` has free,
    before anything is allocated."""
    cfg = params.model_config(shape)
    n = planned_params(cfg) if n_params is None else n_params
    # a factory's activations are unknown before it trains: its input is the floor
    per_image = 4 * shape.pixels if is_factory(cfg.model) else entry(cfg.model).floats_per_image(cfg)
    need = 4 * (n * (2 + _OPTIMIZER_STATES.get(params.optimizer, 2))
                + per_image * params.batch_size + per_image // 2 * EVAL_BATCH)
    free = free_memory(device)
    if free is not None and need > 0.9 * free:
        raise TrialFailed(Failure.TOO_LARGE, f"the model has {n:,} parameters and needs about {_gb(need)} to "
                                             f"train; {device} has {_gb(free)} free")
    return n


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


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def subset(split: Split, n: int) -> Split:
    """The first `n` examples (the training split is already shuffled once, with a fixed seed)."""
    return split if n >= len(split) else split.take(split.x[:n], split.y[:n])


def is_out_of_memory(e: BaseException) -> bool:
    """A device that ran out of memory: CUDA's OutOfMemoryError, or the CPU allocator's
    RuntimeError ("DefaultCPUAllocator: can't allocate memory")."""
    if isinstance(e, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower()
                                            or "not enough memory" in text)
