"""What differs between tasks once a model is trained: extra test metrics, report pictures and generation.

Each task (``DataSpec.task``) is a :class:`Task` in ``TASKS``; ``api`` looks it up and never branches on task names.
This module is the registry and the classification task's own hooks; a family defines its Task in its own module
and ``all_tasks.py`` registers every one of them, in one place (not in ``api.py`` or ``cli.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import reports
from .config import MAX_SEED
from .errors import UserError
from .registry import Registry

if TYPE_CHECKING:
    from .callbacks import Callback
    from .config import RunConfig
    from .data.spec import Dataset
    from .runs import LoadedRun
    from .trainer import Trainer

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
    # (loaded run, input files, options from `nnzoo predict`) -> one result dict per prediction, each with a "text"
    # line for the terminal; None: the task predicts from image files as a classifier does
    predict: Callable[[LoadedRun, list[str], dict[str, Any]], list[dict[str, Any]]] | None = None


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


# ---- classification ----------------------------------------------------------------------------------------------
def classification_result(probs: torch.Tensor, class_names: Sequence[str], top_k: int = 3) -> dict[str, Any]:
    """The answer for one input from its class probabilities (C,): the label, the ``top_k`` most likely classes
    and every probability by name (what `nnzoo predict --json` prints and `nnzoo serve` returns)."""
    top = probs.topk(min(top_k, len(class_names)))
    return {
        "label": class_names[int(top.indices[0])],
        "index": int(top.indices[0]),
        "probability": float(top.values[0]),
        "top_k": [
            {"label": class_names[int(i)], "index": int(i), "probability": float(v)}
            for v, i in zip(top.values, top.indices)
        ],  # fmt: skip
        "probabilities": {n: float(v) for n, v in zip(class_names, probs)},
    }


def classification_reports(history: History, data: Dataset, outputs: torch.Tensor | None, folder: Path,
                            cfg: RunConfig) -> list[Path]:  # fmt: skip
    title = cfg.recipe or cfg.model
    paths = []
    if outputs is not None:
        probs = outputs.softmax(1)
        cm = reports.confusion_matrix(data.test.y, probs.argmax(1), data.spec.num_classes)
        paths.append(reports.plot_confusion(cm, data.spec.class_names, folder / "confusion_matrix.png", title))
        if data.test.x.dim() == 4:  # images: show the most confident mistakes
            paths.append(reports.plot_worst(data.test.x, data.test.y, probs, data.spec.class_names,
                                            folder / "worst.png"))  # fmt: skip
    return paths


def classification_metrics(test: dict[str, float], outputs: torch.Tensor | None, data: Dataset) -> dict[str, Any]:
    """The majority baseline: the accuracy of always answering the test split's most common class, the number
    any classifier has to beat (10% on the balanced image sets, about 40% on tang-authors)."""
    counts = torch.bincount(data.test.y, minlength=data.spec.num_classes)
    return {"majority_baseline": counts.max().item() / max(len(data.test), 1)}
