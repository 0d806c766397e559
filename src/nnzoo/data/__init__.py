"""Datasets: found on disk or downloaded, held in memory, served in index-cut batches."""

from __future__ import annotations

from typing import Any

from ..config import DataConfig
from ..errors import UserError
from . import folders, labelled_text, series, tables, tang_authors, text, vision  # noqa: F401  (register the datasets)
from .batches import Batches
from .idx import read_idx, write_idx
from .registry import DATASETS, check_options
from .spec import Dataset, DataSpec, Split


def load_dataset(name: str | DataConfig, **overrides: Any) -> Dataset:
    """Load a registered dataset by name (``load_dataset("fashion-mnist", data_dir=...)``) or from a DataConfig."""
    cfg = name if isinstance(name, DataConfig) else DataConfig(name=name)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    cfg.validate()
    check_options(cfg)
    data = DATASETS.get(cfg.name).load(cfg)
    for split, part in (("training", data.train), ("test", data.test)):  # before any epoch or checkpoint
        if len(part) == 0:
            raise UserError(f"The {split} split of {data.spec.name} holds no samples (from {data.source}).")
    return data


def dataset_spec(name: str) -> DataSpec:
    """A dataset's spec without loading its data (for ``summary`` and model building)."""
    return DATASETS.get(name).spec


__all__ = ["DATASETS", "Batches", "DataConfig", "DataSpec", "Dataset", "Split", "check_options", "dataset_spec",
           "load_dataset", "read_idx", "write_idx"]  # fmt: skip
