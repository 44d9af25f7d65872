"""Params + seed -> a network on the device, checked to fit in memory first. Shared by
search trials, `search train` and checkpoints, which is what makes an exported trial
reproduce its validation accuracy."""

from __future__ import annotations

import torch
from torch import nn

from models import Shape, build_model, count_params, entry, planned_params
from search.data import Split
from search.device import free_memory, gib
from search.factory import build_factory_model
from search.params import Params, is_factory
from search.trials import Failure, TrialFailed

__all__ = ["EVAL_BATCH", "build", "check_fits", "is_out_of_memory", "prepare", "subset"]

_OPTIMIZER_STATES = {"sgd": 1, "adam": 2, "adamw": 2, "rmsprop": 1}  # tensors kept per parameter
EVAL_BATCH = 4096


def build(params: Params, seed: int, device: torch.device, shape: Shape) -> nn.Module:
    """The network for `params` and data of `shape` (a built-in model, or the user's factory),
    its weights drawn from `seed`, on `device`."""
    torch.manual_seed(seed)  # weights and dropout masks follow from the seed
    if is_factory(params.model):
        return build_factory_model(params.model, shape, dict(params.model_args)).to(device)
    return build_model(params.model_config(shape)).to(device)


def prepare(params: Params, seed: int, device: torch.device, shape: Shape,
            n_params: int | None = None) -> tuple[nn.Module, int]:
    """The network, checked to fit in memory, and its parameter count (`n_params` when
    already counted). A built-in model is counted on the meta device and checked before
    anything is allocated; the user's factory can only be counted once built."""
    if is_factory(params.model):
        model = build(params, seed, device, shape)
        return model, check_fits(params, device, shape, count_params(model))
    n = check_fits(params, device, shape, n_params)
    return build(params, seed, device, shape), n


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
        raise TrialFailed(Failure.TOO_LARGE, f"the model has {n:,} parameters and needs about {gib(need)} to "
                                             f"train; {device} has {gib(free)} free")
    return n


def subset(split: Split, n: int | None) -> Split:
    """The first `n` examples, all for None (the training split is already shuffled once,
    with a fixed seed)."""
    return split if n is None or n >= len(split) else split.take(split.pixels[:n], split.y[:n])


def is_out_of_memory(e: BaseException) -> bool:
    """A device that ran out of memory: CUDA's OutOfMemoryError, or the CPU allocator's
    RuntimeError ("DefaultCPUAllocator: can't allocate memory")."""
    if isinstance(e, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower()
                                            or "not enough memory" in text)
