"""Parameters + seed -> a trained network. Shared by search trials and `search train`,
which is what makes an exported trial reproduce its validation accuracy."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models import build_model
from search.augment import Augment
from search.data import Split
from search.train import TrainConfig


def train_config(params: dict[str, Any], seed: int) -> TrainConfig:
    return TrainConfig(
        lr=float(params["lr"]),
        batch_size=int(params["batch_size"]),
        epochs=int(params["epochs"]),
        optimizer=params["optimizer"],
        momentum=float(params["momentum"]),
        nesterov=bool(params["nesterov"]),
        weight_decay=float(params["weight_decay"]),
        max_steps=int(params.get("iterations", 0)),
        seed=seed,
    )


def make_transform(params: dict[str, Any], seed: int) -> Augment | None:
    """The training-batch augmentation, if the params ask for it (its own seeded RNG)."""
    if not params.get("augment"):
        return None
    return Augment(params["rotation"], params["blur_sigma"], torch.Generator().manual_seed(seed + 1))


def make_model(params: dict[str, Any], seed: int, device: torch.device, num_classes: int = 10) -> nn.Module:
    torch.manual_seed(seed)  # weights and dropout masks follow from the seed
    model = build_model(
        params["model"],
        hidden_size=int(params["hidden_size"]),
        n_layers=int(params["n_layers"]),
        widths=[int(w) for w in str(params.get("widths") or "").split("-") if w],
        activation=params["activation"],
        dropout=float(params["dropout"]),
        batch_norm=bool(params["batch_norm"]),
        num_classes=num_classes,
    )
    model = model.to(device)
    if device.type == "cuda" and params["model"] != "mlp":
        model = model.to(memory_format=torch.channels_last)  # NHWC convolutions for tensor cores
    return model


def subset(split: Split, n: int) -> Split:
    """The first `n` examples (the training split is already shuffled once, with a fixed seed)."""
    return split if n >= len(split) else Split(split.x[:n], split.y[:n])
