"""Side by side, in one run, the classic SimpleCNN recipe (SGD lr 0.01, batch 64, the same layers and data) as
users would run it instead of nnzoo: the PyTorch example (reference_simple_cnn.py), Keras 3's ``model.fit`` on
numpy arrays with its torch backend (reference_keras.py) and PyTorch Lightning's Trainer with a DataLoader
(reference_lightning.py); then `nnzoo train fashion-mnist-simple-cnn` (the same recipe) and the tuned
`fashion-mnist-simple-cnn-fast`. Whole-process wall times, nnzoo's speed-up over each, accuracies.

    python bench/simple_cnn.py                 # 10 epochs each: about 10 minutes on an AVX512-BF16 2-core machine, 40 on AVX2
    python bench/simple_cnn.py --epochs 1      # a quick check of the harness

Needs the bench extra (pip install -e ".[bench]": torchvision, keras, lightning; a reference whose library is
missing is skipped) and Fashion-MNIST (apt-get install dataset-fashion-mnist, or --data-dir DIR with
DIR/fashion-mnist/*.gz). Nothing here is a test: it prints numbers for the README.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _fashion_layout import torchvision_layout  # bench/ is on sys.path when run as a script

HERE = Path(__file__).resolve().parent


def torch_facts() -> str:
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability(), "
                          "'| oneDNN bf16 native:', torch.ops.mkldnn._is_mkldnn_bf16_supported())"],
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return wall, r.stdout


def nnzoo_run(recipe: str, out: Path, extra: list[str]) -> tuple[float, dict]:
    wall, _ = timed([sys.executable, "-m", "nnzoo", "train", recipe, "--out", str(out), "--quiet", *extra])
    return wall, json.loads((out / "metrics.json").read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default="/usr/share/datasets", help="folder holding fashion-mnist/")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--skip-fast", action="store_true")
    p.add_argument("--refs", nargs="+", choices=["example", "keras", "lightning"], default=["example", "keras", "lightning"],
                   help="the references to run (default: all three)")  # fmt: skip
    args = p.parse_args()
    src = Path(args.data_dir) / "fashion-mnist"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torchvision_layout(src, tmp / "tv")
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"python {platform.python_version()}", flush=True)  # fmt: skip
        print(f"CPU capability {torch_facts()}", flush=True)
        epochs = ["--epochs", str(args.epochs)]
        refs = {  # name -> (library it needs, command)
            "PyTorch example (torchvision DataLoader, 2 workers)": ("torchvision", [str(HERE / "reference_simple_cnn.py"), "--root", str(tmp / "tv")]),
            "Keras 3 model.fit on numpy, torch backend": ("keras", [str(HERE / "reference_keras.py"), "--data-dir", str(src)]),
            "PyTorch Lightning Trainer + DataLoader": ("lightning", [str(HERE / "reference_lightning.py"), "--root", str(tmp / "tv")]),
        }  # fmt: skip
        results = {}
        for name, (library, cmd) in refs.items():
            if {"torchvision": "example"}.get(library, library) not in args.refs:
                continue
            if importlib.util.find_spec(library) is None:
                print(f"{name}: skipped ({library} is not installed: pip install -e '.[bench]')", flush=True)
                continue
            wall, out = timed([sys.executable, *cmd, *epochs], env={**os.environ, "KERAS_BACKEND": "torch"})
            results[name] = (wall, json.loads(out.strip().splitlines()[-1])["accuracy"])
            print(f"{name}: {wall:7.1f} s wall, test accuracy {100 * results[name][1]:.2f}%", flush=True)
        ours_wall, m = nnzoo_run("fashion-mnist-simple-cnn", tmp / "same", ["--data-dir", args.data_dir, *epochs])
        ours = m["test"]["accuracy"]
        print(f"nnzoo train fashion-mnist-simple-cnn: {ours_wall:7.1f} s wall, test accuracy {100 * ours:.2f}%",
              flush=True)  # fmt: skip
        for name, (wall, accuracy) in results.items():
            print(f"  {wall / ours_wall:.2f}x faster than the {name} "
                  f"(accuracy {100 * (ours - accuracy):+.2f} points)", flush=True)  # fmt: skip
        if not args.skip_fast:
            wall, m = nnzoo_run("fashion-mnist-simple-cnn-fast", tmp / "fast", ["--data-dir", args.data_dir])
            print(f"nnzoo train fashion-mnist-simple-cnn-fast:     {wall:7.1f} s wall, "
                  f"test accuracy {100 * m['test']['accuracy']:.2f}% ({m['epochs']} epochs)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
