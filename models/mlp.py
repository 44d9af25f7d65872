from __future__ import annotations

from torch import nn

from models._config import ModelConfig
from models._layers import activation as make_activation


class MLP(nn.Sequential):
    """784 -> hidden layers -> classes; each hidden block is Linear, optional BatchNorm1d,
    activation, optional Dropout (its own probability per layer when `cfg.dropouts` is set)."""

    def __init__(self, cfg: ModelConfig, in_features: int = 28 * 28) -> None:
        dropouts = cfg.layer_dropouts()
        if len(dropouts) != len(cfg.widths) or any(w < 1 for w in cfg.widths):
            raise ValueError(f"MLP needs widths >= 1 and one dropout per layer, got {cfg.widths}, {dropouts}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size, p in zip(cfg.widths, dropouts):
            # A bias before BatchNorm is redundant: BN subtracts the mean anyway.
            layers.append(nn.Linear(width, size, bias=not cfg.batch_norm))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(make_activation(cfg.activation))
            if p > 0:
                layers.append(nn.Dropout(p))
            width = size
        layers.append(nn.Linear(width, cfg.num_classes))
        super().__init__(*layers)
