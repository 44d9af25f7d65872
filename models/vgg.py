from __future__ import annotations

from torch import nn

from models._config import ModelConfig, ModelEntry
from models._layers import FeaturesThenClassifier, conv_block, dense_head, too_small


class VGG(FeaturesThenClassifier):
    """Two stages of two padded 3x3 convolutions each, widths chosen by the study, then a
    dense layer: conv(c1) - conv(c1) - pool - conv(c2) - conv(c2) - pool - dense(hidden) -
    classes (Simonyan & Zisserman's layout at MNIST's scale, the common Fashion-MNIST
    convnet). Padding keeps the image's border, where clothes differ (a collar, a sleeve's
    end), which the convnet's unpadded 5x5 trims away. With 32-64 about 19M multiply-adds
    per image, 3.5x the convnet's 48-96; measured (2 cores, 100 augmented Fashion-MNIST
    steps of 128 images): AMD EPYC without AVX512 (fp32), 16-32 6.4 s, 32-64 15.4 s, about
    27 s and 65 s an epoch of 55,000 images; AMD EPYC with AVX512-BF16 (bf16 autocast and
    channels_last, as search/precision.py chose), 32-64 16-17 s an epoch of 430 steps in
    studies/fashion-vgg.yaml's run on idle cores (8.3 s per 100 steps, measured once beside
    another process, had said 36 s)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c1, c2 = cfg.channels
        side = _side(cfg.shape.height), _side(cfg.shape.width)  # 28 -> 14 -> 7
        if min(side) < 1:
            raise too_small("the vgg", cfg, _side)
        # the stage's pool before its second activation: 4x less activation work
        self.features = nn.Sequential(*conv_block(cfg.shape.channels, c1, 3, cfg, padding=1),
                                      *conv_block(c1, c1, 3, cfg, padding=1, pool="first"),
                                      *conv_block(c1, c2, 3, cfg, padding=1),
                                      *conv_block(c2, c2, 3, cfg, padding=1, pool="first"))
        self.classifier = dense_head(c2 * side[0] * side[1], cfg)

    @staticmethod
    def floats_per_image(cfg: ModelConfig) -> int:
        h, w = cfg.shape.height, cfg.shape.width
        c1, c2 = cfg.channels
        return 4 * (2 * c1 * h * w + 2 * c2 * (h // 2) * (w // 2) + sum(cfg.widths))


def _side(size: int) -> int:
    return size // 4


ENTRY = ModelEntry(VGG, VGG.floats_per_image, reads=("channels", "hidden_size"))
