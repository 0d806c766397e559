"""What every run needs whether it trains or not: the device, autocast, CPU threads, seeding, the distributed
session, and :class:`Runner`, which puts a model on its device and evaluates or predicts with it.

The Trainer is a Runner that also trains (optimizers, schedules, checkpoints); eval, predict, serve and reports
use a Runner alone, so answering a request builds no optimizer and reseeds no global random stream.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from . import parallel
from ._version import __version__
from .config import TrainConfig
from .data import arrays
from .data.arrays import LoaderBatches
from .data.batches import Batches
from .data.spec import DataSpec, Split
from .errors import UserError
from .models.base import Model
from .parallel import SINGLE, Context


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


def versions() -> str:
    """One line for ``nnzoo --version`` and bug reports: nnzoo's and torch's versions, the CPU kernels torch picked
    (AVX2, AVX512...: they explain most CPU speed differences between machines) and the accelerator, if any."""
    parts = [f"torch {torch.__version__}", f"CPU {torch.backends.cpu.get_cpu_capability()}"]
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        kind = "ROCm" if torch.version.hip else "CUDA"
        parts.append(f"{kind} {torch.version.hip or torch.version.cuda}: {torch.cuda.get_device_name(0)}"
                     + (f" (and {n - 1} more)" if n > 1 else ""))  # fmt: skip
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        parts.append("MPS (Apple GPU)")
    else:
        parts.append("no GPU")
    return f"nnzoo {__version__} ({', '.join(parts)})"


_ALLOCATOR_TUNED = False


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back to the kernel.

    By default every block over a dynamic threshold (128 KiB to 32 MiB) is mapped fresh and unmapped when freed,
    and the top of the heap is trimmed, so a training step's activations (SimpleCNN's first conv output is 11 MB a
    batch of 128) arrive as new pages that the kernel must fault in and zero: 3,000-17,000 page faults a step, and
    SimpleCNN's fp32 step ran 1.3-1.5x slower for it on a 2-core AVX2 machine (batch 128 and 256). Memory held at
    the peak is the same; it is simply not returned between steps. Linux with glibc only (elsewhere, and where
    ``NNZOO_SYSTEM_MALLOC`` is set, nothing is changed); called once per process by the first CPU :class:`Runner`.
    Returns whether the setting was made.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if os.environ.get("NNZOO_SYSTEM_MALLOC") or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        # 1 GiB where glibc allows it (2.36 does), else its documented maximum of 32 MiB.
        mapped = libc.mallopt(m_mmap_threshold, 1 << 30) or libc.mallopt(m_mmap_threshold, 32 << 20)
        _ALLOCATOR_TUNED = bool(mapped and libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):
        return False
    return _ALLOCATOR_TUNED


def resolve_device(name: str, ctx: Context = SINGLE) -> torch.device:
    if ctx.enabled:
        return _distributed_device(name, ctx)
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


def _distributed_device(name: str, ctx: Context) -> torch.device:
    """Under torchrun each process takes one device: cuda:LOCAL_RANK on a GPU machine, else the CPU."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if name == "mps":
        raise UserError("Data-parallel training runs on CPUs (gloo) or CUDA GPUs (NCCL), not on mps; use --device cpu.")
    if name.startswith("cuda:"):
        raise UserError(f"--device {name} names one GPU, but torchrun started {ctx.local_world_size} processes here "
                        "and each takes its own (cuda:LOCAL_RANK); use --device cuda or auto.")  # fmt: skip
    count = torch.cuda.device_count()
    if name == "cuda" and not count:
        raise UserError("--device cuda was asked for, but this PyTorch sees no CUDA GPU; use --device cpu or auto.")
    if ctx.local_world_size > count:  # checked by every process, not only those left without a GPU: all say it
        raise UserError(f"torchrun started {ctx.local_world_size} processes on this machine, but it has {count} "
                        f"CUDA GPU(s): start at most {count} (--nproc_per_node), or use --device cpu.")  # fmt: skip
    return torch.device("cuda", ctx.local_rank)


@contextlib.contextmanager
def distributed_session(cfg: TrainConfig, enabled: bool = True) -> Iterator[Context]:
    """The process group of a run under torchrun, for as long as the ``with`` lasts (also destroyed on error);
    yields this process's Context. A single process (no torchrun, or ``enabled`` False) gets ``SINGLE``."""
    ctx = parallel.from_env(enabled)
    parallel.check_batch_size(cfg.batch_size, ctx.world_size)
    with parallel.process_group(ctx, resolve_device(cfg.device, ctx)):
        yield ctx


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The dtype autocast lowers matmuls and convolutions to on ``device``, or None for full fp32.

    - CUDA, compute capability 8.0 and up (Ampere, Ada, Hopper...): bf16, which these GPUs compute natively. Not
      ``torch.cuda.is_bf16_supported()`` alone: by default it counts emulation as support, and a T4 (7.5, Colab's
      free GPU) would be handed bf16 that its tensor cores cannot run.
    - CUDA 7.x (Volta V100, Turing T4 and RTX 20xx): fp16, whose tensor cores these GPUs have; fp16's narrow range
      needs loss scaling, which the Trainer does with a GradScaler (see ``Trainer.optimize``).
    - CUDA below 7.0 (Pascal and older): fp32; they have no tensor cores for fp16 to pay off on.
    - CPUs: bf16 where oneDNN's bf16 kernels are native (AVX512-BF16 or AMX), where they ran SimpleCNN's training
      step 2.6-3.3x faster than fp32 on 2 cores (bench/cpu_precision.py); else fp32.

    Weights, the optimizer and the loss stay fp32 (autocast only lowers the matmuls and convolutions).
    """
    if device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        if capability >= (8, 0) and _native_cuda_bf16():
            return torch.bfloat16
        return torch.float16 if capability >= (7, 0) else None
    if device.type == "cpu":
        try:
            return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
        except (AttributeError, RuntimeError):
            return None
    return None


def _native_cuda_bf16() -> bool:
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # PyTorch before 2.3 has no including_emulation, and counts no emulation
        return torch.cuda.is_bf16_supported()


class Runner:
    """A model on its device, with the run's autocast, memory format and CPU threads: ``evaluate``,
    ``evaluate_with_outputs`` and ``predict`` over a split. Under torchrun each rank evaluates its share."""

    def __init__(self, model: Model, config: TrainConfig | None = None, *, spec: DataSpec | None = None,
                 distributed: bool = True):  # fmt: skip
        self.cfg = cfg = config or TrainConfig()
        cfg.validate()
        self.dist = parallel.from_env(distributed)
        self.device = resolve_device(cfg.device, self.dist)
        if self.device.type == "cuda" and self.dist.enabled:
            torch.cuda.set_device(self.device)
        self.spec = spec
        if self.device.type == "cpu":  # processes on one machine share its cores
            torch.set_num_threads(cfg.num_threads or max(1, usable_cores() // self.dist.local_world_size))
            keep_freed_memory()
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

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is not None:
            return torch.autocast(self.device.type, dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def batches(self, data: Any, *, train: bool, shard: bool = False) -> Batches | LoaderBatches:
        """Batches of ``data`` (any form data/arrays.py takes); with ``shard`` in a distributed run, this rank's
        share of them."""
        if isinstance(data, (Batches, LoaderBatches)):
            return data
        rank, world = (self.dist.rank, self.dist.world_size) if shard else (0, 1)
        mean, std = (self.spec.mean, self.spec.std) if self.spec else ((), ())
        size = self.cfg.batch_size if train else self.cfg.eval_batch_size
        name = "the training data" if train else "the evaluation data"
        split = arrays.in_memory(data, name, keep_pixels=bool(mean))
        if split is None:  # a Dataset or a DataLoader
            return arrays.as_batches(data, name, batch_size=size, shuffle=train, seed=self.cfg.seed,
                                     device=self.device, rank=rank, world_size=world, keep_pixels=bool(mean))  # fmt: skip
        return Batches(split, size, shuffle=train, seed=self.cfg.seed, device=self.device, mean=mean, std=std,
                       channels_last=self.channels_last, rank=rank, world_size=world, even=train)  # fmt: skip

    def _sum_over_ranks(self, sums: dict[str, float], count: int) -> dict[str, float]:
        parts = parallel.gather((sums, count), self.dist)
        total = sum(c for _, c in parts)
        keys = dict.fromkeys(k for s, _ in parts for k in s)  # a rank with no samples has no keys
        return {k: sum(s.get(k, 0.0) for s, _ in parts) / max(total, 1) for k in keys}

    def evaluate(self, data: Any) -> dict[str, float]:
        """Batch-size-weighted means of every scalar ``compute_loss`` returns, in eval mode."""
        return self.evaluate_with_outputs(data)[0]

    @torch.inference_mode()
    def evaluate_with_outputs(self, data: Any) -> tuple[dict[str, float], torch.Tensor | None]:
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
        outputs = torch.cat(kept) if kept else None
        if batches.world_size == 1:
            return {k: (v / max(count, 1)).item() for k, v in sums.items()}, outputs
        # This rank saw one contiguous chunk of the split: add the sums, and join the outputs in rank order.
        metrics = self._sum_over_ranks({k: v.item() for k, v in sums.items()}, count)
        parts = [o for o in parallel.gather(outputs, self.dist) if o is not None]
        return metrics, torch.cat(parts) if parts else None

    @torch.inference_mode()
    def predict(self, data: Any) -> torch.Tensor:
        """The model's outputs (logits for classifiers) for every sample, on the CPU, in order: of inputs alone (an
        array or tensor, typed as for training) or of any form ``batches`` takes (their targets unused)."""
        if arrays.is_array(data):
            x = arrays.features(
                arrays.to_tensor(data, "the input"), "the input", keep_pixels=bool(self.spec and self.spec.mean)
            )
            data = Split(x, torch.zeros(len(x), dtype=torch.long))
        batches = self.batches(data, train=False)
        was_training = self.model.training
        self.model.eval()
        outs = []
        for x, _ in batches:
            with self.autocast():
                outs.append(self.model(x).float().cpu())
        self.model.train(was_training)
        return torch.cat(outs) if outs else torch.empty(0)
