"""Shared fixtures: tiny real data written to disk the way users keep it, so every test runs offline."""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnzoo import Callback, Trainer
from nnzoo.data import write_idx
from nnzoo.data.tang_authors import POETS

# Under pytest-xdist (`-n 2`, the default in pyproject): one core per worker, so two workers never fight over the
# same two cores with two threads each (oversubscribed PyTorch threads run several times slower than one each).
# Trainers take their thread count from the cores this process may use, subprocesses inherit the pinning.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw") and hasattr(os, "sched_setaffinity"):
    _cores = sorted(os.sched_getaffinity(0))
    if len(_cores) > 1:
        os.sched_setaffinity(0, {_cores[int(_WORKER[2:]) % len(_cores)]})
        torch.set_num_threads(1)

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
    for name in ("NNZOO_DATA_DIR", "NNZOO_CACHE_DIR", "NNZOO_MIRROR"):  # a developer's own settings stay out
        monkeypatch.delenv(name, raising=False)
    if sys.platform != "linux":  # platformdirs reads XDG_CACHE_HOME on Linux only: elsewhere name the folder
        monkeypatch.setenv("NNZOO_CACHE_DIR", str(tmp_path / "cache" / "nnzoo"))
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


@pytest.fixture(scope="session")
def fashion_cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SimpleCNN trained two epochs on 3,000 real Fashion-MNIST images (about 77% on the test set): a classifier
    that is right often enough for its accuracy on image files to be compared with its accuracy on tensors."""
    from nnzoo import api

    run = tmp_path_factory.mktemp("fashion") / "fashion-mnist-simple-cnn"
    api.train("fashion-mnist-simple-cnn-fast", out=run, overrides={"data_dir": str(FASHION_DIR.parent)},
              sets=[("data.limit_train", 3000), ("data.val_size", 500), ("train.epochs", 2),
                    ("train.num_threads", 1)], progress=False)  # fmt: skip
    return run


# Poems for tiny language models (the 6 of test_rnn_cli, traditional characters).
POEMS = ["春眠不覺曉，處處聞啼鳥。夜來風雨聲，花落知多少。", "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。",
         "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。", "紅豆生南國，春來發幾枝。願君多采擷，此物最相思。",
         "朝辭白帝彩雲間，千里江陵一日還。兩岸猿聲啼不住，輕舟已過萬重山。", "春水滿四澤，夏雲多奇峰。秋月揚明輝，冬嶺秀孤松。"]  # fmt: skip


@pytest.fixture(scope="session")
def poetry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A miniature chinese-poetry/全唐诗 folder: 58 files as upstream, 5-character poems by the five poets (each
    writing mostly with characters of their own) and by others."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "chinese-poetry" / "全唐诗"
    folder.mkdir(parents=True)
    rng = random.Random(0)
    pools = [
        "春花秋月何時了往事",
        "國破山河在城春草木",
        "床前明月光疑是地上",
        "曾經滄海難為水除卻",
        "山不在高有仙則名水",
    ]
    poems = []
    for author, pool in zip(POETS + ["無名氏"], pools + ["天地玄黃宇宙洪荒日"]):
        for _ in range(40):
            lines = ["".join(rng.choice(pool) for _ in range(5)) for _ in range(4)]
            poems.append({"author": author, "title": "無題",
                          "paragraphs": [f"{lines[0]}，{lines[1]}。", f"{lines[2]}，{lines[3]}。"]})  # fmt: skip
    for i, n in enumerate(range(0, 58000, 1000)):
        chunk = poems if i == 0 else []
        (folder / f"poet.tang.{n}.json").write_text(json.dumps(chunk, ensure_ascii=False), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def authors_run(poetry_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tang-authors-lstm trained two steps on the miniature 全唐诗 (texts of 32 characters): a text classifier."""
    from nnzoo import api

    run = tmp_path_factory.mktemp("authors") / "tang-authors-lstm"
    api.train("tang-authors-lstm", out=run, overrides={"data_dir": str(poetry_dir), "max_steps": 2},
              sets=[("data.seq_len", 32), ("model_args.hidden", 16), ("train.num_threads", 1)], progress=False)  # fmt: skip
    return run


@pytest.fixture(scope="session")
def serve_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny run of each kind `nnzoo serve` takes, trained two steps, offline (scikit-learn's bundled digits and
    a poem file written here): a classifier, a poem LM, a class-conditional GAN, and a plain autoencoder."""
    from nnzoo.cli import main

    root = tmp_path_factory.mktemp("serve-runs")
    (root / "poems.txt").write_text("".join(p + "\n" for p in POEMS * 12), encoding="utf-8")
    quick = ["--max-steps", "2", "--quiet", "--set", "train.num_threads=1"]
    small_gan = ["--set", "model_args.arch=mlp", "--set", "model_args.g_hidden=[32]", "--set", "model_args.d_hidden=[32]",
                 "--set", "model_args.judge=none", "--set", "model_args.latent=8"]  # fmt: skip
    argv = {
        "digits": ["digits-mlp", "--set", "model_args.hidden=[32]"],
        "poems": ["tang-poems-char-lstm", "--dataset", "tang300", "--data-file", str(root / "poems.txt"),
                  "--set", "model_args.hidden=32", "--set", "model_args.embed=16", "--set", "data.seq_len=24"],
        "cgan": ["mnist-cgan", "--dataset", "digits", *small_gan],
        "ae": ["mnist-vae", "--dataset", "digits", "--set", "model=ae", "--set", "model_args.hidden=[32]",
               "--set", "model_args.latent=4"],
    }  # fmt: skip
    runs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        for name, args in argv.items():
            runs[name] = root / name
            assert main(["train", *args, "--out", str(runs[name]), *quick]) == 0, name
    return runs


@pytest.fixture(scope="session")
def table_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two table models trained two steps on bundled tables: penguins (a classifier, with text columns and gaps)
    and diabetes (a regressor)."""
    from nnzoo.cli import main

    root = tmp_path_factory.mktemp("table-runs")
    runs = {name: root / name for name in ("penguins", "diabetes")}
    for name, run in runs.items():
        argv = [
            "train",
            f"{name}-mlp",
            "--out",
            str(run),
            "--max-steps",
            "2",
            "--quiet",
            "--set",
            "model_args.hidden=[16]",
        ]
        assert main(argv) == 0, name
    return runs


class StopAfter(Callback):
    """Simulates Ctrl-C right after epoch ``n`` was checkpointed (the resume tests of every family)."""

    def __init__(self, n: int):
        self.n = n

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        if epoch + 1 == self.n:
            raise KeyboardInterrupt


@contextmanager
def uvicorn_in_a_thread(config: Any) -> Iterator[Any]:
    """A uvicorn server with ``config`` on a free loopback port, in a thread; yields its listening socket and
    stops it on exit (the serve tests that need real sockets: the browser, slow clients)."""
    import uvicorn

    from nnzoo.serve import listen

    sock = listen("127.0.0.1", 0)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield sock
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
        sock.close()


def run_cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    """`nnzoo ARGV...` in this process: (exit code, stdout, stderr)."""
    from nnzoo.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
