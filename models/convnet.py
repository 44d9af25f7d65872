from __future__ import annotations

from torch import nn

from models._config import ModelConfig, ModelEntry
from models._layers import FeaturesThenClassifier, conv_block, conv_size, dense_head, too_small


class ConvNet(FeaturesThenClassifier):
    """Two convolutions and a dense layer, widths chosen by the study: conv5x5(c1) - pool -
    conv3x3(c2) - pool - dense(hidden) - classes, the layout of the fastest known MNIST
    recipes (tuomaso/train_mnist_fast: c1=24, c2=32, hidden 256). Its wide early layers map
    to large matrix products, which CPUs run far closer to peak than LeNet-5's 6 and 16
    channels."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c1, c2 = cfg.channels
        side = _side(cfg.shape.height), _side(cfg.shape.width)  # 28 -> 24 -> 12 -> 10 -> 5
        if min(side) < 1:
            raise too_small("the convnet", cfg, _side)
        # pool before the activation: 4x less activation work
        self.features = nn.Sequential(*conv_block(cfg.shape.channels, c1, 5, cfg, pool="first"),
                                      *conv_block(c1, c2, 3, cfg, pool="first"))
        self.classifier = dense_head(c2 * side[0] * side[1], cfg)

    @staticmethod
    def floats_per_image(cfg: ModelConfig) -> int:
        h, w = cfg.shape.height, cfg.shape.width
        c1, c2 = cfg.channels
        return 4 * (c1 * (h - 4) * (w - 4) + c2 * (2 * _side(h)) * (2 * _side(w)) + sum(cfg.widths))


def _side(size: int) -> int:
    return conv_size(conv_size(size, 5, pool=True), 3, pool=True)


ENTRY = ModelEntry(ConvNet, ConvNet.floats_per_image, reads=("channels", "hidden_size"))
