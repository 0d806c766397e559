"""The building blocks of the attention family: multi-head self-attention written out, the pre-LayerNorm
Transformer block, and sinusoidal or learned positional encodings.

Notation follows "Attention Is All You Need" (Vaswani et al. 2017): B batch, T tokens, C = d_model channels,
H heads of D = C / H channels each. Scaled dot-product attention (their eq. 1) is

    Attention(Q, K, V) = softmax(Q K^T / sqrt(D)) V

computed per head; the heads are concatenated and mixed by an output projection (their §3.2.2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError

# A layer's key/value cache during generation: keys and values of every token seen so far, each (B, H, T, D).
KVCache = tuple[torch.Tensor, torch.Tensor]


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention with causal and padding masks, attention dropout and an output projection.

    The weights are laid out as in ``nn.MultiheadAttention`` (one (3C, C) matrix for Q, K and V, then ``proj``),
    so ``load_from_torch`` can copy one into the other; tests check they compute the same thing.

    Two paths compute the same attention. ``need_weights=False`` calls ``F.scaled_dot_product_attention``, which
    picks a fused kernel (FlashAttention on GPUs, a blocked kernel on CPUs) and never builds the (T, T) matrix.
    ``need_weights=True`` is the formula written out, and also returns the attention weights for heat maps.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if heads < 1 or dim % heads:
            raise UserError(f"The model width ({dim}) must be a multiple of the number of heads ({heads}).")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)  # Q, K and V projections in one matrix multiply
        self.proj = nn.Linear(dim, dim, bias=bias)  # W^O: mixes what the heads found
        self.dropout = dropout  # on the attention weights, as in the paper and nn.MultiheadAttention
        self.resid_dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        *,
        causal: bool = False,
        padding_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, KVCache]:
        """x (B, T, C) -> output (B, T, C), weights (B, H, T, T_keys) or None, and this call's keys and values.

        ``padding_mask`` (B, T_keys) is True where a token is padding, as ``key_padding_mask`` of
        ``nn.MultiheadAttention``: no query attends to it. ``cache`` holds the keys and values of earlier tokens
        (generation); the returned (keys, values) include them, ready to pass as the next call's cache.
        """
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        v = v.view(B, T, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)  # (B, H, T_keys, D): earlier tokens, then these
            v = torch.cat([cache[1], v], dim=2)
        mask = self._mask(T, k.shape[2], causal, padding_mask, x.device)  # True where attention is allowed
        dropout = self.dropout if self.training else 0.0
        if need_weights:
            y, weights = attend(q, k, v, mask, dropout, self.training)
        else:
            weights = None
            # Without a cache the causal mask is the plain lower triangle, which the fused kernels know how to
            # apply without being handed a mask at all.
            plain_causal = causal and mask is not None and padding_mask is None and k.shape[2] == T
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None if plain_causal else mask,
                                               dropout_p=dropout, is_causal=plain_causal)  # fmt: skip
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, H, D) -> (B, T, C): concatenate the heads
        return self.resid_dropout(self.proj(y)), weights, (k, v)

    @staticmethod
    def _mask(t_query: int, t_keys: int, causal: bool, padding_mask: torch.Tensor | None,
              device: torch.device) -> torch.Tensor | None:  # fmt: skip
        """Boolean (.., T, T_keys) mask, True where a query may attend to a key; None when all may."""
        mask = None
        if causal and t_query > 1:  # a single (newest) query may see every key: no mask needed
            # Query i is token (t_keys - t_query + i) of the sequence: it sees that many keys and no later one.
            # With a cache the queries are the *last* t_query tokens, hence the diagonal offset.
            mask = torch.ones(t_query, t_keys, dtype=torch.bool, device=device).tril(diagonal=t_keys - t_query)
        if padding_mask is not None:
            keep = ~padding_mask[:, None, None, :].to(device)  # (B, 1, 1, T_keys)
            mask = keep if mask is None else mask & keep
        return mask

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> None:
        """Copy the weights of an ``nn.MultiheadAttention(dim, heads, batch_first=True)`` into this module."""
        self.qkv.weight.copy_(mha.in_proj_weight)
        self.proj.weight.copy_(mha.out_proj.weight)
        if self.qkv.bias is not None:
            self.qkv.bias.copy_(mha.in_proj_bias)
            self.proj.bias.copy_(mha.out_proj.bias)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
           dropout: float = 0.0, training: bool = False) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Scaled dot-product attention written out (Vaswani et al. 2017, eq. 1): (B, H, T, D) -> output (B, H, T, D)
    and the attention weights (B, H, T, T_keys), each row a probability distribution over the keys."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T, T_keys): how well each query matches
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # a masked key gets probability exactly 0
    weights = scores.float().softmax(dim=-1).to(q.dtype)  # softmax in fp32: exp() overflows in half precision
    y = F.dropout(weights, dropout, training) @ v  # (B, H, T, D): a weighted average of the values
    return y, weights


class FeedForward(nn.Module):
    """The position-wise feed-forward network: C -> 4C -> C with GELU (GPT-2, ViT; the paper used ReLU)."""

    def __init__(self, dim: int, dropout: float = 0.0, bias: bool = True, hidden: int | None = None):
        super().__init__()
        hidden = hidden or 4 * dim
        self.fc = nn.Linear(dim, hidden, bias=bias)
        self.act = nn.GELU()
        self.proj = nn.Linear(hidden, dim, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(self.act(self.fc(x))))  # (B, T, C) -> (B, T, 4C) -> (B, T, C)


class TransformerBlock(nn.Module):
    """A pre-LayerNorm Transformer block: x + attention(LN(x)), then x + MLP(LN(x)).

    The original Transformer normalised *after* each residual addition (post-LN); GPT-2 and ViT moved the
    LayerNorm in front of each sub-layer, which keeps the residual path an identity and trains deep stacks
    without a learning-rate warm-up being critical (Xiong et al. 2020, "On Layer Normalization in the
    Transformer Architecture").
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, bias=bias)
        self.attn = MultiHeadAttention(dim, heads, dropout, bias)
        self.ln2 = nn.LayerNorm(dim, bias=bias)
        self.mlp = FeedForward(dim, dropout, bias)

    def forward(
        self,
        x: torch.Tensor,
        *,
        causal: bool = False,
        padding_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, KVCache]:
        a, weights, kv = self.attn(self.ln1(x), causal=causal, padding_mask=padding_mask, cache=cache,
                                   need_weights=need_weights)  # fmt: skip
        x = x + a  # (B, T, C)
        x = x + self.mlp(self.ln2(x))
        return x, weights, kv


class LearnedPositions(nn.Module):
    """A learned vector per position, added to the token embeddings (GPT, BERT, ViT)."""

    def __init__(self, max_len: int, dim: int):
        super().__init__()
        self.max_len = max_len
        self.table = nn.Embedding(max_len, dim)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        T = x.shape[1]
        pos = torch.arange(offset, offset + T, device=x.device)  # (T,)
        return x + self.table(pos)  # (B, T, C) + (T, C)


class SinusoidalPositions(nn.Module):
    """Fixed sinusoids (Vaswani et al. 2017, §3.5): PE[p, 2i] = sin(p / 10000^(2i/C)), PE[p, 2i+1] = cos(...).

    Nothing to learn, and any offset p + k is a linear function of p, which lets attention find relative
    positions. Kept as a non-persistent buffer: rebuilt from the formula, never stored in checkpoints.
    """

    def __init__(self, max_len: int, dim: int):
        super().__init__()
        self.max_len = max_len
        pos = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
        freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # (C/2,)
        pe = torch.zeros(max_len, dim)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        return x + self.pe[offset : offset + x.shape[1]].to(x.dtype)  # (B, T, C) + (T, C)


POSITIONS = {"learned": LearnedPositions, "sinusoidal": SinusoidalPositions}


def positional_encoding(kind: str, max_len: int, dim: int) -> nn.Module:
    if kind not in POSITIONS:
        raise UserError(f"Unknown positional encoding {kind!r}; choose one of {', '.join(POSITIONS)}.")
    return POSITIONS[kind](max_len, dim)


def init_weights(model: nn.Module, n_layer: int) -> None:
    """GPT-2's initialisation (Radford et al. 2019; as in nanoGPT): N(0, 0.02) for linear and embedding weights,
    zero biases, and the projections that write into the residual stream scaled by 1/sqrt(2 * n_layer) so the
    stream's variance does not grow with depth."""
    for name, p in model.named_parameters():
        if p.dim() < 2:  # biases and LayerNorm gains keep PyTorch's zeros and ones
            continue
        std = 0.02 / math.sqrt(2 * n_layer) if name.endswith(("attn.proj.weight", "mlp.proj.weight")) else 0.02
        nn.init.normal_(p, mean=0.0, std=std)
    for m in model.modules():
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


def decay_groups(model: nn.Module, no_decay: tuple[str, ...] = ()) -> list[dict]:
    """AdamW parameter groups: weight decay (``train.weight_decay``) on the weight matrices only; none on biases,
    LayerNorm gains, nor the parameters named in ``no_decay`` (a class token, say), as GPT-2, nanoGPT and ViT do:
    shrinking those towards zero has nothing to do with the model's capacity."""
    decay, keep = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (keep if p.dim() < 2 or name in no_decay else decay).append(p)
    return [{"params": decay}, {"params": keep, "weight_decay": 0.0}]
