"""ModelConfig -> network, for 28x28 grey images. Knows nothing of Optuna or of training.

`build_model(cfg)` is the one entry point; `MODELS` maps each model name to its class,
and `ACTIVATIONS` each activation name to its module.
"""

from __future__ import annotations

import torch
from torch import nn

from models._config import ModelConfig
from models._layers import ACTIVATIONS, activation
from models.cnn import CNN
from models.convnet import ConvNet
from models.lenet import LeNet5
from models.mlp import MLP

MODELS: dict[str, type[nn.Module]] = {"mlp": MLP, "lenet5": LeNet5, "cnn": CNN, "convnet": ConvNet}

__all__ = ["ACTIVATIONS", "MODELS", "MLP", "LeNet5", "CNN", "ConvNet", "ModelConfig", "activation", "build_model",
           "count_params", "planned_params"]


def build_model(cfg: ModelConfig) -> nn.Module:
    """A freshly initialised network (weights drawn from torch's global RNG)."""
    try:
        factory = MODELS[cfg.name]
    except KeyError:
        raise ValueError(f"unknown model {cfg.name!r}: expected one of {', '.join(MODELS)}") from None
    return factory(cfg)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def planned_params(cfg: ModelConfig) -> int:
    """The parameter count of `build_model(cfg)`, without allocating it (built on the meta device)."""
    with torch.device("meta"):
        return count_params(build_model(cfg))
