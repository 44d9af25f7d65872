"""One config object per network, passed whole to the model's constructor (as nanoGPT's GPTConfig),
and one registry entry per model: its class, its memory estimate and the axes it reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn


@dataclass(frozen=True)
class Shape:
    """What the data fixes about a network: its input (channels, height, width) and its classes."""

    channels: int = 1
    height: int = 28
    width: int = 28
    classes: int = 10

    @property
    def pixels(self) -> int:
        return self.channels * self.height * self.width


@dataclass(frozen=True)
class ModelConfig:
    """What a network is made of, with no defaults of its own: `Params.model_config(shape)`
    fills it field by field (the defaults live in `search.params.Params`). `widths` is the
    MLP's hidden layers (784-512-256-10: widths=(512, 256)) or the convnet's dense layer
    (widths[0]); `dropouts` is per MLP layer, () meaning `dropout` for every layer."""

    model: str
    widths: tuple[int, ...]
    channels: tuple[int, ...]
    dropouts: tuple[float, ...]
    dropout: float
    activation: str
    batch_norm: bool
    shape: Shape

    def layer_dropouts(self) -> tuple[float, ...]:
        return self.dropouts if self.dropouts else (self.dropout,) * len(self.widths)


@dataclass(frozen=True)
class ModelEntry:
    """A built-in model: its class (built from a ModelConfig), the floats a training step
    keeps per image beyond the input (forward activations, their gradients, batch-norm and
    activation copies; for the memory check before training), and the model-specific axes
    it reads (the axis registry makes those axes apply to this model only)."""

    factory: Callable[[ModelConfig], nn.Module]
    floats_per_image: Callable[[ModelConfig], int]
    reads: tuple[str, ...] = ()
