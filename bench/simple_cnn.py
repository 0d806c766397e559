"""Side by side, in one run: the classic example (reference_simple_cnn.py) vs `nnzoo train fashion-mnist-simple-cnn`
(the same recipe), then the tuned `fashion-mnist-simple-cnn-fast`. Whole-process wall times, the ratio, accuracies.

    python bench/simple_cnn.py                 # 10 epochs each, about 10 minutes on 2 cores
    python bench/simple_cnn.py --epochs 1      # a quick check of the harness

Needs torchvision (pip install -e ".[bench]") and Fashion-MNIST (apt-get install dataset-fashion-mnist, or
--data-dir DIR with DIR/fashion-mnist/*.gz). Nothing here is a test: it prints numbers for the README.
"""

from __future__ import annotations

import argparse
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


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
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
    args = p.parse_args()
    src = Path(args.data_dir) / "fashion-mnist"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torchvision_layout(src, tmp / "tv")
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"python {platform.python_version()}", flush=True)  # fmt: skip
        ref_wall, out = timed([sys.executable, str(HERE / "reference_simple_cnn.py"), "--root", str(tmp / "tv"),
                               "--epochs", str(args.epochs)])  # fmt: skip
        ref = json.loads(out.strip().splitlines()[-1])
        print(f"reference (torchvision DataLoader, 2 workers): {ref_wall:7.1f} s wall, "
              f"test accuracy {100 * ref['accuracy']:.2f}%", flush=True)  # fmt: skip
        ours_wall, m = nnzoo_run("fashion-mnist-simple-cnn", tmp / "same",
                                 ["--data-dir", args.data_dir, "--epochs", str(args.epochs)])  # fmt: skip
        print(f"nnzoo train fashion-mnist-simple-cnn:          {ours_wall:7.1f} s wall, "
              f"test accuracy {100 * m['test']['accuracy']:.2f}%", flush=True)  # fmt: skip
        print(f"speed-up: {ref_wall / ours_wall:.2f}x   accuracy difference: "
              f"{100 * (m['test']['accuracy'] - ref['accuracy']):+.2f} points", flush=True)  # fmt: skip
        if not args.skip_fast:
            wall, m = nnzoo_run("fashion-mnist-simple-cnn-fast", tmp / "fast", ["--data-dir", args.data_dir])
            print(f"nnzoo train fashion-mnist-simple-cnn-fast:     {wall:7.1f} s wall, "
                  f"test accuracy {100 * m['test']['accuracy']:.2f}% ({m['epochs']} epochs)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
