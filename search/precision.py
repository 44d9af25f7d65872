"""Model + device -> how a training step runs fastest: channels_last memory and/or bf16
autocast for convolutional models, chosen by timing a few real steps, never by guess.

On CPU, bf16 is only tried where the processor has bf16 instructions (AVX512-BF16 or
AMX-BF16, read from /proc/cpuinfo); a candidate must beat fp32 by 10 % to be taken, and
the choice is cached per (model and its shapes, batch size, threads) for the process.
Measured on an AMD EPYC with AVX512-BF16, 2 cores, batch 128: the CNN runs 3.2x faster
with both, LeNet-5 1.3x with channels_last alone (bf16 alone made it slower). MLPs stay
fp32 (no gain measured). On CUDA: bf16 autocast with TF32, channels_last for convolutions.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from search._torch import eager

__all__ = ["FP32", "MARGIN", "PRECISIONS", "Precision", "TIMED_STEPS", "channels_last", "choose", "cpu_has_bf16", "forced", "is_conv"]

MARGIN = 0.9  # a faster candidate must take at most 90 % of fp32's time
TIMED_STEPS = 4


@dataclass(frozen=True)
class Precision:
    channels_last: bool = False
    bf16: bool = False

    def autocast(self, device: torch.device):
        if not self.bf16:
            return contextlib.nullcontext()
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # what remains in fp32 uses TF32 tensor cores
            torch.backends.cudnn.allow_tf32 = True
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def __str__(self) -> str:
        parts = [p for p, on in (("channels_last", self.channels_last), ("bf16", self.bf16)) if on]
        return "+".join(parts) or "fp32"

    @classmethod
    def parse(cls, text: str) -> Precision | None:
        """The inverse of str(): 'fp32', 'channels_last', 'bf16', 'channels_last+bf16'; None otherwise."""
        return next((p for p in PRECISIONS if str(p) == text), None)


FP32 = Precision()
PRECISIONS = (FP32, Precision(channels_last=True), Precision(bf16=True), Precision(channels_last=True, bf16=True))


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def is_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def channels_last(model: nn.Module) -> None:
    """Move the model's parameters to channels_last memory, in place (the same parameters)."""
    # torch's stubs leave memory_format out of Module.to's overloads; the call is documented
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


_CHOSEN: dict[tuple, Precision] = {}
_FORCED: list[Precision] = []


@contextlib.contextmanager
def forced(precision: Precision):
    """Train with `precision` instead of the measured choice (benchmarks and tests compare them)."""
    _FORCED.append(precision)
    try:
        yield
    finally:
        _FORCED.pop()


def choose(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Precision:
    """The fastest precision for training `model` on batches like `x` (timed on a copy: the
    model's weights and the random state are left as they were)."""
    device = x.device
    if _FORCED:
        return _FORCED[-1]
    if device.type == "cuda":
        return Precision(channels_last=is_conv(model), bf16=True)
    if device.type != "cpu" or not is_conv(model):
        return FP32
    key = (type(model).__name__, tuple(tuple(p.shape) for p in model.parameters()), len(x), torch.get_num_threads())
    if key not in _CHOSEN:
        candidates = [FP32, Precision(channels_last=True)]
        if cpu_has_bf16():
            candidates += [Precision(bf16=True), Precision(channels_last=True, bf16=True)]
        with torch.random.fork_rng():
            times = {c: _step_seconds(model, x, y, c) for c in candidates}
        best = min(times, key=lambda c: times[c])
        _CHOSEN[key] = best if times[best] <= MARGIN * times[FP32] else FP32
    return _CHOSEN[key]


def _step_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: Precision) -> float:
    m = copy.deepcopy(model).train()
    if precision.channels_last:
        channels_last(m)
    opt = eager(lambda: torch.optim.SGD(m.parameters(), lr=0.0))
    best = float("inf")
    for i in range(TIMED_STEPS + 1):  # the first step pays one-off costs (oneDNN kernels)
        t = time.perf_counter()
        with precision.autocast(x.device):
            loss = F.cross_entropy(m(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            best = min(best, time.perf_counter() - t)
    return best
