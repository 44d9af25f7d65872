"""Network definitions for 28x28 grey images. Knows nothing of Optuna or of training.

`build_model(name, ...)` is the one entry point; `MODELS` names what it can build.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from models._layers import ACTIVATIONS, activation
from models.cnn import CNN
from models.lenet import LeNet5
from models.mlp import MLP

MODELS = ("mlp", "lenet5", "cnn")

__all__ = ["ACTIVATIONS", "MODELS", "MLP", "LeNet5", "CNN", "activation", "build_model", "count_params"]


def build_model(
    name: str,
    *,
    hidden_size: int = 128,
    n_layers: int = 1,
    widths: Sequence[int] | None = None,
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
    num_classes: int = 10,
) -> nn.Module:
    """Return a freshly initialised network; `hidden_size`/`n_layers`/`widths` only shape the MLP."""
    if name == "mlp":
        return MLP(
            hidden_size=hidden_size,
            n_layers=n_layers,
            widths=widths,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
            num_classes=num_classes,
        )
    if name == "lenet5":
        return LeNet5(activation=activation, dropout=dropout, batch_norm=batch_norm, num_classes=num_classes)
    if name == "cnn":
        return CNN(activation=activation, dropout=dropout, batch_norm=batch_norm, num_classes=num_classes)
    raise ValueError(f"unknown model {name!r}: expected one of {', '.join(MODELS)}")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
