"""The attention family's models: a GPT-style character language model, a Transformer encoder classifier (text,
image rows or image patches), and the Vision Transformer, which is that encoder reading image patches.

All are stacks of the pre-LayerNorm blocks of ``attention.py``; they differ only in what becomes a token and in
whether a token may look ahead (GPT: causal) or everywhere (the encoders: bidirectional).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.spec import DataSpec
from ..errors import IncompatibleData, UserError
from .attention import KVCache, TransformerBlock, decay_groups, init_weights, positional_encoding
from .base import Classifier
from .lm import LanguageModel
from .registry import MODELS


# ---- GPT ------------------------------------------------------------------------------------------------------------
class GPT(LanguageModel):
    """A decoder-only Transformer (Radford et al. 2018/2019, "GPT" and "GPT-2"), after nanoGPT's ``model.py``.

    Token embedding + positional encoding -> n_layer causal pre-LN blocks -> LayerNorm -> a linear head whose
    weight *is* the token embedding (weight tying: Press & Wolf 2017, "Using the Output Embedding to Improve
    Language Models"), so reading a character and predicting it share one table.

    The state passed between ``step`` calls is the key/value cache: per layer, the keys and values of every
    token seen so far. Feeding one new token then costs one token's work instead of the whole context's.
    """

    def __init__(self, vocab_size: int, context: int = 64, n_layer: int = 4, n_head: int = 4, dim: int = 128,
                 dropout: float = 0.0, bias: bool = False, positions: str = "learned", tie_weights: bool = True):  # fmt: skip
        super().__init__()
        self.max_context = context
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = positional_encoding(positions, context, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(dim, n_head, dropout, bias) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(dim, bias=bias)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        if tie_weights:
            self.head.weight = self.tokens.weight  # one (V, C) table for input and output
        init_weights(self, n_layer)

    def step(self, ids: torch.Tensor, state: list[KVCache] | None = None) -> tuple[torch.Tensor, list[KVCache]]:
        """ids (B, T) -> logits (B, T, V) and the key/value cache including these T tokens."""
        ids = ids.long()
        offset = 0 if state is None else state[0][0].shape[2]  # tokens already in the cache
        if offset + ids.shape[1] > self.max_context:
            raise ValueError(f"{offset} cached + {ids.shape[1]} new tokens exceed the context of {self.max_context}")
        x = self.drop(self.positions(self.tokens(ids), offset))  # (B, T, C)
        cache = []
        for i, block in enumerate(self.blocks):
            x, _, kv = block(x, causal=True, cache=None if state is None else state[i])
            cache.append(kv)
        return self.head(self.ln_f(x)), cache  # (B, T, V)

    @torch.no_grad()
    def attention_maps(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """Per layer, the attention weights (B, H, T, T) over ``ids`` (B, T), through the written-out path."""
        x = self.positions(self.tokens(ids.long()))
        maps = []
        for block in self.blocks:
            x, weights, _ = block(x, causal=True, need_weights=True)
            maps.append(weights)
        return maps

    def optimizer_groups(self) -> dict[str, Any]:
        return {"main": decay_groups(self)}


# ---- encoders -------------------------------------------------------------------------------------------------------
class CharTokens(nn.Module):
    """Character ids (B, T), padded with ``pad_id``, -> embeddings (B, T, C) and the padding mask (B, T)."""

    def __init__(self, vocab_size: int, pad_id: int, dim: int):
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids = x.long()
        return self.embed(ids), ids == self.pad_id


class ImageRows(nn.Module):
    """An image (B, Ch, H, W) read as a sequence of H rows, each row's Ch*W pixels projected to C channels."""

    def __init__(self, channels: int, width: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(channels * width, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        rows = x.permute(0, 2, 1, 3).flatten(2)  # (B, Ch, H, W) -> (B, H, Ch*W)
        return self.proj(rows), None  # (B, H, C)


class ImagePatches(nn.Module):
    """ViT's patch embedding (Dosovitskiy et al. 2021, eq. 1): cut the image into P x P patches and project each
    flattened patch linearly, which is exactly a P x P convolution with stride P."""

    def __init__(self, channels: int, patch: int, dim: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.proj(x).flatten(2).transpose(1, 2), None  # (B, C, H/P, W/P) -> (B, N, C)


class TransformerClassifier(Classifier):
    """A Transformer encoder classifier: tokens -> [CLS] + tokens + positions -> bidirectional pre-LN blocks ->
    LayerNorm -> a linear head on the [CLS] token (BERT, ViT) or on the mean of the real tokens.

    What a token is depends on the front end: a character (text, with a padding mask), an image row, or an image
    patch (the Vision Transformer).
    """

    def __init__(self, tokens: nn.Module, num_tokens: int, num_classes: int, dim: int = 128, depth: int = 4,
                 heads: int = 4, dropout: float = 0.1, positions: str = "learned", pool: str = "cls",
                 label_smoothing: float = 0.0):  # fmt: skip
        super().__init__(label_smoothing)
        if pool not in ("cls", "mean"):
            raise UserError(f"pool must be cls or mean, not {pool!r}.")
        self.tokens, self.pool, self.num_tokens = tokens, pool, num_tokens
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))  # a learned query that gathers the whole input
        self.positions = positional_encoding(positions, num_tokens + 1, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        init_weights(self, depth)

    def encode(self, x: torch.Tensor, need_weights: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor | None]]:  # fmt: skip
        """Input -> token states (B, 1+N, C), the padding mask (B, 1+N) or None, and per-layer weights."""
        h, pad = self.tokens(x)  # (B, N, C)
        B = h.shape[0]
        h = torch.cat([self.cls_token.expand(B, -1, -1).to(h.dtype), h], dim=1)  # (B, 1+N, C)
        if pad is not None:
            pad = torch.cat([pad.new_zeros(B, 1), pad], dim=1)  # [CLS] is never padding
        h = self.drop(self.positions(h))
        maps = []
        for block in self.blocks:
            h, weights, _ = block(h, padding_mask=pad, need_weights=need_weights)
            maps.append(weights)
        return self.norm(h), pad, maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, pad, _ = self.encode(x)
        if self.pool == "cls":
            pooled = h[:, 0]  # (B, C)
        else:
            keep = (~pad).unsqueeze(-1).to(h.dtype) if pad is not None else torch.ones_like(h[..., :1])
            pooled = (h * keep).sum(1) / keep.sum(1)  # the mean over real tokens, [CLS] included
        return self.head(pooled)  # (B, classes)

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per layer, the attention weights (B, H, 1+N, 1+N); token 0 is [CLS]."""
        return self.encode(x, need_weights=True)[2]

    def optimizer_groups(self) -> dict[str, Any]:
        return {"main": decay_groups(self, no_decay=("cls_token", "positions.table.weight"))}


class MaskedLM(TransformerClassifier):
    """BERT's pretraining (Devlin et al. 2019) on the text classifier's own encoder: 15% of each text's real tokens
    are chosen; of those, 80% become [MASK], 10% a random token and 10% stay as they are; the encoder's states at
    the chosen positions predict the original tokens through a head whose output matrix is the token embedding
    (tied, as BERT's). The encoder's parameters keep the classifier's names, so ``--init-from`` this run loads them
    into ``transformer-encoder`` and only its classification head starts fresh.

    Masks are drawn anew every step in training (dynamic masking, as RoBERTa); in evaluation they come from a fixed
    seed, so validation and test losses compare across epochs and runs.
    """

    task = "masked-lm"
    loss_meaning = "cross-entropy of the masked tokens, nats per token"

    def __init__(self, tokens: CharTokens, num_tokens: int, mask_id: int, vocab: int, rate: float = 0.15,
                 **kwargs: Any):  # fmt: skip
        super().__init__(tokens, num_tokens, num_classes=1, **kwargs)
        if not 0 < rate < 1:
            raise UserError(f"mask_rate must be between 0 and 1, not {rate}.")
        dim = self.norm.normalized_shape[0]
        del self.head  # no classes to predict: the tokens themselves
        self.mask_id, self.vocab, self.rate = mask_id, vocab, rate  # ids 1..vocab-1 are real tokens (0: unknown)
        self.mlm_transform = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim))
        self.mlm_bias = nn.Parameter(torch.zeros(tokens.embed.num_embeddings))

    def mask(self, ids: torch.Tensor, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """(the ids with the 80/10/10 replacements, the chosen positions (B, T) bool)."""
        real = ids != self.tokens.pad_id

        def draw(shape: tuple[int, ...]) -> torch.Tensor:
            return torch.rand(shape, generator=generator, device="cpu").to(ids.device)

        chosen = (draw(ids.shape) < self.rate) & real
        roll = draw(ids.shape)
        out = ids.clone()
        out[chosen & (roll < 0.8)] = self.mask_id
        swap = chosen & (roll >= 0.8) & (roll < 0.9)
        random_ids = (draw(ids.shape) * (self.vocab - 1)).long() + 1  # a real token, never padding or [MASK]
        out[swap] = random_ids[swap]
        return out, chosen

    def compute_loss(self, batch: Any) -> dict[str, torch.Tensor]:
        ids = batch[0].long()  # the labels, if any, are not used: pretraining reads the texts alone
        generator = None if self.training else torch.Generator().manual_seed(0)
        masked, chosen = self.mask(ids, generator)
        h = self.encode(masked)[0][:, 1:]  # (B, T, C) without [CLS]
        picked = self.mlm_transform(h[chosen])  # (M, C): only the chosen positions reach the vocabulary
        logits = picked @ self.tokens.embed.weight.t() + self.mlm_bias  # (M, V), tied to the input embedding
        target = ids[chosen]
        loss = F.cross_entropy(logits.float(), target) if len(target) else h.sum() * 0.0
        accuracy = (logits.argmax(1) == target).float().mean() if len(target) else loss.detach() * 0.0
        return {"loss": loss, "masked_accuracy": accuracy}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's states (B, 1+T, C): what a fine-tuned classifier reads."""
        return self.encode(x)[0]

    def optimizer_groups(self) -> dict[str, Any]:
        return {"main": decay_groups(self, no_decay=("cls_token", "positions.table.weight", "mlm_bias"))}


# ---- builders ------------------------------------------------------------------------------------------------------
def _text_classes(spec: DataSpec) -> bool:
    return spec.text_ids


def _front_end(spec: DataSpec, model: str, dim: int, tokens: str, patch: int) -> tuple[nn.Module, int]:
    if spec.task != "classification":
        raise IncompatibleData(f"{model} is a classifier; {spec.name} is a {spec.task} dataset.")
    if _text_classes(spec):
        if tokens not in ("auto", "chars"):
            raise UserError(f"{spec.name} is text: {model} reads it as characters, not {tokens}.")
        return CharTokens(spec.extra["vocab_size"], spec.extra["pad_id"], dim), spec.input_shape[0]
    if len(spec.input_shape) != 3:
        raise IncompatibleData(f"{model} takes images or padded text, not the data of {spec.name}.")
    c, h, w = spec.input_shape
    if tokens in ("auto", "rows"):
        return ImageRows(c, w, dim), h
    if tokens == "patches":
        if patch < 1 or h % patch or w % patch:
            raise UserError(f"The patch size ({patch}) must divide the {h}x{w} images of {spec.name}; "
                            f"try {', '.join(str(p) for p in range(2, min(h, w)) if not h % p and not w % p)}.")  # fmt: skip
        return ImagePatches(c, patch, dim), (h // patch) * (w // patch)
    raise UserError(f"tokens must be auto, chars, rows or patches, not {tokens!r}.")


@MODELS.register("gpt", help="GPT-style causal Transformer language model (nanoGPT layout, tied head, KV cache)")
def gpt(spec: DataSpec, context: int | None = None, n_layer: int = 4, n_head: int = 4, dim: int = 128,
        dropout: float = 0.0, bias: bool = False, positions: str = "learned", tie_weights: bool = True) -> GPT:  # fmt: skip
    if spec.task != "language-model":
        raise IncompatibleData(f"gpt is a language model: train it on a text dataset (tinyshakespeare, tang-poems, "
                               f"tang300, text-file), not {spec.name}.")  # fmt: skip
    context = context or spec.input_shape[0]
    if context < spec.input_shape[0]:
        raise UserError(f"The GPT's context ({context}) must be at least data.seq_len ({spec.input_shape[0]}).")
    return GPT(spec.num_classes, context, n_layer, n_head, dim, dropout, bias, positions, tie_weights)


@MODELS.register(
    "transformer-encoder",
    help="Transformer encoder classifier: text characters (with padding mask), image rows or patches",
)
def transformer_encoder(spec: DataSpec, dim: int = 128, depth: int = 4, heads: int = 4, dropout: float = 0.1,
                        tokens: str = "auto", patch: int = 4, positions: str = "learned", pool: str = "cls",
                        label_smoothing: float = 0.0) -> TransformerClassifier:  # fmt: skip
    front, n = _front_end(spec, "transformer-encoder", dim, tokens, patch)
    return TransformerClassifier(front, n, spec.num_classes, dim, depth, heads, dropout, positions, pool,
                                 label_smoothing)  # fmt: skip


@MODELS.register("bert-mlm", help="BERT-style masked-LM pretraining of transformer-encoder on labelled texts' texts "
                                  "(15%, 80/10/10); fine-tune with --init-from")  # fmt: skip
def bert_mlm(spec: DataSpec, dim: int = 128, depth: int = 4, heads: int = 4, dropout: float = 0.1,
             positions: str = "learned", mask_rate: float = 0.15) -> MaskedLM:  # fmt: skip
    if not _text_classes(spec) or "mask_id" not in spec.extra:
        raise IncompatibleData(f"bert-mlm pretrains on labelled texts (their texts only); {spec.name} is not one.")
    front = CharTokens(spec.extra["vocab_size"], spec.extra["pad_id"], dim)
    return MaskedLM(front, spec.input_shape[0], spec.extra["mask_id"], spec.extra["pad_id"], mask_rate, dim=dim,
                    depth=depth, heads=heads, dropout=dropout, positions=positions)  # fmt: skip


@MODELS.register("vit", help="Vision Transformer (Dosovitskiy et al. 2021): patch embedding, class token, encoder")
def vit(spec: DataSpec, patch: int = 4, dim: int = 128, depth: int = 6, heads: int = 4, dropout: float = 0.1,
        positions: str = "learned", label_smoothing: float = 0.0) -> TransformerClassifier:  # fmt: skip
    if len(spec.input_shape) != 3:
        raise IncompatibleData(f"vit takes images; {spec.name} is not an image dataset.")
    front, n = _front_end(spec, "vit", dim, "patches", patch)
    return TransformerClassifier(front, n, spec.num_classes, dim, depth, heads, dropout, positions, "cls",
                                 label_smoothing)  # fmt: skip
