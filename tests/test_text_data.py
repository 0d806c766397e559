from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nnzoo.data import load_dataset
from nnzoo.data.text import UNK, CharVocab, is_regular
from nnzoo.errors import UserError


def test_user_text_file_windows_vocab_and_tail_validation(tmp_path: Path) -> None:
    text = "abcdefghij" * 50 + "XYZ" * 10  # X, Y and Z appear only in the last 10%: the validation tail
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    ds = load_dataset("text-file", data_file=str(tmp_path / "t.txt"), seq_len=16)
    vocab = CharVocab(ds.spec.extra["vocab"])
    assert vocab.chars[0] == UNK and "X" not in vocab.chars and len(vocab) == 11
    assert ds.spec.task == "language-model" and ds.spec.num_classes == 11 and ds.spec.input_shape == (16,)
    x, y = ds.train.x.long(), ds.train.y
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one character
    assert vocab.decode(x[0]) == text[:16] and vocab.decode(y[0]) == text[1:17]
    assert vocab.decode(torch.cat(list(x))) == text[: x.numel()]  # windows do not overlap
    assert (ds.val.y == 0).any()  # unseen validation characters map to UNK
    assert ds.test is ds.val
    assert vocab.unknown("aXbY") == ["X", "Y"]


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"),
    (b"  \n\n", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "looks binary"),
    (b"caf\xe9 au lait", "is not UTF-8 text"),
    (b"too short", "too short for windows of data.seq_len=128"),
])  # fmt: skip
def test_bad_text_files(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "f.txt").write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_dataset("tinyshakespeare", data_file=str(tmp_path / "f.txt"))


def test_regular_poem_detection() -> None:
    assert is_regular("白日依山盡，黃河入海流。欲窮千里目，更上一層樓。")
    assert is_regular("朝辭白帝彩雲間，千里江陵一日還。兩岸猿聲啼不住，輕舟已過萬重山。")
    assert not is_regular("白日依山盡，黃河入海流。欲窮千里目，")  # odd number of clauses
    assert not is_regular("君不見黃河之水天上來，奔流到海不復回。")  # mixed lengths


def test_text_datasets_name_their_files_when_missing(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="put input.txt .* into .*tinyshakespeare"):
        load_dataset("tinyshakespeare", data_dir=str(tmp_path), download=False)
    with pytest.raises(UserError, match="text-file dataset needs --data-file"):
        load_dataset("text-file")
