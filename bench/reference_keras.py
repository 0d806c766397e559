"""The classic SimpleCNN recipe in Keras 3 on its torch backend, as a Keras user writes it (not part of nnzoo).

The same layers (Conv2D 32 3x3 relu, MaxPooling2D, Conv2D 64 3x3 relu, MaxPooling2D, Flatten, Dense 128 relu,
Dense 10), the same data (Fashion-MNIST read from the IDX files into numpy arrays, scaled to 0..1 and normalised
with the same mean and std), the same settings (SGD lr 0.01 without momentum, batch 64 shuffled, cross-entropy),
trained with ``model.fit(x, y)`` on the arrays; then ``model.evaluate`` on the test set. Keras lays images out
channels-last (N, H, W, C). Prints one JSON line.

    KERAS_BACKEND=torch python bench/reference_keras.py --data-dir /usr/share/datasets/fashion-mnist [--epochs 10]
"""

import argparse
import gzip
import json
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(folder: Path, name: str) -> np.ndarray:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return idx(candidate)
    raise SystemExit(f"error: {folder} holds neither {name} nor {name}.gz")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--epochs", type=int, default=10)
    args = p.parse_args()
    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    d = Path(args.data_dir)
    mean, std = 0.2860, 0.3530
    x_train = ((load(d, "train-images-idx3-ubyte") / 255.0 - mean) / std).astype("float32")[..., None]
    x_test = ((load(d, "t10k-images-idx3-ubyte") / 255.0 - mean) / std).astype("float32")[..., None]
    y_train, y_test = (
        load(d, "train-labels-idx1-ubyte").astype("int64"),
        load(d, "t10k-labels-idx1-ubyte").astype("int64"),
    )
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10),
    ])  # fmt: skip
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])  # fmt: skip
    t0 = time.perf_counter()
    model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, shuffle=True, verbose=0)
    train_seconds = time.perf_counter() - t0
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    print(json.dumps({"accuracy": accuracy, "loss": loss, "train_seconds": train_seconds,
                      "wall_seconds": time.perf_counter() - start, "keras": keras.__version__}))  # fmt: skip


if __name__ == "__main__":
    main()
