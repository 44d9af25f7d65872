"""A user's own network for mnist-search: a small ResNet-style classifier whose width and
depth the study searches. Any `build(input_shape, num_classes, **your_args) -> nn.Module`
works the same way; mnist-search imports it from beside the study file."""

from __future__ import annotations

from torch import nn


class Block(nn.Module):
    """Two 3x3 convolutions with batch norm and a skip connection (He et al., 2016)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
        )
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(x + self.body(x))


def build(input_shape: tuple[int, int, int], num_classes: int, width: int = 16, depth: int = 2,
          drop: float = 0.0) -> nn.Module:
    """A stem convolution, `depth` residual blocks of `width` channels, global average pooling."""
    channels, _, _ = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        *[Block(width) for _ in range(depth)],
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(drop), nn.Linear(width, num_classes),
    )
