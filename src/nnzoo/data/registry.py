"""The dataset registry: each entry pairs a dataset's spec (known without loading anything) with its loader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import DataConfig
from ..errors import UserError
from ..registry import Registry
from .spec import Dataset, DataSpec


@dataclass(frozen=True)
class DatasetEntry:
    spec: DataSpec
    load: Callable[[DataConfig], Dataset]
    options: tuple[str, ...] = ()  # the names its loader reads from ``data.options`` (``--set data.options.NAME``)


DATASETS: Registry[DatasetEntry] = Registry("dataset")


def register_dataset(spec: DataSpec, help: str, options: tuple[str, ...] = ()) -> Callable:
    def decorator(fn: Callable[[DataConfig], Dataset]) -> Callable[[DataConfig], Dataset]:
        DATASETS.add(spec.name, DatasetEntry(spec, fn, options), help)
        return fn

    return decorator


def check_options(cfg: DataConfig) -> None:
    """Refuse a ``data.options`` name the dataset's loader never reads (a typo would otherwise be ignored)."""
    known = DATASETS.get(cfg.name).options
    for name in cfg.options:
        if name not in known:
            takes = f"its options are: {', '.join(known)}" if known else "it takes no data.options"
            raise UserError(f"Dataset {cfg.name!r} has no option {name!r} (data.options.{name}); {takes}.")
