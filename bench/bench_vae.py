"""pytorch/examples' VAE beside nnzoo's fashion-mnist-vae recipe, in one invocation, on the same machine.

Both follow the same recipe (MLP 784-400-20, BCE summed + KL, Adam 1e-3, batch 128, 10 epochs on all 60,000
Fashion-MNIST training images, test loss = negative ELBO per test image). Each runs as its own process, timed from
launch to exit (imports, data loading, training, testing and the pictures each writes), one after the other:

    python bench/bench_vae.py                 # the reference measurement: 10 epochs each
    python bench/bench_vae.py --epochs 1      # a quick check of the harness

The reference (bench/vae_reference.py) reads torchvision's layout, ROOT/FashionMNIST/raw/ with the extracted IDX
files; we build it in a temporary folder from --data (Debian's /usr/share/datasets/fashion-mnist by default).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _fashion_layout import torchvision_layout  # bench/ is on sys.path when run as a script

HERE = Path(__file__).resolve().parent


def timed(cmd: list[str], env: dict[str, str], log: Path) -> float:
    print("$ " + " ".join(cmd), flush=True)
    t = time.perf_counter()
    with open(log, "w") as fh:
        code = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - t
    if code:
        sys.exit(f"error: the command failed with exit code {code}; its output is in {log}:\n{log.read_text()[-2000:]}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--data", type=Path, default=Path("/usr/share/datasets/fashion-mnist"),
                   help="folder with the four Fashion-MNIST IDX files (gzipped or not)")  # fmt: skip
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to nnzoo train, e.g. --set train.amp=true to measure bf16 autocast")  # fmt: skip
    p.add_argument("--keep", type=Path, help="keep the logs, pictures and the nnzoo run here (default: discarded)")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-vae-"))
    out = args.keep or work
    out.mkdir(parents=True, exist_ok=True)
    try:
        root = torchvision_layout(args.data, work / "torchvision")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]))
        ref_s = timed([sys.executable, str(HERE / "vae_reference.py"), "--root", str(root), "--epochs", str(args.epochs),
                       "--results", str(out / "reference-results")], env, out / "reference.log")  # fmt: skip
        ref = json.loads((out / "reference.log").read_text().strip().splitlines()[-1])
        # nnzoo reads the same files: it finds DIR/fashion-mnist/ under --data-dir.
        data_root = work / "nnzoo-data"
        data_root.mkdir()
        os.symlink(args.data.resolve(), data_root / "fashion-mnist")
        run = out / "nnzoo-run"
        shutil.rmtree(run, ignore_errors=True)
        ours_s = timed([sys.executable, "-m", "nnzoo", "train", "fashion-mnist-vae", "--epochs", str(args.epochs),
                        "--data-dir", str(data_root), "--out", str(run), "--quiet",
                        *[a for kv in args.sets for a in ("--set", kv)]], env, out / "nnzoo.log")  # fmt: skip
        ours = json.loads((run / "metrics.json").read_text())
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    ref_loss, our_loss = ref["reference_test_loss"], ours["test"]["loss"]
    print(f"\nVAE 784-400-20 on Fashion-MNIST, batch 128, Adam 1e-3, {args.epochs} epochs, on {os.cpu_count()} CPUs")
    print(f"{'':34}{'wall s':>9}{'loop s':>9}{'test loss':>11}")
    print(f"{'pytorch/examples (DataLoader)':34}{ref_s:>9.1f}{ref['loop_seconds']:>9.1f}{ref_loss:>11.2f}")
    print(f"{'nnzoo train fashion-mnist-vae':34}{ours_s:>9.1f}{ours['train_seconds']:>9.1f}{our_loss:>11.2f}")
    print(f"speed-up (wall): {ref_s / ours_s:.2f}x   test loss difference (nnzoo - reference): {our_loss - ref_loss:+.2f} "
          f"nats per image")  # fmt: skip
    print("(loop s: the reference's train+test loop; nnzoo's train_seconds, which leaves out the final test pass)")


if __name__ == "__main__":
    main()
