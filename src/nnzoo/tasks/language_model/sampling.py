"""Sampling text from any :class:`~nnzoo.models.lm.LanguageModel`: prompt, temperature, top-k, seed, a
key/value or hidden-state cache, and acrostic poems (藏头诗) whose lines start with given characters.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import torch

from ...data.text import UNK, CharVocab
from ...errors import UserError
from ...models.lm import LanguageModel
from ...trainer import resolve_device

MAX_LENGTH = 20_000
CLAUSE_END = "，。？！；"


GREEDY_BELOW = 1e-4  # a temperature below this samples the most likely token (the limit as temperature -> 0)


def check_options(length: int, temperature: float, top_k: int | None) -> None:
    """The sampling options, wherever they come from (CLI, ``nnzoo.generate``, the server)."""
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_LENGTH:
        raise UserError(f"--length must be a whole number from 1 to {MAX_LENGTH}, not {length}.")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
        temperature > 0 and math.isfinite(temperature)
    ):  # fmt: skip
        raise UserError(f"--temperature must be a positive, finite number, not {temperature}.")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise UserError(f"--top-k must be a whole number of at least 1, not {top_k}.")


def scale_logits(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature`` computed safely in float32: the maximum is subtracted first (so nothing
    overflows to inf), and below GREEDY_BELOW only the most likely tokens keep a chance (greedy decoding)."""
    logits = logits.float()
    if temperature < GREEDY_BELOW:
        return torch.where(logits == logits.max(), 0.0, -math.inf)
    return (logits - logits.max()) / temperature


class Sampler:
    """Feeds a model token by token, carrying its state, and samples from temperature-scaled, top-k-cut logits."""

    def __init__(self, model: LanguageModel, vocab: CharVocab, *, temperature: float = 1.0, top_k: int | None = None,
                 seed: int | None = None, use_cache: bool = True, device: torch.device | str | None = None):  # fmt: skip
        self.model, self.vocab = model.eval(), vocab
        self.temperature, self.top_k, self.use_cache = temperature, top_k, use_cache
        # Where the model is, unless told: a model trained on a GPU samples there (found on an H200).
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed if seed is not None else int(torch.seed() % 2**63))
        self.ids: list[int] = []
        self.state: Any = None
        self.fed = 0  # how many of self.ids the state has seen
        self.banned = torch.zeros(len(vocab), dtype=torch.bool, device=self.device)
        self.banned[0] = True  # never write the unknown-character placeholder

    @torch.inference_mode()
    def logits(self) -> torch.Tensor:
        """Next-token logits (V,) after everything in ``self.ids``."""
        ctx = self.model.max_context
        if not self.use_cache:
            window = self.ids[-ctx:] if ctx else self.ids
            return self._step(window, None)[0]
        if ctx and len(self.ids) > ctx:  # the cache is full: start again from the last ctx tokens
            self.state, self.fed = None, len(self.ids) - ctx
        new = self.ids[self.fed :]
        out, self.state = self._step(new, self.state)
        self.fed = len(self.ids)
        return out

    def _step(self, ids: list[int], state: Any) -> tuple[torch.Tensor, Any]:
        x = torch.tensor([ids], dtype=torch.long, device=self.device)
        logits, state = self.model.step(x, state)
        return logits[0, -1].float(), state

    def sample(self, allowed: torch.Tensor | None = None) -> int:
        logits = self.logits().masked_fill(self.banned, -math.inf)
        if allowed is not None:
            logits = logits.masked_fill(~allowed, -math.inf)
        logits = scale_logits(logits, self.temperature)
        if self.top_k is not None and self.top_k < logits.numel():
            kth = torch.topk(logits, self.top_k).values[-1]
            logits = logits.masked_fill(logits < kth, -math.inf)
        probs = torch.softmax(logits, dim=-1)
        token = int(torch.multinomial(probs, 1, generator=self.generator))
        self.ids.append(token)
        return token

    def force(self, token: int) -> None:
        self.ids.append(token)


def encode_prompt(vocab: CharVocab, prompt: str | None, max_context: int | None) -> tuple[list[int], list[str]]:
    """Prompt ids, and notes for the user (skipped characters, left truncation)."""
    notes = []
    if not prompt:
        prompt = "\n" if "\n" in vocab.index else vocab.chars[1]
    missing = [c for c in vocab.unknown(prompt) if c != UNK]
    if missing:
        notes.append(f"the vocabulary lacks {''.join(missing)!r}; skipped those characters of the prompt")
        prompt = "".join(c for c in prompt if c in vocab.index)
        if not prompt:
            raise UserError("No character of the prompt is in the model's vocabulary.")
    if max_context and len(prompt) > max_context:
        notes.append(f"the prompt is longer than the model's context of {max_context} characters; "
                     f"kept its last {max_context}")  # fmt: skip
        prompt = prompt[-max_context:]
    return [vocab.index[c] for c in prompt], notes


def generate_text(model: LanguageModel, vocab: CharVocab, prompt: str | None = None, length: int = 200,
                  **sampler_args: Any) -> dict[str, Any]:  # fmt: skip
    ids, notes = encode_prompt(vocab, prompt, model.max_context)
    s = Sampler(model, vocab, **sampler_args)
    s.ids = list(ids)
    t0 = time.perf_counter()
    for _ in range(length):
        s.sample()
    seconds = time.perf_counter() - t0
    text = vocab.decode(s.ids[len(ids) :])
    return {"prompt": vocab.decode(ids), "text": vocab.decode(ids) + text, "generated": text,
            "tokens_per_s": length / max(seconds, 1e-9), "notes": notes}  # fmt: skip


def generate_acrostic(model: LanguageModel, vocab: CharVocab, heads: str, **sampler_args: Any) -> dict[str, Any]:
    """A poem whose i-th line (clause) starts with ``heads[i]``: lines of 5 or 7 characters, as the model prefers
    for the first line and then kept, with ， after odd lines and 。 after even ones, a couplet per row."""
    missing = vocab.unknown(heads)
    if missing:
        raise UserError(f"The model's vocabulary lacks {''.join(missing)!r}, so no line can start with it.")
    marks = {c: vocab.index[c] for c in "，。\n" if c in vocab.index}
    if len(marks) < 3:
        raise UserError(
            "This model's vocabulary has no ， 。 and line breaks: --acrostic needs a model trained on poems."
        )
    s = Sampler(model, vocab, **sampler_args)
    s.ids = [marks["\n"]]  # a poem starts after a line break in the training text
    plain = torch.ones(len(vocab), dtype=torch.bool)
    for c in CLAUSE_END + "\n":
        if c in vocab.index:
            plain[vocab.index[c]] = False
    plain = plain.to(s.device)
    line_len: int | None = None
    t0 = time.perf_counter()
    for i, head in enumerate(heads):
        s.force(vocab.index[head])
        n = 1
        while True:
            if line_len is None and n == 5:
                # Let the model choose 五言 or 七言: the clause mark is allowed here, and forced at 7.
                comma = torch.zeros_like(plain)
                comma[marks["，"]] = True
                tok = s.sample(plain | comma)
                if tok == marks["，"]:
                    s.ids.pop()  # placed below, with the right mark
                    line_len = 5
                    break
                n += 1
                continue
            if n == (line_len or 7):
                line_len = line_len or 7
                break
            s.sample(plain)
            n += 1
        s.force(marks["，"] if i % 2 == 0 else marks["。"])
        if i % 2 == 1:
            s.force(marks["\n"])
    seconds = time.perf_counter() - t0
    poem = vocab.decode(s.ids[1:]).strip("\n")
    if len(heads) % 2:
        poem = poem[:-1] + "。"
    return {"acrostic": heads, "text": poem, "line_length": line_len,
            "tokens_per_s": (len(s.ids) - 1) / max(seconds, 1e-9), "notes": []}  # fmt: skip


def generate_for_run(run: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The `nnzoo generate` handler of the language-model task."""
    if options.get("label") is not None or options.get("from_images"):
        raise UserError("--label and --from are for image models (GAN / VAE); a language model takes --prompt.")
    if options.get("out") is not None:
        raise UserError("--out writes the image grid of a GAN or VAE; a language model's text goes to stdout.")
    length = 200 if options.get("length") is None else options["length"]
    temperature = 1.0 if options.get("temperature") is None else options["temperature"]
    top_k = options.get("top_k")
    check_options(length, temperature, top_k)
    vocab = CharVocab(run.spec.extra["vocab"])

    device = resolve_device(options.get("device") or "auto")
    model = run.model.to(device)
    args = {"temperature": temperature, "top_k": top_k, "seed": options.get("seed"), "device": device,
            "use_cache": not options.get("no_cache", False)}  # fmt: skip
    if options.get("acrostic"):
        if run.spec.corpus_kind != "poems":
            raise UserError(f"--acrostic needs a model trained on poems (tang-poems, tang300); {run.run_dir} was "
                            f"trained on {run.spec.name}.")  # fmt: skip
        result = generate_acrostic(model, vocab, options["acrostic"], **args)
    else:
        result = generate_text(model, vocab, options.get("prompt"), length, **args)
    for note in result["notes"]:
        print(f"note: {note}", file=sys.stderr)
    return result
