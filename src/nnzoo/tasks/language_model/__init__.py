"""The language-model task: text from a character model (`sampling`), its ONNX/TorchScript plan (`export`: one
step with its state as inputs and outputs) and its test metrics (`metrics`: perplexity, bits per character)."""

from __future__ import annotations

from ..base import Task
from .export import language_model_plan
from .metrics import language_model_metrics
from .sampling import generate_for_run

TASK = Task("language-model", extra_metrics=language_model_metrics, generate=generate_for_run,
            export=language_model_plan)  # fmt: skip
