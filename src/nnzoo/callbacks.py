"""Hooks around the training loop, with Keras's names: progress, metrics log, checkpoints, early stopping.

The trainer keeps every piece of state a resumed run needs (history, best value, patience counter), so callbacks
hold none that would have to be checkpointed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import checkpoint, files
from .errors import UserError

if TYPE_CHECKING:
    from .trainer import Trainer

Logs = dict[str, Any]


class Callback:
    def on_train_begin(self, trainer: Trainer) -> None: ...
    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None: ...
    def on_batch_end(self, trainer: Trainer, step: int, steps: int) -> None: ...
    # After the epoch's training and validation, before its logs are recorded, printed and checkpointed: a
    # callback may add numbers to ``logs`` here (a GAN's per-epoch sample quality), so they reach metrics.jsonl.
    def on_evaluate(self, trainer: Trainer, epoch: int, logs: Logs) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None: ...
    def on_train_end(self, trainer: Trainer) -> None: ...


def _fmt(logs: Logs) -> str:
    parts = []
    for k, v in logs.items():
        if k in ("epoch", "lr", "epoch_seconds", "samples_per_s") or not isinstance(v, float):
            continue
        parts.append(f"{k} {v:.4f}" if "accuracy" not in k else f"{k} {100 * v:.2f}%")
    return "  ".join(parts)


class ProgressBar(Callback):
    """A live bar on a terminal; one plain line per epoch otherwise (logs, CI, notebooks piping to files)."""

    def __init__(self, stream: TextIO | None = None, every: int = 50):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.every = every
        self.t0 = 0.0

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        self.t0 = time.perf_counter()

    def on_batch_end(self, trainer: Trainer, step: int, steps: int) -> None:
        if not self.live or (step % self.every and step != steps):
            return
        running = trainer.running_metrics()  # one host sync per refresh, not per step
        rate = trainer.samples_seen_in_epoch / max(time.perf_counter() - self.t0, 1e-9)
        width = 24
        filled = int(width * step / steps)
        bar = "█" * filled + "·" * (width - filled)
        cfg = trainer.cfg
        self.stream.write(f"\repoch {trainer.epoch + 1}/{cfg.epochs} {bar} {step}/{steps}  {_fmt(running)}  "
                          f"{rate:,.0f} samples/s ")  # fmt: skip
        self.stream.flush()

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        if self.live:
            self.stream.write("\r\033[K")
        self.stream.write(f"epoch {epoch + 1}/{trainer.cfg.epochs}  {_fmt(logs)}  lr {logs['lr']:.3g}  "
                          f"{logs['samples_per_s']:,.0f} samples/s  {logs['epoch_seconds']:.1f}s\n")  # fmt: skip
        self.stream.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        s = trainer.summary()
        if not s["epochs_run"]:
            return
        peak = s["peak_memory_mb"]
        self.stream.write(
            f"done: {s['epochs_run']} epochs in {s['train_seconds']:.1f}s ({s['seconds_per_epoch']:.1f}s/epoch, "
            f"{s['samples_per_s']:,.0f} samples/s) on {s['device']}; {s['parameters']:,} parameters; "
            + ("peak memory not measured here\n" if peak is None else f"peak memory {peak:,.0f} MB\n")
        )
        self.stream.flush()


class MetricsLogger(Callback):
    """``metrics.jsonl``: one JSON object per epoch. On resume it is rewritten from the checkpoint's history, so
    the file always agrees with the weights it sits beside."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / "metrics.jsonl"

    def on_train_begin(self, trainer: Trainer) -> None:
        files.atomic_write_text(self.path, "".join(json.dumps(h) + "\n" for h in trainer.history))

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        files.append_text(self.path, json.dumps(logs) + "\n")


class ModelCheckpoint(Callback):
    """``checkpoints/last.pt`` after every epoch and ``checkpoints/best.pt`` when the monitored value improves.

    best.pt is written after last.pt, as a copy of it (atomically too), so the one save a kill can cut short is
    best.pt's, and last.pt then records which epoch best.pt must hold: a resume checks that and repairs it. The
    temporary files of saves that were killed are removed when a run starts or resumes.
    """

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir) / "checkpoints"

    def on_train_begin(self, trainer: Trainer) -> None:
        files.remove_orphans(self.dir)
        if trainer.epoch and trainer.best_epoch:
            self._check_best(trainer)

    def _check_best(self, trainer: Trainer) -> None:
        best, last = self.dir / "best.pt", self.dir / "last.pt"
        held = checkpoint.load(best).get("epoch") if best.is_file() else None
        if held == trainer.best_epoch:
            return
        if trainer.best_epoch != trainer.epoch or not last.is_file():
            raise UserError(f"{best} holds {f'epoch {held}' if held else 'no weights'}, but {last} says the best "
                            f"epoch was {trainer.best_epoch}, whose weights are gone: start a new run.")  # fmt: skip
        checkpoint.copy(last, best)  # the best epoch was the last one: its save was cut short
        print(f"note: {best} held {f'epoch {held}' if held else 'nothing'}, not the best epoch "
              f"{trainer.best_epoch}: rewrote it from last.pt", file=sys.stderr)  # fmt: skip

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        last = self.dir / "last.pt"
        checkpoint.save(trainer.state_dict(), last)
        if trainer.best_epoch == epoch + 1:
            checkpoint.copy(last, self.dir / "best.pt")


class EarlyStopping(Callback):
    """Stop when the monitored value has not improved for ``patience`` epochs; ``announce`` says so on stderr
    (off under --quiet: the run's metrics.json records the epochs run and the best one)."""

    def __init__(self, patience: int, announce: bool = True):
        self.patience, self.announce = patience, announce

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        if trainer.bad_epochs >= self.patience:
            trainer.stop_training = True
            if not self.announce:
                return
            print(f"early stopping: {trainer.cfg.monitor} has not improved for {self.patience} epochs "
                  f"(best at epoch {trainer.best_epoch})", file=sys.stderr)  # fmt: skip
