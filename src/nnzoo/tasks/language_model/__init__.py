"""The language-model task: text from a character model (`sampling`), its ONNX/TorchScript plan (`export`: one
step with its state as inputs and outputs) and its test metrics (`metrics`: perplexity, bits per character)."""

from __future__ import annotations

from pathlib import Path

from ... import files
from ...config import RunConfig
from ...data.spec import Dataset
from ...data.text import CharVocab
from ...trainer import Trainer
from ..base import Task
from .export import language_model_plan
from .metrics import language_model_metrics
from .sampling import generate_for_run, generate_text

SAMPLE_LENGTH = 200


def sample_report(trainer: Trainer, data: Dataset, folder: Path, cfg: RunConfig) -> list[Path]:
    """report/sample.txt: what the tested weights write from nothing, 200 characters seeded with the run's seed,
    to read beside the perplexity (and, with --tensorboard, in its text tab). A few hundred milliseconds."""
    text = generate_text(trainer.model, CharVocab(data.spec.extra["vocab"]), length=SAMPLE_LENGTH,
                         seed=cfg.train.seed)["generated"]  # fmt: skip
    path = folder / "sample.txt"
    files.atomic_write_text(path, text + "\n")
    return [path]


TASK = Task("language-model", extra_metrics=language_model_metrics, generate=generate_for_run,
            export=language_model_plan, model_reports=sample_report)  # fmt: skip
