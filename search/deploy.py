"""A trained model -> an ONNX or TorchScript file that takes raw images and returns class
probabilities, checked against the PyTorch model on the validation images before it is kept.

The file needs neither this package nor its data: the dataset's normalisation is inside the
graph, and its metadata (`META_KEY`: class names, input shape and dtype, mean and std, the
config) says what to feed it. Input: (N, C, H, W) images of the dataset's shape, uint8
0..255 (ONNX by default, `image_input="float"` for float32 0..1) or either for TorchScript,
which scales by the tensor's dtype. Output: (N, classes) softmax probabilities.
"""

import contextlib
import copy
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from search.data import Dataset, Split
from search.errors import SearchError
from search.outputs import written_together

__all__ = ["FORMATS", "INPUTS", "META_KEY", "TOLERANCE", "Check", "Deployable", "format_of", "raw_images", "write_deployable"]

FORMATS = {"onnx": ".onnx", "torchscript": ".ts"}  # format -> the suffix a file of it gets
INPUTS = ("uint8", "float")
META_KEY = "mnist_search"  # ONNX metadata_props key / TorchScript extra file holding the JSON facts
# Largest difference allowed between the file's probabilities and PyTorch's on any validation
# image. Measured: ONNX Runtime 1e-7..2e-6 on the four models (fused kernels, other summation
# order); TorchScript 0. Predictions must agree on every image whose top two probabilities
# differ by more than twice this (a closer tie may flip by rounding alone).
TOLERANCE = 1e-4


class Deployable(nn.Module):
    """Raw images -> probabilities: scale (uint8 / 255), normalise, the network, softmax."""

    # Real annotations (no `from __future__ import annotations` in this module): torch.jit.script
    # reads them, and cannot resolve postponed ones when the class is scripted in another process.
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:
            x = images.to(torch.float32) / 255.0
        else:
            x = images.to(torch.float32)
        return torch.softmax(self.net((x - self.mean) / self.std), dim=1)


@dataclass(frozen=True)
class Check:
    """How the written file compared with the PyTorch model on the validation images."""

    path: Path
    format: str
    images: int
    max_diff: float  # largest |p_file - p_torch| over every image and class
    disagree: int  # predictions that differ where the top two are not tied within 2 x TOLERANCE


def format_of(path: Path) -> str | None:
    """'onnx' for model.onnx, 'torchscript' for model.ts; None for anything else (a checkpoint)."""
    suffix = path.suffix.lower()
    return next((fmt for fmt, s in FORMATS.items() if s == suffix), None)


def raw_images(split: Split) -> torch.Tensor:
    """A split's images as the uint8 0..255 a user holds (stored normalised floats undone)."""
    if not split.pixels.is_floating_point():
        return split.pixels.cpu()
    c = split.pixels.shape[1]
    mean = torch.tensor(split.norm.mean, dtype=torch.float32).view(1, -1, 1, 1).expand(1, c, 1, 1)
    std = torch.tensor(split.norm.std, dtype=torch.float32).view(1, -1, 1, 1).expand(1, c, 1, 1)
    return (split.pixels.cpu() * std + mean).mul(255.0).round().clamp(0, 255).to(torch.uint8)


def write_deployable(net: nn.Module, data: Dataset, config: dict[str, Any], path: Path, fmt: str,
                     image_input: str = "uint8") -> Check:
    """Write `net` (trained on `data`) as `fmt` to `path`, atomically, after checking the file
    gives the same predictions as PyTorch on every validation image (or the test images where
    the config trained without validation). One line, nothing written, when it cannot."""
    if fmt not in FORMATS:
        raise SearchError(f"{path}: unknown model format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if image_input not in INPUTS:
        raise SearchError(f"{path}: unknown image input {image_input!r}; expected one of {', '.join(INPUTS)}")
    model = Deployable(_cpu_copy(net), list(data.train.norm.mean), list(data.train.norm.std)).eval()
    split = data.val if len(data.val) else data.test
    raw = raw_images(split)
    images = raw if fmt == "torchscript" or image_input == "uint8" else raw.to(torch.float32) / 255.0
    c, h, w = data.train.shape
    meta = {"classes": list(data.class_names), "mean": list(data.train.norm.mean), "std": list(data.train.norm.std),
            "input": {"shape": ["N", c, h, w], "dtype": "uint8 or float32" if fmt == "torchscript" else
                      ("uint8" if image_input == "uint8" else "float32"),
                      "range": "uint8 0..255, float 0..1" if fmt == "torchscript" else
                      ("0..255" if image_input == "uint8" else "0..1")},
            "output": f"(N, {data.classes}) class probabilities (softmax), column i is classes[i]",
            "config": config}
    with torch.no_grad():
        expected = _batched(model, images)
    with written_together([path], "the model") as (tmp,):
        if fmt == "onnx":
            _write_onnx(model, images[:2], meta, tmp, path)
            got = _run_onnx(tmp, images)
        else:
            _write_torchscript(model, images[:2], meta, tmp, path)
            got = _run_torchscript(tmp, images)
        check = _compare(path, fmt, expected, got)
        if check.max_diff > TOLERANCE or check.disagree:
            raise SearchError(f"{path}: the {fmt} model differs from PyTorch on the {len(images):,} "
                              f"{'validation' if len(data.val) else 'test'} images (largest probability difference "
                              f"{check.max_diff:.2g}, {check.disagree} predictions differ); nothing written: "
                              f"report it with the config")
    return check


def _cpu_copy(net: nn.Module) -> nn.Module:
    """The network in float32 on the CPU, in eval mode, without touching the caller's."""
    return copy.deepcopy(net).cpu().float().eval()


def _batched(model: Any, images: torch.Tensor, batch: int = 1000) -> np.ndarray:
    return np.concatenate([model(images[i:i + batch]).detach().numpy() for i in range(0, len(images), batch)])


def _compare(path: Path, fmt: str, expected: np.ndarray, got: np.ndarray) -> Check:
    diff = float(np.abs(expected - got).max()) if len(expected) else 0.0
    top2 = np.sort(expected, axis=1)[:, -2:] if expected.shape[1] > 1 else np.zeros((len(expected), 2))
    clear = (top2[:, 1] - top2[:, 0]) > 2 * TOLERANCE
    disagree = int(((expected.argmax(1) != got.argmax(1)) & clear).sum())
    return Check(path, fmt, len(expected), diff, disagree)


@contextlib.contextmanager
def _quiet():
    """The exporters' chatter (torchvision ops skipped, deprecation of torch.jit) off our output."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _write_onnx(model: Deployable, example: torch.Tensor, meta: dict[str, Any], tmp: Path, shown: Path) -> None:
    try:
        import onnx
    except ImportError:
        raise SearchError("writing ONNX needs the onnx packages: pip install 'mnist-search[onnx]'") from None
    try:
        with _quiet():
            torch.onnx.export(model, (example,), str(tmp), input_names=["images"], output_names=["probabilities"],
                              dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, external_data=False)
    except Exception as e:  # an op the exporter cannot translate, in the user's own network most likely
        raise SearchError(f"{shown}: cannot export this network to ONNX ({type(e).__name__}: "
                          f"{str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}); try --format torchscript") from None
    graph = onnx.load(str(tmp))
    del graph.metadata_props[:]
    entry = graph.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    graph.doc_string = "mnist-search: raw images -> class probabilities; metadata mnist_search has the facts"
    onnx.save(graph, str(tmp))


def _run_onnx(path: Path, images: torch.Tensor) -> np.ndarray:
    try:
        import onnxruntime
    except ImportError:
        raise SearchError("checking an ONNX model needs onnxruntime: pip install 'mnist-search[onnx]'") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = images.numpy()
    return np.concatenate([session.run(None, {"images": x[i:i + 1000]})[0] for i in range(0, len(x), 1000)])


def _write_torchscript(model: Deployable, example: torch.Tensor, meta: dict[str, Any], tmp: Path, shown: Path) -> None:
    # The network traced on normalised floats (the user's own code need not be scriptable),
    # the wrapper scripted so that its dtype branch survives. torch 2.13 deprecates
    # torch.jit but still writes and loads these files.
    x = ((example.to(torch.float32) / (255.0 if example.dtype == torch.uint8 else 1.0)) - model.mean) / model.std
    try:
        with _quiet(), torch.no_grad():
            model.net = torch.jit.trace(model.net, (x,))
            scripted = torch.jit.script(model)
            torch.jit.save(scripted, str(tmp), _extra_files={f"{META_KEY}.json": json.dumps(meta)})
    except Exception as e:
        raise SearchError(f"{shown}: cannot write this network as TorchScript ({type(e).__name__}: "
                          f"{str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}); try --format onnx") from None


def _run_torchscript(path: Path, images: torch.Tensor) -> np.ndarray:
    with _quiet():
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return _batched(loaded, images)
