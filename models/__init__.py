"""ModelConfig -> network. Knows nothing of Optuna or of training.

`build_model(cfg)` is the one entry point. `MODELS` maps each model name to its entry (its
class, its memory estimate, the model-specific axes it reads): a new built-in model is its
file plus one line here. `ACTIVATIONS` maps each activation name to its module.
"""

from __future__ import annotations

import torch
from torch import nn

from models import cnn, convnet, lenet, mlp, vgg
from models._config import ModelAxes, ModelConfig, ModelEntry, Shape
from models._layers import ACTIVATIONS
from models.cnn import CNN
from models.convnet import ConvNet
from models.lenet import LeNet5
from models.mlp import MLP
from models.vgg import VGG

MODELS: dict[str, ModelEntry] = {"mlp": mlp.ENTRY, "lenet5": lenet.ENTRY, "cnn": cnn.ENTRY, "convnet": convnet.ENTRY,
                               "vgg": vgg.ENTRY}

__all__ = ["ACTIVATIONS", "CNN", "MLP", "MODELS", "ConvNet", "LeNet5", "ModelAxes", "ModelConfig", "ModelEntry", "Shape", "VGG",
           "build_model", "count_params", "entry", "planned_params"]


def entry(name: str) -> ModelEntry:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(MODELS)}") from None


def build_model(cfg: ModelConfig) -> nn.Module:
    """A freshly initialised network (weights drawn from torch's global RNG)."""
    return entry(cfg.model).factory(cfg)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def planned_params(cfg: ModelConfig) -> int:
    """The parameter count of `build_model(cfg)`, without allocating it (built on the meta device)."""
    with torch.device("meta"):
        return count_params(build_model(cfg))
