"""Fully-connected classifier (multi-layer perceptron)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..data.spec import DataSpec
from ..errors import UserError
from .base import Classifier
from .cnn import activation_layer
from .registry import MODELS


class MLP(Classifier):
    """flatten -> [Linear -> (BatchNorm) -> activation -> (Dropout)] per hidden size -> Linear(classes)."""

    def __init__(self, in_features: int, num_classes: int, hidden: list[int], activation: str = "relu",
                 dropout: float = 0.0, batch_norm: bool = False, label_smoothing: float = 0.0):  # fmt: skip
        super().__init__(label_smoothing)
        if not 0 <= dropout < 1:
            raise UserError(f"mlp dropout must be in [0, 1), not {dropout}.")
        act = activation_layer(activation)
        layers: list[nn.Module] = [nn.Flatten()]  # (B, C, H, W) -> (B, C*H*W)
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(act())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@MODELS.register("mlp", help="Multi-layer perceptron: hidden sizes, activation, dropout, batch norm as arguments")
def mlp(spec: DataSpec, hidden: list[int] | int = (256, 128), activation: str = "relu", dropout: float = 0.0,
        batch_norm: bool = False, label_smoothing: float = 0.0) -> MLP:  # fmt: skip
    sizes = [hidden] if isinstance(hidden, int) else list(hidden)
    if not all(isinstance(h, int) and h > 0 for h in sizes):
        raise UserError(f"mlp hidden sizes must be positive whole numbers, not {hidden!r}.")
    return MLP(math.prod(spec.input_shape), spec.num_classes, sizes, activation, dropout, batch_norm, label_smoothing)
