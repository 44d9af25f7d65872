"""Config -> a model retrained from scratch and tested once; trained weights to and from files."""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models import Shape
from search import records
from search._files import read_bytes
from search.config import TrainJob, config_of
from search.data import Dataset, load_dataset
from search.deploy import Check, format_of, write_deployable
from search.device import resolve_device
from search.errors import Notice, SearchError
from search.experiment import build, prepare, subset
from search.factory import load_factory, use_code_dir
from search.fit import evaluate, fit, warm_up
from search.outputs import written_together
from search.params import Params, is_factory
from search.precision import Precision, cpu_has_bf16, forced
from search.trials import Failure, TrialFailed

MAX_CHECKPOINT = 8 << 30

__all__ = ["MAX_CHECKPOINT", "NoBf16", "TrainResult", "load_weights", "recorded_precision", "retrain", "save_weights", "weights_of"]


@dataclass
class TrainResult:
    model: nn.Module
    data: Dataset
    summary: dict[str, Any]
    test_pred: torch.Tensor
    check: Check | None = None  # how a saved ONNX or TorchScript file compared with PyTorch (search.train)


def retrain(job: TrainJob, *, device: str = "auto", data_dir: str | None = None, full: bool = False,
            on_epoch=None, on_step=None) -> TrainResult:
    """Train the config from scratch and evaluate it once on the test set.

    Default: the same training split as the search (so validation accuracy reproduces the
    trial's); `full=True` trains on all 60,000 training images and has no validation.
    """
    dev = resolve_device(device)
    data = load_dataset(job.dataset, data_dir, dev)
    try:
        if is_factory(job.params.model):  # the user's network: one line if it cannot be imported
            use_code_dir(job.code)
            load_factory(job.params.model, "config")
        model, _ = prepare(job.params, job.seed, dev, data.shape)
    except TrialFailed as e:
        fix = "" if e.failure is Failure.MODEL else "; choose a smaller model"
        raise SearchError(f"cannot train this config: {e}{fix}") from None
    if full:
        train = data.train.take(torch.cat([data.train.pixels, data.val.pixels]), torch.cat([data.train.y, data.val.y]))
        val = None
    else:
        train, val = subset(data.train, job.train_size), data.val
    warm_up(job.params)  # outside train_seconds
    same = recorded_precision(job, dev)
    start = time.perf_counter()
    with forced(same) if same is not None else contextlib.nullcontext():
        fitted = fit(model, train, val, job.params, job.seed, on_epoch, on_step=on_step)
    seconds = time.perf_counter() - start
    test_loss, test_acc, pred = evaluate(model, data.test, fitted.precision)
    last = fitted.history[-1]
    summary = {
        "dataset": str(job.dataset),
        "model": job.params.model,
        "train_images": len(train),
        "epochs": len(fitted.history),
        "train_loss": last.train_loss,
        "val_accuracy": None if full else last.val_accuracy,
        "val_loss": None if full else last.val_loss,
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "train_seconds": seconds,
        "device": str(dev),
        "precision": str(fitted.precision),
        "seed": job.seed,
        "source": job.source,
    }
    return TrainResult(model, data, summary, pred)


class NoBf16(Notice):
    """A config records bf16 numerics (chosen by timing on a CPU with bf16 instructions) and
    this CPU has none: it trains without bf16 instead, since emulated bf16 ran fast-99 10x
    slower (85.8 s of training against 8.5 s with channels_last alone; AMD EPYC without
    AVX512, 2 cores). The figures can then differ from the trial's in the last digits."""


def recorded_precision(job: TrainJob, dev: torch.device) -> Precision | None:
    """The numerics the trial trained and evaluated with, where they apply: on the CPU, the
    kind of device its timing chose them on (None elsewhere, or when the config has none);
    without bf16 where this CPU has no bf16 instructions (a NoBf16 warning says so)."""
    recorded = Precision.parse(job.precision) if job.precision and dev.type == "cpu" else None
    if recorded is None or not recorded.bf16 or cpu_has_bf16():
        return recorded
    instead = replace(recorded, bf16=False)
    warnings.warn(NoBf16(f"the config trained with {recorded} numerics, but this CPU has no bf16 instructions (they "
                         f"would run emulated, several times slower): {instead} instead, so the figures can differ "
                         "from the trial's in the last digits"), stacklevel=2)
    return instead


def save_weights(result: TrainResult, job: TrainJob, path: Path, image_input: str = "uint8") -> Check | None:
    """The retrained model as a checkpoint file, written atomically (`search train --save`);
    as an ONNX or TorchScript model for a path ending .onnx or .ts, checked on the
    validation images (or the test images after --full), how it compared returned."""
    fmt = format_of(path)
    if fmt is not None:
        return write_deployable(result.model, result.data, config_of(job), path, fmt, image_input)
    blob = records.checkpoint(result.model.state_dict(), job.params.active(), job.dataset.stored(), job.seed,
                              result.data.facts(), job.code, summary={k: v for k, v in result.summary.items() if k != "source"},
                              config=config_of(job))
    with written_together([path], "the weights") as (tmp,), open(tmp, "wb") as f:  # never a half-written checkpoint
        torch.save(blob, f)
    return None


def load_weights(path: Path, device: str = "cpu", shape: Shape | None = None,
                 code_dir: str | Path | None = None) -> nn.Module:
    """A model saved by `search train --save` (or a study's checkpoint), loaded with
    weights_only=True and built for the data it trained on (or `shape`); the user's own
    network is imported from the folder it came from then (or `code_dir`)."""
    return weights_of(read_bytes(path, "checkpoint", MAX_CHECKPOINT), str(path), device, shape, code_dir)


def weights_of(raw: bytes, where: str, device: str = "cpu", shape: Shape | None = None,
               code_dir: str | Path | None = None) -> nn.Module:
    """A checkpoint's bytes (a file's, or a study's artifact) -> its model, as `load_weights`;
    `where` names it in errors."""
    what = "checkpoint written by `search train --save`"
    try:
        blob = torch.load(io.BytesIO(raw), map_location=device, weights_only=True)
    except Exception as e:
        raise SearchError(f"{where}: not a {what} ({type(e).__name__})") from None
    parts = records.checkpoint_parts(blob)
    if parts is None:
        raise SearchError(f"{where}: not a {what} (no state_dict and params)")
    params = Params.from_dict(parts.params, where)
    if is_factory(params.model):  # one line if its module cannot be imported
        use_code_dir(code_dir or parts.code)
        load_factory(params.model, where)
    try:
        model = build(params, 0, torch.device(device), shape or parts.shape)
    except TrialFailed as e:
        raise SearchError(f"{where}: {e}") from None
    try:
        model.load_state_dict(parts.weights)
    except RuntimeError as e:
        raise SearchError(f"{where}: the weights do not fit the model its params describe "
                          f"({str(e).splitlines()[0][:120]})") from None
    return model
