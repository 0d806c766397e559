"""The dataset registry: each entry pairs a dataset's spec (known without loading anything) with its loader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import DataConfig
from ..registry import Registry
from .spec import DataSpec, Dataset


@dataclass(frozen=True)
class DatasetEntry:
    spec: DataSpec
    load: Callable[[DataConfig], Dataset]


DATASETS: Registry[DatasetEntry] = Registry("dataset")


def register_dataset(spec: DataSpec, help: str) -> Callable:
    def decorator(fn: Callable[[DataConfig], Dataset]) -> Callable[[DataConfig], Dataset]:
        DATASETS.add(spec.name, DatasetEntry(spec, fn), help)
        return fn

    return decorator
