"""The per-epoch hook of generative runs: a grid from the same fixed noise and, with a judge, the quality numbers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...callbacks import Callback, Logs
from ...data.spec import Split
from . import pictures, quality

if TYPE_CHECKING:
    from ...trainer import Trainer

GRID_SEED = 1234  # the fixed noise of the per-epoch grids
QUALITY_SEED = 4321  # the fixed noise of the quality samples: epochs differ only by the weights


def epoch_grid_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / "report" / "epochs" / f"epoch_{epoch:03d}.png"


def fixed_grid(trainer: Trainer) -> tuple[object, int]:
    """The images of the per-epoch grid: 64 samples, or 8 per class (one row each) for a conditional model."""
    model = trainer.model
    conditional = getattr(model, "conditional", False)
    k = getattr(model, "num_classes", 0)
    n = 8 * k if conditional else 64
    images, _ = quality.draw(model, n, GRID_SEED, trainer.device, conditional, k, trainer.autocast())
    if conditional:  # draw() cycles through the labels: reorder into one row per class
        images = images.view(8, k, *images.shape[1:]).transpose(0, 1).reshape(n, *images.shape[1:])
    return images, 8


class GenerativeMonitor(Callback):
    """Every epoch, for models that sample: ``report/epochs/epoch_NNN.png`` from the same noise; with a judge,
    ``fd``, ``confidence``, ``classes_covered`` (and ``label_accuracy``) added to the epoch's logs, so they reach
    metrics.jsonl and the checkpoint's history. The noise comes from private generators: the training RNG, and so
    an exact resume, is untouched; the reference statistics are recomputed on (re)start, never checkpointed."""

    def __init__(self, run_dir: Path, judge: quality.Judge | None, reference: Split, samples: int):
        self.run_dir, self.judge, self.reference, self.samples = Path(run_dir), judge, reference, samples
        self.stats: quality.Stats | None = None

    def on_train_begin(self, trainer: Trainer) -> None:
        if self.judge is not None and self.stats is None:
            n = min(self.samples, len(self.reference))
            self.stats = quality.reference_stats(self.judge, self.reference, n, trainer.device)

    def on_evaluate(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        model = trainer.model
        if not getattr(model, "can_sample", False):
            return
        images, nrow = fixed_grid(trainer)
        pictures.save_grid(images, epoch_grid_path(self.run_dir, epoch + 1), nrow=nrow, scale=2)
        if self.judge is not None and self.stats is not None:
            conditional = getattr(model, "conditional", False)
            k = getattr(model, "num_classes", 0)
            n = min(self.samples, len(self.reference))
            gen, labels = quality.draw(model, n, QUALITY_SEED, trainer.device, conditional, k, trainer.autocast())
            logs.update(quality.scores(self.judge, gen, self.stats, trainer.device, labels))
