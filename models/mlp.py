from __future__ import annotations

from torch import nn

from models._layers import activation as make_activation


class MLP(nn.Sequential):
    """784 -> [hidden_size] x n_layers -> num_classes; each hidden block is
    Linear, optional BatchNorm1d, activation, optional Dropout."""

    def __init__(
        self,
        *,
        hidden_size: int = 128,
        n_layers: int = 1,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        in_features: int = 28 * 28,
        num_classes: int = 10,
    ) -> None:
        if hidden_size < 1 or n_layers < 0:
            raise ValueError(f"MLP needs hidden_size >= 1 and n_layers >= 0, got {hidden_size}, {n_layers}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(n_layers):
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
