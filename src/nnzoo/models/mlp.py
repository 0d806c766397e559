"""Fully-connected classifier (multi-layer perceptron)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..data.spec import DataSpec
from ..errors import UserError
from .base import Batch, Classifier, Metrics, Model
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


class MLPRegressor(Model):
    """The same stack with one output: a number, learnt as the standardised target (mean squared error of z). The
    regression task reports MAE, RMSE and R² in the target's own units."""

    task = "regression"
    loss_meaning = "mean squared error of the standardised target"

    def __init__(self, in_features: int, hidden: list[int], activation: str = "relu", dropout: float = 0.0,
                 batch_norm: bool = False):  # fmt: skip
        super().__init__()
        self.net = MLP(in_features, 1, hidden, activation, dropout, batch_norm).net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)  # (B,)

    def compute_loss(self, batch: Batch) -> Metrics:
        x, y = batch
        pred = self(x).float()
        loss = torch.nn.functional.mse_loss(pred, y)
        return {"loss": loss, "mae_z": (pred - y).abs().mean(), "outputs": pred.detach()}


@MODELS.register("mlp", help="Multi-layer perceptron: hidden sizes, activation, dropout, batch norm as arguments")
def mlp(spec: DataSpec, hidden: list[int] | int = (256, 128), activation: str = "relu", dropout: float = 0.0,
        batch_norm: bool = False, label_smoothing: float = 0.0) -> MLP | MLPRegressor:  # fmt: skip
    """A classifier, or a regressor when the dataset's task is regression (a table's numeric target)."""
    sizes = [hidden] if isinstance(hidden, int) else list(hidden)
    if not all(isinstance(h, int) and h > 0 for h in sizes):
        raise UserError(f"mlp hidden sizes must be positive whole numbers, not {hidden!r}.")
    if spec.task == "regression":
        if label_smoothing:
            raise UserError("label_smoothing is for classifiers; this table's target is regressed.")
        return MLPRegressor(math.prod(spec.input_shape), sizes, activation, dropout, batch_norm)
    return MLP(math.prod(spec.input_shape), spec.num_classes, sizes, activation, dropout, batch_norm, label_smoothing)
