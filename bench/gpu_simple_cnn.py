"""The fast recipe on a CUDA GPU: per-epoch time, steady-state epoch time, and the training time until the test
accuracy first reaches 91% (the test set is scored after every epoch, outside the timed training loop).

    python bench/gpu_simple_cnn.py [--data-dir DIR] [--compile both|on|off]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

import nnzoo
from nnzoo.callbacks import Callback


class ScoreTest(Callback):
    def __init__(self, test: nnzoo.Split):
        self.test, self.rows = test, []

    def on_epoch_end(self, trainer, epoch, logs):
        acc = trainer.evaluate(self.test)["accuracy"]
        self.rows.append((epoch + 1, logs["epoch_seconds"], acc))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir")
    p.add_argument("--compile", default="both", choices=["both", "on", "off"])
    p.add_argument("--recipe", default="fashion-mnist-simple-cnn-fast")
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"  # cpu only to check the script itself
    print(f"{torch.cuda.get_device_name() if device == 'cuda' else 'CPU'}, torch {torch.__version__}")
    cfg = nnzoo.make_config(args.recipe, {"data_dir": args.data_dir})
    test = nnzoo.load_dataset(cfg.data).test
    modes = {"both": [False, True], "on": [True], "off": [False]}[args.compile]
    for compile_ in modes:
        cb = ScoreTest(test)
        with tempfile.TemporaryDirectory() as tmp:
            nnzoo.train(args.recipe, out=Path(tmp) / "run", overrides={"data_dir": args.data_dir, "device": device},
                        sets=[("train.compile", compile_)], callbacks=[cb], progress=False)  # fmt: skip
        total, reached = 0.0, None
        for epoch, seconds, acc in cb.rows:
            total += seconds
            print(f"compile={compile_} epoch {epoch}: {seconds:6.2f} s  test accuracy {100 * acc:.2f}%")
            if reached is None and acc >= 0.91:
                reached = (epoch, total)
        steady = statistics.median(s for _, s, _ in cb.rows[1:]) if len(cb.rows) > 1 else cb.rows[0][1]
        print(
            f"compile={compile_}: steady-state epoch {steady:.2f} s; 91% test accuracy "
            + (f"after epoch {reached[0]}, {reached[1]:.1f} s of training" if reached else "not reached")
        )


if __name__ == "__main__":
    main()
