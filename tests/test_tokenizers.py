"""Tokenizers (char, word, bpe): fitted on the training split only, saved in the run, used unchanged by predict,
export and serve; and the text families that read their tokens (TF-IDF MLP, TextCNN, BiLSTM, Transformer)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli

import nnzoo
from nnzoo.config import TOKENIZER_CHOICES, DataConfig
from nnzoo.data.tokenizers import TOKENIZERS, TokenVocab, fit_tokenizer, load_tokenizer, split_words

REVIEWS_GOOD = ["房间很干净，服务也好", "位置不错，早餐丰富", "服务热情，下次还来", "环境安静，床很舒服"]
REVIEWS_BAD = ["房间太脏了，服务很差", "隔音不好，晚上很吵", "早餐难吃，前台态度差", "设施陈旧，不会再来"]


def test_the_choices_are_the_registry() -> None:
    assert set(TOKENIZER_CHOICES) == set(TOKENIZERS)


def test_words_segment_chinese_with_jieba_and_split_latin_runs() -> None:
    assert split_words("房间很干净，服务也好！") == ["房间", "很", "干净", "，", "服务", "也好", "！"]
    assert split_words("The Wi-Fi didn't work, 3 stars.") == ["the", "wi", "-", "fi", "didn't", "work", ",", "3",
                                                            "stars", "."]  # fmt: skip
    assert split_words("") == [] and split_words("   ") == []
    assert split_words("wifi很慢") == ["wifi", "很", "慢"]


@pytest.mark.parametrize("kind", TOKENIZER_CHOICES)
def test_a_tokenizer_saved_and_loaded_splits_the_same(kind: str) -> None:
    texts = REVIEWS_GOOD + REVIEWS_BAD
    tok = fit_tokenizer(kind, texts * 5, vocab_size=60)
    again = load_tokenizer(json.loads(json.dumps(tok.to_dict())))  # through JSON, as FILE.json and spec carry it
    for t in [*texts, "完全没见过的句子 with English", ""]:
        assert again.split(t) == tok.split(t), (kind, t)
    pieces = tok.split("房间很干净")
    if kind == "char":
        assert pieces == list("房间很干净")
    if kind != "word":  # characters and subwords cover the text they came from, in order
        assert "".join(pieces).replace(" ", "") == "房间很干净"


def test_the_vocabulary_counts_training_tokens_only_and_unknown_is_zero() -> None:
    vocab = TokenVocab.build([["好", "好", "差"], ["好", "吵"]], max_size=3)
    assert vocab.tokens[1:] == ["好", "吵"]  # by frequency then code point; capped to 3 with the unknown token
    assert vocab.ids(["好", "新", "吵"]) == [1, 0, 2] and vocab.unknown(["好", "新"]) == ["新"]


def _reviews_csv(path: Path, n: int = 240) -> Path:
    """Reviews made of real phrases: positive ones mostly GOOD phrases, negative ones mostly BAD."""
    rng = np.random.default_rng(0)
    lines = ["label,review"]
    for i in range(n):
        pos = bool(i % 3)
        main, other = (REVIEWS_GOOD, REVIEWS_BAD) if pos else (REVIEWS_BAD, REVIEWS_GOOD)
        parts = [*rng.choice(main, 2), *rng.choice(other, 1)]
        rng.shuffle(parts)
        lines.append(f"{int(pos)},{'。'.join(parts)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_tokenizer_is_fitted_on_training_texts_and_kept_in_the_spec(tmp_path: Path) -> None:
    csv = _reviews_csv(tmp_path / "r.csv")
    cfg = DataConfig(name="text-labels", data_file=str(csv), text_column="review", tokenizer="word", seq_len=24)
    data = nnzoo.load_dataset(cfg)
    extra = data.spec.extra
    assert (
        extra["tokenizer"] == {"kind": "word"} and "干净" in extra["vocab"] and extra["pad_id"] == len(extra["vocab"])
    )
    assert len(extra["idf"]) == extra["pad_id"]
    assert "word tokenizer" in data.source
    bpe = nnzoo.load_dataset(DataConfig(**{**cfg.__dict__, "tokenizer": "bpe", "vocab_size": 80}))
    assert bpe.spec.extra["tokenizer"]["kind"] == "bpe" and len(bpe.spec.extra["vocab"]) <= 80


FAMILIES = {
    "mlp": ["--set", "model_args.hidden=[32]"],
    "text-cnn": ["--set", "model_args.filters=16", "--set", "model_args.embed=16"],
    "rnn": ["--set", "model_args.hidden=16", "--set", "model_args.embed=16", "--set", "model_args.bidirectional=true"],
    "transformer-encoder": [
        "--set",
        "model_args.dim=32",
        "--set",
        "model_args.depth=1",
        "--set",
        "model_args.heads=2",
        "--lr",
        "0.003",
        "--epochs",
        "12",
    ],
}


@pytest.mark.parametrize("model", list(FAMILIES))
def test_each_family_learns_word_tokens_and_predicts_a_new_review(model: str, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    csv = _reviews_csv(tmp_path / "r.csv")
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", model, "--data-file", csv, "--text-column", "review", "--tokenizer",
                           "word", "--epochs", "8", "--batch-size", "32", "--lr", "0.01", "--optimizer", "adam",
                           "--set", "data.seq_len=24", "--out", run, "--quiet", "--set", "train.num_threads=1",
                           *FAMILIES[model])  # fmt: skip
    assert code == 0, err
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["accuracy"] > test["majority_baseline"] + 0.15, test
    code, out, err = run_cli(capsys, "predict", run, "--text", "房间很干净，服务也好", "--text", "", "--json")
    assert code == 0, err
    answers = json.loads(out)
    assert answers[0]["label"] == "1" and "empty" in " ".join(answers[1]["notes"])
    assert (run / "report" / "mistakes.md").read_text(encoding="utf-8").startswith("# The ")


def test_a_word_run_exports_its_tokenizer_and_onnx_agrees(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    csv = _reviews_csv(tmp_path / "r.csv")
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "text-cnn", "--data-file", csv, "--text-column", "review", "--tokenizer",
                           "bpe", "--vocab-size", "120", "--max-steps", "3", "--set", "data.seq_len=24",
                           "--set", "model_args.filters=8", "--out", run, "--quiet")  # fmt: skip
    assert code == 0, err
    result = nnzoo.export(run)
    assert result["max_abs_diff"] < 1e-4
    meta = json.loads(Path(result["path"] + ".json").read_text(encoding="utf-8"))
    saved = meta["meta"]["tokenizer"] if "meta" in meta else meta["tokenizer"]
    assert saved["kind"] == "bpe" and load_tokenizer(saved).split("房间很干净") == load_tokenizer(
        nnzoo.load_run(run).spec.extra["tokenizer"]
    ).split("房间很干净")


def test_text_cnn_ignores_padding_windows() -> None:
    """The max over time reads no window made only of padding: appending padding changes nothing."""
    from nnzoo.models.cnn import TextCNN

    torch.manual_seed(0)
    net = TextCNN(vocab_size=12, pad_id=11, num_classes=2, filters=4, embed=8).eval()
    ids = torch.tensor([[1, 2, 3, 4, 11, 11], [5, 11, 11, 11, 11, 11]])
    longer = torch.cat([ids, torch.full((2, 10), 11)], dim=1)
    assert torch.allclose(net(ids), net(longer), atol=1e-6)


def test_the_tfidf_mlp_matches_scikit_learns_tfidf_vectors() -> None:
    """The bag's first layer is W times the L2-normalised TF-IDF vector scikit-learn computes (smooth idf)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from nnzoo.data.tokenizers import idf
    from nnzoo.models.mlp import TfidfMLP

    docs = [[1, 2, 2, 3], [2, 4], [1, 1, 1, 5, 3]]
    weights = idf(docs, 6)
    net = TfidfMLP(7, 6, 2, weights, [5])
    ids = torch.tensor([d + [6] * (5 - len(d)) for d in docs])
    got = net.bag(ids, per_sample_weights=None)  # (unused) shape check
    assert got.shape == (3, 5)
    vec = TfidfVectorizer(analyzer=lambda d: [str(t) for t in d], norm="l2", smooth_idf=True)
    tfidf = torch.tensor(vec.fit_transform(docs).toarray(), dtype=torch.float32)  # columns: tokens in sorted order
    order = [int(t) for t in vec.get_feature_names_out()]
    expected = tfidf @ net.bag.weight[order] + net.bias
    w = net.idf[ids]
    norm = torch.zeros(3, 7).scatter_add_(1, ids, w).norm(dim=1, keepdim=True)
    assert torch.allclose(net.bag(ids, per_sample_weights=w / norm) + net.bias, expected, atol=1e-5)


# ---- pretraining (bert-mlm) and fine-tuning (--init-from) --------------------------------------------------------
def test_masking_follows_bert_80_10_10() -> None:
    from nnzoo.models.transformer import CharTokens, MaskedLM

    pad, mask_id = 50, 51
    net = MaskedLM(CharTokens(52, pad, 16), 64, mask_id, vocab=pad, dim=16, depth=1, heads=2)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, pad, (400, 64), generator=g)
    ids[:, 48:] = pad  # a quarter padding: never chosen
    out, chosen = net.mask(ids, torch.Generator().manual_seed(1))
    real = ids != pad
    assert not chosen[~real].any()
    n = chosen.sum().item()
    assert abs(n / real.sum().item() - 0.15) < 0.01
    masked = (out[chosen] == mask_id).sum().item() / n
    kept = (out[chosen] == ids[chosen]).sum().item() / n  # kept, or swapped for the same token by chance (1/49)
    swapped = ((out[chosen] != mask_id) & (out[chosen] != ids[chosen])).sum().item() / n
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1) < 0.02 and abs(swapped - 0.1) < 0.02
    assert out[chosen].max() <= mask_id and out[chosen & (out != mask_id)].min() >= 1
    assert torch.equal(out[~chosen], ids[~chosen])


SMALL = ["--set", "model_args.dim=32", "--set", "model_args.depth=1", "--set", "model_args.heads=2"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from nnzoo.cli import main

    d = tmp_path_factory.mktemp("mlm")
    csv = _reviews_csv(d / "r.csv")
    argv = ["train", "bert-mlm", "--data-file", str(csv), "--text-column", "review", "--tokenizer", "word",
            "--epochs", "3", "--lr", "0.003", "--optimizer", "adamw", "--set", "data.seq_len=24", "--out",
            str(d / "mlm"), "--quiet", "--set", "train.num_threads=1", *SMALL]  # fmt: skip
    assert main(argv) == 0
    return csv, d / "mlm"


def test_mlm_pretraining_lowers_the_masked_loss(pretrained: tuple[Path, Path]) -> None:
    _, run = pretrained
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["masked_perplexity"] < 40  # below guessing among the reviews' ~40 word types


def test_fine_tuning_starts_from_the_pretrained_encoder(pretrained: tuple[Path, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    csv, mlm = pretrained
    common = ["--data-file", csv, "--text-column", "review", "--set", "data.seq_len=24", "--quiet",
              "--set", "train.num_threads=1", *SMALL]  # fmt: skip
    code, _, err = run_cli(capsys, "train", "transformer-encoder", *common, "--init-from", mlm, "--freeze", "encoder",
                           "--epochs", "4", "--lr", "0.01", "--out", tmp_path / "frozen")  # fmt: skip
    assert code == 0, err
    pre = nnzoo.load_run(mlm).model.state_dict()
    tuned = nnzoo.load_run(tmp_path / "frozen")
    assert tuned.config.data.vocab_from == str(mlm) and tuned.spec.extra["vocab"] == nnzoo.load_run(mlm).spec.extra[
        "vocab"]  # fmt: skip
    own = tuned.model.state_dict()
    shared = [k for k in pre if k in own]
    assert len(shared) > 10 and "head.weight" not in shared
    assert all(torch.equal(own[k], pre[k]) for k in shared)  # frozen: still the pretrained weights
    code, _, err = run_cli(capsys, "train", "transformer-encoder", *common, "--init-from", mlm, "--epochs", "8",
                           "--lr", "0.003", "--out", tmp_path / "tuned")  # fmt: skip
    assert code == 0, err
    test = json.loads((tmp_path / "tuned" / "metrics.json").read_text())["test"]
    assert test["accuracy"] > test["majority_baseline"] + 0.15
    # Other dims than the pretrained encoder's, and a tokenizer of its own: one sentence each.
    code, _, err = run_cli(capsys, "train", "transformer-encoder", *common, "--init-from", mlm,
                           "--set", "model_args.dim=48", "--max-steps", "1", "--out", tmp_path / "wide")  # fmt: skip
    assert code != 0 and "fine-tune with the model_args (dim, depth, heads) it was pretrained with" in err
    code, _, err = run_cli(capsys, "train", "transformer-encoder", *common, "--init-from", mlm, "--tokenizer", "bpe",
                           "--max-steps", "1", "--out", tmp_path / "bpe")  # fmt: skip
    assert code != 0 and "reads word tokens; --tokenizer bpe" in err and err.count("\n") == 1


def test_a_label_fraction_keeps_a_stratified_share_and_every_token(tmp_path: Path) -> None:
    csv = _reviews_csv(tmp_path / "r.csv")
    cfg = DataConfig(name="text-labels", data_file=str(csv), text_column="review", tokenizer="word", seq_len=24)
    full = nnzoo.load_dataset(cfg)
    part = nnzoo.load_dataset(DataConfig(**{**cfg.__dict__, "label_fraction": 0.25}))
    assert len(part.train) == pytest.approx(0.25 * len(full.train), abs=2)
    share = lambda y: float((y == 1).float().mean())  # noqa: E731
    assert share(part.train.y) == pytest.approx(share(full.train.y), abs=0.03)
    assert part.spec.extra["vocab"] == full.spec.extra["vocab"] and torch.equal(part.test.x, full.test.x)
