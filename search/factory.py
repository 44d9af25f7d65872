"""`model: module:callable` -> the user's own network: imported from beside the study file (or
the Python path), called as `build(input_shape, num_classes, **model_args)`, checked.

Naming code in a study file runs that code, as Hydra's `_target_` does: `search run` says
so in its header. A module that cannot be imported, or a name it lacks, ends the run in one
line before any trial; a factory that raises, returns something that is not an
`nn.Module`, or builds a model whose output is not (N, num_classes) fails its trial with
`fail_reason: model: ...`, and the study goes on.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from models import Shape
from search.errors import SearchError
from search.trials import Failure, TrialFailed

__all__ = ["build_factory_model", "load_factory", "use_code_dir"]


_CODE_DIRS: list[Path] = []  # the folders use_code_dir put first on the path, latest first


def use_code_dir(directory: str | Path | None) -> None:
    """Let factories be imported from `directory` (a study file's folder), ahead of the path."""
    if directory is None:
        return
    path = Path(directory).resolve()
    if str(path) in sys.path:
        sys.path.remove(str(path))
    sys.path.insert(0, str(path))
    _CODE_DIRS[:] = [path, *(d for d in _CODE_DIRS if d != path)]


def _forget_stale(module_name: str) -> None:
    """A module imported from another study's folder earlier in this process (the tests run
    many studies in one) is imported again from the current one."""
    top = module_name.split(".")[0]
    cached = sys.modules.get(top)
    file = getattr(cached, "__file__", None)
    if not _CODE_DIRS or file is None:
        return
    here = _CODE_DIRS[0]
    if not ((here / f"{top}.py").exists() or (here / top).is_dir()):
        return
    if Path(file).resolve().is_relative_to(here):
        return
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]


def load_factory(ref: str, where: str = "") -> Callable[..., Any]:
    """The callable `ref` names; one line when its module cannot be imported or lacks it."""
    module_name, _, attr = ref.partition(":")
    at = f"{where}: " if where else ""
    _forget_stale(module_name)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            raise SearchError(f"{at}model: {ref}: no module {module_name!r} beside the study file or on the Python "
                              "path; put it there (or fix the name)") from None
        raise SearchError(f"{at}model: {ref}: importing {module_name} failed: {e}") from None
    except Exception as e:  # the user's module raised while importing
        raise SearchError(f"{at}model: {ref}: importing {module_name} raised {type(e).__name__}: "
                          f"{str(e).splitlines()[0][:160] if str(e) else ''}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise SearchError(f"{at}model: {ref}: {module_name} has no callable {attr!r}")
    return factory


def build_factory_model(ref: str, shape: Shape, args: dict[str, Any]) -> nn.Module:
    """The user's network for data of `shape`, its weights drawn from torch's global RNG
    (seeded by the caller); TrialFailed(MODEL) when the factory or its model misbehaves."""
    factory = load_factory(ref)
    args = {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()}  # lists, as the file writes them
    try:
        model = factory((shape.channels, shape.height, shape.width), shape.classes, **args)
    except Exception as e:
        raise TrialFailed(Failure.MODEL, f"{ref}{_call(args)} raised {type(e).__name__}: {_first(e)}") from None
    if not isinstance(model, nn.Module):
        raise TrialFailed(Failure.MODEL, f"{ref}{_call(args)} returned {type(model).__name__}, not a torch nn.Module")
    try:
        out = _probe(model, shape)
    except Exception as e:
        raise TrialFailed(Failure.MODEL, f"{ref}: its model fails on 2 images of {shape.channels}x{shape.height}x"
                                         f"{shape.width}: {type(e).__name__}: {_first(e)}") from None
    if tuple(out.shape) != (2, shape.classes):
        raise TrialFailed(Failure.MODEL, f"{ref}: its model maps 2 images to shape {tuple(out.shape)}; expected "
                                         f"(2, {shape.classes}): one logit per class")
    return model


@torch.no_grad()
def _probe(model: nn.Module, shape: Shape) -> torch.Tensor:
    """Two zero images through the model in eval mode (no batch-norm statistics move, no
    random numbers drawn), on the CPU where it was built."""
    was_training = model.training
    model.eval()
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        return model(torch.zeros(2, shape.channels, shape.height, shape.width, device=device))
    finally:
        model.train(was_training)


def _call(args: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")"


def _first(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else type(e).__name__
