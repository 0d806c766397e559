"""Shared fixtures: tiny real data written to disk the way users keep it, so every test runs offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnzoo.data import write_idx

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def digits_as_mnist(n_train: int = 400, n_test: int = 200) -> tuple[np.ndarray, ...]:
    """Real handwritten digits (scikit-learn's bundled 8x8 set) scaled to MNIST's 28x28: a 20x20 digit, centred."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).float().unsqueeze(1) / 16  # (N, 1, 8, 8) in 0..1
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    x = F.pad(x, (4, 4, 4, 4))  # (N, 1, 28, 28), like MNIST's 20x20 box in a 28x28 frame
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8).squeeze(1).numpy()
    y = d.target.astype(np.uint8)
    return x[:n_train], y[:n_train], x[n_train : n_train + n_test], y[n_train : n_train + n_test]


def write_mnist_folder(folder: Path, gz: bool = True, n_train: int = 400, n_test: int = 200) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in zip(IDX_NAMES, digits_as_mnist(n_train, n_test)):
        write_idx(folder / (name + (".gz" if gz else "")), arr)
    return folder


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding a tiny MNIST (real digits in MNIST's format) under DIR/mnist/."""
    root = tmp_path_factory.mktemp("data")
    write_mnist_folder(root / "mnist")
    return root


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the user's cache or NNZOO_DATA_DIR, downloads anything, or writes outside tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NNZOO_DATA_DIR", raising=False)
    monkeypatch.setattr("nnzoo.data.vision.MNIST", _offline("nnzoo.data.vision.MNIST"))
    monkeypatch.chdir(tmp_path)


def _offline(path: str):  # noqa: ANN202
    import dataclasses
    import importlib

    module, _, name = path.rpartition(".")
    src = getattr(importlib.import_module(module), name)
    return dataclasses.replace(src, mirrors=("file:///nonexistent-nnzoo-mirror/",))


needs_fashion = pytest.mark.skipif(
    not FASHION_DIR.is_dir(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
)
