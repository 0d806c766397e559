"""The recurrent family: the gate-by-gate cells against PyTorch's fused ones, every form of the model training with
finite loss and gradients, a character model that learns a tiny text by heart, and exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import StopAfter
from torch import nn

from nnzoo import TrainConfig, Trainer, api, checkpoint, load_dataset
from nnzoo.data.spec import DataSpec
from nnzoo.data.text import CharVocab
from nnzoo.errors import UserError
from nnzoo.models import create_model
from nnzoo.models.rnn import FUSED, ReadableRNN, gru_cell, lstm_cell, rnn_cell
from nnzoo.tasks.language_model.sampling import generate_text

# ---- the readable cells are the fused ones --------------------------------------------------------------------------


def _weights(cell: nn.Module) -> list[torch.Tensor]:
    return [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]


def test_lstm_cell_matches_torch() -> None:
    torch.manual_seed(0)
    ref = nn.LSTMCell(5, 7)
    x, h, c = torch.randn(3, 5), torch.randn(3, 7), torch.randn(3, 7)
    h_ref, c_ref = ref(x, (h, c))
    h_new, c_new = lstm_cell(x, (h, c), *_weights(ref))
    torch.testing.assert_close(h_new, h_ref)
    torch.testing.assert_close(c_new, c_ref)


@pytest.mark.parametrize("mine,ref_cls", [(gru_cell, nn.GRUCell), (rnn_cell, nn.RNNCell)])
def test_gru_and_rnn_cells_match_torch(mine, ref_cls) -> None:
    torch.manual_seed(0)
    ref = ref_cls(5, 7)
    x, h = torch.randn(3, 5), torch.randn(3, 7)
    torch.testing.assert_close(mine(x, h, *_weights(ref)), ref(x, h))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_readable_layers_equal_fused_layers_forward_and_backward(cell: str) -> None:
    """Two layers, both directions, a given initial state: same outputs, final state and gradients."""
    torch.manual_seed(0)
    fused = FUSED[cell](4, 6, num_layers=2, batch_first=True, bidirectional=True)
    readable = ReadableRNN(cell, 4, 6, num_layers=2, bidirectional=True)
    assert [n for n, _ in readable.named_parameters()] == [n for n, _ in fused.named_parameters()]
    readable.load_state_dict(fused.state_dict())
    x = torch.randn(3, 5, 4)
    h0 = torch.randn(4, 3, 6)
    state = (h0, torch.randn(4, 3, 6)) if cell == "lstm" else h0
    out_f, st_f = fused(x, state)
    out_r, st_r = readable(x, state)
    torch.testing.assert_close(out_r, out_f)
    for a, b in zip(st_r if cell == "lstm" else [st_r], st_f if cell == "lstm" else [st_f]):
        torch.testing.assert_close(a, b)
    out_f.square().sum().backward()
    out_r.square().sum().backward()
    for (name, p_f), p_r in zip(fused.named_parameters(), readable.parameters()):
        torch.testing.assert_close(p_r.grad, p_f.grad, msg=name)


def test_fused_checkpoint_loads_into_the_readable_model() -> None:
    spec = DataSpec("t", task="language-model", num_classes=11)
    torch.manual_seed(0)
    fused = create_model("rnn", spec, cell="gru", hidden=8, layers=2, embed=4)
    readable = create_model("rnn", spec, cell="gru", hidden=8, layers=2, embed=4, impl="readable")
    readable.load_state_dict(fused.state_dict())
    ids = torch.randint(0, 11, (2, 9))
    torch.testing.assert_close(readable(ids), fused(ids))


# ---- every form trains ----------------------------------------------------------------------------------------------
SPECS = {
    "classification": DataSpec("img", input_shape=(1, 28, 28), num_classes=10),
    "language-model": DataSpec("txt", task="language-model", input_shape=(12,), num_classes=9),
    "forecast": DataSpec("ts", task="forecast", input_shape=(12, 1), extra={"horizon": 3}),
}


def _batch(task: str) -> tuple[torch.Tensor, torch.Tensor]:
    if task == "classification":
        return torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    if task == "language-model":
        ids = torch.randint(0, 9, (4, 13))
        return ids[:, :-1].to(torch.int16), ids[:, 1:]
    return torch.randn(4, 12, 1), torch.randn(4, 3)


@pytest.mark.parametrize("task", list(SPECS))
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("impl", ["fused", "readable"])
def test_every_recurrent_model_trains_with_gradients_everywhere(task: str, cell: str, impl: str) -> None:
    torch.manual_seed(0)
    bidirectional = task != "language-model" and impl == "readable"  # the readable layers' reverse pass too
    model = create_model("rnn", SPECS[task], cell=cell, hidden=8, layers=2, dropout=0.1, impl=impl,
                         bidirectional=bidirectional)  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = _batch(task)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = model.compute_loss(batch)["loss"]
        loss.backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
        assert not missing, f"no finite gradient for {missing}"
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]


def test_bidirectional_classifier_reads_the_last_state_of_both_directions() -> None:
    model = create_model("rnn", SPECS["classification"], hidden=8, bidirectional=True)
    assert model.head.in_features == 16 and model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


TEXT = DataSpec(
    "poems",
    task="classification",
    input_shape=(10,),
    num_classes=5,
    extra={"kind": "text-classification", "pad_id": 20, "vocab_size": 21},
)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_text_classifier_never_reads_the_padding(bidirectional: bool) -> None:
    """A padded text gets exactly the logits of the same text fed alone at its own length, in both directions."""
    torch.manual_seed(0)
    model = create_model("rnn", TEXT, hidden=8, embed=6, bidirectional=bidirectional).eval()
    texts = [torch.tensor([3, 1, 4, 1, 5]), torch.tensor([9, 2, 6, 5, 3, 5, 8, 9, 7, 9]), torch.tensor([2, 7])]
    padded = torch.full((3, 10), 20, dtype=torch.int16)
    for i, t in enumerate(texts):
        padded[i, : len(t)] = t
    with torch.no_grad():
        together = model(padded)
        alone = torch.cat([model(t.view(1, -1)) for t in texts])
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=1e-5)
    batch = (padded, torch.tensor([0, 3, 4]))
    model.train()
    model.compute_loss(batch)["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("args,message", [
    ({"cell": "transformer"}, "cell must be one of lstm, gru, rnn"),
    ({"impl": "fast"}, "impl must be fused"),
    ({"hidden": 0}, "hidden must be a positive whole number"),
    ({"dropout": 1.5}, "dropout must be in"),
    ({"bidirectional": True}, "A language model reads left to right"),
])  # fmt: skip
def test_bad_model_arguments_are_one_sentence(args: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        create_model("rnn", SPECS["language-model"], **args)


# ---- a character model learns a tiny text ---------------------------------------------------------------------------
def test_char_lstm_overfits_a_tiny_text(tmp_path: Path) -> None:
    line = "the cat sat on the mat. "
    (tmp_path / "t.txt").write_text(line * 40, encoding="utf-8")
    data = load_dataset("text-file", data_file=str(tmp_path / "t.txt"), seq_len=20)  # windows start mid-line
    torch.manual_seed(0)
    model = create_model("rnn", data.spec, hidden=64, embed=16)
    cfg = TrainConfig(epochs=12, batch_size=8, optimizer="adam", lr=0.01, amp=False, num_threads=1)
    history = Trainer(model, cfg, spec=data.spec, progress=False).fit(data.train, data.val)
    assert history[-1]["loss"] < 0.05, history[-1]  # (validation cannot be perfect: a window starts without context)
    vocab = CharVocab(data.spec.extra["vocab"])
    out = generate_text(model, vocab, "the c", len(line), top_k=1, seed=0)
    assert out["text"] == "the c" + (line * 2)[5 : 5 + len(line)]  # it continues the text it learned by heart


# ---- resume -----------------------------------------------------------------------------------------------------


def test_resume_of_a_recurrent_model_equals_uninterrupted(tmp_path: Path) -> None:
    text = "".join(f"line {i}: to be or not to be, that is the question.\n" for i in range(40))
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    sets = [("data.name", "text-file"), ("data.data_file", str(tmp_path / "t.txt")), ("data.seq_len", 32),
            ("model_args.hidden", 16), ("model_args.dropout", 0.2), ("model_args.layers", 2),
            ("train.epochs", 3), ("train.batch_size", 16), ("train.num_threads", 1)]  # fmt: skip
    full = api.train("shakespeare-char-lstm", out=tmp_path / "full", sets=sets, progress=False)
    with pytest.raises(api.Interrupted):
        api.train("shakespeare-char-lstm", out=tmp_path / "cut", sets=sets, callbacks=[StopAfter(2)], progress=False)
    resumed = api.train("shakespeare-char-lstm", out=tmp_path / "cut", resume=True, progress=False)
    a = checkpoint.load(tmp_path / "full" / "checkpoints" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "cut" / "checkpoints" / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert full.metrics["test"] == resumed.metrics["test"]
