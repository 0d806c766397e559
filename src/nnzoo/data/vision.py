"""Image classification datasets: MNIST, Fashion-MNIST, scikit-learn's 8x8 digits and CIFAR-10.

Each is loaded once into memory as uint8 tensors of shape (N, C, H, W) with int64 labels; normalisation happens
per batch (see batches.py), so the stored data stays four times smaller than float32.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError
from .idx import read_idx
from .registry import register_dataset
from .sources import RemoteFile, Source, cache_dir, locate, search_roots
from .spec import Dataset, DataSpec, Split
from .splits import VAL_FRACTION

_IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

MNIST = Source(
    name="MNIST",
    folders=("mnist", "MNIST/raw"),
    files=tuple(
        RemoteFile(n + ".gz", md5)
        for n, md5 in zip(
            _IDX_NAMES,
            (
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "9fb629c4189551a2d022fa330f9573f3",
                "ec29112dd5afa0611ce80d1b7f02629c",
            ),
        )
    ),
    # The original host (yann.lecun.com) no longer serves the files; these are torchvision's mirrors.
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
)

FASHION_MNIST = Source(
    name="Fashion-MNIST",
    folders=("fashion-mnist", "FashionMNIST/raw"),
    files=tuple(
        RemoteFile(n + ".gz", md5, other)
        for n, md5, other in zip(
            _IDX_NAMES,
            (
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79",
                "bb300cfdad3c16e7a12a480ee83cd310",
            ),
            # The decompressed files, and Debian's re-compressed copies of the same bytes.
            (
                ("f4a8712d7a061bf5bd6d2ca38dc4d50a", "cf8536b0aa1a6ac5fa3f23001093305c"),
                ("9018921c3c673c538a1fc5bad174d6f9", "10bea18fdb374794d4bb42e356e600c9"),
                ("8181f5470baa50b63fa0f6fddb340f0a", "f78720b4224f21cce2f2ccf2d7a94c9a"),
                ("15d484375f8d13e6eb1aabb0c3f46965", "0d30e22e447f3c33dab9ed536400ac01"),
            ),
        )
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
)

CIFAR10 = Source(
    name="CIFAR-10",
    folders=("cifar10",),
    # The binary version: fixed-size records, so no pickle has to be unpickled to read it.
    files=(RemoteFile("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"),),
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
)

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]  # fmt: skip
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


IMAGE_VAL_COUNT = 5000


def split_validation(train: Split, val_size: float, seed: int) -> tuple[Split, Split | None]:
    """Carve a validation split from the training set with a fixed seed; the test split is never touched."""
    n = len(train)
    n_val = int(round(val_size * n)) if 0 < val_size < 1 else int(val_size)
    if n_val == 0:
        return train, None
    if not 0 < n_val < n:
        raise UserError(f"data.val_size={val_size} leaves no training data: the training split has {n} samples.")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:n_val].sort().values, perm[n_val:].sort().values
    return train.subset(train_idx), train.subset(val_idx)


def finish(spec: DataSpec, train: Split, test: Split, cfg: DataConfig, source: str) -> Dataset:
    val_size = cfg.val_size
    if val_size is None:  # 5,000 of the 50,000-60,000 images of MNIST or CIFAR; 10 % of a small set (the digits)
        val_size = IMAGE_VAL_COUNT if len(train) >= 4 * IMAGE_VAL_COUNT else VAL_FRACTION
    train, val = split_validation(train, val_size, cfg.split_seed)
    if cfg.limit_train:
        train = train.subset(slice(0, cfg.limit_train))
    if cfg.limit_test:
        test = test.subset(slice(0, cfg.limit_test))
    return Dataset(spec, train, val, test, source)


def _idx_dataset(src: Source, spec: DataSpec, cfg: DataConfig) -> Dataset:
    paths = locate(src, cfg.data_dir, cfg.download)
    p = [paths[f.name] for f in src.files]
    x_train, y_train = read_idx(p[0], 3), read_idx(p[1], 1)
    x_test, y_test = read_idx(p[2], 3), read_idx(p[3], 1)
    for xs, ys, which in ((x_train, y_train, "training"), (x_test, y_test, "test")):
        if len(xs) != len(ys):
            raise UserError(f"The {spec.name} {which} files disagree: {len(xs)} images but {len(ys)} labels.")
        if tuple(xs.shape[1:]) != spec.input_shape[1:]:
            raise UserError(f"The {spec.name} {which} images are {tuple(xs.shape[1:])}, expected 28x28.")
        if len(ys) and int(ys.max()) >= spec.num_classes:
            raise UserError(f"The {spec.name} {which} labels go up to {int(ys.max())}; expected 0..9.")
    train = Split(x_train.unsqueeze(1), y_train.long())
    test = Split(x_test.unsqueeze(1), y_test.long())
    return finish(spec, train, test, cfg, str(p[0].parent))


MNIST_SPEC = DataSpec("mnist", input_shape=(1, 28, 28), num_classes=10, class_names=[str(i) for i in range(10)],
                      mean=(0.1307,), std=(0.3081,), content_fraction=20 / 28)  # fmt: skip
FASHION_SPEC = DataSpec("fashion-mnist", input_shape=(1, 28, 28), num_classes=10, class_names=FASHION_CLASSES,
                        mean=(0.2860,), std=(0.3530,))  # fmt: skip
DIGITS_SPEC = DataSpec("digits", input_shape=(1, 8, 8), num_classes=10, class_names=[str(i) for i in range(10)],
                       mean=(0.3053,), std=(0.3759,))  # fmt: skip
CIFAR10_SPEC = DataSpec("cifar10", input_shape=(3, 32, 32), num_classes=10, class_names=CIFAR10_CLASSES,
                        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), light_on_dark=False)  # fmt: skip


@register_dataset(MNIST_SPEC, help="MNIST handwritten digits, 60k/10k 28x28 grayscale (downloads 11 MB)")
def mnist(cfg: DataConfig) -> Dataset:
    return _idx_dataset(MNIST, MNIST_SPEC, cfg)


@register_dataset(FASHION_SPEC, help="Fashion-MNIST clothing, 60k/10k 28x28 grayscale (Debian: dataset-fashion-mnist)")
def fashion_mnist(cfg: DataConfig) -> Dataset:
    return _idx_dataset(FASHION_MNIST, FASHION_SPEC, cfg)


@register_dataset(DIGITS_SPEC, help="scikit-learn's 1,797 8x8 handwritten digits, bundled (offline)")
def digits(cfg: DataConfig) -> Dataset:
    from sklearn.datasets import load_digits  # lazy: scikit-learn takes a while to import

    d = load_digits()
    x = torch.from_numpy(np.round(d.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)  # (N, 1, 8, 8), 0..16 -> 0..255
    y = torch.from_numpy(d.target).long()
    # The set has no official test split: hold out a fixed, stratified 20% (seed 0, whatever the run's seeds).
    g = torch.Generator().manual_seed(0)
    test_idx = torch.cat([(c := (y == k).nonzero().flatten())[torch.randperm(len(c), generator=g)[: len(c) // 5]]
                          for k in range(10)]).sort().values  # fmt: skip
    mask = torch.ones(len(y), dtype=torch.bool)
    mask[test_idx] = False
    return finish(DIGITS_SPEC, Split(x[mask], y[mask]), Split(x[test_idx], y[test_idx]), cfg, "scikit-learn (bundled)")


@register_dataset(CIFAR10_SPEC, help="CIFAR-10, 50k/10k 32x32 colour images (downloads 162 MB, binary version)")
def cifar10(cfg: DataConfig) -> Dataset:
    folder = _cifar_folder(cfg)
    train = _read_cifar_batches([folder / f"data_batch_{i}.bin" for i in range(1, 6)])
    test = _read_cifar_batches([folder / "test_batch.bin"])
    return finish(CIFAR10_SPEC, train, test, cfg, str(folder))


def _cifar_folder(cfg: DataConfig) -> Path:
    for root in search_roots(cfg.data_dir):
        for cand in (root / "cifar10" / "cifar-10-batches-bin", root / "cifar-10-batches-bin"):
            if (cand / "test_batch.bin").is_file():
                return cand
    archive = locate(CIFAR10, cfg.data_dir, cfg.download)["cifar-10-binary.tar.gz"]
    dest = cache_dir() / "cifar10"
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest / "cifar-10-batches-bin"


def _read_cifar_batches(paths: list[Path]) -> Split:
    record = 1 + 3 * 32 * 32  # one label byte, then the red, green and blue planes
    arrays = []
    for p in paths:
        if not p.is_file():
            raise UserError(f"CIFAR-10 file {p} is missing.")
        raw = np.fromfile(p, dtype=np.uint8)
        if raw.size % record:
            raise UserError(f"{p} is truncated: {raw.size} bytes is not a whole number of {record}-byte records.")
        arrays.append(raw.reshape(-1, record))
    data = np.concatenate(arrays)
    x = torch.from_numpy(data[:, 1:].reshape(-1, 3, 32, 32).copy())
    y = torch.from_numpy(data[:, 0].astype(np.int64))
    return Split(x, y)
