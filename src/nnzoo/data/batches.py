"""Mini-batches cut by index from tensors already in memory (and on the training device).

This replaces ``DataLoader`` + per-sample ``__getitem__`` + PIL ``ToTensor``: one ``randperm`` per epoch, one
gather and one fused normalise per batch. The numbers match torchvision's ``ToTensor()`` then
``Normalize(mean, std)``: ``(x / 255 - mean) / std``.

In a data-parallel run (``world_size`` > 1) every rank holds the whole split and takes its share by index:

* ``even`` (training): ``batch_size`` is the *global* batch. Every rank draws the same permutation from (seed,
  epoch) and rank r takes ``global_batch[r::world_size]``, ``batch_size // world_size`` samples, so the ranks
  together see exactly the batches one process would, and averaging their gradients gives its step. A last global
  batch that does not split evenly is padded with the epoch's first samples (as ``DistributedSampler`` pads), so
  every rank takes the same number of equal steps: a rank that ran out early would leave the others waiting.
* otherwise (evaluation): rank r takes the r-th of ``world_size`` contiguous chunks, in batches of
  ``batch_size // world_size``; metric sums are added across ranks, and outputs gathered in rank order are in the
  split's order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from .spec import Split


class Batches:
    def __init__(
        self,
        split: Split,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
        mean: tuple[float, ...] = (),
        std: tuple[float, ...] = (),
        channels_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        even: bool = False,
    ):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size}")
        if even and batch_size % world_size:
            raise ValueError(f"global batch {batch_size} does not split evenly across {world_size} ranks")
        self.device = torch.device(device)
        self.x = split.x.to(self.device)
        self.y = split.y.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.rank, self.world_size, self.even = rank, world_size, even
        self.local_batch_size = max(1, batch_size // world_size)  # what this rank's batches hold
        self.channels_last = channels_last and self.x.dim() == 4
        self.scale = self.shift = None
        if mean:
            # (x / 255 - mean) / std  ==  x * scale + shift, per channel: one fused multiply-add per batch.
            shape = (1, -1) + (1,) * (self.x.dim() - 2)
            m = torch.tensor(mean, dtype=torch.float32, device=self.device).view(shape)
            s = torch.tensor(std, dtype=torch.float32, device=self.device).view(shape)
            self.scale, self.shift = 1.0 / (255.0 * s), -m / s

    def set_epoch(self, epoch: int) -> None:
        """The shuffle depends only on (seed, epoch), so a resumed run sees the same order."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches this rank takes per epoch: with ``even``, the same on every rank and the single-process count."""
        if self.world_size == 1 or self.even:
            return math.ceil(len(self.x) / self.batch_size)
        return math.ceil(len(self.order()) / self.local_batch_size)

    def order(self) -> torch.Tensor:
        """The sample indices this rank visits this epoch, in order."""
        n = len(self.x)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            idx = torch.randperm(n, generator=g)
        else:
            idx = torch.arange(n)
        w = self.world_size
        if w > 1 and self.even:
            # Pad to a multiple of w (only the last global batch grows), then deal round-robin: since w divides
            # batch_size, this rank's k-th cut of batch_size // w is global batch k's [rank::w].
            pad = -n % w
            if pad and n:
                idx = torch.cat([idx, idx[torch.arange(pad) % n]])
            idx = idx[self.rank :: w]
        elif w > 1:
            idx = torch.tensor_split(idx, w)[self.rank]  # sizes differ by at most one
        return idx.to(self.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = self.order()
        for start in range(0, len(idx), self.local_batch_size):
            i = idx[start : start + self.local_batch_size]
            yield self.prepare(self.x[i]), self.y[i]

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            x = torch.addcmul(self.shift, x.float(), self.scale)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x
