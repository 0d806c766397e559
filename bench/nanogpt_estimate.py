"""How far nanoGPT's validation-loss estimate can fall from the full validation loss, on a trained nnzoo GPT.

nnzoo reports the mean loss over the whole validation text (every non-overlapping window). nanoGPT's train.py
reports an estimate: ``eval_iters`` batches of ``batch_size`` windows drawn at random offsets of the validation
text (its CPU configuration: 20 batches of 12, so 240 windows). This script draws that estimate many times from
the same trained model and prints its spread, so a single nanoGPT figure can be read against nnzoo's.

    NNZOO_DATA_DIR=DIR python bench/nanogpt_estimate.py runs/bench-shakespeare-char-gpt [--draws 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from nnzoo import api, load_dataset  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--draws", type=int, default=200, help="estimates to draw (default 200)")
    p.add_argument("--eval-iters", type=int, default=20, help="nanoGPT's eval_iters (its CPU command: 20)")
    p.add_argument("--batch-size", type=int, default=12, help="nanoGPT's batch_size (its CPU command: 12)")
    args = p.parse_args()

    run = api.load_run(args.run_dir)
    model = run.model.eval()
    val = load_dataset(run.config.data).val  # non-overlapping windows of the last 10% of the text
    T = val.x.shape[1]
    # The validation text itself, rebuilt from the windows: x[i] covers text[i*T : (i+1)*T], y[-1] ends one later.
    text = torch.cat([val.x.long().flatten(), val.y[-1, -1:].long()])

    with torch.inference_mode():
        full = []
        for i in range(0, len(val.x), 512):
            logits = model(val.x[i : i + 512])
            full.append(F.cross_entropy(logits.flatten(0, 1).float(), val.y[i : i + 512].long().flatten(),
                                        reduction="sum"))  # fmt: skip
        full_loss = float(sum(full)) / val.y.numel()

        g = torch.Generator().manual_seed(0)
        estimates = []
        for _ in range(args.draws):
            losses = []
            for _ in range(args.eval_iters):  # as nanoGPT's get_batch('val') + estimate_loss
                ix = torch.randint(len(text) - T, (args.batch_size,), generator=g)
                x = torch.stack([text[i : i + T] for i in ix])
                y = torch.stack([text[i + 1 : i + 1 + T] for i in ix])
                losses.append(float(F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())))
            estimates.append(sum(losses) / len(losses))

    estimates.sort()
    q = lambda f: estimates[min(len(estimates) - 1, int(f * len(estimates)))]  # noqa: E731
    print(f"{args.run_dir}: full validation loss {full_loss:.4f} over {val.y.numel():,} characters")
    print(f"nanoGPT-style estimates ({args.eval_iters} x {args.batch_size} random windows), {args.draws} draws: "
          f"mean {statistics.mean(estimates):.4f}, std {statistics.stdev(estimates):.4f}, "
          f"5%-95% {q(0.05):.4f}-{q(0.95):.4f}, min {estimates[0]:.4f}, max {estimates[-1]:.4f}")  # fmt: skip
    for threshold in (1.886, 1.90):
        share = sum(e <= threshold for e in estimates) / len(estimates)
        print(f"  share of estimates <= {threshold}: {100 * share:.0f}%")


if __name__ == "__main__":
    main()
