"""``tang-authors``: who wrote this poem? A text classification task on the Complete Tang Poems (全唐诗).

The five most prolific poets of the collection are the classes: 白居易 (3,009 poems), 杜甫 (1,489), 李白 (1,207),
元稹 (910) and 劉禹錫 (886). The poem text (no title) is the input. Poems are deduplicated first, so that no
text sits in both the training and the test split: a text found under two of the five poets is dropped, and a text
repeated under one poet is kept once. Each poet's poems are then split 80/10/10 into train/validation/test with
a fixed seed (``data.split_seed``), so every split keeps the poets' proportions (a stratified split by poem).

What any sequence classifier gets (also written into ``DataSpec.extra``):

- ``x``: (N, data.seq_len) token ids, int16: characters unless ``--tokenizer`` says otherwise (the poems are
  encoded as every labelled text is, data/labelled_text.py). A poem longer than ``seq_len`` is cut to its first
  ``seq_len`` tokens; a shorter one is followed by ``pad_id`` up to ``seq_len``.
- ids: ``extra["vocab"][i]`` is the token of id i, from the training poems only; id 0 (U+FFFD) stands for a
  character the training poems never showed. ``extra["pad_id"] == len(vocab)`` pads and ``extra["mask_id"]``
  (``pad_id + 1``) is [MASK] for bert-mlm, so an embedding table needs ``extra["vocab_size"] == len(vocab) + 2``
  rows; the padding mask is ``x == pad_id``.
- ``y``: the poet's index into ``class_names``.

The majority baseline (always answering 白居易) is that poet's share of the test split: about 40%.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError
from .labelled_text import encode_labelled
from .registry import register_dataset
from .spec import Dataset, DataSpec
from .text import load_tang_poems, poem_text

POETS = ["白居易", "杜甫", "李白", "元稹", "劉禹錫"]
FRACTIONS = (0.8, 0.1, 0.1)  # train, validation, test; per poet

SPEC = DataSpec("tang-authors", task="classification", num_classes=len(POETS), class_names=POETS,
                extra={"kind": "text-classification"})  # fmt: skip


def author_poems(poems: list[dict[str, Any]]) -> tuple[list[str], list[int]]:
    """The deduplicated poems of the five poets, as (texts, poet indices), in the collection's order."""
    authors: dict[str, set[int]] = {}
    for p in poems:
        if p.get("author") in POETS:
            text = poem_text(p["paragraphs"])
            if text:
                authors.setdefault(text, set()).add(POETS.index(p["author"]))
    pairs = [(t, a.pop()) for t, a in authors.items() if len(a) == 1]  # dicts keep first-seen order
    return [t for t, _ in pairs], [a for _, a in pairs]


def stratified_split(labels: list[int], seed: int) -> tuple[list[int], list[int], list[int]]:
    """Indices of train / validation / test, each poet's poems shuffled with ``seed`` and cut 80/10/10."""
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(labels)
    parts: list[list[int]] = [[], [], []]
    for k in range(len(POETS)):
        idx = (y == k).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)].tolist()
        n_val, n_test = round(len(idx) * FRACTIONS[1]), round(len(idx) * FRACTIONS[2])
        parts[0] += idx[n_val + n_test :]
        parts[1] += idx[:n_val]
        parts[2] += idx[n_val : n_val + n_test]
    return sorted(parts[0]), sorted(parts[1]), sorted(parts[2])


def make_dataset(texts: list[str], labels: list[int], cfg: DataConfig, source: str) -> Dataset:
    if cfg.seq_len < 1:
        raise UserError(f"data.seq_len must be a positive whole number, not {cfg.seq_len}.")
    counts = Counter(labels)
    if len(counts) < len(POETS) or min(counts.values()) < 10:
        raise UserError(f"The poems found in {source} give too few poems of some of {', '.join(POETS)} "
                        "(10 each at least): is the chinese-poetry 全唐诗 folder complete?")  # fmt: skip
    splits = stratified_split(labels, cfg.split_seed)
    # Tokens, a pretrained run's vocabulary, a share of the labels: as every labelled text has them.
    return encode_labelled(SPEC.name, texts, np.asarray(labels, dtype=np.int64), splits, list(POETS), cfg, source)


@register_dataset(SPEC, help="全唐诗 authorship: which of the 5 most prolific Tang poets wrote a poem (7.4k poems)",
                  reads=("tokenizer", "vocab_size", "vocab_from", "label_fraction"))  # fmt: skip
def tang_authors(cfg: DataConfig) -> Dataset:
    poems, where = load_tang_poems(cfg)
    texts, labels = author_poems(poems)
    return make_dataset(texts, labels, cfg, where)
