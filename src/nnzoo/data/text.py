"""Character-level text corpora for language models: Tiny Shakespeare, the Complete Tang Poems (全唐诗), 唐诗三百首,
and any UTF-8 file a user points at (``--data-file``).

The text is split by position, as nanoGPT and char-rnn do: the first 90% trains, the last 10% validates. The
vocabulary comes from the training part alone; index 0 is U+FFFD, which stands for any character the training
text never showed. Language models have no separate test text here, so the test split *is* the validation tail
(that is the number the field reports for these corpora) — api and README say so.

A split holds windows cut without overlap: ``x`` is (N, seq_len) character ids and ``y`` the same shifted by one,
so every character of the text is predicted exactly once per epoch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ..config import DataConfig
from ..errors import UserError
from .registry import register_dataset
from .sources import RemoteFile, Source, locate
from .spec import Dataset, DataSpec, Split

UNK = "\ufffd"
TRAIN_FRACTION = 0.9

SHAKESPEARE = Source(
    name="Tiny Shakespeare",
    folders=("tinyshakespeare",),
    files=(RemoteFile("input.txt", "6fb458f1232090904fb40fe944165e91"),),
    mirrors=("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/",),
)

_POETRY_MD5: dict[str, str] = json.loads((resources.files("nnzoo.data") / "chinese_poetry_md5.json").read_text("utf-8"))
_POETRY_MIRRORS = ("https://raw.githubusercontent.com/chinese-poetry/chinese-poetry/master/",)
TANG_POEMS = Source(
    name="the Complete Tang Poems (chinese-poetry/全唐诗)",
    folders=("chinese-poetry",),
    files=tuple(
        RemoteFile(f"全唐诗/poet.tang.{n}.json", _POETRY_MD5[f"全唐诗/poet.tang.{n}.json"])
        for n in range(0, 58000, 1000)
    ),  # fmt: skip
    mirrors=_POETRY_MIRRORS,
)
TANG_300 = Source(
    name="唐诗三百首 (chinese-poetry/蒙学)",
    folders=("chinese-poetry",),
    files=(RemoteFile("蒙学/tangshisanbaishou.json", _POETRY_MD5["蒙学/tangshisanbaishou.json"]),),
    mirrors=_POETRY_MIRRORS,
)


@dataclass
class CharVocab:
    chars: list[str]  # chars[0] is UNK

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        return cls([UNK] + sorted(set(text) - {UNK}))

    def __post_init__(self) -> None:
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor([self.index.get(c, 0) for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        return "".join(self.chars[i] for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids))

    def unknown(self, text: str) -> list[str]:
        """Characters of ``text`` the vocabulary lacks, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self.index))


def read_user_text(path: str | Path, kind: str = "UTF-8 text") -> str:
    """A file the user named, as text: one sentence for a missing, binary, non-UTF-8 or empty file.
    ``kind`` names what was expected ("UTF-8 text", "CSV text") in those sentences."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{kind.split()[0]} file {path} does not exist.")
    raw = path.read_bytes()
    if b"\x00" in raw[:65536]:
        raise UserError(f"{path} looks binary (it contains NUL bytes); give a {kind} file.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text (undecodable byte at offset {e.start}).") from None
    if not text.strip():
        raise UserError(f"{path} is empty.")
    return text


def read_text_file(path: str | Path, min_chars: int = 0) -> str:
    """A user's UTF-8 text file, refusing empty, binary or too-short files with one sentence."""
    text = read_user_text(path)
    if len(text) < min_chars:
        raise UserError(f"{path} holds {len(text)} characters; training needs at least {min_chars} "
                        f"(two windows of data.seq_len for training, one for validation).")  # fmt: skip
    return text


def windows(ids: torch.Tensor, seq_len: int, stride: int | None = None) -> Split:
    """(input, next-character) windows: x (N, seq_len), y (N, seq_len), starting every ``stride`` characters
    (default ``seq_len``: no overlap). A smaller stride shows every character at several positions of a window
    per epoch, as nanoGPT's randomly placed windows do; it multiplies the epoch's length by seq_len / stride."""
    stride = stride or seq_len
    x = ids[:-1].unfold(0, seq_len, stride)  # (N, seq_len), a view: window i is ids[i*stride : i*stride+seq_len]
    y = ids[1:].unfold(0, seq_len, stride)  # the same windows, one character later
    dtype = torch.int16 if ids.max() < 2**15 else torch.int32  # compact in memory; models cast to long
    return Split(x.to(dtype).contiguous(), y.to(torch.long).contiguous())


def text_dataset(name: str, text: str, cfg: DataConfig, source: str, extra: dict[str, Any] | None = None) -> Dataset:
    seq_len = cfg.seq_len
    if seq_len < 1:
        raise UserError(f"data.seq_len must be a positive whole number, not {seq_len}.")
    if cfg.stride is not None and not 1 <= cfg.stride <= seq_len:
        raise UserError(f"data.stride must be between 1 and data.seq_len ({seq_len}), not {cfg.stride}.")
    cut = int(len(text) * TRAIN_FRACTION)
    if cut < 2 * (seq_len + 1) or len(text) - cut < seq_len + 1:
        raise UserError(f"The text of {name} holds {len(text)} characters, too short for windows of "
                        f"data.seq_len={seq_len}: it needs at least {int(4 * (seq_len + 1) / (1 - TRAIN_FRACTION))}.")  # fmt: skip
    vocab = CharVocab.from_text(text[:cut])
    ids = vocab.encode(text)
    train = windows(ids[:cut], seq_len, cfg.stride)
    val = windows(ids[cut - 1 :], seq_len)  # the tail; starts one early so its first target is text[cut]
    if cfg.limit_train:
        train = train.subset(slice(0, cfg.limit_train))
    spec = DataSpec(name, task="language-model", input_shape=(seq_len,), num_classes=len(vocab),
                    extra={"vocab": vocab.chars, **(extra or {})})  # fmt: skip
    return Dataset(spec, train, val, val, source)


def _text_spec(name: str, kind: str) -> DataSpec:
    # The vocabulary is known only once the text is read; until then the spec says what kind of text it is.
    return DataSpec(name, task="language-model", extra={"kind": kind})


# ---- Tang poems -----------------------------------------------------------------------------------------------------
_CLAUSE = re.compile(r"[^，。？！；、：]+[，。？！；、：]")


def poem_text(paragraphs: list[str]) -> str:
    return "".join(p.strip() for p in paragraphs)


def is_regular(text: str) -> bool:
    """A regular (近體-like) poem: every clause 5 or 7 characters, all the same length, an even number of them."""
    clauses = _CLAUSE.findall(text)
    if not clauses or len("".join(clauses)) != len(text) or len(clauses) % 2:
        return False
    sizes = {len(c) - 1 for c in clauses}
    return len(sizes) == 1 and sizes <= {5, 7}


def load_tang_poems(cfg: DataConfig) -> tuple[list[dict[str, Any]], str]:
    """Every poem of the Complete Tang Poems as {"author", "title", "paragraphs"}, and where they were found."""
    paths = locate(TANG_POEMS, cfg.data_dir, cfg.download)
    poems: list[dict[str, Any]] = []
    for f in TANG_POEMS.files:
        poems += _read_json_list(paths[f.name])
    return poems, str(paths[TANG_POEMS.files[0].name].parent)


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is not a readable chinese-poetry JSON file ({e}).") from None
    if not isinstance(data, list):
        raise UserError(f"{path} should hold a list of poems.")
    return [p for p in data if isinstance(p, dict) and p.get("paragraphs")]


def poems_dataset(name: str, poems: list[dict[str, Any]], cfg: DataConfig, source: str) -> Dataset:
    """One poem per line; ``data.options.regular_only`` keeps only regular 5- or 7-character poems."""
    texts = [poem_text(p["paragraphs"]) for p in poems]
    if cfg.options.get("regular_only", False):
        texts = [t for t in texts if is_regular(t)]
    texts = [t for t in texts if t]
    return text_dataset(name, "".join(t + "\n" for t in texts), cfg, source, {"kind": "poems"})


# ---- registered datasets --------------------------------------------------------------------------------------------
def _user_file(cfg: DataConfig, kind: str = "text") -> Dataset | None:
    """A user's file in place of the dataset's own text; with a poem dataset (tang-poems, tang300) the file is
    taken to hold poems in the same form, one per line, so the model it trains can write acrostics."""
    if not cfg.data_file:
        return None
    text = read_text_file(cfg.data_file, min_chars=1)
    return text_dataset(Path(cfg.data_file).name, text, cfg, str(cfg.data_file), {"kind": kind})


@register_dataset(
    _text_spec("tinyshakespeare", "text"), help="Tiny Shakespeare, 1.1M characters (char-rnn)", reads=("data_file",)
)
def tinyshakespeare(cfg: DataConfig) -> Dataset:
    if (user := _user_file(cfg)) is not None:
        return user
    path = locate(SHAKESPEARE, cfg.data_dir, cfg.download)["input.txt"]
    return text_dataset("tinyshakespeare", read_text_file(path), cfg, str(path), {"kind": "text"})


@register_dataset(
    _text_spec("tang-poems", "poems"),
    help="全唐诗: the Complete Tang Poems, ~58k poems, 3.7M characters",
    options=("regular_only",),
    reads=("data_file",),
)
def tang_poems(cfg: DataConfig) -> Dataset:
    if (user := _user_file(cfg, "poems")) is not None:
        return user
    poems, where = load_tang_poems(cfg)
    return poems_dataset("tang-poems", poems, cfg, where)


@register_dataset(
    _text_spec("tang300", "poems"),
    help="唐诗三百首: 300 Tang poems, a small set for quick runs",
    options=("regular_only",),
    reads=("data_file",),
)
def tang300(cfg: DataConfig) -> Dataset:
    if (user := _user_file(cfg, "poems")) is not None:
        return user
    path = locate(TANG_300, cfg.data_dir, cfg.download)[TANG_300.files[0].name]
    try:
        book = json.loads(path.read_text(encoding="utf-8"))
        poems = [p for section in book["content"] for p in section["content"]]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not the chinese-poetry 唐诗三百首 file ({type(e).__name__}).") from None
    return poems_dataset("tang300", poems, cfg, str(path))


@register_dataset(_text_spec("text-file", "text"), help="any UTF-8 text file: --data-file PATH", reads=("data_file",))
def text_file(cfg: DataConfig) -> Dataset:
    if not cfg.data_file:
        raise UserError("The text-file dataset needs --data-file PATH (a UTF-8 text file).")
    return _user_file(cfg)  # type: ignore[return-value]
