#!/usr/bin/env bash
# shakespeare-char-gpt against nanoGPT's run written out in plain PyTorch (bench/reference_nanogpt.py), seed for
# seed, one run at a time: the loss over the whole validation text of each, then their means and spreads. About
# 2 x 5 x 100 s on 2 cores.
#
#   NNZOO_DATA_DIR=/path/holding/tinyshakespeare bash bench/nanogpt_seeds.sh [SEED...]   (default: 0 1 2 3 4)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
[ $# -gt 0 ] || set -- 0 1 2 3 4
seeds=("$@")
echo "$(nproc) cores, $(python -c 'import torch; print("torch", torch.__version__)'), seeds ${seeds[*]}"
for s in "${seeds[@]}"; do
  run=runs/seeds-shakespeare-char-gpt-$s
  rm -rf "$run"
  python -m nnzoo train shakespeare-char-gpt --seed "$s" --out "$run" --quiet
done
python - "${seeds[@]}" <<'PY'
import json, statistics, sys
losses = [json.load(open(f"runs/seeds-shakespeare-char-gpt-{s}/metrics.json"))["val"]["loss"] for s in sys.argv[1:]]
for s, loss in zip(sys.argv[1:], losses):
    print(f"nnzoo seed {s}: whole_val {loss:.4f}")
if len(losses) > 1:
    print(f"nnzoo whole_val: mean {statistics.fmean(losses):.4f}, std {statistics.stdev(losses):.4f}, "
          f"min {min(losses):.4f}, max {max(losses):.4f} over {len(losses)} seeds")
PY
python bench/reference_nanogpt.py --seeds "${seeds[@]}"
