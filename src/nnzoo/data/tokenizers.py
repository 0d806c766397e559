"""How a text becomes tokens: a small registry beside the models, chosen with ``--tokenizer`` (``data.tokenizer``).

* ``char``: every character is a token (what the poems, Shakespeare and the first text classifiers read).
* ``word``: words. Chinese is segmented by jieba (Sun Junyi; a maintained segmenter whose dictionary installs
  with it, so it works offline), other scripts split into runs of letters or digits and single punctuation marks,
  lower-cased (the whitespace-and-punctuation rule of most English word models).
* ``bpe``: subwords by byte-pair encoding (Sennrich et al. 2016), learnt from the training texts with Hugging
  Face's ``tokenizers`` (a Rust library: its trainer and encoder are what the field uses, and fast).

Every tokenizer is fitted on the training split only. The run keeps what it needs to tokenize exactly as training
did in its spec (``extra["tokenizer"]``: the kind and, for ``bpe``, the learnt merges as the library's own JSON)
beside the vocabulary (``extra["vocab"]``, the tokens by id: id 0 is the unknown token, ``pad_id`` = its length),
so eval, predict, export (FILE.json) and serve use it unchanged.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from ..registry import Registry
from .text import UNK

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
# Runs of letters/digits (with inner apostrophes: don't, l'hôtel), or one character that is neither a word
# character nor a space (punctuation, symbols, emoji).
WORDS = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]|_", re.UNICODE)


@dataclass
class Tokenizer:
    """Text -> list of token strings; ``state`` is what a run saves to do it again (the kind is the registry's)."""

    kind: str
    split: Callable[[str], list[str]]
    state: dict[str, Any] = field(default_factory=dict)
    joiner: str = ""  # how decoded tokens are put back together (words: a space between Latin ones)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.state}

    def join(self, tokens: list[str]) -> str:
        if self.joiner == "":
            return "".join(tokens)
        out = ""
        for t in tokens:  # a space between two tokens that both end/start with a letter or digit, not before "，"
            out += (" " if out and out[-1].isalnum() and t[:1].isalnum() and not CJK.match(t[:1]) else "") + t
        return out


# name -> (help, build(training texts, settings) -> Tokenizer, load(saved dict) -> Tokenizer)
TOKENIZERS: Registry[tuple[Callable[..., Tokenizer], Callable[[dict[str, Any]], Tokenizer]]] = Registry("tokenizer")


def _char(texts: Iterable[str] | None = None, **_: Any) -> Tokenizer:
    return Tokenizer("char", list)


_JIEBA: Any = None


def _segmenter() -> Any:
    global _JIEBA
    if _JIEBA is None:
        try:
            import jieba
        except ImportError:  # a dependency of nnzoo's; only a broken install lacks it
            raise UserError("--tokenizer word needs jieba for Chinese: pip install jieba.") from None
        jieba.setLogLevel(logging.WARNING)  # it announces building its prefix dictionary on stderr otherwise
        _JIEBA = jieba
    return _JIEBA


def split_words(text: str) -> list[str]:
    """Words of a text: jieba's for each run of CJK characters, letter/digit runs and punctuation elsewhere."""
    out: list[str] = []
    pos = 0
    for m in re.finditer(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+", text):
        out += WORDS.findall(text[pos : m.start()].lower())
        out += _segmenter().lcut(m.group(), HMM=True)
        pos = m.end()
    return out + WORDS.findall(text[pos:].lower())


def _word(texts: Iterable[str] | None = None, **_: Any) -> Tokenizer:
    return Tokenizer("word", split_words, joiner=" ")


def _bpe(texts: Iterable[str] | None = None, vocab_size: int | None = None, **_: Any) -> Tokenizer:
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers, trainers

    tok = HFTokenizer(models.BPE(unk_token=UNK))
    # Runs of word characters (a CJK run is one, and BPE learns its pieces) and single punctuation marks.
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size or DEFAULT_BPE_VOCAB, special_tokens=[UNK],
                                  show_progress=False)  # fmt: skip
    tok.train_from_iterator(list(texts or ()), trainer)
    return _bpe_from(tok.to_str())


def _bpe_from(saved_json: str) -> Tokenizer:
    from tokenizers import Tokenizer as HFTokenizer

    tok = HFTokenizer.from_str(saved_json)
    return Tokenizer("bpe", lambda text: tok.encode(text).tokens, {"json": saved_json}, joiner=" ")


DEFAULT_BPE_VOCAB = 8000
TOKENIZERS.add("char", (_char, lambda d: _char()), help="characters: every character a token")
TOKENIZERS.add("word", (_word, lambda d: _word()), help="words: jieba for Chinese, letters/digits and punctuation "
                                                        "elsewhere, lower-cased")  # fmt: skip
TOKENIZERS.add("bpe", (_bpe, lambda d: _bpe_from(d["json"])),
               help="subwords: byte-pair encoding learnt from the training texts (Hugging Face tokenizers)")  # fmt: skip


def fit_tokenizer(kind: str, texts: list[str], vocab_size: int | None = None) -> Tokenizer:
    """The tokenizer ``kind`` fitted on ``texts`` (the training split's)."""
    build, _ = TOKENIZERS.get(kind)
    return build(texts, vocab_size=vocab_size)


def load_tokenizer(saved: dict[str, Any] | None) -> Tokenizer:
    """The tokenizer a run saved (runs from before tokenizers existed read characters)."""
    saved = saved or {"kind": "char"}
    _, load = TOKENIZERS.get(saved.get("kind", "char"))
    return load(saved)


@dataclass
class TokenVocab:
    """Tokens by id: ``tokens[0]`` is the unknown token; ids are assigned by frequency in the training texts."""

    tokens: list[str]

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, pieces: Iterable[list[str]], max_size: int | None = None, min_count: int = 1,
              by_frequency: bool = True) -> TokenVocab:  # fmt: skip
        """The training texts' tokens: the ``max_size - 1`` most frequent seen ``min_count`` times or more, by
        frequency; or (``by_frequency`` False, characters as nnzoo always numbered them) all, in code-point order."""
        counts = Counter(t for p in pieces for t in p if t != UNK)
        if not by_frequency and max_size is None:
            return cls([UNK, *sorted(counts)])
        ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        return cls([UNK, *ranked[: (max_size - 1) if max_size else None]])

    def ids(self, tokens: list[str]) -> list[int]:
        return [self.index.get(t, 0) for t in tokens]

    def unknown(self, tokens: list[str]) -> list[str]:
        return list(dict.fromkeys(t for t in tokens if t not in self.index))


# A word seen once in 6,000 reviews is mostly a typo or a name: kept out of a word vocabulary, it reads as unknown.
WORD_MIN_COUNT = 2


def build_vocab(tok: Tokenizer, pieces: list[list[str]], max_size: int | None) -> TokenVocab:
    """The vocabulary of a tokenizer's training pieces (bpe: every piece it learnt to make)."""
    if tok.kind == "char":
        return TokenVocab.build(pieces, max_size, by_frequency=False)
    return TokenVocab.build(pieces, max_size, min_count=WORD_MIN_COUNT if tok.kind == "word" else 1)


def encode_ids(ids: list[list[int]], length: int, pad_id: int) -> torch.Tensor:
    """(N, length) int16 ids (int32 past 32,767 tokens): each text's first ``length`` tokens, then ``pad_id`` up to ``length``."""
    dtype = torch.int16 if pad_id < 2**15 else torch.int32
    x = torch.full((len(ids), length), pad_id, dtype=dtype)
    for i, row in enumerate(ids):
        row = row[:length]
        if row:
            x[i, : len(row)] = torch.tensor(row, dtype=dtype)
    return x


def idf(pieces: list[list[int]], size: int) -> list[float]:
    """Inverse document frequency of every id over the training texts, smoothed as scikit-learn's TfidfVectorizer
    does: ln((1 + N) / (1 + df)) + 1, so an id in every text weighs 1 and one never seen the most."""
    df = np.zeros(size, dtype=np.float64)
    for row in pieces:
        df[np.unique(np.asarray(row, dtype=np.int64))] += 1
    return (np.log((1 + len(pieces)) / (1 + df)) + 1).round(6).tolist()
