from __future__ import annotations

from torch import nn

from models._config import ModelConfig, ModelEntry
from models._layers import activation


class MLP(nn.Sequential):
    """pixels -> hidden layers -> classes; each hidden block is Linear, optional BatchNorm1d,
    activation, optional Dropout (its own probability per layer when `cfg.dropouts` is set)."""

    def __init__(self, cfg: ModelConfig) -> None:
        dropouts = cfg.layer_dropouts()
        if len(dropouts) != len(cfg.widths) or any(w < 1 for w in cfg.widths):
            raise ValueError(f"MLP needs widths >= 1 and one dropout per layer, got {cfg.widths}, {dropouts}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = cfg.shape.pixels
        for size, p in zip(cfg.widths, dropouts, strict=True):
            # A bias before BatchNorm is redundant: BN subtracts the mean anyway.
            layers.append(nn.Linear(width, size, bias=not cfg.batch_norm))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(activation(cfg.activation))
            if p > 0:
                layers.append(nn.Dropout(p))
            width = size
        layers.append(nn.Linear(width, cfg.shape.classes))
        super().__init__(*layers)

    @staticmethod
    def floats_per_image(cfg: ModelConfig) -> int:
        return 4 * (cfg.shape.pixels + sum(cfg.widths))


ENTRY = ModelEntry(MLP, MLP.floats_per_image, reads=("hidden_size", "n_layers", "widths", "dropouts"))
