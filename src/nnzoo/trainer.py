"""The Trainer: the one place that knows devices, autocast, clipping, schedules, seeding, progress and checkpoints.

Models only say what their loss is (``compute_loss``) and, when they need more than one optimizer, how to step
(``train_step``). Everything here works the same for every family.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import resource
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from . import checkpoint
from .callbacks import Callback, EarlyStopping, MetricsLogger, ModelCheckpoint, ProgressBar
from .config import TrainConfig
from .data.batches import Batches
from .data.spec import DataSpec, Split
from .errors import UserError
from .models.base import Model


class TrainingDiverged(UserError):
    exit_code = 4


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and PyTorch; ``deterministic`` also asks PyTorch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def usable_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count); macOS lacks the call."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} was asked for, but this PyTorch sees no CUDA GPU; use --device cpu or auto.")
    if name.startswith("cuda:"):
        index, count = name.partition(":")[2], torch.cuda.device_count()
        if not index.isdigit() or int(index) >= count:
            raise UserError(f"--device {name} does not exist: this machine has {count} CUDA GPU(s), cuda:0 to "
                            f"cuda:{count - 1}.")  # fmt: skip
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps was asked for, but MPS is not available here; use --device cpu or auto.")
    return torch.device(name)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the hardware computes it natively, else None (full fp32).

    On CUDA that is every GPU from Ampere on; on CPUs, oneDNN's bf16 kernels need AVX512-BF16 or AMX, where they
    ran SimpleCNN's training step 2.6-3.3x faster than fp32 on 2 cores (bench/cpu_precision.py). Weights, the
    optimizer and the loss stay fp32 (autocast only lowers the matmuls and convolutions).
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        try:
            return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
        except (AttributeError, RuntimeError):
            return None
    return None


class _WarmupCosine:
    """The factor on the learning rate at each step: a linear warm-up, then a half cosine down to ``floor``
    (Loshchilov & Hutter 2017, SGDR; with warm-up and a floor as GPT-2 and nanoGPT's ``get_lr``). A class, not a
    lambda, so the scheduler's state (which saves it) stays plain numbers."""

    def __init__(self, warmup: int, total: int, floor: float):
        self.warmup, self.total, self.floor = warmup, total, floor

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


class Trainer:
    def __init__(
        self,
        model: Model,
        config: TrainConfig | None = None,
        *,
        run_dir: str | os.PathLike | None = None,
        callbacks: Sequence[Callback] = (),
        spec: DataSpec | None = None,
        run_config: dict[str, Any] | None = None,
        progress: bool = True,
    ):
        self.cfg = cfg = config or TrainConfig()
        cfg.validate()
        self.device = resolve_device(cfg.device)
        self.spec = spec
        self.run_config = run_config or {"train": dataclasses.asdict(cfg)}
        seed_everything(cfg.seed, cfg.deterministic)
        if self.device.type == "cpu":
            torch.set_num_threads(cfg.num_threads or usable_cores())
        if self.device.type == "cuda" and not cfg.deterministic:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        self.model = model.to(self.device)
        self.amp_dtype = autocast_dtype(self.device) if cfg.amp else None
        self.channels_last = cfg.channels_last and self.device.type in ("cuda", "cpu")
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if cfg.compile:
            self.model.compile()  # compiles forward in place; state_dict keys stay those of the plain module
        self.optimizers = {name: self._build_optimizer(params) for name, params in model.optimizer_groups().items()}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self._pending_optimizers: dict[str, Any] | None = None  # loaded in fit(), see there
        self._pending_schedulers: dict[str, Any] | None = None
        self._pending_rng: dict[str, Any] | None = None
        self.epoch = 0  # epochs completed
        self.global_step = 0
        self.history: list[dict[str, Any]] = []
        self.best_value: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0
        self.stop_training = False
        self.train_seconds = 0.0
        self.samples_seen_in_epoch = 0
        # (epoch, metrics, outputs) of the latest validation pass: a text corpus's test split *is* its validation
        # tail, and api reuses this instead of a second identical pass over it.
        self.last_validation: tuple[int, dict[str, float], torch.Tensor | None] | None = None
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        self.callbacks: list[Callback] = []
        if progress:
            self.callbacks.append(ProgressBar(every=cfg.log_every))
        if run_dir is not None:
            self.callbacks += [ModelCheckpoint(run_dir), MetricsLogger(run_dir)]
        if cfg.early_stopping_patience:
            self.callbacks.append(EarlyStopping(cfg.early_stopping_patience))
        self.callbacks += list(callbacks)

    # ---- building blocks -------------------------------------------------------------------------------------
    def _build_optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        c = self.cfg
        fused = {"fused": True} if self.device.type == "cuda" else {}
        if c.optimizer == "sgd":
            if c.nesterov and c.momentum <= 0:
                raise UserError("--set nesterov=true needs a positive momentum (--set momentum=0.9).")
            return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov,
                                   weight_decay=c.weight_decay, **fused)  # fmt: skip
        opt = torch.optim.Adam if c.optimizer == "adam" else torch.optim.AdamW
        kwargs: dict[str, Any] = {"betas": tuple(c.betas)} if c.betas is not None else {}
        return opt(params, lr=c.lr, weight_decay=c.weight_decay, **kwargs, **fused)

    def _build_scheduler(self, opt: torch.optim.Optimizer, steps_per_epoch: int) -> Any:
        c = self.cfg
        total = c.epochs * steps_per_epoch
        if c.max_steps:
            total = min(total, c.max_steps)
        total = max(total, 1)
        sched = torch.optim.lr_scheduler
        if c.schedule == "step":
            return sched.StepLR(opt, step_size=max(1, c.step_epochs * steps_per_epoch), gamma=c.step_gamma)
        if c.schedule == "cosine" and (c.warmup_steps or c.min_lr):
            return sched.LambdaLR(opt, _WarmupCosine(c.warmup_steps, total, c.min_lr / c.lr))
        if c.schedule == "cosine":
            return sched.CosineAnnealingLR(opt, T_max=total)
        if c.schedule == "onecycle":
            # Cycling momentum would turn plain SGD (momentum 0, as in the classic example) into momentum SGD.
            cycle = c.optimizer != "sgd" or c.momentum > 0
            return sched.OneCycleLR(opt, max_lr=c.lr, total_steps=total, pct_start=c.pct_start,
                                    cycle_momentum=cycle)  # fmt: skip
        return None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is not None:
            return torch.autocast(self.device.type, dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def batches(self, data: Split | Batches, *, train: bool) -> Batches:
        if isinstance(data, Batches):
            return data
        mean, std = (self.spec.mean, self.spec.std) if self.spec else ((), ())
        size = self.cfg.batch_size if train else self.cfg.eval_batch_size
        return Batches(data, size, shuffle=train, seed=self.cfg.seed, device=self.device, mean=mean, std=std,
                       channels_last=self.channels_last)  # fmt: skip

    # ---- the step ----------------------------------------------------------------------------------------------
    def optimize(self, loss: torch.Tensor, name: str = "main") -> None:
        """Backward, clip, step and schedule one optimizer: what ``Model.train_step`` calls."""
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip_grad_norm:
            params = [p for g in opt.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.cfg.clip_grad_norm)
        opt.step()
        if name in self.schedulers:
            self.schedulers[name].step()

    def _accumulate(self, out: dict[str, torch.Tensor], n: int) -> None:
        # Kept on the device: no host sync per step (``loss.item()`` every step stalls a GPU).
        for k, v in out.items():
            if v.dim() == 0:
                v = v.detach().float() * n
                self._sums[k] = self._sums[k] + v if k in self._sums else v
        self._count += n

    def running_metrics(self) -> dict[str, float]:
        return {k: (v / max(self._count, 1)).item() for k, v in self._sums.items()}

    # ---- fit / evaluate / predict --------------------------------------------------------------------------------
    def fit(self, train: Split | Batches, val: Split | Batches | None = None) -> list[dict[str, Any]]:
        """Train for ``cfg.epochs`` epochs (from where a loaded checkpoint left off); returns the history."""
        cfg = self.cfg
        train_b = self.batches(train, train=True)
        val_b = self.batches(val, train=False) if val is not None and len(val) else None
        steps = len(train_b)
        for name, opt in self.optimizers.items():
            s = self._build_scheduler(opt, steps)
            if s is not None:
                self.schedulers[name] = s
        if self._pending_optimizers:
            # After the schedulers: building one writes its first learning rate into the optimizer.
            for name, state in self._pending_optimizers.items():
                self.optimizers[name].load_state_dict(state)
            for name, state in (self._pending_schedulers or {}).items():
                if name in self.schedulers:
                    self.schedulers[name].load_state_dict(state)
            self._pending_optimizers = self._pending_schedulers = None
        if self._pending_rng is not None:
            checkpoint.restore_rng(self._pending_rng)
            self._pending_rng = None
        self.stop_training = False
        for cb in self.callbacks:
            cb.on_train_begin(self)
        while self.epoch < cfg.epochs and not self.stop_training and not self._out_of_steps():
            self._train_epoch(train_b, val_b, steps)
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.history

    def _out_of_steps(self) -> bool:
        return self.cfg.max_steps is not None and self.global_step >= self.cfg.max_steps

    def _train_epoch(self, train_b: Batches, val_b: Batches | None, steps: int) -> None:
        epoch = self.epoch
        train_b.set_epoch(epoch)
        for cb in self.callbacks:
            cb.on_epoch_begin(self, epoch)
        self.model.train()
        self._sums, self._count, self.samples_seen_in_epoch = {}, 0, 0
        t0 = time.perf_counter()
        for step, batch in enumerate(train_b, 1):
            with self.autocast():
                out = self.model.train_step(batch, self)
            n = len(batch[0])
            self._accumulate(out, n)
            self.samples_seen_in_epoch += n
            self.global_step += 1
            for cb in self.callbacks:
                cb.on_batch_end(self, step, steps)
            if self._out_of_steps():
                break
        logs: dict[str, Any] = {"epoch": epoch + 1, **self.running_metrics()}
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        self.train_seconds += seconds
        if not all(math.isfinite(v) for v in logs.values()):
            raise TrainingDiverged(
                f"Training diverged in epoch {epoch + 1} (loss {logs.get('loss')}): stopped without saving it; "
                "the last good checkpoint is kept. Try a lower --lr or --set clip_grad_norm=1.0."
            )
        if val_b is not None:
            val, outputs = self.evaluate_with_outputs(val_b)
            self.last_validation = (epoch + 1, val, outputs)
            logs.update({f"val_{k}": v for k, v in val.items()})
        for cb in self.callbacks:
            cb.on_evaluate(self, epoch, logs)
        logs["lr"] = self.optimizers["main" if "main" in self.optimizers else next(iter(self.optimizers))] \
            .param_groups[0]["lr"]  # fmt: skip
        logs["epoch_seconds"] = seconds
        logs["samples_per_s"] = self.samples_seen_in_epoch / max(seconds, 1e-9)
        self.epoch = epoch + 1
        self._update_best(logs)
        self.history.append(logs)
        for cb in self.callbacks:
            cb.on_epoch_end(self, epoch, logs)

    def _update_best(self, logs: dict[str, Any]) -> None:
        value = logs.get(self.cfg.monitor)
        if value is None:  # no validation split: the best weights are the latest ones
            self.best_epoch, self.bad_epochs = self.epoch, 0
            return
        better = self.best_value is None or (
            value < self.best_value if self.cfg.monitor.endswith("loss") else value > self.best_value
        )
        if better:
            self.best_value, self.best_epoch, self.bad_epochs = value, self.epoch, 0
        else:
            self.bad_epochs += 1

    def evaluate(self, data: Split | Batches) -> dict[str, float]:
        """Batch-size-weighted means of every scalar ``compute_loss`` returns, in eval mode."""
        return self.evaluate_with_outputs(data)[0]

    @torch.inference_mode()
    def evaluate_with_outputs(self, data: Split | Batches) -> tuple[dict[str, float], torch.Tensor | None]:
        """Like :meth:`evaluate`, also returning the ``"outputs"`` tensor ``compute_loss`` gives (a classifier's
        logits) for every sample, on the CPU: metrics and reports from one pass over the data."""
        batches = self.batches(data, train=False)
        was_training = self.model.training
        self.model.eval()
        sums: dict[str, torch.Tensor] = {}
        kept: list[torch.Tensor] = []
        count = 0
        for batch in batches:
            with self.autocast():
                out = self.model.compute_loss(batch)
            n = len(batch[0])
            for k, v in out.items():
                if v.dim() == 0:
                    sums[k] = sums.get(k, 0) + v.float() * n
            if "outputs" in out:
                kept.append(out["outputs"].float().cpu())
            count += n
        self.model.train(was_training)
        return {k: (v / max(count, 1)).item() for k, v in sums.items()}, torch.cat(kept) if kept else None

    @torch.inference_mode()
    def predict(self, data: Split | Batches | torch.Tensor) -> torch.Tensor:
        """The model's outputs (logits for classifiers) for every sample, on the CPU, in order."""
        if isinstance(data, torch.Tensor):
            data = Split(data, torch.zeros(len(data), dtype=torch.long))
        batches = self.batches(data, train=False)
        was_training = self.model.training
        self.model.eval()
        outs = []
        for x, _ in batches:
            with self.autocast():
                outs.append(self.model(x).float().cpu())
        self.model.train(was_training)
        return torch.cat(outs) if outs else torch.empty(0)

    # ---- state -------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best": {"value": self.best_value, "epoch": self.best_epoch, "bad_epochs": self.bad_epochs},
            "history": self.history,
            "train_seconds": self.train_seconds,
            "rng": checkpoint.capture_rng(),
            "config": self.run_config,
            "spec": self.spec.to_dict() if self.spec else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore everything a run needs to continue exactly as if it had never stopped."""
        self.model.load_state_dict(state["model"])
        self._pending_optimizers = state["optimizers"]
        self._pending_schedulers = state.get("schedulers") or None
        self._pending_rng = state.get("rng")
        self.epoch = state["epoch"]
        self.global_step = state["global_step"]
        best = state["best"]
        self.best_value, self.best_epoch, self.bad_epochs = best["value"], best["epoch"], best["bad_epochs"]
        self.history = list(state["history"])
        self.train_seconds = state.get("train_seconds", 0.0)

    def summary(self) -> dict[str, Any]:
        run = self.history
        epochs = len(run)
        samples = sum(h["samples_per_s"] * h["epoch_seconds"] for h in run)
        seconds = sum(h["epoch_seconds"] for h in run)
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:  # ru_maxrss is in kilobytes on Linux and bytes on macOS
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak = rss / 2**20 if sys.platform == "darwin" else rss / 1024
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else self.device.type
        return {
            "epochs_run": epochs,
            "train_seconds": seconds,
            "seconds_per_epoch": seconds / max(epochs, 1),
            "samples_per_s": samples / max(seconds, 1e-9),
            "peak_memory_mb": peak,
            "device": name,
            "parameters": sum(p.numel() for p in self.model.parameters()),
        }

