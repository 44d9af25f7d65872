"""One config object per network, passed whole to the model's constructor (as nanoGPT's GPTConfig),
and one registry entry per model: its class, its memory estimate and the axes it reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

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
class ModelAxes:
    """The model axes a network reads as they are, each declared here once with its default
    (`search.params.Params` is a ModelAxes; the axis registry there adds bounds and help)."""

    model: str = "mlp"
    channels: tuple[int, ...] = (24, 32)  # convnet: channels of its two convolutions
    dropouts: tuple[float, ...] = ()  # MLP dropout per hidden layer; () means `dropout` for every layer
    dropout: float = 0.0
    activation: str = "relu"
    batch_norm: bool = False
    model_args: tuple[tuple[str, Any], ...] = ()  # a model factory's own arguments (model: module:callable)


@dataclass(frozen=True)
class ModelConfig(ModelAxes):
    """What a network is made of: its axes, plus what is resolved for it. `widths` is the
    MLP's hidden layers (784-512-256-10: widths=(512, 256)) or the convnet's dense layer
    (widths[0]); `shape` (input and classes) comes from the data."""

    widths: tuple[int, ...] = field(kw_only=True)
    shape: Shape = field(kw_only=True)

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
