from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from models._layers import activation as make_activation


class MLP(nn.Sequential):
    """784 -> hidden layers -> num_classes; each hidden block is Linear, optional
    BatchNorm1d, activation, optional Dropout. The hidden layers are `widths` when given
    (784-512-256-10: widths=(512, 256)), else `n_layers` layers of `hidden_size`."""

    def __init__(
        self,
        *,
        hidden_size: int = 128,
        n_layers: int = 1,
        widths: Sequence[int] | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        in_features: int = 28 * 28,
        num_classes: int = 10,
    ) -> None:
        if hidden_size < 1 or n_layers < 0:
            raise ValueError(f"MLP needs hidden_size >= 1 and n_layers >= 0, got {hidden_size}, {n_layers}")
        sizes = list(widths) if widths else [hidden_size] * n_layers
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for hidden_size in sizes:
            # A bias before BatchNorm is redundant: BN subtracts the mean anyway.
            layers.append(nn.Linear(width, hidden_size, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_size))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden_size
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
