"""The contract of language models, shared by the recurrent and the attention families.

A language model maps character ids (B, T) to next-character logits (B, T, V) through ``step(ids, state)``,
which also takes and returns whatever it carries between calls: the hidden state of an RNN, the key/value cache
of a Transformer, or None. Training calls ``step(x, None)`` on whole windows; generation
(nnzoo.tasks.language_model.sampling) feeds the prompt once, then one character at a time with the state, so every
family generates through one loop.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .base import Batch, Metrics, Model


class LanguageModel(Model):
    task = "language-model"
    loss_meaning = "cross-entropy of the next token, nats per token (perplexity = exp(loss))"
    max_context: int | None = None  # the longest input the model can attend to (None: unbounded, as an RNN)

    def step(self, ids: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """ids (B, T) -> logits (B, T, V) and the state to pass with the next ids."""
        raise NotImplementedError

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.step(ids.long(), None)[0]

    def compute_loss(self, batch: Batch) -> Metrics:
        x, y = batch
        logits = self(x)  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())  # mean nats per character
        return {"loss": loss}
