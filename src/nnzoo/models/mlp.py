"""Fully-connected networks (multi-layer perceptrons): a classifier of images and tables, a regressor of tables,
and, on labelled texts, a TF-IDF bag of tokens into the same stack."""

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


class TfidfMLP(Classifier):
    """A text as its TF-IDF vector (the bag of its tokens, each counted and weighted by its inverse document
    frequency over the training texts, L2-normalised: scikit-learn's TfidfVectorizer), then the MLP stack.

    The first layer never builds the (B, vocabulary) vector it multiplies: an ``nn.EmbeddingBag`` sums the rows of
    the text's tokens, each weighted by idf / ||tf-idf||, which is the same product. Order is lost, which is what
    the word-order-aware families (text-cnn, rnn, transformer-encoder) are measured against.
    """

    def __init__(self, vocab_size: int, pad_id: int, num_classes: int, idf: list[float], hidden: list[int],
                 activation: str = "relu", dropout: float = 0.0, label_smoothing: float = 0.0):  # fmt: skip
        super().__init__(label_smoothing)
        weights = torch.zeros(vocab_size)
        weights[: len(idf)] = torch.tensor(idf, dtype=torch.float32)[:vocab_size]
        weights[pad_id] = 0.0  # padding is no token
        self.register_buffer("idf", weights)
        self.pad_id = pad_id
        self.bag = nn.EmbeddingBag(vocab_size, hidden[0], mode="sum")
        self.bias = nn.Parameter(torch.zeros(hidden[0]))
        act = activation_layer(activation)
        layers: list[nn.Module] = [act()] + ([nn.Dropout(dropout)] if dropout else [])
        for a, b in zip(hidden, hidden[1:]):
            layers += [nn.Linear(a, b), act()] + ([nn.Dropout(dropout)] if dropout else [])
        self.net = nn.Sequential(*layers, nn.Linear(hidden[-1], num_classes))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()  # (B, T)
        w = self.idf[ids]  # (B, T): each occurrence's idf (a repeated token adds up: its count)
        vec = torch.zeros(ids.shape[0], self.idf.shape[0], device=ids.device).scatter_add_(1, ids, w)
        norm = vec.norm(dim=1, keepdim=True).clamp(min=1e-6)  # ||tf-idf|| per text (no gradient flows here)
        x = self.bag(ids, per_sample_weights=w / norm) + self.bias  # (B, hidden[0]) = W . tfidf / ||tfidf||
        return self.net(x)


@MODELS.register("mlp", help="Multi-layer perceptron: hidden sizes, activation, dropout, batch norm as arguments")
def mlp(spec: DataSpec, hidden: list[int] | int = (256, 128), activation: str = "relu", dropout: float = 0.0,
        batch_norm: bool = False, label_smoothing: float = 0.0) -> MLP | MLPRegressor:  # fmt: skip
    """A classifier, or a regressor when the dataset's task is regression (a table's numeric target); on labelled
    texts the TF-IDF bag of their tokens (its idf from the training texts, in the dataset's spec)."""
    sizes = [hidden] if isinstance(hidden, int) else list(hidden)
    if not all(isinstance(h, int) and h > 0 for h in sizes):
        raise UserError(f"mlp hidden sizes must be positive whole numbers, not {hidden!r}.")
    if spec.task == "regression":
        if label_smoothing:
            raise UserError("label_smoothing is for classifiers; this table's target is regressed.")
        return MLPRegressor(math.prod(spec.input_shape), sizes, activation, dropout, batch_norm)
    if spec.text_ids:
        if batch_norm:
            raise UserError("batch_norm is not offered for the TF-IDF MLP of texts; leave it out.")
        return TfidfMLP(spec.extra["vocab_size"], spec.extra["pad_id"], spec.num_classes, spec.extra.get("idf", []),
                        sizes, activation, dropout, label_smoothing)  # fmt: skip
    return MLP(math.prod(spec.input_shape), spec.num_classes, sizes, activation, dropout, batch_norm, label_smoothing)
