from __future__ import annotations

import re

import pytest
from torch import nn

from nnzoo import TrainConfig, Trainer, load_dataset
from nnzoo.data.text import CharVocab
from nnzoo.errors import UserError
from nnzoo.models.lm import LanguageModel
from nnzoo.tasks.language_model.sampling import generate_acrostic, generate_text


class Bigram(LanguageModel):
    """The smallest language model: the next character depends on this one only (its state is unused)."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def step(self, ids, state=None):
        return self.table(ids), state


POEMS = ["春眠不覺曉，處處聞啼鳥。夜來風雨聲，花落知多少。", "白日依山盡，黃河入海流。欲窮千里目，更上一層樓。",
         "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。", "紅豆生南國，春來發幾枝。願君多采擷，此物最相思。"]  # fmt: skip


@pytest.fixture(scope="module")
def poem_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Bigram, CharVocab]:
    path = tmp_path_factory.mktemp("poems") / "poems.txt"
    path.write_text("".join(p + "\n" for p in POEMS * 30), encoding="utf-8")
    data = load_dataset("text-file", data_file=str(path), seq_len=32)
    vocab = CharVocab(data.spec.extra["vocab"])
    model = Bigram(len(vocab))
    Trainer(model, TrainConfig(epochs=30, batch_size=16, optimizer="adam", lr=0.05), spec=data.spec,
            progress=False).fit(data.train)  # fmt: skip
    return model, vocab


def test_generation_is_reproducible_with_a_seed(poem_model) -> None:
    model, vocab = poem_model
    a = generate_text(model, vocab, "白日", 40, seed=3, temperature=0.8)
    b = generate_text(model, vocab, "白日", 40, seed=3, temperature=0.8)
    c = generate_text(model, vocab, "白日", 40, seed=4, temperature=0.8)
    assert a["text"] == b["text"] and a["text"].startswith("白日") and len(a["generated"]) == 40
    assert a["text"] != c["text"]
    greedy = generate_text(model, vocab, "黃", 3, top_k=1, seed=0)["generated"]
    assert greedy == "河入海"  # a bigram model trained on these poems has learned this run by heart


def test_prompt_with_unknown_characters_is_cleaned_and_noted(poem_model) -> None:
    model, vocab = poem_model
    out = generate_text(model, vocab, "白Z日", 5, seed=0)
    assert out["prompt"] == "白日" and "lacks 'Z'" in out["notes"][0]
    with pytest.raises(UserError, match="No character of the prompt"):
        generate_text(model, vocab, "xyz", 5)


@pytest.mark.parametrize("heads", ["春花明月", "明月"])
def test_acrostic_lines_start_with_the_requested_characters(poem_model, heads: str) -> None:
    model, vocab = poem_model
    out = generate_acrostic(model, vocab, heads, seed=1)
    lines = re.findall(r"[^，。\n]+[，。]", out["text"])
    assert [line[0] for line in lines] == list(heads)
    assert all(len(line) - 1 == out["line_length"] for line in lines) and out["line_length"] in (5, 7)
    assert [line[-1] for line in lines] == ["，", "。"] * (len(heads) // 2)
    with pytest.raises(UserError, match="vocabulary lacks 'Q'"):
        generate_acrostic(model, vocab, "春Q")
