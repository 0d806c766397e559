"""Does pretraining help when labels are few? Test accuracy with 10%, 25% and 100% of the training labels, for
transformer-encoder trained from scratch and fine-tuned from a bert-mlm run pretrained on the training texts
themselves (their labels unused), on the same split and the same tokens:

* ``--task chnsenticorp``: the chnsenticorp-transformer recipe on jieba words;
* ``--task tang-authors``: the tang-authors-transformer recipe on characters.

    NNZOO_DATA_DIR=DIR python bench/label_efficiency.py --task chnsenticorp [--out DIR] [--fractions 0.1 0.25 1]

Pretraining reads every training text (the other 90% of them, at 10% of the labels, are exactly the unlabelled
text a user with few labels has); validation and test texts are never read before their evaluation. Each
fraction trains for about the same number of steps (the recipe's epochs over the full set, so ten times as many
epochs of 10%), with the best epoch by validation accuracy tested; both arms share every setting but the initial
encoder. It writes results.json, a Markdown table and a PNG plot under --out, and prints the table. Nothing here
is a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import nnzoo

MODEL_ARGS = [("model_args.dim", 128), ("model_args.depth", 2), ("model_args.heads", 4)]
# task -> (fine-tuning recipe, its epochs over all labels, tokenizer, seq_len)
TASKS = {
    "chnsenticorp": ("chnsenticorp-transformer", 4, "word", 256),
    "tang-authors": ("tang-authors-transformer", 15, "char", 128),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=list(TASKS), default="chnsenticorp")
    ap.add_argument("--out", default=None, help="default: bench-out/label-efficiency-TASK")
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 1.0])
    ap.add_argument("--pretrain-epochs", type=int, default=8)
    args = ap.parse_args()
    recipe, full_epochs, tokenizer, seq_len = TASKS[args.task]
    out = Path(args.out or f"bench-out/label-efficiency-{args.task}")
    out.mkdir(parents=True, exist_ok=True)
    machine = (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, CPU capability "
               f"{torch.backends.cpu.get_cpu_capability()}, oneDNN bf16 native "
               f"{torch.ops.mkldnn._is_mkldnn_bf16_supported()}, torch {torch.__version__}")  # fmt: skip
    print(machine, flush=True)
    t0 = time.perf_counter()
    mlm = out / "bert-mlm"
    if not (mlm / "metrics.json").is_file():
        nnzoo.train("bert-mlm", out=mlm, overrides={"dataset": args.task, "tokenizer": tokenizer},
                    sets=[*MODEL_ARGS, ("data.seq_len", seq_len), ("train.epochs", args.pretrain_epochs),
                          ("train.optimizer", "adamw"), ("train.lr", 1e-3), ("train.weight_decay", 0.01),
                          ("train.batch_size", 64), ("train.schedule", "cosine"), ("train.warmup_steps", 100)],
                    progress=False)  # fmt: skip
    pretrain_s = time.perf_counter() - t0
    pre = json.loads((mlm / "metrics.json").read_text())["test"]
    rows = []
    for frac in args.fractions:
        epochs = max(full_epochs, round(full_epochs / frac))
        for arm in ("scratch", "pretrained"):
            run = out / f"{arm}-{frac:g}"
            sets = [*MODEL_ARGS, ("data.label_fraction", frac), ("train.epochs", epochs), ("data.tokenizer", tokenizer)]
            overrides = {"init_from": str(mlm)} if arm == "pretrained" else {}
            if arm == "pretrained":
                sets = [s for s in sets if s[0] != "data.tokenizer"]  # the pretrained run's tokens
            t = time.perf_counter()
            if not (run / "metrics.json").is_file():
                nnzoo.train(recipe, out=run, overrides=overrides, sets=sets, progress=False)
            m = json.loads((run / "metrics.json").read_text())
            rows.append({"fraction": frac, "arm": arm, "epochs": epochs, "accuracy": m["test"]["accuracy"],
                         "macro_f1": m["test"]["macro_f1"], "best_epoch": m["best_epoch"],
                         "seconds": time.perf_counter() - t})  # fmt: skip
            print(rows[-1], flush=True)
    lines = ["| labels used | from scratch | pretrained (bert-mlm) | difference |", "|---|---|---|---|"]
    for frac in args.fractions:
        a, b = (next(r for r in rows if r["fraction"] == frac and r["arm"] == arm) for arm in ("scratch", "pretrained"))
        lines.append(f"| {100 * frac:g}% | {100 * a['accuracy']:.2f}% (F1 {a['macro_f1']:.3f}) | "
                     f"{100 * b['accuracy']:.2f}% (F1 {b['macro_f1']:.3f}) | "
                     f"{100 * (b['accuracy'] - a['accuracy']):+.2f} points |")  # fmt: skip
    table = "\n".join(lines)
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps({"machine": machine, "pretraining": pre,
                                                  "pretrain_seconds": pretrain_s, "rows": rows}, indent=1))  # fmt: skip
    _plot(rows, args.fractions, out / "label_efficiency.png", f"{args.task}: transformer-encoder, {tokenizer} tokens")
    print(table)
    print(
        f"pretraining: masked perplexity {pre['masked_perplexity']:.1f}, {pretrain_s:.0f} s; "
        f"all: {time.perf_counter() - t0:.0f} s"
    )


def _plot(rows: list[dict], fractions: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for arm, style in (("scratch", "o--"), ("pretrained", "s-")):
        acc = [100 * next(r["accuracy"] for r in rows if r["fraction"] == f and r["arm"] == arm) for f in fractions]
        ax.plot([100 * f for f in fractions], acc, style, label=arm)
    ax.set_xscale("log")
    ax.set_xticks([100 * f for f in fractions], [f"{100 * f:g}%" for f in fractions])
    ax.set_xlabel("training labels used")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
