"""Labelled texts: a user's CSV / TSV / JSONL file of (text, label) rows (``--data-file reviews.csv --text-column
review --label-column label``) and ChnSentiCorp, 7,766 Chinese hotel reviews, through the same loader.

A text becomes character ids exactly as tang-authors' poems do (data/tang_authors.py): the vocabulary is the
characters of the training texts (id 0 for one never seen), each text is cut to ``data.seq_len`` characters or
followed by ``pad_id`` up to it, and the models mask the padding. Rows with an empty text or no label are dropped
and counted in the data's description. The split rule is data/splits.py's (stratified 80/10/10 by label, or
``--split-column``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import checkpoint
from ..config import DataConfig
from ..errors import UserError
from .registry import register_dataset
from .sources import RemoteFile, Source, locate
from .spec import Dataset, DataSpec, Split
from .splits import given_split, strata, stratified_split
from .tables import decode_text, read_table, require_column
from .tokenizers import Tokenizer, TokenVocab, build_vocab, encode_ids, fit_tokenizer, idf, load_tokenizer

DEFAULT_LABEL_COLUMN = "label"


def read_labelled(path: Path) -> Any:
    """A CSV / TSV (pandas) or JSONL (one JSON object a line) file as a DataFrame."""
    import pandas as pd

    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        return read_table(path, "Text file")
    rows = []
    for line_no, line in enumerate(decode_text(path, "Text file").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}, line {line_no} is not JSON ({e.msg}); JSONL holds one object a line.") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}, line {line_no} holds a {type(row).__name__}, not an object of named fields.")
        rows.append(row)
    if not rows:
        raise UserError(f"{path} holds no rows.")
    return pd.DataFrame(rows)


def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and np.isnan(v)) and str(v).strip() != ""


def _label(v: Any) -> str:
    return str(int(v)) if isinstance(v, (float, np.floating)) and float(v).is_integer() else str(v).strip()


def labelled_dataset(name: str, df: Any, cfg: DataConfig, source: str, text_column: str, label_column: str,
                     extra_notes: tuple[str, ...] = ()) -> Dataset:  # fmt: skip
    require_column(df, text_column, source, "--text-column")
    require_column(df, label_column, source, "--label-column")
    if text_column == label_column:
        raise UserError("--text-column and --label-column name the same column.")
    if cfg.split_column is not None:
        require_column(df, cfg.split_column, source, "--split-column")
    keep = np.array([_present(t) and _present(lab) for t, lab in zip(df[text_column], df[label_column])])
    dropped = int((~keep).sum())
    df = df[keep].reset_index(drop=True)
    texts = [str(t) for t in df[text_column]]
    labels = [_label(v) for v in df[label_column]]
    class_names = sorted(set(labels), key=lambda s: (not s.lstrip("-").isdigit(), int(s) if s.lstrip("-").isdigit()
                                                     else 0, s))  # fmt: skip
    if len(class_names) < 2:
        raise UserError(f"{source}: the labels ({label_column!r}) hold one value only"
                        f"{' (' + repr(class_names[0]) + ')' if class_names else ''}; there is nothing to learn.")  # fmt: skip
    y_all = np.array([class_names.index(v) for v in labels], dtype=np.int64)
    if cfg.split_column is not None:
        train_i, val_i, test_i = given_split(df[cfg.split_column].tolist(), f"{source}, column {cfg.split_column!r}")
        unseen = sorted({labels[i] for i in np.concatenate([val_i, test_i])} - {labels[i] for i in train_i})
        if unseen:
            raise UserError(f"{source}: the label{'s' if len(unseen) > 1 else ''} {', '.join(map(repr, unseen))} of "
                            "the validation or test rows never appear in the training rows.")  # fmt: skip
    else:
        train_i, val_i, test_i = stratified_split(strata(y_all, True), cfg)
    extra = {"text_column": text_column, "label_column": label_column}
    notes = (*extra_notes, *([f"{dropped} row{'s' if dropped > 1 else ''} without a text or a label dropped"]
                             if dropped else []))  # fmt: skip
    return encode_labelled(name, texts, y_all, (train_i, val_i, test_i), class_names, cfg, source, notes, extra)


def encode_labelled(name: str, texts: list[str], y_all: np.ndarray, splits: tuple[np.ndarray, ...],
                    class_names: list[str], cfg: DataConfig, source: str, extra_notes: tuple[str, ...] = (),
                    extra: dict[str, Any] | None = None) -> Dataset:  # fmt: skip
    """Labelled texts, split, as token ids: the tokenizer and vocabulary fitted on the training texts (or a
    pretrained run's, ``data.vocab_from``), ``data.label_fraction`` of the training labels kept; what the
    labelled-text files, ChnSentiCorp and tang-authors share."""
    train_i, val_i, test_i = (np.asarray(s) for s in splits)
    if cfg.vocab_from:  # a pretrained run's tokens, so its weights mean what they meant
        tok, vocab = pretrained_vocab(cfg)
    else:
        tok = fit_tokenizer(cfg.tokenizer, [texts[i] for i in train_i], cfg.vocab_size)
    pieces = [tok.split(t) for t in texts]
    if not cfg.vocab_from:
        vocab = build_vocab(tok, [pieces[i] for i in train_i], cfg.vocab_size)
    pad_id = len(vocab)
    ids = [vocab.ids(p) for p in pieces]
    all_train = train_i
    if cfg.label_fraction is not None and cfg.label_fraction < 1:  # the tokens came from every training text
        train_i = label_subset(train_i, y_all, cfg.label_fraction, cfg.split_seed)
    y = torch.from_numpy(y_all)

    def split(idx: np.ndarray) -> Split:
        return Split(encode_ids([ids[i] for i in idx], cfg.seq_len, pad_id), y[idx])

    train, val, test = split(train_i), split(val_i) if len(val_i) else None, split(test_i)
    if cfg.limit_train:
        train = train.subset(slice(0, cfg.limit_train))
    if cfg.limit_test:
        test = test.subset(slice(0, cfg.limit_test))
    lengths = np.array([len(pieces[i]) for i in all_train])
    cut = float((lengths > cfg.seq_len).mean())
    unknown = sum(row.count(0) for row in ids) / max(sum(map(len, ids)), 1)
    unit = "characters" if tok.kind == "char" else f"{tok.kind} tokens"
    spec = DataSpec(name, task="classification", input_shape=(cfg.seq_len,), num_classes=len(class_names),
                    class_names=class_names,
                    extra={"kind": "text-classification", "vocab": vocab.tokens, "pad_id": pad_id,
                           "mask_id": pad_id + 1, "vocab_size": pad_id + 2, "truncated_at": cfg.seq_len,
                           **(extra or {}), "tokenizer": tok.to_dict(),
                           "idf": idf([ids[i] for i in all_train], pad_id)})  # fmt: skip
    if len(train_i) < len(all_train):
        extra_notes = (*extra_notes, f"{len(train_i):,} of the {len(all_train):,} training labels used "
                                     f"(data.label_fraction={cfg.label_fraction})")  # fmt: skip
    if cfg.vocab_from:
        extra_notes = (*extra_notes, f"tokens of {cfg.vocab_from}")
    notes = [
        *extra_notes,
        f"{tok.kind} tokenizer, {len(vocab):,} tokens ({100 * unknown:.1f}% of all tokens unknown)",
        f"{100 * cut:.0f}% of training texts longer than data.seq_len={cfg.seq_len} {unit} are cut",
    ]
    return Dataset(spec, train, val, test, f"{source}; {'; '.join(notes)}")


def pretrained_vocab(cfg: DataConfig) -> tuple[Tokenizer, TokenVocab]:
    """The tokenizer and vocabulary a run folder (``data.vocab_from``) was trained with; a tokenizer asked for on
    the command line must be that one."""
    path = checkpoint.find(cfg.vocab_from, "best")
    extra = (checkpoint.load(path).get("spec") or {}).get("extra") or {}
    if "vocab" not in extra or "pad_id" not in extra:
        raise UserError(f"{cfg.vocab_from} holds no text model, so it has no tokens to fine-tune with.")
    tok = load_tokenizer(extra.get("tokenizer"))
    if cfg.tokenizer != DataConfig.tokenizer and cfg.tokenizer != tok.kind:
        raise UserError(f"{cfg.vocab_from} reads {tok.kind} tokens; --tokenizer {cfg.tokenizer} would give its weights "
                        "other tokens: leave --tokenizer out (it is the pretrained run's).")  # fmt: skip
    return tok, TokenVocab(list(extra["vocab"]))


def label_subset(train_i: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded share of the training rows, stratified by label (each class keeps at least one row)."""
    rng = np.random.default_rng(seed + 7919)
    keep = []
    for label in np.unique(y[train_i]):
        rows = train_i[y[train_i] == label]
        keep.append(rng.permutation(rows)[: max(1, round(fraction * len(rows)))])
    return np.sort(np.concatenate(keep))


TEXT_READS = (
    "data_file",
    "text_column",
    "label_column",
    "split_column",
    "tokenizer",
    "vocab_size",
    "vocab_from",
    "label_fraction",
)


@register_dataset(DataSpec("text-labels", extra={"kind": "text-classification"}),
                  help="your own labelled texts: --data-file FILE.csv|.tsv|.jsonl --text-column C [--label-column L]",
                  reads=TEXT_READS)  # fmt: skip
def text_labels(cfg: DataConfig) -> Dataset:
    if not cfg.data_file or not cfg.text_column:
        raise UserError("The text-labels dataset needs --data-file FILE (CSV, TSV or JSONL) and --text-column COLUMN "
                        "(and --label-column COLUMN unless it is called 'label').")  # fmt: skip
    path = Path(cfg.data_file)
    return labelled_dataset(path.stem, read_labelled(path), cfg, str(path), cfg.text_column,
                            cfg.label_column or DEFAULT_LABEL_COLUMN)  # fmt: skip


CHNSENTICORP = Source(
    name="ChnSentiCorp hotel reviews (SophonPlus/ChineseNlpCorpus)",
    folders=("ChineseNlpCorpus/datasets/ChnSentiCorp_htl_all", "ChnSentiCorp_htl_all", "chnsenticorp"),
    files=(RemoteFile("ChnSentiCorp_htl_all.csv", "8824a3e3f27de0831389fde01df425da"),),
    mirrors=("https://raw.githubusercontent.com/SophonPlus/ChineseNlpCorpus/master/datasets/ChnSentiCorp_htl_all/",),
)


@register_dataset(DataSpec("chnsenticorp", class_names=["negative", "positive"], extra={"kind": "text-classification"}),
                  help="ChnSentiCorp: 7,766 Chinese hotel reviews (Ctrip), positive or negative (Tan Songbo)",
                  reads=("split_column", "tokenizer", "vocab_size", "vocab_from", "label_fraction"))  # fmt: skip
def chnsenticorp(cfg: DataConfig) -> Dataset:
    path = locate(CHNSENTICORP, cfg.data_dir, cfg.download)["ChnSentiCorp_htl_all.csv"]
    df = read_table(path)
    df["label"] = ["positive" if _label(v) == "1" else "negative" if _label(v) == "0" else v for v in df["label"]]
    return labelled_dataset("chnsenticorp", df, cfg, str(path), "review", "label")


class TextEncoder:
    """Texts given at predict, serve or attention time, encoded as the run's training texts were (its own
    tokenizer and vocabulary, built once), with notes on what was cut, unknown or empty."""

    def __init__(self, spec: DataSpec):
        self.tokenizer = load_tokenizer(spec.extra.get("tokenizer"))
        self.vocab = TokenVocab(list(spec.extra["vocab"]))
        self.seq_len, self.pad_id = spec.input_shape[0], spec.extra["pad_id"]
        self.unit = "characters" if self.tokenizer.kind == "char" else "tokens"

    def tokens(self, text: str) -> list[str]:
        return self.tokenizer.split(text)

    def notes(self, pieces: list[str]) -> list[str]:
        n = []
        if not pieces:
            n.append("the text is empty (or only spaces): the model sees padding alone")
        if len(pieces) > self.seq_len:
            n.append(f"the model reads the first {self.seq_len} {self.unit}; the other {len(pieces) - self.seq_len} "
                     "were cut")  # fmt: skip
        unknown = self.vocab.unknown(pieces[: self.seq_len])
        if unknown:
            shown = "".join(unknown[:20]) if self.tokenizer.kind == "char" else " ".join(unknown[:20])
            n.append(f"{len(unknown)} {self.unit[:-1]}(s) never seen in training read as unknown: {shown}")
        return n

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, list[list[str]]]:
        """(N, seq_len) int64 ids and each text's notes."""
        pieces = [self.tokens(t) for t in texts]
        ids = encode_ids([self.vocab.ids(p) for p in pieces], self.seq_len, self.pad_id)
        return ids.long(), [self.notes(p) for p in pieces]


def encode_texts(spec: DataSpec, texts: list[str]) -> tuple[torch.Tensor, list[list[str]]]:
    """``TextEncoder(spec)(texts)``: (N, seq_len) int64 ids, and the notes on each text."""
    return TextEncoder(spec)(texts)
