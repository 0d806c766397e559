"""The language-model task's test metrics, from the mean cross-entropy of the test split."""

from __future__ import annotations

import math
from typing import Any


def language_model_metrics(test: dict[str, float], outputs: Any, data: Any) -> dict[str, float]:
    """Perplexity and bits per character from the mean cross-entropy in nats."""
    return {"perplexity": math.exp(test["loss"]), "bits_per_char": test["loss"] / math.log(2)}
