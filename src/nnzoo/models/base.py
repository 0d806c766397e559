"""The contract every nnzoo model keeps (after Keras 3's ``compute_loss`` / ``train_step``).

A model knows its loss; the trainer knows the machinery. ``compute_loss(batch)`` returns a dict of scalar tensors
with ``"loss"`` and whatever else is worth logging (averaged over the batch). The default ``train_step`` hands the
loss to ``trainer.optimize``; a GAN overrides ``train_step`` and calls ``optimize`` once per optimizer. Models never
touch devices, autocast, files or printing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError

if TYPE_CHECKING:
    from ..trainer import Trainer

Batch = Any
Metrics = dict[str, torch.Tensor]


class Model(nn.Module):
    # The task decides test metrics, reports and `generate` (see tasks/base.py). None: the dataset's own task; a
    # generative model trained on an image classification dataset says "autoencoder" or "gan".
    task: str | None = None
    # What the logged ``loss`` measures, in the words a user would use; written into metrics.json as "loss_is"
    # and onto the learning-curve axis, so nobody has to guess what "loss 244.05" means.
    loss_meaning: str = "the training objective"

    def compute_loss(self, batch: Batch) -> Metrics:
        """Scalars are averaged and logged; an ``"outputs"`` tensor (e.g. logits) may ride along for reports."""
        raise NotImplementedError

    def train_step(self, batch: Batch, trainer: Trainer) -> Metrics:
        out = self.compute_loss(batch)
        trainer.optimize(out["loss"])
        return out

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters per optimizer; one optimizer unless a model (a GAN) needs several."""
        return {"main": [p for p in self.parameters() if p.requires_grad]}


class Classifier(Model):
    """Cross-entropy on logits; logs accuracy. Subclasses implement ``forward(x) -> logits (B, classes)``."""

    task = "classification"
    loss_meaning = "cross-entropy, nats per sample"

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        if not 0 <= label_smoothing < 1:
            raise UserError(f"label_smoothing must be in [0, 1), not {label_smoothing}.")
        self.label_smoothing = label_smoothing

    def compute_loss(self, batch: Batch) -> Metrics:
        x, y = batch
        logits = self(x)  # (B, classes)
        # The loss in fp32 even under bf16 autocast: softmax over few logits is cheap and precision-sensitive.
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing if self.training else 0.0)
        accuracy = (logits.argmax(dim=1) == y).float().mean()
        return {"loss": loss, "accuracy": accuracy, "outputs": logits.detach()}


def flat_features(features: nn.Module, input_shape: tuple[int, ...], model_name: str) -> int:
    """The number of features ``features`` produces for one input of ``input_shape``, found by a dry run.

    Computing it (instead of hard-coding 64*6*6 as the widely copied SimpleCNN does) makes one class work on 28x28
    and 32x32 alike. Input too small for the layers fails here with the minimum size, not deep in a matmul.
    """
    with torch.no_grad():
        try:
            out = features(torch.zeros(1, *input_shape))
            if out.numel() > 0:
                return out.numel()
        except RuntimeError:
            pass
        c = input_shape[0]
        for side in range(1, 513):
            try:
                if features(torch.zeros(1, c, side, side)).numel() > 0:
                    raise UserError(
                        f"{model_name} needs input of at least {side}x{side} pixels, but this dataset's images are "
                        f"{'x'.join(map(str, input_shape[1:]))}."
                    )
            except RuntimeError:
                continue
    raise UserError(f"{model_name} cannot take input of shape {tuple(input_shape)}.")
