"""Building blocks shared by the networks: activations by name, convolution and dense blocks, a
features-then-classifier module, spatial sizes."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from models._config import ModelConfig

ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}: expected one of {', '.join(ACTIVATIONS)}") from None


def conv_block(c_in: int, c_out: int, kernel: int, cfg: ModelConfig, *, padding: int = 0,
               pool: str = "") -> list[nn.Module]:
    """Conv2d (no bias under batch norm: BN subtracts the mean anyway), optional BatchNorm2d,
    the activation, and a 2x2 max-pool: `pool="first"` before the activation (4x less
    activation work), `"last"` after it, `""` none."""
    block: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, padding=padding, bias=not cfg.batch_norm)]
    if cfg.batch_norm:
        block.append(nn.BatchNorm2d(c_out))
    act, pooled = [activation(cfg.activation)], [nn.MaxPool2d(2)]
    return block + {"first": pooled + act, "last": act + pooled, "": act}[pool]


def dense_block(n_in: int, n_out: int, cfg: ModelConfig) -> list[nn.Module]:
    """Linear, the activation, and dropout when the config asks for it."""
    return [nn.Linear(n_in, n_out), activation(cfg.activation), *([nn.Dropout(cfg.dropout)] if cfg.dropout > 0 else [])]


def dense_head(n_in: int, cfg: ModelConfig) -> nn.Sequential:
    """Flatten, one dense block of the config's first width, the linear layer to the classes:
    the head of the convnet and the vgg."""
    hidden = cfg.widths[0]
    return nn.Sequential(nn.Flatten(), *dense_block(n_in, hidden, cfg), nn.Linear(hidden, cfg.shape.classes))


class FeaturesThenClassifier(nn.Module):
    """A convolutional network as two parts: `features` (set by the subclass) and
    `classifier` on their output; the parameter names a checkpoint stores are theirs."""

    features: nn.Module
    classifier: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def conv_size(size: int, kernel: int, padding: int = 0, pool: bool = False) -> int:
    """A side's length after a stride-1 convolution (and a 2x2 max-pool)."""
    out = size + 2 * padding - kernel + 1
    return out // 2 if pool else out


def too_small(name: str, cfg: ModelConfig, side: Callable[[int], int]) -> ValueError:
    """One line for an input an architecture cannot shrink to: the smallest it takes."""
    s = cfg.shape
    smallest = next(n for n in range(1, 4096) if side(n) >= 1)
    return ValueError(f"{name} cannot take {s.height}x{s.width} images (it takes {smallest}x{smallest} and larger): "
                      "choose the mlp or cnn model, or larger images")
