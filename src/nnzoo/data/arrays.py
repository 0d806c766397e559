"""Data as a PyTorch user holds it, made into what the Trainer iterates.

``fit``, ``evaluate`` and ``predict`` take, besides nnzoo's own :class:`Split` and :class:`Batches`:

* numpy arrays or tensors as an ``(x, y)`` pair (or a Split of them), and a ``TensorDataset`` of two tensors: held
  in memory, so they go through :class:`Batches` (index-cut batches, no per-sample Python);
* any other torch ``Dataset``: batched by a DataLoader nnzoo makes, shuffled from (seed, epoch) so a resumed run
  sees the same order;
* a ``DataLoader``: used as it is (its batch size, sampler, workers and collate), each batch moved to the device.

Types follow one rule, the same for every form: floating and boolean inputs become float32, as do uint8 ones
unless the run normalises pixels itself (an nnzoo image model keeps them as stored); other integers become int64
(token ids). Integer targets become int64 (class indices, so int32 labels work), other targets float32. Anything
else (strings, objects, NaN in the inputs, lengths that differ) is one sentence naming the argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data.distributed import DistributedSampler

from ..errors import UserError
from .batches import Batches
from .spec import DataSpec, Split


def to_tensor(a: Any, name: str) -> torch.Tensor:
    """A tensor of ``a`` (a tensor, a numpy array, a pandas object or nested lists of numbers), without copying
    when it can."""
    if isinstance(a, torch.Tensor):
        return a
    if hasattr(a, "to_numpy") and not isinstance(a, np.ndarray):  # a pandas DataFrame or Series
        a = a.to_numpy()
    if isinstance(a, (list, tuple)):
        try:
            a = np.asarray(a)
        except ValueError:
            raise UserError(f"{name} is a list of items of different lengths: give one array.") from None
    if not isinstance(a, np.ndarray):
        raise UserError(f"{name} must be a numpy array or a tensor, not {type(a).__name__}.")
    if a.dtype.kind not in "biuf":
        raise UserError(f"{name} holds {a.dtype} values; give numbers (encode texts or categories first: a table "
                        "file goes through `nnzoo train MODEL --data-file F --target C`).")  # fmt: skip
    if not a.flags.writeable:  # torch.from_numpy warns on read-only memory; a copy is safe to share
        a = a.copy()
    return torch.from_numpy(np.ascontiguousarray(a))


def features(t: torch.Tensor, name: str, keep_pixels: bool = False) -> torch.Tensor:
    """Inputs by the module's rule: float32, int64 ids, or uint8 pixels for a run that normalises them."""
    if t.dim() == 0:
        raise UserError(f"{name} is a single number; give one row per sample (shape (samples, ...)).")
    if t.is_complex():
        raise UserError(f"{name} holds complex numbers; give real ones.")
    if t.dtype == torch.uint8 and keep_pixels:
        return t
    if t.dtype.is_floating_point or t.dtype in (torch.bool, torch.uint8):
        t = t.float()
        bad = ~torch.isfinite(t)
        if bad.any():
            first = int(bad.reshape(len(t), -1).any(1).nonzero()[0])
            raise UserError(f"{name} holds NaN or infinite values (first in sample {first}): fill or drop them.")
        return t
    return t.long()


def targets(t: torch.Tensor, name: str = "y") -> torch.Tensor:
    if t.is_complex():
        raise UserError(f"{name} holds complex numbers; give real ones.")
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        t = t.float()
        if not torch.isfinite(t).all():
            raise UserError(f"{name} holds NaN or infinite values: drop those samples.")
        return t
    return t.long()


def as_split(x: Any, y: Any, name: str = "x", keep_pixels: bool = False) -> Split:
    """A Split of ``x`` and ``y`` with the types above, checked."""
    xt = features(to_tensor(x, name), name, keep_pixels)
    if y is None:
        raise UserError(f"{name} came without targets: give (x, y), or x and y=.")
    yt = targets(to_tensor(y, "y"))
    if yt.dim() == 0:
        raise UserError("y is a single number; give one target per sample.")
    if len(xt) != len(yt):
        raise UserError(f"{name} has {len(xt)} samples but y has {len(yt)}: they must pair up, one target a sample.")
    if not len(xt):
        raise UserError(f"{name} holds no samples.")
    return Split(xt, yt)


def is_array(data: Any) -> bool:
    return isinstance(data, (torch.Tensor, np.ndarray)) or hasattr(data, "to_numpy")


def in_memory(data: Any, name: str, keep_pixels: bool = False) -> Split | None:
    """The Split held by ``data`` when it is data in memory (a pair, a Split, a TensorDataset), else None."""
    if isinstance(data, Split):
        x_ok = data.x.dtype in (torch.float32, torch.int64) or (keep_pixels and data.x.dtype == torch.uint8)
        if x_ok and data.y.dtype in (torch.int64, torch.float32):
            return data  # typed already (every nnzoo dataset's splits): no copy, no scan
        return as_split(data.x, data.y, name, keep_pixels)
    if isinstance(data, TensorDataset):
        if len(data.tensors) != 2:
            raise UserError(f"{name} is a TensorDataset of {len(data.tensors)} tensors; give two (inputs, targets).")
        return as_split(*data.tensors, name=name, keep_pixels=keep_pixels)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return as_split(data[0], data[1], name, keep_pixels)
    if is_array(data):
        raise UserError(f"{name} came without targets: give (x, y) (a pair), a Split, a Dataset or a DataLoader.")
    return None


class LoaderBatches:
    """A DataLoader's batches as the Trainer takes them: (inputs, targets) on the device, typed by the rule above.

    ``seed`` set (nnzoo made the loader from a Dataset): the shuffle is drawn from (seed, epoch), as Batches'."""

    def __init__(self, loader: DataLoader, name: str, *, device: torch.device, keep_pixels: bool = False,
                 seed: int | None = None, rank: int = 0, world_size: int = 1):  # fmt: skip
        self.loader, self.name, self.device, self.keep_pixels = loader, name, device, keep_pixels
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.generator = loader.generator if seed is not None else None

    def set_epoch(self, epoch: int) -> None:
        if self.generator is not None:
            self.generator.manual_seed(self.seed * 100_003 + epoch)
        sampler = getattr(self.loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # a DistributedSampler reshuffles by epoch
            sampler.set_epoch(epoch)

    def __len__(self) -> int:
        try:
            return len(self.loader)
        except TypeError:
            raise UserError(
                f"{self.name} is a DataLoader over an IterableDataset, which has no length: the trainer "
                "lays out epochs and schedules by batches per epoch; give a map-style Dataset."
            ) from None

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.loader:
            if isinstance(batch, dict) or not isinstance(batch, (tuple, list)) or len(batch) != 2:
                what = f"a dict with keys {sorted(batch)}" if isinstance(batch, dict) else type(batch).__name__
                raise UserError(f"Each batch of {self.name} must be (inputs, targets); it gave {what}.")
            x, y = batch
            x = features(to_tensor(x, self.name), self.name, self.keep_pixels)
            yield x.to(self.device, non_blocking=True), targets(to_tensor(y, "targets")).to(self.device)


def as_batches(data: Any, name: str, *, batch_size: int, shuffle: bool, seed: int, device: torch.device,
               rank: int = 0, world_size: int = 1, keep_pixels: bool = False) -> LoaderBatches:  # fmt: skip
    """A Dataset or DataLoader as LoaderBatches for this rank; a TypeError-free sentence for anything else."""
    if isinstance(data, DataLoader):
        sampler = data.sampler if isinstance(data.sampler, DistributedSampler) else None
        if world_size > 1 and sampler is None:
            raise UserError(f"{name} is a DataLoader in a run of {world_size} processes: give it a DistributedSampler "
                            "(each process its share), or give arrays, which nnzoo shards itself.")  # fmt: skip
        if sampler is not None:
            rank, world_size = sampler.rank, sampler.num_replicas
        return LoaderBatches(data, name, device=device, keep_pixels=keep_pixels, rank=rank, world_size=world_size)
    if isinstance(data, TorchDataset) and not isinstance(data, IterableDataset):
        if world_size > 1:
            sampler = DistributedSampler(data, world_size, rank, shuffle=shuffle, seed=seed)
            loader = DataLoader(data, batch_size=batch_size // world_size, sampler=sampler)
            return LoaderBatches(loader, name, device=device, keep_pixels=keep_pixels, rank=rank,
                                 world_size=world_size)  # fmt: skip
        g = torch.Generator()
        loader = DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=g)
        return LoaderBatches(loader, name, device=device, keep_pixels=keep_pixels, seed=seed if shuffle else None)
    raise UserError(f"{name} must be (x, y) arrays or tensors, a Split, a torch Dataset or a DataLoader, not "
                    f"{type(data).__name__}.")  # fmt: skip


def first_batch(data: Split | Batches | LoaderBatches) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, Split):
        return data.x[:2], data.y[:2]
    if isinstance(data, Batches):
        return data.x[:2], data.y[:2]
    return next(iter(data))


def spec_for(data: Split | Batches | LoaderBatches, task: str | None, name: str = "arrays") -> DataSpec:
    """What a run on data given in Python records of it: the shape and type of one input, and for a classifier
    the classes (0..max label, named by number; all the labels when they are in memory). ``task`` None (a loss
    nnzoo does not know): classification for integer labels, one per sample, else regression."""
    x, y = first_batch(data)
    if task is None:
        task = "classification" if y.dim() == 1 and not y.dtype.is_floating_point else "regression"
    classes = 0
    if task == "classification" and y.dim() == 1 and not y.dtype.is_floating_point:
        labels = data.y if isinstance(data, (Split, Batches)) else y
        classes = int(labels.max()) + 1 if len(labels) else 0
    return DataSpec(name=name, task=task, input_shape=tuple(x.shape[1:]), num_classes=classes,
                    class_names=[str(i) for i in range(classes)],
                    extra={"kind": "arrays", "x_dtype": str(x.dtype).removeprefix("torch.")})  # fmt: skip


def as_inputs(x: Any, spec: DataSpec) -> torch.Tensor:
    """Inputs for ``predict``, given as the training data was: one sample or a batch, pixels as the dataset stores
    them (0..255) for nnzoo's image models, ids for text models. Checked against the run's input shape."""
    pixels = bool(spec.mean)
    t = to_tensor(x, "the input")
    want = tuple(spec.input_shape)
    if want and tuple(t.shape) == want:
        t = t.unsqueeze(0)  # one sample
    elif want and len(want) == 3 and want[0] == 1 and tuple(t.shape[-2:]) == want[1:] and t.dim() in (2, 3):
        t = t.reshape(-1, *want)  # grayscale images without their channel axis: (H, W) or (N, H, W)
    if want and tuple(t.shape[1:]) != want:
        raise UserError(f"This run takes inputs of shape {want} (one sample) or (N, {', '.join(map(str, want))}); "
                        f"the input is {tuple(t.shape)}.")  # fmt: skip
    if pixels and t.dtype.is_floating_point and len(t) and 0 < float(t.max()) <= 1:
        raise UserError("The run's images are pixels 0..255 as its dataset stores them (nnzoo normalises them "
                        "itself), but these are 0..1: multiply by 255.")  # fmt: skip
    if spec.extra.get("x_dtype") == "int64" or spec.text_ids:
        return t.long()
    if pixels:
        return t if t.dtype == torch.uint8 else t.float()
    return features(t, "the input")
