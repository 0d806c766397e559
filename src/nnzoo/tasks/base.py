"""What differs between tasks once a model is trained: extra test metrics, report pictures and generation.

Each task (``DataSpec.task``) is a :class:`Task` in ``TASKS``; ``api`` looks it up and never branches on task names.
This module is the registry only: each family defines its Task in its own module under ``tasks/`` and
``tasks/__init__.py`` registers every one of them, one line each (not in ``api.py`` or ``cli.py``). It imports
nothing above ``config`` and ``registry``, so ``runs``, ``training`` and ``export`` can read the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..config import MAX_SEED
from ..errors import UserError
from ..registry import Registry

if TYPE_CHECKING:
    from ..callbacks import Callback
    from ..config import RunConfig
    from ..data.spec import Dataset
    from ..runs import LoadedRun
    from ..trainer import Trainer

History = list[dict[str, Any]]


@dataclass(frozen=True)
class Task:
    name: str
    # (test metrics from compute_loss, the test outputs, the data) -> metrics added to metrics.json["test"]
    extra_metrics: Callable[[dict[str, float], torch.Tensor | None, Dataset], dict[str, Any]] | None = None
    # (history, data, test outputs, report folder, config) -> PNG paths written
    write_reports: Callable[[History, Dataset, torch.Tensor | None, Path, RunConfig], list[Path]] | None = None
    # (loaded run, options from `nnzoo generate`) -> result dict (text, or the path of an image grid)
    generate: Callable[[LoadedRun, dict[str, Any]], dict[str, Any]] | None = None
    # (loaded run) -> an export.ExportPlan: what `nnzoo export` writes for this task
    export: Callable[[LoadedRun], Any] | None = None
    # Hooks that need the trained model itself, not only its test outputs; the trainer holds the model, its
    # device and autocast. (trainer, data, config) -> test metrics (a GAN's Fréchet distance draws new samples)
    model_metrics: Callable[[Trainer, Dataset, RunConfig], dict[str, Any]] | None = None
    # (trainer, data, report folder, config) -> PNG paths of pictures drawn with the model (samples, latent walks)
    model_reports: Callable[[Trainer, Dataset, Path, RunConfig], list[Path]] | None = None
    # (config, data, run folder, progress) -> callbacks added to training (per-epoch sample grids, quality numbers)
    callbacks: Callable[[RunConfig, Dataset, Path, bool], list[Callback]] | None = None
    # (loaded run, input files, options from `nnzoo predict`: device, top_k, column...) -> one result dict per
    # prediction (a "text" line for the terminal, or a classifier's "file", "label" and "top_k"); None: no predict
    predict: Callable[[LoadedRun, list[str], dict[str, Any]], list[dict[str, Any]]] | None = None
    # (loaded run, the model's outputs for inputs given in Python, options: top_k) -> one answer per input (a
    # classifier's label and probabilities); what nnzoo.predict(run, array) returns. None: arrays are not taken
    answer: Callable[[LoadedRun, torch.Tensor, dict[str, Any]], list[dict[str, Any]]] | None = None
    # (loaded run, data, the test outputs) -> what `nnzoo eval` shows beyond the metrics (a confusion matrix)
    evaluation: Callable[[LoadedRun, Dataset, torch.Tensor | None], dict[str, Any]] | None = None


TASKS: Registry[Task] = Registry("task")


def get_task(name: str) -> Task:
    return TASKS.get(name) if name in TASKS else Task(name)


def generate(run: LoadedRun, options: dict[str, Any]) -> dict[str, Any]:
    seed = options.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        raise UserError(f"--seed must be a whole number from 0 to {MAX_SEED}, not {seed}.")
    task = get_task(run.spec.task)
    if task.generate is None:
        raise UserError(f"{run.run_dir} holds a {run.spec.task} model ({run.config.model}), which does not generate; "
                        "generate works with language models, autoencoders and GANs.")  # fmt: skip
    return task.generate(run, options)
