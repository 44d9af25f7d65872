"""One config object per network, passed whole to the model's constructor (as nanoGPT's GPTConfig)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    """What a network is made of. `widths` and `dropouts` shape the MLP only: one entry per
    hidden layer (784-512-256-10: widths=(512, 256)); LeNet-5 and the CNN use `dropout`."""

    name: str = "mlp"
    widths: tuple[int, ...] = (128,)
    dropouts: tuple[float, ...] = ()  # per hidden layer; () means `dropout` for every layer
    dropout: float = 0.0
    activation: str = "relu"
    batch_norm: bool = False
    num_classes: int = 10

    def layer_dropouts(self) -> tuple[float, ...]:
        return self.dropouts if self.dropouts else (self.dropout,) * len(self.widths)
