"""The Trainer: the one place that knows devices, autocast, clipping, schedules, seeding, progress, checkpoints and
data-parallel training.

Models only say what their loss is (``compute_loss``) and, when they need more than one optimizer, how to step
(``train_step``). Everything here works the same for every family, in one process or in several under torchrun
(see ``fit`` and parallel.py).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

try:
    import resource  # peak memory of this process; Unix only
except ImportError:  # Windows: `import nnzoo` must still work there
    resource = None

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from . import checkpoint, parallel
from .callbacks import Callback, EarlyStopping, MetricsLogger, ModelCheckpoint, ProgressBar, StepLogger, TensorBoard
from .config import TrainConfig
from .data.arrays import spec_for
from .data.batches import Batches
from .data.spec import DataSpec
from .errors import UserError
from .models.base import Model
from .models.module import ModuleModel, describe
from .runtime import (  # noqa: F401  (nnzoo.trainer's names before runtime.py; nnzoo re-exports seed_everything)
    Runner,
    autocast_dtype,
    distributed_session,
    resolve_device,
    seed_everything,
    usable_cores,
)


def as_model(model: Model | nn.Module, loss: Any, module_args: dict[str, Any] | None) -> Model:
    """An nnzoo Model as it is; any other nn.Module with its loss (models/module.py)."""
    if isinstance(model, Model):
        if loss is not None:
            raise UserError(f"loss= is for a plain nn.Module; {type(model).__name__} is an nnzoo Model, which "
                            "computes its own loss (compute_loss).")  # fmt: skip
        if module_args is not None:
            model.module_args = dict(module_args)
        return model
    return ModuleModel(model, loss, module_args)


def python_run_config(model: Model, cfg: TrainConfig) -> dict[str, Any]:
    """What the run folder of a Trainer built in Python records of its model, so ``load_run`` can rebuild it: a
    registry model's name and arguments (create_model notes them), else the class by its import name."""
    if getattr(model, "registry_name", None):
        return {"model": model.registry_name, "model_args": model.registry_args, "train": dataclasses.asdict(cfg)}
    return {"model": "module", "recipe": type(getattr(model, "module", model)).__name__,
            "train": dataclasses.asdict(cfg), "module": describe(model)}  # fmt: skip


class TrainingDiverged(UserError):
    exit_code = 4


class _LossOf(nn.Module):
    """``compute_loss`` as a module's forward, so DistributedDataParallel wraps the call that builds the loss (DDP
    prepares its gradient all-reduce in its own forward; ``Model.forward`` alone returns logits, not the loss)."""

    def __init__(self, model: Model):
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        return self.model.compute_loss(batch)


def _total_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """The optimizer steps a run of ``cfg`` takes: what a schedule is laid out over."""
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    return max(total, 1)


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


class Trainer(Runner):
    """Trains a Model; under torchrun (WORLD_SIZE > 1 in the environment) with DistributedDataParallel.

    Data parallel: every process holds the whole model and data; each step every rank takes its share of the same
    global batch of ``batch_size`` samples (data/batches.py), and the gradients are averaged across ranks before
    the optimizer steps, so N processes take the steps one process would with the same batch size (up to float
    rounding; batch norm's statistics are per rank, as in plain DDP). Rank 0 runs the callbacks (progress,
    metrics.jsonl, checkpoints, early stopping: its decision to stop reaches every rank); metrics are summed across
    ranks first. ``fit`` initialises the process group if no one has (api.train does, for its whole run) and then
    destroys it when it returns or fails. ``distributed=False`` trains in this process alone even under torchrun.
    """

    def __init__(
        self,
        model: Model | nn.Module,
        config: TrainConfig | None = None,
        *,
        loss: str | Callable[..., torch.Tensor] | None = None,
        module_args: dict[str, Any] | None = None,
        run_dir: str | os.PathLike | None = None,
        callbacks: Sequence[Callback] = (),
        spec: DataSpec | None = None,
        run_config: dict[str, Any] | None = None,
        progress: bool = True,
        distributed: bool = True,
    ):
        model = as_model(model, loss, module_args)
        super().__init__(model, config, spec=spec, distributed=distributed)
        cfg = self.cfg
        parallel.check_batch_size(cfg.batch_size, self.dist.world_size)
        self.run_config = run_config or python_run_config(model, cfg)
        seed_everything(cfg.seed, cfg.deterministic)
        self.optimizers = {name: self._build_optimizer(params) for name, params in model.optimizer_groups().items()}
        # fp16 autocast (CUDA 7.x, see runtime.autocast_dtype) needs loss scaling: one GradScaler per optimizer, so
        # a GAN's discriminator and generator each skip their own overflowing steps. Disabled ones do nothing.
        fp16 = self.amp_dtype == torch.float16
        self.scalers = {name: torch.amp.GradScaler(self.device.type, enabled=fp16) for name in self.optimizers}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self._pending_optimizers: dict[str, Any] | None = None  # loaded in fit(), see there
        self._pending_schedulers: dict[str, Any] | None = None
        self._pending_rng: dict[str, Any] | None = None
        self._pending_config: TrainConfig | None = None  # the settings a loaded checkpoint was trained with
        self._pending_peer_rng: dict[str, Any] | None = None
        self._peer_rng: list[dict[str, torch.Tensor]] | None = None  # every rank's RNG at the last epoch end
        self._ddp: DistributedDataParallel | None = None  # the model wrapped, only while a distributed fit runs
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
        # tail, and training's final test reuses this instead of a second identical pass over it.
        self.last_validation: tuple[int, dict[str, float], torch.Tensor | None] | None = None
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        # Callbacks print and write files: in a distributed run, rank 0's job alone.
        self.callbacks: list[Callback] = []
        if self.dist.is_main:
            if progress:
                self.callbacks.append(ProgressBar(every=cfg.log_every))
            if run_dir is not None:
                steps = StepLogger(run_dir, cfg.log_every)
                self.callbacks += [ModelCheckpoint(run_dir), MetricsLogger(run_dir), steps]
                if cfg.tensorboard:
                    self.callbacks.append(TensorBoard(run_dir, steps))
            if cfg.early_stopping_patience:
                self.callbacks.append(EarlyStopping(cfg.early_stopping_patience, announce=progress))
            self.callbacks += list(callbacks)

    # ---- building blocks -------------------------------------------------------------------------------------
    def _build_optimizer(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        c = self.cfg
        if not params:
            raise UserError(f"{type(getattr(self.model, 'module', self.model)).__name__} has no trainable parameters "
                            "(none with requires_grad): there is nothing to train.")  # fmt: skip
        # The fused kernels update every parameter in one pass. On the CPU PyTorch would otherwise loop over the
        # tensors one by one: AdamW for the 4-layer GPT of shakespeare-char-gpt took 1.9 ms a step that way, 0.7 ms
        # fused (a 36 ms step, 2 cores).
        fused = {"fused": True} if self.device.type in ("cuda", "cpu") else {}
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
        total = _total_steps(c, steps_per_epoch)
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

    # ---- the step ----------------------------------------------------------------------------------------------
    def optimize(self, loss: torch.Tensor, name: str = "main") -> None:
        """Backward, clip, step and schedule one optimizer: what ``Model.train_step`` calls.

        Under fp16 autocast the loss is scaled before the backward (small gradients would underflow fp16), the
        gradients unscaled before clipping (the norm is the true one), and the step skipped when they overflowed
        (the scale then halves); with its scaler disabled (bf16, fp32) each call is exactly the plain one.
        """
        opt, scaler = self.optimizers[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        params = [p for g in opt.param_groups for p in g["params"]]
        if self.dist.enabled and self._ddp is None:
            # A model with its own train_step (a GAN: two optimizers, two backwards, D frozen in G's): DDP syncs
            # only one backward per forward through it, so average this optimizer's gradients here instead.
            parallel.average_gradients(params, self.dist.world_size)
        if self.cfg.clip_grad_norm:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, self.cfg.clip_grad_norm)
        scaler.step(opt)
        scaler.update()
        if name in self.schedulers:
            self.schedulers[name].step()

    def _accumulate(self, out: dict[str, torch.Tensor], n: int) -> None:
        # Kept on the device: no host sync per step (``loss.item()`` every step stalls a GPU).
        for k, v in out.items():
            if v.dim() == 0:
                v = v.detach().float() * n
                self._sums[k] = self._sums[k] + v if k in self._sums else v
        self._count += n

    def running_sums(self) -> tuple[dict[str, torch.Tensor], int]:
        """The epoch's sums so far (each scalar times its batch's samples), on the device, and the sample count:
        a window's means are the difference of two readings (steps.jsonl), with no sync until they are read."""
        return self._sums, self._count

    def running_metrics(self) -> dict[str, float]:
        """The epoch's means so far, over this rank's samples (the live progress bar shows rank 0's)."""
        return {k: (v / max(self._count, 1)).item() for k, v in self._sums.items()}

    def _epoch_metrics(self) -> dict[str, float]:
        """The epoch's means over every rank's samples."""
        if not self.dist.enabled:
            return self.running_metrics()
        return self._sum_over_ranks({k: v.item() for k, v in self._sums.items()}, self._count)

    def _train_step(self, batch: Any) -> dict[str, torch.Tensor]:
        if self._ddp is not None:  # Model.train_step, with the forward through DDP so it averages the gradients
            out = self._ddp(batch)
            self.optimize(out["loss"])
            return out
        if self.dist.enabled:  # as DDP does before every forward: rank 0's buffers (batch norm's statistics)
            parallel.broadcast_state(self.model, buffers_only=True)
        return self.model.train_step(batch, self)

    def _start_data_parallel(self, peers: dict[str, Any] | None) -> None:
        """Wrap the model for this fit. Models with the default train_step go through DDP; the others (their own
        train_step, several optimizers) get rank 0's weights now and averaged gradients in ``optimize``."""
        if type(self.model).train_step is Model.train_step:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._ddp = DistributedDataParallel(_LossOf(self.model), device_ids=ids)  # broadcasts rank 0's weights
        else:
            parallel.broadcast_state(self.model)
        if not self.dist.rank:
            return
        # Dropout masks and a GAN's noise must differ between ranks, as between the samples of one batch: rank 0
        # keeps the run's (checkpointed) stream; the others resume theirs, or start one from (seed, rank, step).
        if peers and peers["world_size"] == self.dist.world_size:
            self._set_rng(peers["states"][self.dist.rank])
        else:
            seq = np.random.SeedSequence([self.cfg.seed, self.dist.rank, self.global_step])
            torch.manual_seed(int(seq.generate_state(1)[0]))

    def _rng(self) -> dict[str, torch.Tensor]:
        out = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            out["cuda"] = torch.cuda.get_rng_state(self.device)
        return out

    def _set_rng(self, state: dict[str, torch.Tensor]) -> None:
        torch.set_rng_state(state["torch"])
        if "cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.device)

    # ---- fit / evaluate / predict --------------------------------------------------------------------------------
    def fit(self, train: Any, val: Any = None) -> list[dict[str, Any]]:
        """Train for ``cfg.epochs`` epochs (from where a loaded checkpoint left off); returns the history.

        ``train`` and ``val``: an ``(x, y)`` pair of numpy arrays or tensors, a Split, a torch Dataset, a
        DataLoader (used as it is) or Batches (see data/arrays.py)."""
        with parallel.process_group(self.dist, self.device):
            try:
                return self._fit(train, val)
            finally:
                self._ddp = None

    def _fit(self, train: Any, val: Any) -> list[dict[str, Any]]:
        train_b = self.batches(train, train=True, shard=True)
        val_b = self.batches(val, train=False, shard=True) if val is not None else None
        if val_b is not None and not len(val_b):
            val_b = None
        if self.spec is None:  # data given in Python: its shape and classes, for the run folder and predict
            self.spec = spec_for(train_b, self.model.task)
            if self.model.task is None:  # your module with a loss of its own: the task its data implies
                self.model.task = self.spec.task
        for b in (train_b, val_b):
            if b is not None and (b.rank, b.world_size) != (self.dist.rank, self.dist.world_size):
                raise ValueError(f"fit was given Batches for rank {b.rank} of {b.world_size} in rank "
                                 f"{self.dist.rank} of {self.dist.world_size}: give it Splits, or Batches made "
                                 "with this rank= and world_size= (and even=True for training).")  # fmt: skip
        steps = len(train_b)
        self._start_schedules(steps)
        if self._pending_rng is not None:
            checkpoint.restore_rng(self._pending_rng)
            self._pending_rng = None
        peers, self._pending_peer_rng = self._pending_peer_rng, None
        if self.dist.enabled:
            self._start_data_parallel(peers)
        self.stop_training = False
        for cb in self.callbacks:
            cb.on_train_begin(self)
        while not self.done() and not self.stop_training:
            self._train_epoch(train_b, val_b, steps)
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.history

    def _start_schedules(self, steps: int) -> None:
        """Build the schedulers and, on resume, load the optimizers' state (moments, step counts).

        The rule when resuming: if the settings that shape the schedule (see ``_schedule_key``) are those the run
        was saved with, the saved scheduler state continues exactly. If --epochs, --max-steps, --lr or another of
        them changed, the learning rate follows the schedule a run started with the new settings would follow,
        from the current step on (the optimizers' moments kept): the schedule is built anew and stepped to
        ``global_step``. A onecycle schedule cannot be stretched or shrunk once started (its one cycle would jump
        back up): that is refused.
        """
        pending, self._pending_optimizers = self._pending_optimizers, None
        saved_states, self._pending_schedulers = self._pending_schedulers or {}, None
        saved_cfg, self._pending_config = self._pending_config, None
        rebuild = bool(pending) and saved_cfg is not None and \
            self._schedule_key(saved_cfg, steps) != self._schedule_key(self.cfg, steps)  # fmt: skip
        if rebuild:
            self._check_rebuild(saved_cfg, steps)
        for name, opt in self.optimizers.items():
            if rebuild:  # the new learning rate, before the new scheduler reads it
                opt.load_state_dict(pending[name])
                for group in opt.param_groups:
                    group["lr"] = self.cfg.lr
                    group.pop("initial_lr", None)
            s = self._build_scheduler(opt, steps)
            if s is None:
                continue
            self.schedulers[name] = s
            if rebuild:
                with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": meant here
                    warnings.simplefilter("ignore", UserWarning)
                    for _ in range(self.global_step):
                        s.step()
        if pending and not rebuild:
            # After the schedulers: building one writes its first learning rate into the optimizer.
            for name, state in pending.items():
                self.optimizers[name].load_state_dict(state)
            for name, state in saved_states.items():
                if name in self.schedulers:
                    self.schedulers[name].load_state_dict(state)

    @staticmethod
    def _schedule_key(cfg: TrainConfig, steps: int) -> tuple:
        """Everything the learning rate of every step depends on."""
        shape = {"step": (cfg.step_epochs, cfg.step_gamma), "onecycle": (cfg.pct_start,),
                 "cosine": (cfg.warmup_steps, cfg.min_lr)}.get(cfg.schedule, ())  # fmt: skip
        return cfg.schedule, cfg.lr, _total_steps(cfg, steps), shape

    def _check_rebuild(self, saved: TrainConfig, steps: int) -> None:
        if self.cfg.schedule != "onecycle":
            return
        if saved.schedule != "onecycle":
            raise UserError(f"This run was trained with the {saved.schedule} schedule; a onecycle schedule cannot "
                            "begin in the middle of a run: start a new run for it.")  # fmt: skip
        was, now = _total_steps(saved, steps), _total_steps(self.cfg, steps)
        if was != now:
            raise UserError(f"This run's onecycle schedule was laid out for {was} steps and cannot become {now} "
                            "once started: resume with the --epochs and --max-steps it was started with, or start "
                            "a new run.")  # fmt: skip

    def done(self) -> bool:
        """Whether training has done all its settings ask for (epochs, max_steps)."""
        return self.epoch >= self.cfg.epochs or self._out_of_steps()

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
                out = self._train_step(batch)
            n = len(batch[0])
            self._accumulate(out, n)
            self.samples_seen_in_epoch += n * self.dist.world_size  # every rank takes an equal share
            self.global_step += 1
            for cb in self.callbacks:
                cb.on_batch_end(self, step, steps)
            if self._out_of_steps():
                break
        logs: dict[str, Any] = {"epoch": epoch + 1, **self._epoch_metrics()}
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        self.train_seconds += seconds
        if not all(math.isfinite(v) for v in logs.values()):
            raise TrainingDiverged(
                f"Training diverged in epoch {epoch + 1} (loss {logs.get('loss')}): stopped without saving it; "
                "the last good checkpoint is kept. Try a lower --lr or --set clip_grad_norm=1.0."
            )
        if self.dist.enabled:  # rank 0's batch norm statistics everywhere: for validation, and in step at epoch end
            parallel.broadcast_state(self.model, buffers_only=True)
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
        if self.dist.enabled:  # for rank 0's checkpoint: the others' random streams, so a resume continues them
            self._peer_rng = parallel.gather(self._rng(), self.dist)
        for cb in self.callbacks:
            cb.on_epoch_end(self, epoch, logs)
        if self.dist.enabled:  # rank 0's callbacks decide (early stopping); the others wait for its checkpoint
            self.stop_training = parallel.broadcast(self.stop_training, self.dist)

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

    # ---- state -------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items() if s.is_enabled()},  # fp16's loss scales
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best": {"value": self.best_value, "epoch": self.best_epoch, "bad_epochs": self.bad_epochs},
            "history": self.history,
            "train_seconds": self.train_seconds,
            "rng": checkpoint.capture_rng(),
            # Ranks 1.. of a distributed run: their random streams (rank 0's is "rng"); resumed at the same size.
            "peer_rng": {"world_size": self.dist.world_size, "states": self._peer_rng} if self._peer_rng else None,
            "config": self.run_config,
            "spec": self.spec.to_dict() if self.spec else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore everything a run needs to continue exactly as if it had never stopped."""
        self.model.load_state_dict(state["model"])
        self._pending_optimizers = state["optimizers"]
        self._pending_schedulers = state.get("schedulers") or None
        for name, scale in (state.get("scalers") or {}).items():  # a run saved under fp16, resumed under fp16
            if name in self.scalers and self.scalers[name].is_enabled():
                self.scalers[name].load_state_dict(scale)
        saved = (state.get("config") or {}).get("train")
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        self._pending_config = dataclasses.replace(self.cfg, **{k: v for k, v in saved.items() if k in known}) \
            if saved else None  # fmt: skip
        self._pending_rng = state.get("rng")
        self._pending_peer_rng = state.get("peer_rng")
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
        elif resource is not None:  # ru_maxrss is in kilobytes on Linux and bytes on macOS
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak = rss / 2**20 if sys.platform == "darwin" else rss / 1024
        else:
            peak = None  # not measured (Windows has no getrusage); None, since NaN is not JSON (metrics.json, serve)
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else self.device.type
        return {
            "epochs_run": epochs,
            "train_seconds": seconds,
            "seconds_per_epoch": seconds / max(epochs, 1),
            "samples_per_s": samples / max(seconds, 1e-9),
            "peak_memory_mb": peak,
            "device": name,
            "processes": self.dist.world_size,
            "parameters": sum(p.numel() for p in self.model.parameters()),
        }
