"""Convolutional classifiers: the classic SimpleCNN example and LeNet-5."""

from __future__ import annotations

import torch
from torch import nn

from ..data.spec import DataSpec
from ..errors import UserError
from .base import Classifier, flat_features
from .layers import ImageConv2d
from .registry import MODELS


class SimpleCNN(Classifier):
    """conv3x3 32 -> ReLU -> maxpool 2 -> conv3x3 64 -> ReLU -> maxpool 2 -> fc 128 -> ReLU -> fc classes.

    On 28x28 input the feature map after the second pool is 64x5x5 (28 -conv-> 26 -pool-> 13 -conv-> 11 -pool-> 5),
    so the first linear layer takes 1600 features. The widely copied version of this example hard-codes 64*6*6 =
    2304 (right only for 32x32 input) and crashes on MNIST with "shape '[-1, 2304]' is invalid for input of size
    102400". Here the size is computed from the input shape.

    Each ReLU runs after its max-pool, not before: the two commute exactly (max(relu(a), relu(b)) = relu(max(a,
    b)), and the gradient reaches the same element), and ReLU forward and backward then touch a quarter of the
    values. The layer indices, and so checkpoints, are those of conv -> ReLU -> pool. The first convolution is an
    :class:`~nnzoo.models.layers.ImageConv2d` (a Conv2d with a fast weight gradient on CPUs). Together they took a
    fp32 training step at batch 128 on a 2-core AVX2 CPU from 3,420 to 4,295 samples/s (two runs minutes apart;
    ``nnzoo bench`` times the step).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_shape: tuple[int, ...] = (1, 28, 28),
                 hidden: int = 128, label_smoothing: float = 0.0):  # fmt: skip
        super().__init__(label_smoothing)
        self.features = nn.Sequential(
            ImageConv2d(in_channels, 32, kernel_size=3), nn.MaxPool2d(2), nn.ReLU(),  # (B, 32, 13, 13) on 28x28
            nn.Conv2d(32, 64, kernel_size=3), nn.MaxPool2d(2), nn.ReLU(),  # (B, 64, 5, 5) on 28x28
        )  # fmt: skip
        n = flat_features(self.features, input_shape, "simple-cnn")
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(n, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))  # (B, C, H, W) -> (B, classes)


class LeNet5(Classifier):
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document recognition").

    conv5x5 6 -> tanh -> avgpool 2 -> conv5x5 16 -> tanh -> avgpool 2 -> fc 120 -> fc 84 -> fc classes. The paper
    placed 28x28 digits in a 32x32 field: ``padding=2`` does the same. Average pooling and tanh follow the paper
    (its pooling also had trainable coefficients, and C3 a partial connection table, both dropped as is usual).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_shape: tuple[int, ...] = (1, 28, 28),
                 padding: int = 2, activation: str = "tanh", label_smoothing: float = 0.0):  # fmt: skip
        super().__init__(label_smoothing)
        act = activation_layer(activation)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=padding), act(), nn.AvgPool2d(2),  # (B, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5), act(), nn.AvgPool2d(2),  # (B, 16, 5, 5)
        )  # fmt: skip
        n = flat_features(self.features, input_shape, "lenet5")
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(n, 120), act(), nn.Linear(120, 84), act(),
                                        nn.Linear(84, num_classes))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU,
               "silu": nn.SiLU}  # fmt: skip


def activation_layer(name: str) -> type[nn.Module]:
    if name not in ACTIVATIONS:
        raise UserError(f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


@MODELS.register("simple-cnn", help="The classic PyTorch example CNN: 2 conv + 2 fc layers, flatten size computed")
def simple_cnn(spec: DataSpec, hidden: int = 128, label_smoothing: float = 0.0) -> SimpleCNN:
    return SimpleCNN(spec.input_shape[0], spec.num_classes, spec.input_shape, hidden, label_smoothing)


@MODELS.register("lenet5", help="LeNet-5 (LeCun et al. 1998): tanh, average pooling, 120-84 classifier")
def lenet5(spec: DataSpec, padding: int = 2, activation: str = "tanh", label_smoothing: float = 0.0) -> LeNet5:
    return LeNet5(spec.input_shape[0], spec.num_classes, spec.input_shape, padding, activation, label_smoothing)


# ---- text ---------------------------------------------------------------------------------------------------------
class TextCNN(Classifier):
    """Kim (2014), "Convolutional Neural Networks for Sentence Classification": token embeddings -> parallel 1-d
    convolutions of widths 3, 4 and 5 (100 filters each) -> ReLU -> the maximum over time of each filter ->
    dropout 0.5 -> classes.

    The texts come padded at the end with ``pad_id``; a window that starts past a text's last full window reads
    only padding, so it is left out of the maximum (a text shorter than a filter keeps its first window). The
    maximum over time makes the answer independent of where in the review a phrase ("服务很好") occurs.
    """

    def __init__(self, vocab_size: int, pad_id: int, num_classes: int, widths: tuple[int, ...] = (3, 4, 5),
                 filters: int = 100, embed: int = 128, dropout: float = 0.5, label_smoothing: float = 0.0):  # fmt: skip
        super().__init__(label_smoothing)
        if not widths or any(w < 1 for w in widths):
            raise UserError(f"text-cnn's widths must be positive, not {list(widths)}.")
        self.pad_id, self.widths = pad_id, tuple(widths)
        self.embed = nn.Embedding(vocab_size, embed, padding_idx=pad_id)
        self.convs = nn.ModuleList(nn.Conv1d(embed, filters, w) for w in self.widths)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(filters * len(self.widths), num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()  # (B, T)
        lengths = (ids != self.pad_id).sum(1, keepdim=True)  # (B, 1)
        x = self.embed(ids).transpose(1, 2)  # (B, E, T): channels first for Conv1d
        pooled = []
        for w, conv in zip(self.widths, self.convs):
            if x.shape[2] < w:  # a sequence shorter than the filter: pad it with padding tokens' zero vectors
                x = nn.functional.pad(x, (0, w - x.shape[2]))
            h = torch.relu(conv(x))  # (B, F, T - w + 1)
            starts = torch.arange(h.shape[2], device=ids.device)
            real = starts[None, :] < (lengths - w + 1).clamp(min=1)  # windows holding at least one real token
            pooled.append(h.masked_fill(~real[:, None, :], 0.0).amax(dim=2))  # ReLU >= 0, so 0 never wins wrongly
        return self.head(self.dropout(torch.cat(pooled, dim=1)))  # (B, classes)


@MODELS.register("text-cnn", help="TextCNN (Kim 2014) for labelled texts: widths 3-4-5 x 100 filters, max over time")
def text_cnn(spec: DataSpec, widths: list[int] = (3, 4, 5), filters: int = 100, embed: int = 128,
             dropout: float = 0.5, label_smoothing: float = 0.0) -> TextCNN:  # fmt: skip
    return TextCNN(spec.extra["vocab_size"], spec.extra["pad_id"], spec.num_classes, tuple(widths), filters, embed,
                   dropout, label_smoothing)  # fmt: skip
