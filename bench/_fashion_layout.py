"""Shared by the benchmarks: the folder layout torchvision's FashionMNIST reads, built from our IDX files."""

from __future__ import annotations

import gzip
import os
import shutil
import sys
from pathlib import Path

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def torchvision_layout(data: Path, root: Path) -> Path:
    """ROOT/FashionMNIST/raw/<extracted IDX files>, from a folder holding them gzipped or not."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in NAMES:
        if (data / name).is_file():
            os.symlink(data / name, raw / name)
        elif (data / f"{name}.gz").is_file():
            with gzip.open(data / f"{name}.gz") as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            sys.exit(f"error: {data} holds neither {name} nor {name}.gz")
    return root
