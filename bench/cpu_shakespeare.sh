#!/usr/bin/env bash
# The two CPU reference results of the attention family, each timed as a user runs it (start-up, data,
# evaluation and reports included), one after the other, on an otherwise idle machine:
#
#   shakespeare-char-gpt       nanoGPT's CPU configuration; nanoGPT itself: val loss 1.886 in 105 s on 2 cores.
#                              Expected: val loss <= 1.90 in no more wall time.
#   shakespeare-char-gpt-fast  tuned for wall time. Expected: val loss <= 1.89 in <= 60 s.
#
# Then tokens/s of generation with and without the key/value cache, and a sample.
#
#   NNZOO_DATA_DIR=/path/holding/tinyshakespeare bash bench/cpu_shakespeare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
echo "$(nproc) cores, $(python -c 'import torch; print("torch", torch.__version__)'), load $(cut -d' ' -f1-3 /proc/loadavg)"
for recipe in shakespeare-char-gpt shakespeare-char-gpt-fast; do
  run=runs/bench-$recipe
  rm -rf "$run"
  start=$(date +%s.%N)
  python -m nnzoo train $recipe --out "$run" --quiet
  end=$(date +%s.%N)
  python - "$run" "$start" "$end" <<'PY'
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"{m['recipe']}: validation loss {m['val']['loss']:.4f} (expected {m['expected']}: {m['meets_expected']}), "
      f"{m['steps']} steps, training {m['train_seconds']:.1f} s, whole command {wall:.1f} s wall")
PY
done
run=runs/bench-shakespeare-char-gpt
for flag in "" "--no-cache"; do
  python -m nnzoo generate "$run" --prompt "ROMEO:" --length 58 --seed 0 --json $flag \
    | python -c "import json,sys; r=json.load(sys.stdin); print(f'tokens/s ${flag:-with the cache}: {r[\"tokens_per_s\"]:.0f}')"
done
python -m nnzoo generate "$run" --prompt "ROMEO:" --length 400 --seed 0 --temperature 0.8
