"""nanoGPT's character-level Shakespeare run on CPU, written out in plain PyTorch as a reference (not part of nnzoo).

nanoGPT's README trains on CPU with

    python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20 --log_interval=1
        --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000
        --dropout=0.0

This file follows that run step for step, independently of nnzoo's code: the vocabulary of data/shakespeare_char
(every character of the text, sorted), the first 90% of the text to train and the rest to validate; the GPT of
model.py without biases (fused Q/K/V, GELU MLP of 4x width, pre-LayerNorm, tied head, normal(0, 0.02) weights and
normal(0, 0.02 / sqrt(2 * n_layer)) for the two projections into the residual stream); AdamW with betas 0.9/0.99
and weight decay 0.1 on matrices only; linear warm-up over 100 steps, cosine decay to 1e-4 at step 2,000;
gradient clipping at 1.0; windows at random offsets drawn from torch's global generator seeded with 1337 + seed;
float32 (nanoGPT uses no autocast on CPU).

At the end it prints, per seed, both nanoGPT's own validation estimate (eval_iters batches of windows at random
offsets, what train.py prints) and the loss over the whole validation text as nnzoo measures it (every
non-overlapping window), so the two can be read side by side:

    NNZOO_DATA_DIR=DIR python bench/reference_nanogpt.py --seeds 0 1 2 3 4
    NNZOO_DATA_DIR=DIR python -m nnzoo train shakespeare-char-gpt --seed S   # nnzoo, the same configuration
"""

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

N_LAYER, N_HEAD, N_EMBD, BLOCK, BATCH = 4, 4, 128, 64, 12
MAX_ITERS, WARMUP, LR, MIN_LR, WEIGHT_DECAY, BETAS, CLIP, EVAL_ITERS = 2000, 100, 1e-3, 1e-4, 0.1, (0.9, 0.99), 1.0, 20


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(N_EMBD, bias=False)
        self.c_attn = nn.Linear(N_EMBD, 3 * N_EMBD, bias=False)
        self.attn_proj = nn.Linear(N_EMBD, N_EMBD, bias=False)
        self.ln_2 = nn.LayerNorm(N_EMBD, bias=False)
        self.c_fc = nn.Linear(N_EMBD, 4 * N_EMBD, bias=False)
        self.mlp_proj = nn.Linear(4 * N_EMBD, N_EMBD, bias=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(N_EMBD, dim=2)
        q, k, v = (t.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, N_EMBD)
        self.wpe = nn.Embedding(BLOCK, N_EMBD)
        self.h = nn.ModuleList(Block() for _ in range(N_LAYER))
        self.ln_f = nn.LayerNorm(N_EMBD, bias=False)
        self.lm_head = nn.Linear(N_EMBD, vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * N_LAYER))

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def lr_at(it):
    if it < WARMUP:
        return LR * (it + 1) / (WARMUP + 1)
    ratio = (it - WARMUP) / (MAX_ITERS - WARMUP)
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (LR - MIN_LR)


def batch(data):
    ix = torch.randint(len(data) - BLOCK, (BATCH,))
    x = torch.stack([data[i : i + BLOCK] for i in ix])
    y = torch.stack([data[i + 1 : i + 1 + BLOCK] for i in ix])
    return x, y


def run(text, seed):
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    cut = int(len(ids) * 0.9)
    train, val = ids[:cut], ids[cut:]

    torch.manual_seed(1337 + seed)
    model = GPT(len(chars))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=LR, betas=BETAS)  # fmt: skip
    start = time.perf_counter()
    model.train()
    for it in range(MAX_ITERS):
        for group in opt.param_groups:
            group["lr"] = lr_at(it)
        loss = model(*batch(train))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
    seconds = time.perf_counter() - start

    model.eval()
    with torch.no_grad():
        estimate = statistics.fmean(model(*batch(val)).item() for _ in range(EVAL_ITERS))  # nanoGPT's print
        # nnzoo's measure: every non-overlapping window of the validation text, from one character before it.
        tail = ids[cut - 1 :]
        x, y = tail[:-1].unfold(0, BLOCK, BLOCK), tail[1:].unfold(0, BLOCK, BLOCK)
        whole = sum(model(x[i : i + 512], y[i : i + 512]).item() * len(x[i : i + 512]) for i in range(0, len(x), 512))
    return {"seed": seed, "estimate_20x12": round(estimate, 4), "whole_val": round(whole / len(x), 4),
            "train_seconds": round(seconds, 1)}  # fmt: skip


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seed offsets (torch.manual_seed(1337 + s))")
    p.add_argument("--text", default=None, help="tinyshakespeare's input.txt (default: NNZOO_DATA_DIR/tinyshakespeare)")
    args = p.parse_args()
    path = Path(args.text or Path(os.environ.get("NNZOO_DATA_DIR", "data")) / "tinyshakespeare" / "input.txt")
    text = path.read_text(encoding="utf-8")
    results = []
    for seed in args.seeds:
        results.append(run(text, seed))
        print(json.dumps(results[-1]), flush=True)
    if len(results) > 1:
        for key in ("estimate_20x12", "whole_val"):
            values = [r[key] for r in results]
            print(
                f"{key}: mean {statistics.fmean(values):.4f}, std {statistics.stdev(values):.4f}, "
                f"min {min(values):.4f}, max {max(values):.4f} over {len(values)} seeds"
            )


if __name__ == "__main__":
    main()
