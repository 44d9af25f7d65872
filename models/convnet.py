from __future__ import annotations

import torch
from torch import nn

from models._config import ModelConfig
from models._layers import activation as make_activation


class ConvNet(nn.Module):
    """Two convolutions and a dense layer, widths chosen by the study: conv5x5(c1) - pool -
    conv3x3(c2) - pool - dense(hidden) - classes, the layout of the fastest known MNIST
    recipes (tuomaso/train_mnist_fast: c1=24, c2=32, hidden 256). Its wide early layers map
    to large matrix products, which CPUs run far closer to peak than LeNet-5's 6 and 16
    channels."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c1, c2 = cfg.channels
        activation, batch_norm = cfg.activation, cfg.batch_norm

        def conv(c_in: int, c_out: int, k: int) -> list[nn.Module]:
            block: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, bias=not batch_norm)]
            if batch_norm:
                block.append(nn.BatchNorm2d(c_out))
            return [*block, nn.MaxPool2d(2), make_activation(activation)]  # pool first: 4x less activation work

        self.features = nn.Sequential(*conv(1, c1, 5), *conv(c1, c2, 3))  # 28 -> 24 -> 12 -> 10 -> 5
        hidden = cfg.widths[0]
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(c2 * 5 * 5, hidden), make_activation(activation)]
        if cfg.dropout > 0:
            head.append(nn.Dropout(cfg.dropout))
        head.append(nn.Linear(hidden, cfg.num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
