"""One fit loop, used by search trials and by final retraining alike. Knows nothing of Optuna.

Data is resident on the device; batches are taken by index; the loop does not sync with
the host inside an epoch (the loss is summed on the device and read once per epoch).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from search._signals import between_steps, stop_point
from search._torch import eager
from search.augment import Augment
from search.data import Split
from search.precision import FP32, Precision, channels_last
from search.precision import choose as choose_precision

__all__ = ["Diverged", "EpochResult", "FitResult", "OPTIMIZERS", "SCHEDULES", "Schedule", "Step", "TrainConfig", "evaluate",
           "fit", "probabilities", "warm_up"]


@dataclass(frozen=True)
class TrainConfig:
    """How to train: every training axis with its default, declared here once. `Params`
    (search/params.py) is a TrainConfig (and a ModelAxes): a new training axis is its field
    here, its entry in `search.params.AXES` (bounds, help) and its use in `fit`."""

    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 5
    optimizer: str = "adam"
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    iterations: int = 0  # > 0: an iteration budget instead of `epochs`
    augment: bool = False  # augment training batches (search/augment.py; its own RNG: seed + 1)
    rotation: float = 10.0
    blur_sigma: float = 1.0
    shift: float = 0.0
    scale: float = 0.0
    hflip: bool = False  # mirror half the images left-right (natural images; never for characters)
    cutout: float = 0.0  # erase a square of this fraction of the image side (0: off)
    schedule: str = "constant"  # learning-rate schedule over the whole run
    warmup_epochs: int = 0
    label_smoothing: float = 0.0

    def transform(self, seed: int, background: tuple[float, ...] | None = None) -> Augment | None:
        """The augmentation of a run seeded `seed` on data whose black pixel normalises to
        `background` (per channel; MNIST's by default), None without `augment`."""
        if not self.augment:
            return None
        generator = torch.Generator().manual_seed(seed + 1)
        return Augment(self, generator) if background is None else Augment(self, generator, background)


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's training images
    train_loss_sum: float  # sum of the per-step mean losses, the figure tutorials print
    val_loss: float
    val_accuracy: float
    seconds: float  # training plus evaluation time of this epoch
    train_seconds: float = 0.0  # training steps only (what a retrain without validation pays)


@dataclass(frozen=True)
class Step:
    """How far a fit has come, for a progress display (`fit(on_step=...)`, after every step)."""

    epoch: int  # the epoch in progress, 1-based
    epochs: int
    step: int  # steps done over the whole fit
    steps: int  # steps of the whole fit
    last: EpochResult | None  # the last finished epoch (None during the first)


@dataclass(frozen=True)
class FitResult:
    """What `fit` decided and measured: every epoch, and the numerics it trained with
    (evaluate the model with the same ones)."""

    history: list[EpochResult]
    precision: Precision


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def _common(cfg: TrainConfig) -> dict:
    # foreach: one multi-tensor kernel per update instead of one per parameter; PyTorch
    # turns it on by default only for CUDA tensors (measured 7 % faster per MLP epoch on CPU).
    return {"lr": cfg.lr, "weight_decay": cfg.weight_decay, "foreach": True}


OPTIMIZERS: dict[str, Callable[[Iterable[nn.Parameter], TrainConfig], torch.optim.Optimizer]] = {
    "sgd": lambda p, c: torch.optim.SGD(p, momentum=c.momentum, nesterov=c.nesterov and c.momentum > 0, **_common(c)),
    "adam": lambda p, c: torch.optim.Adam(p, **_common(c)),
    "adamw": lambda p, c: torch.optim.AdamW(p, **_common(c)),
    "rmsprop": lambda p, c: torch.optim.RMSprop(p, **_common(c)),
}


def _onecycle(opt: torch.optim.Optimizer, cfg: TrainConfig, steps: int, per_epoch: int):
    pct = min(cfg.warmup_epochs * per_epoch / steps, 0.9) if cfg.warmup_epochs else 0.3
    # cycle_momentum off: the user's momentum (or Adam's betas) stays as chosen
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=pct,
                                               cycle_momentum=False)


def _cosine(opt: torch.optim.Optimizer, cfg: TrainConfig, steps: int, per_epoch: int):
    warm = min(cfg.warmup_epochs * per_epoch, steps - 1)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(steps - warm, 1)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule, stepped once per training step: (optimizer, cfg, total
    steps, steps per epoch) -> scheduler, or None for a constant rate."""

    build: Callable[[torch.optim.Optimizer, TrainConfig, int, int], Any] | None
    warmup: bool = False  # it reads warmup_epochs


SCHEDULES: dict[str, Schedule] = {"constant": Schedule(None), "onecycle": Schedule(_onecycle, warmup=True),
                                  "cosine": Schedule(_cosine, warmup=True)}


def warm_up(cfg: TrainConfig) -> None:
    """Pay the process's one-off costs before any timed training: the first optimizer a
    process builds imports torch's optimizer machinery lazily (measured ~0.7 s here; torch._dynamo,
    1.65 s more, is kept out by search._torch.eager)."""
    p = nn.Parameter(torch.zeros(1))
    for name in OPTIMIZERS:
        opt = eager(lambda: OPTIMIZERS[name]([p], cfg))  # noqa: B023 (called at once)
        p.grad = torch.zeros(1)
        opt.step()


@between_steps
@torch.inference_mode()
def evaluate(model: nn.Module, data: Split, precision: Precision = FP32,
             batch_size: int = 4096) -> tuple[float, float, torch.Tensor]:
    """Mean loss, accuracy and the predicted labels over `data`, in large batches, with the
    precision `fit` chose for the model (`FitResult.precision`; fp32 for a model it did not train)."""
    loss = torch.zeros((), device=data.pixels.device)
    preds = []
    for i, out in _outputs(model, data, precision, batch_size):
        loss += F.cross_entropy(out, data.y[i:i + batch_size], reduction="sum")
        preds.append(out.argmax(1))
    pred = torch.cat(preds)
    n = max(len(data), 1)
    return loss.item() / n, (pred == data.y).sum().item() / n, pred


@between_steps
@torch.inference_mode()
def probabilities(model: nn.Module, data: Split, precision: Precision = FP32, batch_size: int = 4096) -> torch.Tensor:
    """The model's softmax over the classes for every image of `data` (N, classes), float32,
    computed as `evaluate` computes its predictions (what an ensemble averages)."""
    return torch.cat([out.softmax(1) for _, out in _outputs(model, data, precision, batch_size)])


def _outputs(model: nn.Module, data: Split, precision: Precision, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(first index, float32 logits) of each batch of `data`, the model in eval mode."""
    model.eval()
    for i in range(0, len(data), batch_size):
        stop_point()
        with precision.autocast(data.pixels.device):
            out = model(data.images(slice(i, i + batch_size))).float()
        yield i, out  # outside autocast: the caller's loss in float32


@between_steps  # a stop signal is raised between steps, not inside torch's context managers
def fit(
    model: nn.Module,
    train: Split,
    val: Split | None,
    cfg: TrainConfig,
    seed: int,
    on_epoch: Callable[[EpochResult], None] | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> FitResult:
    """Train `model` in place with batches (and augmentation) drawn from `seed`; call
    `on_epoch` after each epoch (it may raise to stop early) and `on_step` after each step.

    The augmentation (`cfg.augment`, or a given `transform`) is applied to training
    batches only, never to evaluation. With `cfg.iterations`, training stops after that
    many steps; the last epoch may be partial.
    """
    device = train.pixels.device
    transform = transform if transform is not None else cfg.transform(seed, train.norm.background)
    precision = choose_precision(model, train.images(slice(0, cfg.batch_size)), train.y[:cfg.batch_size])
    if precision.channels_last:
        channels_last(model)  # in place: the same parameters
    opt = eager(lambda: OPTIMIZERS[cfg.optimizer](model.parameters(), cfg))
    gen = torch.Generator().manual_seed(seed)
    # A trailing batch of one image would break batch norm; it is skipped.
    n = len(train) - (len(train) % cfg.batch_size == 1)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    epochs = math.ceil(cfg.iterations / steps_per_epoch) if cfg.iterations else cfg.epochs
    steps_left = total_steps = cfg.iterations or epochs * steps_per_epoch
    make_schedule = SCHEDULES[cfg.schedule].build
    schedule = make_schedule(opt, cfg, steps_left, steps_per_epoch) if make_schedule else None
    history: list[EpochResult] = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=gen).to(device)
        step_loss_sum = torch.zeros((), device=device)
        end = min(n, steps_left * cfg.batch_size)
        for i in range(0, end, cfg.batch_size):
            stop_point()
            idx = order[i:i + cfg.batch_size]
            x = train.images(idx) if transform is None else transform(train.images(idx))
            with precision.autocast(device):
                loss = F.cross_entropy(model(x).float(), train.y[idx], label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            step_loss_sum += loss.detach()  # one op per step; the per-image mean is derived below
            if on_step is not None:
                on_step(Step(epoch, epochs, total_steps - steps_left + i // cfg.batch_size + 1, total_steps,
                             history[-1] if history else None))
        steps = math.ceil(end / cfg.batch_size)
        steps_left -= steps
        summed, last_loss = torch.stack([step_loss_sum, loss.detach()]).tolist()  # the epoch's one host sync
        last = end - (steps - 1) * cfg.batch_size  # images in the last, possibly partial, batch
        # every batch but the last is full: weight the last batch's mean by its own size
        train_loss = (summed - last_loss) * cfg.batch_size / end + last_loss * last / end
        if not math.isfinite(train_loss):
            raise Diverged(f"training loss became {train_loss} in epoch {epoch}")
        trained = time.perf_counter() - t0
        val_loss, val_acc = (evaluate(model, val, precision)[:2] if val is not None else (math.nan, math.nan))
        result = EpochResult(epoch, train_loss, summed, val_loss, val_acc, time.perf_counter() - t0, trained)
        history.append(result)
        if on_epoch is not None:
            on_epoch(result)
    return FitResult(history, precision)
