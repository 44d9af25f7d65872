"""One config object per network, passed whole to the model's constructor (as nanoGPT's GPTConfig)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    """What a network is made of. `widths` and `dropouts` shape the MLP only: one entry per
    hidden layer (784-512-256-10: widths=(512, 256)); the convnet's dense layer is widths[0];
    LeNet-5, the CNN and the convnet use `dropout`."""

    name: str = "mlp"
    widths: tuple[int, ...] = (128,)  # convnet: its dense layer's width
    channels: tuple[int, int] = (24, 32)  # convnet: its two convolutions' channels
    dropouts: tuple[float, ...] = ()  # per hidden layer; () means `dropout` for every layer
    dropout: float = 0.0
    activation: str = "relu"
    batch_norm: bool = False
    num_classes: int = 10

    def layer_dropouts(self) -> tuple[float, ...]:
        return self.dropouts if self.dropouts else (self.dropout,) * len(self.widths)
