"""Hooks around the training loop, with Keras's names: progress, metrics logs (per epoch and every few steps),
checkpoints, early stopping, TensorBoard.

The trainer keeps every piece of state a resumed run needs (history, best value, patience counter), so callbacks
hold none that would have to be checkpointed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import torch

from . import checkpoint, files
from .config import TENSORBOARD_MISSING
from .errors import UserError
from .notebook import in_notebook

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
    # After a run's final test (training.py): the numbers of its metrics.json and the report files just written.
    def on_report(self, trainer: Trainer, metrics: dict[str, Any], paths: list[Path]) -> None: ...


def _fmt(logs: Logs) -> str:
    parts = []
    for k, v in logs.items():
        if k in ("epoch", "lr", "epoch_seconds", "samples_per_s") or not isinstance(v, float):
            continue
        parts.append(f"{k} {v:.4f}" if "accuracy" not in k else f"{k} {100 * v:.2f}%")
    return "  ".join(parts)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _lr(trainer: Trainer) -> float:
    """The learning rate now: the main optimizer's (a GAN's first, the discriminator's); a float, no sync."""
    opts = trainer.optimizers
    return opts["main" if "main" in opts else next(iter(opts))].param_groups[0]["lr"]


class ProgressBar(Callback):
    """Progress as tqdm draws it (tqdm.auto: a widget in Jupyter, a bar with its ETA on a terminal), then one
    summary line per epoch and a final "done:" line.

    On any other stream (a log file, CI) there is no bar, only plain lines, so a log holds no ``\r`` or escape
    codes: the line per epoch and, in an epoch that runs long, a progress line every ``plain_seconds``. The bar is
    refreshed every ``every`` steps (the run's log_every) and no more often, because reading the running means is
    a host sync that would stall a GPU every step.
    """

    def __init__(self, stream: TextIO | None = None, every: int = 50, plain_seconds: float = 60.0):
        self.stream = stream or sys.stderr
        self.live = in_notebook() or _isatty(self.stream)
        self.every, self.plain_seconds = every, plain_seconds
        self.bar: Any = None
        self.t0 = self.last_line = 0.0

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        self.t0 = self.last_line = time.perf_counter()

    def on_batch_end(self, trainer: Trainer, step: int, steps: int) -> None:
        if self.live and self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=steps, desc=f"epoch {trainer.epoch + 1}/{trainer.cfg.epochs}", unit="step",
                            file=self.stream, leave=False, dynamic_ncols=True, mininterval=0, miniters=1)  # fmt: skip
        if step % self.every and step != steps:
            return
        now = time.perf_counter()
        if not self.live and (step == steps or now - self.last_line < self.plain_seconds):
            return  # a plain stream: only a line now and then, and the epoch's own line says the rest
        running = trainer.running_metrics()  # one host sync per refresh, not per step
        rate = f"{trainer.samples_seen_in_epoch / max(now - self.t0, 1e-9):,.0f} samples/s"
        if self.bar is not None:
            self.bar.set_postfix_str(f"{_fmt(running)}  {rate}", refresh=False)
            self.bar.update(step - self.bar.n)
            return
        self.last_line = now
        eta = (steps - step) * (now - self.t0) / step
        self.stream.write(f"epoch {trainer.epoch + 1}/{trainer.cfg.epochs}  step {step}/{steps} "
                          f"({100 * step / steps:.0f}%)  {_fmt(running)}  {rate}  epoch ends in {_duration(eta)}\n")  # fmt: skip
        self.stream.flush()

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()  # leave=False: the bar goes, the epoch's line takes its place
            self.bar = None

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        self._close_bar()
        self.stream.write(f"epoch {epoch + 1}/{trainer.cfg.epochs}  {_fmt(logs)}  lr {logs['lr']:.3g}  "
                          f"{logs['samples_per_s']:,.0f} samples/s  {logs['epoch_seconds']:.1f}s\n")  # fmt: skip
        self.stream.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        self._close_bar()
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


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a ``.jsonl`` file, one a line; a line a kill cut short (the last, half written) is
    skipped. A missing file reads as no lines."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


class StepLogger(Callback):
    """``steps.jsonl``: every ``every`` optimizer steps (the run's log_every) and at the end of each epoch, one line
    with the global step, the epoch, how far into it (``epoch_fraction``), the means of the loss and the model's
    other scalars over the steps since the line before, the learning rate and the samples per second: a real curve
    for runs of one or a few epochs (every GPT recipe), where metrics.jsonl has one or two points.

    One host sync per line (the means of that window, read at once). In a distributed run these are rank 0's
    samples, as the progress bar's are. On resume the lines past the checkpoint's global step (steps trained after
    it, and lost with the kill) are dropped, so the file agrees with the weights it sits beside. ``listeners`` get
    each line as it is written (the TensorBoard callback).
    """

    def __init__(self, run_dir: str | Path, every: int = 50):
        self.path = Path(run_dir) / "steps.jsonl"
        self.every = every
        self.listeners: list[Callable[[Logs], None]] = []
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        self._time = 0.0

    def on_train_begin(self, trainer: Trainer) -> None:
        kept = [r for r in read_jsonl(self.path) if isinstance(r.get("step"), int) and r["step"] <= trainer.global_step]
        files.atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        self._sums, self._count, self._time = {}, 0, time.perf_counter()  # the trainer's sums restart each epoch

    def on_batch_end(self, trainer: Trainer, step: int, steps: int) -> None:
        last = step == steps or trainer.global_step == trainer.cfg.max_steps
        if trainer.global_step % self.every and not last:
            return
        sums, count = trainer.running_sums()
        n = count - self._count
        if n <= 0:
            return
        keys = list(sums)
        window = torch.stack([(sums[k] - self._sums[k]) if k in self._sums else sums[k] for k in keys]) / n
        values = window.tolist()  # the one sync of this line
        now = time.perf_counter()
        record: Logs = {"step": trainer.global_step, "epoch": trainer.epoch + 1, "epoch_fraction": step / steps,
                        **dict(zip(keys, values)), "lr": _lr(trainer),
                        "samples_per_s": n * trainer.dist.world_size / max(now - self._time, 1e-9)}  # fmt: skip
        self._sums, self._count, self._time = dict(sums), count, now
        files.append_text(self.path, json.dumps(record) + "\n")
        for listen in self.listeners:
            listen(record)


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


def _hparams(run_config: dict[str, Any]) -> dict[str, Any]:
    """A run's settings as TensorBoard's hparams plugin takes them: flat names (train.lr, model_args.hidden) with
    numbers, text and booleans; lists and unset values as text, so runs can be compared side by side."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (bool, int, float, str)):
            flat[prefix] = value
        else:
            flat[prefix] = "none" if value is None else str(value)

    walk("", {k: v for k, v in run_config.items() if k not in ("description", "expected")})
    return flat


class TensorBoard(Callback):
    """``RUN_DIR/tensorboard/`` (``--tensorboard`` or ``--set train.tensorboard=true``; ``tensorboard --logdir
    runs`` shows every run): the lines of steps.jsonl as ``step/*`` scalars, each epoch's metrics as ``train/*``
    and ``val/*`` (at the global step the epoch ended, so both share one axis), and after the final test the
    report pictures as images, metrics.json as text, and the settings with the test metrics in the hparams tab.

    It adds no host sync of its own: the step scalars are the values StepLogger has already read. On resume the
    events past the checkpoint's step are purged (SummaryWriter's ``purge_step``), as steps.jsonl drops its lines.
    """

    def __init__(self, run_dir: str | Path, steps: StepLogger | None = None):
        if importlib.util.find_spec("tensorboard") is None:
            raise UserError(TENSORBOARD_MISSING)
        self.dir = Path(run_dir) / "tensorboard"
        self.writer: Any = None
        if steps is not None:
            steps.listeners.append(self._step)

    def _open(self, purge_step: int | None = None) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.dir), purge_step=purge_step)

    def on_train_begin(self, trainer: Trainer) -> None:
        self.writer = self._open(purge_step=trainer.global_step + 1 if trainer.global_step else None)

    def _step(self, record: Logs) -> None:
        if self.writer is None:
            return
        for k, v in record.items():
            if k not in ("step", "epoch", "epoch_fraction") and isinstance(v, (int, float)):
                self.writer.add_scalar(f"step/{k}", v, record["step"])

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: Logs) -> None:
        for k, v in logs.items():
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(f"val/{k[4:]}" if k.startswith("val_") else f"train/{k}", v, trainer.global_step)
        self.writer.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def on_report(self, trainer: Trainer, metrics: dict[str, Any], paths: list[Path]) -> None:
        import numpy as np
        from PIL import Image

        writer, step = self._open(), trainer.global_step  # a second event file beside the first: TensorBoard reads both
        try:
            for path in map(Path, paths):
                if path.suffix.lower() == ".png":
                    with Image.open(path) as im:
                        writer.add_image(f"report/{path.stem}", np.asarray(im.convert("RGB")), step,
                                         dataformats="HWC")  # fmt: skip
                elif path.suffix.lower() == ".txt":  # a language model's sample: as text, in a code block
                    writer.add_text(f"report/{path.stem}", "```\n" + path.read_text(encoding="utf-8") + "\n```", step)
            writer.add_text("run/metrics.json", "```\n" + json.dumps(metrics, indent=2) + "\n```", step)
            test = {f"hparam/test_{k}": float(v) for k, v in metrics.get("test", {}).items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)}  # fmt: skip
            writer.add_hparams(_hparams(trainer.run_config), test, run_name=".", global_step=step)
        finally:
            writer.close()
