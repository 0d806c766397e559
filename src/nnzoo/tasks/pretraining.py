"""The masked-LM task (bert-mlm): pretraining a text encoder on the texts of a labelled-text dataset, without
their labels, for ``nnzoo train transformer-encoder --init-from RUN`` to fine-tune. Its test metric is the
perplexity of the masked tokens (masks drawn from a fixed seed in evaluation, so runs compare)."""

from __future__ import annotations

import math
from typing import Any

from .base import Task


def masked_lm_metrics(test: dict[str, float], outputs: Any, data: Any) -> dict[str, float]:
    return {"masked_perplexity": math.exp(test["loss"])}


TASK = Task("masked-lm", extra_metrics=masked_lm_metrics)
