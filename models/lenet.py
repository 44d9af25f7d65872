from __future__ import annotations

import torch
from torch import nn

from models._config import ModelConfig, ModelEntry
from models._layers import conv_block, conv_size, dense_block, too_small


class LeNet5(nn.Module):
    """LeCun et al. (1998) for 28x28 input: conv5(6, pad 2) - pool - conv5(16) - pool -
    120 - 84 - classes, with max-pooling and a chosen activation as is usual today."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        side = _side(cfg.shape.height), _side(cfg.shape.width)
        if min(side) < 1:
            raise too_small("LeNet-5", cfg, _side)
        self.features = nn.Sequential(*conv_block(cfg.shape.channels, 6, 5, cfg, padding=2, pool="last"),
                                      *conv_block(6, 16, 5, cfg, pool="last"))
        self.classifier = nn.Sequential(nn.Flatten(), *dense_block(16 * side[0] * side[1], 120, cfg),
                                        *dense_block(120, 84, cfg), nn.Linear(84, cfg.shape.classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    @staticmethod
    def floats_per_image(cfg: ModelConfig) -> int:
        s = cfg.shape
        return 4 * (6 * s.height * s.width + 16 * (2 * _side(s.height)) * (2 * _side(s.width)))


def _side(size: int) -> int:
    return conv_size(conv_size(size, 5, 2, pool=True), 5, pool=True)


ENTRY = ModelEntry(LeNet5, LeNet5.floats_per_image)
