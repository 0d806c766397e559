"""Mini-batches cut by index from tensors already in memory (and on the training device).

This replaces ``DataLoader`` + per-sample ``__getitem__`` + PIL ``ToTensor``: one ``randperm`` per epoch, one
gather and one fused normalise per batch. The numbers match torchvision's ``ToTensor()`` then
``Normalize(mean, std)``: ``(x / 255 - mean) / std``.
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
    ):
        self.device = torch.device(device)
        self.x = split.x.to(self.device)
        self.y = split.y.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.rank, self.world_size = rank, world_size
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
        return math.ceil(math.ceil(len(self.x) / self.world_size) / self.batch_size)

    def order(self) -> torch.Tensor:
        n = len(self.x)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            idx = torch.randperm(n, generator=g)
        else:
            idx = torch.arange(n)
        if self.world_size > 1:  # every rank takes its own shard of the same permutation
            idx = idx[self.rank :: self.world_size]
        return idx.to(self.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = self.order()
        for start in range(0, len(idx), self.batch_size):
            i = idx[start : start + self.batch_size]
            yield self.prepare(self.x[i]), self.y[i]

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            x = torch.addcmul(self.shift, x.float(), self.scale)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x
