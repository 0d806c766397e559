"""The GAN reference measurements, one after the other, each checked against its goal:

* dcgan (28x28, MNIST-format data): 5 epochs within 15 minutes on 2 CPU cores; the Fréchet distance (in the
  judge's features) falls over training; the samples cover at least 9 of 10 classes;
* cgan: the judge agrees with the requested label at least 90% of the time;
* gan (MLP): reported, no goal.

    python bench/generative_goals.py                          # Fashion-MNIST: dcgan, then cgan
    python bench/generative_goals.py --runs dcgan cgan gan --dataset mnist --data-dir DIR

The judge (a SimpleCNN trained once per dataset and cached, see nnzoo/tasks/generative/quality.py) is trained first and
timed on its own, so the GAN wall times are the GANs'. Each run is `nnzoo train RECIPE` in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPES = {"dcgan": "mnist-dcgan", "cgan": "mnist-cgan", "gan": "mnist-gan"}  # run with --dataset
BUDGET_S = 15 * 60


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", choices=list(RECIPES), default=["dcgan", "cgan"])
    p.add_argument("--dataset", default="fashion-mnist", help="MNIST-format dataset (default: fashion-mnist)")
    p.add_argument("--data-dir", help="passed to nnzoo train")
    p.add_argument("--out", type=Path, default=Path("runs/goals"), help="run folders go here")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="passed to nnzoo train")
    args = p.parse_args()
    sys.path.insert(0, str(HERE.parent / "src"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]))

    from nnzoo import api, load_dataset
    from nnzoo.tasks.generative import quality

    cfg = api.make_config(RECIPES[args.runs[0]], {"dataset": args.dataset, "data_dir": args.data_dir})
    t = time.perf_counter()
    judge = quality.auto_judge(cfg, load_dataset(cfg.data))
    judge_acc = json.loads((judge / "metrics.json").read_text())["test"]["accuracy"]
    lines = [f"judge {judge}: test accuracy {100 * judge_acc:.2f}% ({time.perf_counter() - t:.0f} s, once per dataset)"]
    ok = True
    for name in args.runs:
        out = args.out / f"{name}-{args.dataset}"
        if out.exists():
            sys.exit(f"error: {out} exists; remove it or give another --out")
        cmd = [sys.executable, "-m", "nnzoo", "train", RECIPES[name], "--dataset", args.dataset, "--out", str(out),
               *(["--data-dir", args.data_dir] if args.data_dir else []), *[a for kv in args.sets for a in ("--set", kv)]]  # fmt: skip
        print("$ " + " ".join(cmd), flush=True)
        t = time.perf_counter()
        if subprocess.call(cmd, env=env):
            sys.exit(f"error: {name} failed")
        wall = time.perf_counter() - t
        m = json.loads((out / "metrics.json").read_text())
        fds = [json.loads(line)["fd"] for line in (out / "metrics.jsonl").read_text().splitlines()]
        test = m["test"]
        checks = {"covers >= 9 classes": test["classes_covered"] >= 9, "fd falls": fds[-1] < fds[0]}
        if name == "dcgan":
            checks["5 epochs within 15 min"] = m["epochs"] == 5 and wall <= BUDGET_S
        if name == "cgan":
            checks["label accuracy >= 90%"] = test["label_accuracy"] >= 0.9
        ok &= all(checks.values())
        lines.append(
            f"{name} on {args.dataset}: {m['epochs']} epochs, wall {wall:.0f} s (training {m['train_seconds']:.0f} s), "
            f"fd per epoch {' '.join(f'{v:.1f}' for v in fds)} (floor {test['fd_floor']:.1f}), "
            f"confidence {test['confidence']:.3f}, classes covered {test['classes_covered']:.0f}"
            + (f", label accuracy {100 * test['label_accuracy']:.1f}%" if "label_accuracy" in test else "")
            + "\n    " + "  ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in checks.items())
        )  # fmt: skip
    print("\n" + "\n".join(lines))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
