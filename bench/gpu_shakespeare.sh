#!/usr/bin/env bash
# nanoGPT's Shakespeare GPU configuration (6 layers, 6 heads, 384 wide, context 256, batch 64, dropout 0.2,
# 5,000 steps) on one CUDA GPU. Expected: validation loss 1.48 or less; nanoGPT reports 1.4697 on an A100.
# Prints the wall time of the whole command (start-up, evaluation and checkpoints included),
# the validation loss, the device, tokens/s with and without the key/value cache (240 characters: within the
# context, where the cache saves work) and a 500-character sample.
#
#   NNZOO_DATA_DIR=/path/holding/tinyshakespeare bash bench/gpu_shakespeare.sh [RUN_DIR]
#
# An estimate, not yet measured: 1-3 minutes on an H100 (the 5,000 steps and 21 evaluations and checkpoints).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
run=${1:-runs/bench-shakespeare-char-gpt-gpu}
rm -rf "$run"
start=$(date +%s.%N)
python -m nnzoo train shakespeare-char-gpt-gpu --out "$run"
end=$(date +%s.%N)
python - "$run" "$start" "$end" <<'PY'
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"\nshakespeare-char-gpt-gpu on {m['device']}: validation loss {m['val']['loss']:.4f} "
      f"(expected <= 1.48: {m['meets_expected']}), best epoch {m['best_epoch']}, {m['steps']} steps, "
      f"training {m['train_seconds']:.0f} s, whole command {wall:.0f} s wall")
PY
for flag in "" "--no-cache"; do
  python -m nnzoo generate "$run" --prompt "ROMEO:" --length 240 --seed 0 --temperature 0.8 --json $flag \
    | python -c "import json,sys; r=json.load(sys.stdin); print(f'tokens/s ${flag:-with the cache}: {r[\"tokens_per_s\"]:.0f}')"
done
python -m nnzoo generate "$run" --prompt "ROMEO:" --length 500 --seed 0 --temperature 0.8
