"""Export of language models: one generation step, with the state it carries as inputs and outputs.

``LanguageModel.step(ids, state)`` carries a state from call to call (see nnzoo.tasks.language_model.sampling):
the hidden state of a recurrent network, the key/value cache of a GPT. An exported graph keeps nothing between runs, so the exported step
takes the state as inputs and returns the new state as outputs, and the runtime feeds it back:

- recurrent (``rnn`` on text): ``(ids (B, 1), h (L, B, H) [, c (L, B, H)]) -> (logits (B, 1, V), h_out [, c_out])``,
  starting from zeros. One character per call: the exporter turns ``nn.LSTM`` / ``nn.GRU`` into ONNX's LSTM / GRU
  operators for any length but records the traced length as the output's shape, and it unrolls ``nn.RNN`` over
  the traced length; one character per call is exact for every cell and costs a recurrent network nothing, which
  reads one character after the other anyway. A prompt is fed one character at a time.
- GPT: ``(ids (B, T), past (L, 2, B, H, P, D)) -> (logits (B, T, V), present (L, 2, B, H, P + T, D))``, keys at
  index 0 and values at 1 of the second axis, starting from an empty cache (P = 0). T and P are both dynamic:
  the prompt goes in at once, then one token per call. The position of the first new token is P, read from the
  cache's shape inside the graph, so it cannot disagree with the cache. P + T must stay within the model's
  context (FILE.json says how long); when it is full, start again from the last tokens with an empty cache, as
  ``nnzoo generate`` does.

The check generates: a prompt, then new tokens one call each, feeding the runtime its own state back, and compares
every logit (and the final state) with ``model.step`` carrying its own state, the path ``nnzoo generate`` takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from ...errors import UserError
from ...export import Call, ExportPlan
from ...models.attention import attend
from ...models.lm import LanguageModel
from ...models.rnn import CharRNN
from ...models.transformer import GPT

PROMPT, GENERATED, CHECK_BATCH = 5, 8, 3  # the check: batch 3 (traced: 2), a 5-token prompt, 8 more


@dataclass
class StepExport:
    """A language model's step as a graph: the module and how its state looks from outside."""

    module: nn.Module
    state_in: list[str]
    state_out: list[str]
    empty: Callable[[int], tuple[torch.Tensor, ...]]  # batch -> the state before the first token
    flat: Callable[[Any], tuple[torch.Tensor, ...]]  # the model's own state -> the exported layout
    # batch -> a state to trace with: not empty, so the exporter sees no axis of size 0 or 1 it would fix
    example: Callable[[int], tuple[torch.Tensor, ...]]
    one_token: bool  # True: one token per call
    start: str  # the state before the first token, in words
    axes: dict[str, dict[int, str]]
    limits: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    docs: dict[str, str] = field(default_factory=dict)


# ---- recurrent ----------------------------------------------------------------------------------------------------
class RecurrentStep(nn.Module):
    """ids (B, 1), h (L, B, H) -> logits (B, 1, V), h' : a GRU or plain-RNN character model."""

    def __init__(self, lm: CharRNN):
        super().__init__()
        self.lm = lm

    def forward(self, ids: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, h = self.lm.step(ids, h)
        return logits, h


class LSTMStep(RecurrentStep):
    """ids (B, 1), h and c (L, B, H) -> logits (B, 1, V), h', c'."""

    def forward(self, ids: torch.Tensor, h: torch.Tensor, c: torch.Tensor  # type: ignore[override]
                ) -> tuple[torch.Tensor, ...]:  # fmt: skip
        logits, (h, c) = self.lm.step(ids, (h, c))
        return logits, h, c


def recurrent_step(lm: CharRNN) -> StepExport:
    rnn = lm.rnn
    lstm = isinstance(rnn, nn.LSTM) or getattr(rnn, "cell", None) == "lstm"  # fused, or the readable twin
    layers, hidden = rnn.num_layers, rnn.hidden_size
    names = ["h", "c"] if lstm else ["h"]
    state = f"({layers}, batch, {hidden}) float32"
    docs = {"h": f"{state}: the hidden state of every layer; zeros before the first character",
            "c": f"{state}: the LSTM's cell state of every layer; zeros before the first character",
            "h_out": "h after this character: pass it as h with the next one",
            "c_out": "c after this character: pass it as c with the next one"}  # fmt: skip
    return StepExport(
        module=(LSTMStep if lstm else RecurrentStep)(lm).eval(),
        state_in=names,
        state_out=[n + "_out" for n in names],
        empty=lambda b: tuple(torch.zeros(layers, b, hidden) for _ in names),
        flat=lambda s: tuple(s) if isinstance(s, tuple) else (s,),
        example=lambda b: tuple(torch.randn(layers, b, hidden) for _ in names),
        one_token=True,
        start=f"zeros of shape ({layers}, batch, {hidden})",
        axes={"ids": {0: "batch"}, **{n: {1: "batch"} for n in names}},
        docs={k: v for k, v in docs.items() if k.removesuffix("_out") in names},
    )


# ---- GPT ------------------------------------------------------------------------------------------------------------
class GPTStep(nn.Module):
    """ids (B, T) and past (L, 2, B, H, P, D) -> logits (B, T, V) and present (L, 2, B, H, P+T, D).

    The same weights and the same computation as ``GPT.step``, written without the branches on shapes that
    ``GPT.step`` takes for speed (no mask for a single query, the fused causal kernel without a cache), which an
    exporter would freeze at the traced shapes. The check compares it with ``GPT.step`` itself.
    """

    def __init__(self, gpt: GPT):
        super().__init__()
        self.gpt = gpt

    def forward(self, ids: torch.Tensor, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.gpt
        B, T = ids.shape
        P = past.shape[4]  # tokens already in the cache: the first new token sits at position P
        x = g.drop(g.positions(g.tokens(ids.long()), P))  # (B, T, C)
        # Query i is token P + i: it sees keys 0 .. P + i (the causal mask, shifted by the cache).
        mask = torch.arange(P + T, device=ids.device) <= torch.arange(P, P + T, device=ids.device)[:, None]  # (T, P+T)
        present = []
        for i, block in enumerate(g.blocks):
            a = block.attn
            q, k, v = a.qkv(block.ln1(x)).split(a.dim, dim=2)  # 3 x (B, T, C)
            q, k, v = (t.view(B, T, a.heads, a.head_dim).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
            k = torch.cat([past[i, 0], k], dim=2)  # (B, H, P+T, D)
            v = torch.cat([past[i, 1], v], dim=2)
            y, _ = attend(q, k, v, mask)  # (B, H, T, D)
            x = x + a.resid_dropout(a.proj(y.transpose(1, 2).reshape(B, T, a.dim)))
            x = x + block.mlp(block.ln2(x))
            present.append(torch.stack([k, v]))  # (2, B, H, P+T, D)
        return g.head(g.ln_f(x)), torch.stack(present)  # (B, T, V), (L, 2, B, H, P+T, D)


def gpt_step(gpt: GPT) -> StepExport:
    layers, a, ctx = len(gpt.blocks), gpt.blocks[0].attn, gpt.max_context
    if ctx < 8:  # traced with 4 cached + 3 new tokens: sizes the exporter takes for dynamic, unlike 0 and 1
        raise UserError(f"Export needs a GPT context of at least 8 tokens; this model's is {ctx}.")
    layout = f"({layers}, 2, batch, {a.heads}, past, {a.head_dim}) float32"
    return StepExport(
        module=GPTStep(gpt).eval(),
        state_in=["past"],
        state_out=["present"],
        empty=lambda b: (torch.zeros(layers, 2, b, a.heads, 0, a.head_dim),),
        flat=lambda s: (torch.stack([torch.stack(kv) for kv in s]),),
        example=lambda b: (torch.randn(layers, 2, b, a.heads, 4, a.head_dim),),
        one_token=False,
        start=f"an empty cache: zeros of shape ({layers}, 2, batch, {a.heads}, 0, {a.head_dim})",
        axes={"ids": {0: "batch", 1: "tokens"}, "past": {2: "batch", 4: "past"}},
        limits={"tokens": (1, ctx), "past": (0, ctx - 1)},
        docs={
            "past": f"{layout}: per layer, the keys [:, 0] and values [:, 1] of the tokens seen so far; "
            "past = 0 before the first call. Its length is the position of the first new token",
            "present": "past with these tokens' keys and values appended (past + tokens long): the next call's "
            f"past. past + tokens must not exceed the context of {ctx}",
        },  # fmt: skip
    )


# Which step each kind of language model exports as (the first class the model is an instance of).
STEPS: list[tuple[type, Callable[[Any], StepExport]]] = [(CharRNN, recurrent_step), (GPT, gpt_step)]


def language_model_plan(run: Any) -> ExportPlan:
    model: LanguageModel = run.model.eval()
    make = next((m for cls, m in STEPS if isinstance(model, cls)), None)
    if make is None:
        raise UserError(f"Export of {run.config.model} language models is not supported yet.")
    s = make(model)
    vocab, ctx = run.spec.extra["vocab"], model.max_context
    prompt_len = min(PROMPT, ctx // 2) if ctx else PROMPT
    steps = min(GENERATED, ctx - prompt_len) if ctx else GENERATED
    g = torch.Generator().manual_seed(0)
    prompt = torch.randint(1, len(vocab), (CHECK_BATCH, max(prompt_len, 1)), generator=g)
    example_ids = torch.randint(1, len(vocab), (2, 1 if s.one_token else 3), generator=g)
    how = "one character per call" if s.one_token else "the prompt at once, then one token per call"
    docs = {"ids": f"(batch, {'1' if s.one_token else 'tokens'}) int64 character ids (index into vocab)",
            "logits": f"(batch, {'1' if s.one_token else 'tokens'}, {len(vocab)}) float32: the next character's "
                      "logits after each input position", **s.docs}  # fmt: skip
    meta = {"vocab": vocab, "unknown_id": 0, "context": ctx, "state_inputs": s.state_in, "state_outputs": s.state_out,
            "generate": f"{how}; feed each call's {', '.join(s.state_out)} back as {', '.join(s.state_in)}, starting "
                        f"from {s.start}; sample the next id from the last logits"}  # fmt: skip
    return ExportPlan(s.module, (example_ids, *s.example(2)), (prompt, *s.empty(CHECK_BATCH)), ["ids", *s.state_in],
                      ["logits", *s.state_out], axes=s.axes, limits=s.limits, docs=docs, meta=meta,
                      verify=partial(generation_check, model, s, prompt, steps),
                      checked=f"a batch of {CHECK_BATCH} generating a {prompt.shape[1]}-token prompt and {steps} more "
                              f"tokens, {how}, with the runtime's own {', '.join(s.state_out)} fed back")  # fmt: skip


def generation_check(model: LanguageModel, s: StepExport, prompt: torch.Tensor, steps: int, call: Call) -> float:
    """Max |difference| of every logit and of the final state between the exported step (carrying the runtime's
    own state) and ``model.step`` (carrying its own), over a prompt and ``steps`` greedy tokens. The next token is
    the argmax of PyTorch's logits, so both follow one path."""
    ids, state, ours = prompt, None, s.empty(len(prompt))
    worst = 0.0
    for _ in range(steps + 1):
        expected, state = model.step(ids, state)  # (B, T, V)
        got = []
        for piece in ids.split(1, dim=1) if s.one_token else (ids,):
            out = call((piece, *ours))
            got.append(out[0])
            ours = tuple(out[1:])
        worst = max(worst, float((torch.cat(got, dim=1) - expected).abs().max()))
        ids = expected[:, -1].argmax(-1, keepdim=True)  # (B, 1)
    return max(worst, *(float((o - e).abs().max()) for o, e in zip(ours, s.flat(state), strict=True)))
