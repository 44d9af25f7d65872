"""An optimizer factory -> the same optimizer, stepped and cleared without importing torch._dynamo.

torch.optim imports torch._dynamo (with sympy, torch.fx and inductor's config) the first
time an optimizer adds a parameter group, clears its gradients or steps: 1.65 s of a
12 s `search train --config configs/fast-99.yaml` process on an idle EPYC core pair
(2026-12-03), spent only so that torch.compile could trace around those methods. In
eager mode the wrappers that import it do nothing else: `_disable_dynamo` calls the
method, `_use_grad_for_differentiable` sets grad mode to the optimizer's `differentiable`
flag around it. `eager` builds the optimizer with the first one's cache filled with the
method itself (and emptied again) and gives the instance a `step` and a `zero_grad`
that call torch's own method bodies that way, so every update is torch's, to the bit
(tests/test_fit.py checks weights against torch.optim's own path). Where torch._dynamo is
already imported (torch.compile in this process) or torch's wrappers are not the ones
read here, the optimizer is built and used as torch made it. The one module that touches
torch's private parts.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import types
from typing import Any, Callable, Iterator

import torch
from torch.optim import Optimizer

__all__ = ["eager"]

_CACHE = "__dynamo_disable"  # torch/_compile.py: where _disable_dynamo keeps its disabled function


def _body(method: Any) -> Callable[..., Any] | None:
    """The function under torch's wrappers, if it is a plain one."""
    body = inspect.unwrap(method)
    return body if isinstance(body, types.FunctionType) and body is not method else None


def eager(build: Callable[[], Optimizer]) -> Optimizer:
    """`build()`, its `add_param_group`, `zero_grad` and `step` run without importing torch._dynamo."""
    add, clear = _body(Optimizer.add_param_group), _body(Optimizer.zero_grad)
    if "torch._dynamo" in sys.modules or add is None or clear is None:
        return build()
    with _cached(add):
        opt = build()
    step = _body(type(opt).step)
    if step is None:
        return opt

    def eager_step(self: Optimizer, closure: Callable[[], float] | None = None) -> Any:
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            return step(self, closure)

    def eager_zero_grad(self: Optimizer, set_to_none: bool = True) -> None:
        clear(self, set_to_none)

    # bound methods on the instance: LRScheduler wraps `opt.step` through its __func__
    opt.step = types.MethodType(eager_step, opt)  # type: ignore[method-assign]
    opt.zero_grad = types.MethodType(eager_zero_grad, opt)  # type: ignore[method-assign]
    return opt


@contextlib.contextmanager
def _cached(body: Callable[..., Any]) -> Iterator[None]:
    """_disable_dynamo's wrapper calls `body` itself while this lasts, then imports again."""
    setattr(body, _CACHE, body)
    try:
        yield
    finally:
        if getattr(body, _CACHE, None) is body:
            delattr(body, _CACHE)
