"""Data-parallel training across processes started by torchrun: who this process is, the process group, and the
few collectives the trainer needs. The trainer decides what to do with them (trainer.py); nothing else imports
``torch.distributed``.

torchrun starts one process per device and tells each its place in the environment (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, MASTER_ADDR/PORT); ``init_process_group("env://")`` reads the rest. Without those variables,
or with WORLD_SIZE 1, everything here is a no-op and a run is an ordinary single process.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .errors import UserError


@dataclass(frozen=True)
class Context:
    """This process's place in a data-parallel run; the defaults are a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0  # the rank on this machine: which GPU is ours
    local_world_size: int = 1  # processes on this machine: they share its CPU cores

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 prints, logs and writes files; the others compute and wait."""
        return self.rank == 0


SINGLE = Context()


def from_env(enabled: bool = True) -> Context:
    """The context torchrun describes in the environment; a single process without it (or when not ``enabled``)."""
    if not enabled:
        return SINGLE
    env = os.environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        if world <= 1:
            return SINGLE
        rank, local = int(env["RANK"]), int(env["LOCAL_RANK"])
        local_world = int(env.get("LOCAL_WORLD_SIZE", world))
    except (KeyError, ValueError):
        raise UserError("WORLD_SIZE is set but RANK or LOCAL_RANK is missing or not a number: start distributed "
                        "runs with torchrun (or nnzoo train --nproc N).") from None  # fmt: skip
    return Context(rank, world, local, local_world)


def check_batch_size(batch_size: int, world_size: int) -> None:
    """The recipe's batch size is the global batch: every optimizer step averages the gradient over that many
    samples, split evenly across the processes, so a run in N processes takes the same steps as one process."""
    if world_size > 1 and batch_size % world_size:
        raise UserError(f"--batch-size {batch_size} is the global batch and must divide evenly across the "
                        f"{world_size} processes (each takes batch_size / {world_size}); choose a multiple of "
                        f"{world_size}.")  # fmt: skip


# How many process groups this process has made: every rank makes the same ones in the same order, so the count
# names each group's keys in torchrun's store. With the same keys, a second group (a second fit in one script)
# can read the first one's stale addresses and hang or fail to connect, as measured with plain env:// init.
_groups_made = 0


@contextlib.contextmanager
def process_group(ctx: Context, device: torch.device) -> Iterator[None]:
    """Initialise the default process group for ``ctx`` (gloo on CPUs, NCCL on CUDA) unless one exists, and
    destroy the one made here on the way out, also on error. A no-op for a single process."""
    global _groups_made
    if not ctx.enabled or dist.is_initialized():
        yield
        return
    try:
        store, rank, world = next(dist.rendezvous("env://"))  # torchrun's store, from MASTER_ADDR/PORT
    except (ValueError, RuntimeError) as e:
        raise UserError(f"Could not reach the other processes ({e}); start distributed runs with torchrun.") from None
    store = dist.PrefixStore(f"nnzoo/{_groups_made}", store)
    _groups_made += 1
    if device.type == "cuda":
        torch.cuda.set_device(device)  # before NCCL starts, so no process touches another's GPU
        dist.init_process_group("nccl", store=store, rank=rank, world_size=world, device_id=device)
    else:
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    try:
        yield
    except BaseException:
        dist.destroy_process_group()  # no barrier: the other ranks may be gone, and it would wait for them forever
        raise
    # Every rank reaches the teardown before any starts it: a rank that destroyed its group while another still
    # talked to it aborted now and then ("terminate called without an active exception": 3 runs in 14 of
    # `nnzoo train digits-mlp --nproc 2 --max-steps 2` on 2 cores; none in 26 with the barrier).
    dist.barrier()
    dist.destroy_process_group()


@contextlib.contextmanager
def main_first(ctx: Context) -> Iterator[None]:
    """Rank 0 runs the body first (a download, a cache entry it writes) while the others wait, then the others
    run it, quietly (they find what rank 0 wrote; its warnings were already shown once)."""
    if not ctx.enabled:
        yield
        return
    if ctx.is_main:
        yield
        dist.barrier()
        return
    dist.barrier()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def broadcast(obj: Any, ctx: Context) -> Any:
    """Rank 0's ``obj`` on every rank (picklable values: a path, a flag, a metrics dict)."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any, ctx: Context) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def average_gradients(params: Sequence[nn.Parameter], world_size: int) -> None:
    """Replace every gradient by its mean over the ranks: what DDP does during the backward, done here in one
    all-reduce of the flattened gradients, for the steps DDP cannot see (see Trainer.optimize)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    for g, new in zip(grads, flat.split([g.numel() for g in grads])):
        g.copy_(new.view_as(g))


def broadcast_state(module: nn.Module, buffers_only: bool = False) -> None:
    """Rank 0's parameters (unless ``buffers_only``) and buffers on every rank, as DDP does at construction and,
    for buffers such as batch norm's running statistics, before every forward."""
    tensors = list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()]
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=0)
