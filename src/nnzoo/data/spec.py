"""What a model needs to know about its data, and the in-memory splits themselves."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class DataSpec:
    """Shapes and meaning of a dataset: what builders read to size a model, saved inside every checkpoint."""

    name: str
    task: str = "classification"
    input_shape: tuple[int, ...] = ()  # one sample, e.g. (1, 28, 28)
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)
    mean: tuple[float, ...] = ()  # per channel, on the 0..1 scale (torchvision's Normalize)
    std: tuple[float, ...] = ()
    # For `predict` on user images: the share of the frame the object fills in the training images
    # (MNIST centres a 20x20 digit in 28x28; Fashion-MNIST products fill the frame).
    content_fraction: float = 1.0
    light_on_dark: bool = True  # white strokes on black, as in MNIST; user images are inverted to match
    extra: dict[str, Any] = field(default_factory=dict)

    # What the dataset declared about itself, read through these two rather than by string keys of ``extra``
    # (where it is saved, so checkpoints of every version read the same).
    @property
    def text_ids(self) -> bool:
        """Whether a sample is a text as padded character ids (``extra["pad_id"]``): a text classifier's input."""
        return "pad_id" in self.extra

    @property
    def corpus_kind(self) -> str | None:
        """What a dataset of text or series says it is: "text", "poems", "text-classification", "series"; None for
        images and for specs built in Python without it."""
        return self.extra.get("kind")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        d = dict(d)
        for k in ("input_shape", "mean", "std"):
            d[k] = tuple(d.get(k, ()))
        return cls(**d)


@dataclass
class Split:
    """One split held in memory: ``x`` as stored (uint8 images), ``y`` as int64 labels."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        # numpy arrays are welcome (Split(x_np, y_np)): held as tensors, sharing memory where numpy allows.
        self.x, self.y = (torch.as_tensor(a) if isinstance(a, np.ndarray) else a for a in (self.x, self.y))
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} inputs but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: torch.Tensor | slice) -> Split:
        return Split(self.x[index], self.y[index])


@dataclass
class Dataset:
    spec: DataSpec
    train: Split
    val: Split | None
    test: Split
    source: str = ""  # where the files were found, shown to the user

    def describe(self) -> str:
        val = len(self.val) if self.val is not None else 0
        return f"{self.spec.name}: {len(self.train)} train / {val} val / {len(self.test)} test from {self.source}"
