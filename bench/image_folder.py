"""Fashion-MNIST as a user's folder of PNGs against the same images read from IDX files, in one run:

(a) the first, uncached load of the folder (70,000 PNGs decoded in a pool of one process per core);
(b) the second load, from image-folder's cache;
(c) training throughput (samples/s of a training step, nnzoo.bench's timer, the best of two turns each) of the
    fashion-mnist-simple-cnn recipe on the folder dataset and on the IDX dataset, side by side;
(d) unless --skip-accuracy, the test accuracy and wall time of `nnzoo train fashion-mnist-simple-cnn-fast` on IDX
    and of the same recipe with `--dataset image-folder --data-dir FOLDER`.

The folder is FOLDER/train/CLASS/*.png and FOLDER/test/CLASS/*.png, so the official split is kept. The IDX recipe
holds 5,000 of the 60,000 training images out for validation (data.val_size: 5000); the folder run cuts the same
share from train/ (data.val_size 5000/60000 as a fraction, stratified by class: for a user's folder a val_size
left at its default means 10 %). The PNGs were just written, so (a) reads them from the page cache: it measures
decoding, not the disk.

    python bench/image_folder.py                  # everything: the full set, 4 epochs twice (minutes)
    python bench/image_folder.py --limit 2000 --epochs 1 --seconds 1      # a quick check of the harness

Needs Fashion-MNIST (apt-get install dataset-fashion-mnist, or --data-dir DIR with DIR/fashion-mnist/*.gz).
Nothing here is a test: it prints numbers for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nnzoo.bench import bench_recipe, machine
from nnzoo.config import DataConfig
from nnzoo.data import load_dataset
from nnzoo.data.vision import FASHION_CLASSES
from nnzoo.recipes import load_recipe

THROUGHPUT_RECIPE = "fashion-mnist-simple-cnn"
ACCURACY_RECIPE = "fashion-mnist-simple-cnn-fast"
IDX_VAL, IDX_TRAIN = 5000, 60000  # the IDX recipe's validation count, of this many training images


def class_folders() -> list[str]:
    """Folder names whose sorted order is the labels' order ("0-T-shirt-top" ... "9-Ankle boot"; no "/")."""
    return [f"{k}-{name.replace('/', '-')}" for k, name in enumerate(FASHION_CLASSES)]


def _write_pngs(job: tuple[list[str], np.ndarray]) -> int:
    paths, images = job
    for path, a in zip(paths, images):
        Image.fromarray(a).save(path, compress_level=6)
    return len(paths)


def write_folder(data_dir: str, folder: Path, limit: int | None) -> tuple[int, int]:
    """FOLDER/{train,test}/CLASS/N.png from the IDX files (the first ``limit`` images, split 6:1), in a pool."""
    ds = load_dataset("fashion-mnist", data_dir=data_dir, val_size=0)
    n_train = len(ds.train) if limit is None else min(len(ds.train), limit * 6 // 7)
    n_test = len(ds.test) if limit is None else min(len(ds.test), limit - n_train)
    names = class_folders()
    jobs = []
    for split, part, n in (("train", ds.train, n_train), ("test", ds.test, n_test)):
        for name in names:
            (folder / split / name).mkdir(parents=True, exist_ok=True)
        x, y = part.x[:n, 0].numpy(), part.y[:n].tolist()
        paths = [str(folder / split / names[k] / f"{i:05d}.png") for i, k in enumerate(y)]
        jobs += [(paths[i : i + 2000], x[i : i + 2000]) for i in range(0, n, 2000)]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        sum(pool.map(_write_pngs, jobs))
    return n_train, n_test


def folder_config(folder: Path) -> DataConfig:
    return DataConfig(name="image-folder", data_dir=str(folder), val_size=IDX_VAL / IDX_TRAIN)


def timed_load(cfg: DataConfig) -> tuple[float, str]:
    t0 = time.perf_counter()
    data = load_dataset(cfg)
    return time.perf_counter() - t0, data.describe()


def throughput(recipe: str | object, data_dir: str, seconds: float) -> float:
    return bench_recipe(recipe, {}, seconds=seconds, data_dir=data_dir, device="cpu").samples_per_s  # type: ignore[arg-type]


def train_run(argv: list[str], out: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds of the whole process, test accuracy) of `nnzoo train ARGV`."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "nnzoo", "train", *argv, "--out", str(out), "--quiet"],
                       capture_output=True, text=True, env=env)  # fmt: skip
    wall = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"nnzoo train {' '.join(argv)} failed:\n{r.stderr[-2000:]}")
    return wall, json.loads((out / "metrics.json").read_text())["test"]["accuracy"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default="/usr/share/datasets", help="folder holding fashion-mnist/")
    p.add_argument("--limit", type=int, default=None, help="write only this many images (train 6 : test 1)")
    p.add_argument("--seconds", type=float, default=5.0, help="how long each throughput measurement runs")
    p.add_argument("--epochs", type=int, default=None, help="epochs of the accuracy runs (default: the recipe's)")
    p.add_argument("--skip-accuracy", action="store_true", help="leave (d) out")
    p.add_argument("--keep", type=Path, default=None, help="write the folder here and keep it (default: a temp dir)")
    args = p.parse_args()

    info = machine(torch.device("cpu"))
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['threads']} threads; CPU capability "
          f"{info['cpu_capability']}, mkldnn available: {torch.backends.mkldnn.is_available()}, oneDNN bf16 native: "
          f"{info['mkldnn_bf16']}; torch {info['torch']}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="nnzoo-image-folder-") as tmp:
        work = Path(tmp)
        os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # a cold image-folder cache, and nothing left behind
        folder = args.keep or work / "fashion-png"
        t0 = time.perf_counter()
        n_train, n_test = write_folder(args.data_dir, folder, args.limit)
        print(f"wrote {n_train + n_test:,} PNGs ({n_train:,} train/, {n_test:,} test/) to {folder} in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip

        cfg = folder_config(folder)
        cold, described = timed_load(cfg)
        warm, _ = timed_load(cfg)
        print(f"(a) first load, decoding: {cold:.2f} s ({(n_train + n_test) / cold:,.0f} images/s)  {described}")
        print(f"(b) second load, cached:  {warm:.2f} s", flush=True)

        folder_recipe = load_recipe(THROUGHPUT_RECIPE)
        folder_recipe.data = DataConfig(name="image-folder", val_size=folder_recipe.data.val_size)
        # Taken in turns, twice, the best of each kept: a neighbour's burst on a shared machine hits one, not both.
        rates: dict[str, list[float]] = {"folder": [], "idx": []}
        for _ in range(2):
            rates["folder"].append(throughput(folder_recipe, str(folder), args.seconds))
            rates["idx"].append(throughput(THROUGHPUT_RECIPE, args.data_dir, args.seconds))
        rate_folder, rate_idx = max(rates["folder"]), max(rates["idx"])
        print(f"(c) {THROUGHPUT_RECIPE} training step: image-folder {rate_folder:,.0f} samples/s, fashion-mnist "
              f"(IDX) {rate_idx:,.0f} samples/s ({rate_folder / rate_idx:.2f}x)", flush=True)  # fmt: skip

        if args.skip_accuracy:
            return
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        common = ["--epochs", str(args.epochs)] if args.epochs else []
        idx_args = [ACCURACY_RECIPE, "--data-dir", args.data_dir, *common]
        if args.limit:  # the same number of images as the folder (not the same ones: IDX cuts validation first)
            idx_args += ["--set", f"data.limit_train={round(n_train * (1 - IDX_VAL / IDX_TRAIN))}",
                         "--set", f"data.limit_test={n_test}"]  # fmt: skip
        folder_args = [ACCURACY_RECIPE, "--dataset", "image-folder", "--data-dir", str(folder),
                       "--set", f"data.val_size={IDX_VAL / IDX_TRAIN}", *common]  # fmt: skip
        wall_idx, acc_idx = train_run(idx_args, work / "run-idx", env)
        wall_folder, acc_folder = train_run(folder_args, work / "run-folder", env)
        print(f"(d) {ACCURACY_RECIPE}: IDX {acc_idx:.2%} in {wall_idx:.1f} s; image-folder {acc_folder:.2%} in "
              f"{wall_folder:.1f} s (whole processes; the folder run reads the cache of (a))")  # fmt: skip


if __name__ == "__main__":
    main()
