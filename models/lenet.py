from __future__ import annotations

import torch
from torch import nn

from models._config import ModelConfig
from models._layers import activation as make_activation


class LeNet5(nn.Module):
    """LeCun et al. (1998) for 28x28 input: conv5(6, pad 2) - pool - conv5(16) - pool -
    120 - 84 - classes, with max-pooling and a chosen activation as is usual today."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        activation, dropout, batch_norm = cfg.activation, cfg.dropout, cfg.batch_norm

        def conv(c_in: int, c_out: int, padding: int) -> list[nn.Module]:
            block: list[nn.Module] = [nn.Conv2d(c_in, c_out, 5, padding=padding, bias=not batch_norm)]
            if batch_norm:
                block.append(nn.BatchNorm2d(c_out))
            return [*block, make_activation(activation), nn.MaxPool2d(2)]

        self.features = nn.Sequential(*conv(1, 6, 2), *conv(6, 16, 0))
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(16 * 5 * 5, 120), make_activation(activation)]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head += [nn.Linear(120, 84), make_activation(activation)]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(84, cfg.num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
