"""The attention family's building blocks and models: correctness of the attention itself, causality, the
key/value cache, gradients everywhere, and learning on tiny real data."""

from __future__ import annotations

import pytest
import torch
from conftest import needs_fashion
from torch import nn

from nnzoo import TrainConfig, Trainer, create_model, load_dataset
from nnzoo.data import dataset_spec
from nnzoo.data.spec import DataSpec
from nnzoo.data.text import CharVocab
from nnzoo.errors import IncompatibleData, UserError
from nnzoo.models.attention import MultiHeadAttention, SinusoidalPositions, attend
from nnzoo.models.transformer import GPT
from nnzoo.tasks.language_model.sampling import generate_text

LM_SPEC = DataSpec("text", task="language-model", input_shape=(16,), num_classes=23,
                   extra={"vocab": ["\ufffd"] + list("abcdefghijklmnopqrstu\n")})  # fmt: skip
TEXT_SPEC = DataSpec("poems", input_shape=(12,), num_classes=5, class_names=list("ABCDE"),
                     extra={"vocab": ["\ufffd"] + list("春花秋月何時了"), "pad_id": 8, "vocab_size": 9})  # fmt: skip


# ---- the attention itself ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mask", ["none", "causal", "padding", "both"])
@pytest.mark.parametrize("bias", [True, False])
def test_attention_matches_nn_multihead_attention(mask: str, bias: bool) -> None:
    torch.manual_seed(0)
    B, T, C, H = 3, 7, 32, 4
    ref = nn.MultiheadAttention(C, H, bias=bias, batch_first=True).eval()
    ours = MultiHeadAttention(C, H, bias=bias).eval()
    ours.load_from_torch(ref)
    x = torch.randn(B, T, C)
    causal = mask in ("causal", "both")
    pad = torch.zeros(B, T, dtype=torch.bool)
    pad[1, 5:] = True  # the second sequence is 5 tokens long, the third 3
    pad[2, 3:] = True
    pad = pad if mask in ("padding", "both") else None
    attn_mask = torch.ones(T, T, dtype=torch.bool).triu(1) if causal else None  # torch: True = may NOT attend
    want, want_w = ref(x, x, x, key_padding_mask=pad, attn_mask=attn_mask, need_weights=True,
                       average_attn_weights=False)  # fmt: skip
    got_fast, none, _ = ours(x, causal=causal, padding_mask=pad)
    got, weights, _ = ours(x, causal=causal, padding_mask=pad, need_weights=True)
    assert none is None and weights.shape == (B, H, T, T)
    torch.testing.assert_close(got_fast, want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(weights, want_w, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, T))
    if pad is not None:
        assert (weights[1, :, :, 5:] == 0).all() and (weights[2, :, :, 3:] == 0).all()


def test_written_out_attention_is_the_formula() -> None:
    torch.manual_seed(1)
    q, k, v = torch.randn(3, 1, 2, 5, 8).unbind(0)
    y, w = attend(q, k, v)
    expected = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, -1)
    torch.testing.assert_close(w, expected)
    torch.testing.assert_close(y, expected @ v)


def test_width_must_split_into_heads() -> None:
    with pytest.raises(UserError, match="width \\(30\\) must be a multiple of the number of heads \\(4\\)"):
        MultiHeadAttention(30, 4)


def test_sinusoidal_positions_follow_the_paper() -> None:
    pe = SinusoidalPositions(50, 16).pe
    p, i = 7, 3
    assert pe[p, 2 * i].item() == pytest.approx(torch.sin(torch.tensor(p / 10000 ** (2 * i / 16))).item(), abs=1e-6)
    assert pe[p, 2 * i + 1].item() == pytest.approx(torch.cos(torch.tensor(p / 10000 ** (2 * i / 16))).item(), abs=1e-6)
    assert "pe" not in SinusoidalPositions(50, 16).state_dict()  # rebuilt from the formula, never saved


# ---- GPT ---------------------------------------------------------------------------------------------------------
def _gpt(**kw) -> GPT:
    torch.manual_seed(0)
    return create_model("gpt", LM_SPEC, n_layer=2, n_head=2, dim=32, **kw).eval()


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_causal_mask_hides_the_future(positions: str) -> None:
    model = _gpt(positions=positions)
    ids = torch.randint(1, 23, (2, 16))
    changed = ids.clone()
    changed[:, 9] = (ids[:, 9] % 22) + 1  # another character at position 9
    a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :9], b[:, :9], atol=0, rtol=0)  # earlier positions: bit for bit the same
    assert not torch.allclose(a[:, 9:], b[:, 9:])
    for m in model.attention_maps(ids):  # the weights path: nothing above the diagonal
        assert m.shape == (2, 2, 16, 16) and (m.triu(1) == 0).all()


def test_cache_gives_the_logits_of_the_whole_context() -> None:
    model = _gpt()
    ids = torch.randint(1, 23, (2, 16))
    full = model(ids)
    logits, state = model.step(ids[:, :5])  # a prompt, then one token at a time, then two at once
    steps = [logits]
    for t in range(5, 14):
        logits, state = model.step(ids[:, t : t + 1], state)
        steps.append(logits)
    logits, state = model.step(ids[:, 14:16], state)
    steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    assert state[0][0].shape == (2, 2, 16, 16)  # (B, H, T, D) keys per layer
    with pytest.raises(ValueError, match="exceed the context of 16"):
        model.step(ids[:, :1], state)


def test_cached_and_uncached_generation_give_identical_tokens() -> None:
    model = _gpt(dropout=0.1)  # eval mode: dropout must not make the two paths differ
    vocab = CharVocab(LM_SPEC.extra["vocab"])
    for prompt, length in [("abc", 10), ("hello world, this is long", 40)]:  # the second outgrows the context
        a = generate_text(model, vocab, prompt, length, seed=5, temperature=1.3, use_cache=True)
        b = generate_text(model, vocab, prompt, length, seed=5, temperature=1.3, use_cache=False)
        assert a["text"] == b["text"] and len(a["generated"]) == length
    assert "kept its last 16" in generate_text(model, vocab, "a" * 20, 1, seed=0)["notes"][0]


def test_weight_tying_shares_one_table() -> None:
    tied, untied = _gpt(), _gpt(tie_weights=False)
    assert tied.head.weight is tied.tokens.weight
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(untied) - n(tied) == 23 * 32


def test_gpt_refuses_images_and_short_contexts() -> None:
    with pytest.raises(IncompatibleData, match="gpt takes a text corpus, but mnist is images"):
        create_model("gpt", dataset_spec("mnist"))
    with pytest.raises(UserError, match="context \\(8\\) must be at least data.seq_len \\(16\\)"):
        create_model("gpt", LM_SPEC, context=8)


# ---- every model trains ------------------------------------------------------------------------------------------
CASES = [
    ("gpt", LM_SPEC, {}),
    ("gpt", LM_SPEC, {"positions": "sinusoidal", "bias": True, "dropout": 0.1}),
    ("transformer-encoder", TEXT_SPEC, {}),
    ("transformer-encoder", TEXT_SPEC, {"pool": "mean", "positions": "sinusoidal"}),
    ("transformer-encoder", dataset_spec("mnist"), {"tokens": "rows"}),
    ("transformer-encoder", dataset_spec("cifar10"), {"tokens": "patches", "patch": 8}),
    ("vit", dataset_spec("mnist"), {"patch": 7}),
    ("vit", dataset_spec("cifar10"), {}),
]  # fmt: skip


@pytest.mark.parametrize("name,spec,kwargs", CASES, ids=[f"{n}-{s.name}-{len(k)}" for n, s, k in CASES])
def test_every_model_has_finite_loss_and_gradients_everywhere(name: str, spec: DataSpec, kwargs: dict) -> None:
    torch.manual_seed(0)
    model = create_model(name, spec, dim=32, **({"n_layer": 2, "n_head": 2} if name == "gpt" else {"depth": 2}),
                         **kwargs)  # fmt: skip
    if spec.task == "language-model":
        x = torch.randint(0, spec.num_classes, (4, 16))
        y = torch.randint(0, spec.num_classes, (4, 16))
    elif "pad_id" in spec.extra:
        x = torch.randint(0, 8, (4, 12), dtype=torch.int16)
        x[1, 6:] = spec.extra["pad_id"]  # a shorter poem
        y = torch.randint(0, 5, (4,))
    else:
        x, y = torch.randn(4, *spec.input_shape), torch.randint(0, spec.num_classes, (4,))
    out = model.compute_loss((x, y))
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no finite gradient for {missing}"
    groups = model.optimizer_groups()["main"]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert all(p.dim() >= 2 for p in groups[0]["params"]) and groups[1]["weight_decay"] == 0.0


def test_padding_does_not_change_a_text_classifier_output() -> None:
    torch.manual_seed(0)
    model = create_model("transformer-encoder", TEXT_SPEC, dim=32, depth=2).eval()
    poem = torch.tensor([[1, 2, 3, 4, 5]])
    padded = torch.cat([poem, torch.full((1, 7), 8)], 1)
    torch.testing.assert_close(model(poem), model(padded), atol=1e-5, rtol=1e-5)


def test_patch_size_must_divide_the_image() -> None:
    with pytest.raises(UserError, match="patch size \\(5\\) must divide the 28x28 images of mnist; try 2, 4, 7, 14"):
        create_model("vit", dataset_spec("mnist"), patch=5)
    with pytest.raises(IncompatibleData):
        create_model("vit", TEXT_SPEC)


# ---- learning on tiny real data ----------------------------------------------------------------------------------
def test_encoder_on_image_rows_beats_chance_on_digits() -> None:
    data = load_dataset("digits", val_size=0)
    model = create_model("transformer-encoder", data.spec, dim=48, depth=2, heads=4, dropout=0.0)
    cfg = TrainConfig(epochs=6, batch_size=64, optimizer="adamw", lr=3e-3, weight_decay=0.01)
    t = Trainer(model, cfg, spec=data.spec, progress=False)
    t.fit(data.train)
    assert t.evaluate(data.test)["accuracy"] > 0.6  # chance is 0.10


@needs_fashion
def test_vit_beats_chance_on_a_thousand_fashion_mnist_images() -> None:
    data = load_dataset("fashion-mnist", val_size=0, limit_train=1000, limit_test=500)
    model = create_model("vit", data.spec, patch=7, dim=48, depth=2, heads=4, dropout=0.0)
    cfg = TrainConfig(epochs=4, batch_size=50, optimizer="adamw", lr=2e-3, weight_decay=0.05)
    t = Trainer(model, cfg, spec=data.spec, progress=False)
    t.fit(data.train)
    assert t.evaluate(data.test)["accuracy"] > 0.5  # chance is 0.10


def test_tang_authors_dedupes_stratifies_and_pads() -> None:
    from nnzoo.config import DataConfig
    from nnzoo.data.tang_authors import POETS, author_poems, make_dataset

    poem = lambda a, t: {"author": a, "paragraphs": [t]}  # noqa: E731
    found = author_poems([poem("李白", "床前明月光，"), poem("杜甫", "床前明月光，"),  # under two poets: dropped
                          poem("元稹", "曾經滄海難，"), poem("元稹", "曾經滄海難，"),  # repeated: kept once
                          poem("王維", "空山不見人，")])  # not one of the five  # fmt: skip
    assert found == (["曾經滄海難，"], [POETS.index("元稹")])
    g = torch.Generator().manual_seed(0)
    pools = ["春花秋月何時了", "國破山河在城春", "白日依山盡黃河", "曾經滄海難為水", "山不在高有仙則"]
    texts, labels = [], []
    for k, pool in enumerate(pools):
        for _ in range(60):
            n = int(torch.randint(8, 30, (1,), generator=g))
            texts.append("".join(pool[int(i)] for i in torch.randint(0, 7, (n,), generator=g)) + f"{len(texts)}")
            labels.append(k)
    data = make_dataset(texts, labels, DataConfig(seq_len=24), "synthetic")
    assert (len(data.train), len(data.val), len(data.test)) == (240, 30, 30)
    assert torch.bincount(data.test.y).tolist() == [6] * 5  # stratified: every poet keeps its share
    pad = data.spec.extra["pad_id"]
    assert pad == len(data.spec.extra["vocab"]) and data.spec.extra["mask_id"] == pad + 1
    assert data.spec.extra["vocab_size"] == pad + 2  # [MASK] for bert-mlm has the last row
    assert data.train.x.dtype == torch.int16 and data.train.x.shape[1] == 24 and (data.train.x == pad).any()
    vocab = CharVocab(data.spec.extra["vocab"])
    decode = lambda s: {vocab.decode([i for i in row.tolist() if i != pad]) for row in s.x}  # noqa: E731
    assert not decode(data.train) & decode(data.test)  # no poem in two splits
    model = create_model("transformer-encoder", data.spec, dim=32, depth=1, heads=2, dropout=0.0)
    cfg = TrainConfig(epochs=8, batch_size=32, optimizer="adamw", lr=3e-3)
    t = Trainer(model, cfg, spec=data.spec, progress=False)
    t.fit(data.train)
    assert t.evaluate(data.test)["accuracy"] > 0.6  # chance is 0.2
