"""The recurrent family: RNN, LSTM and GRU for sequence classification, character language models and forecasting.

One model name, ``rnn``, with ``cell = lstm | gru | rnn``; what it builds depends on the dataset's task:

- classification: an image is read row by row (28 steps of 28 features for Fashion-MNIST), the last hidden state
  is classified; a text of character ids (tang-authors) goes through an embedding first;
- language-model: characters -> embedding -> recurrent layers -> next-character logits, the hidden state carried
  between calls (so generation feeds one character at a time);
- forecast: a window of past values -> the next ``horizon`` values at once (the "direct multi-output" strategy).

The layers are PyTorch's fused ``nn.RNN / nn.LSTM / nn.GRU`` by default. ``impl="readable"`` swaps in
:class:`ReadableRNN`, the same computation written out gate by gate in Python (slow, for reading and
checking); both have the same parameter names and shapes, so a checkpoint of one loads into the other.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.spec import DataSpec
from ..errors import UserError
from .base import Batch, Classifier, Metrics, Model
from .lm import LanguageModel
from .registry import MODELS

CELLS = ("lstm", "gru", "rnn")
IMPLS = ("fused", "readable")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # weight blocks stacked in weight_ih / weight_hh
FUSED: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # h (L*D, B, H), or (h, c) for an LSTM


# ---- the cells, gate by gate ----------------------------------------------------------------------------------------
# Each takes one time step x (B, I) and the previous state, with the weights in PyTorch's layout: the gates' matrices
# stacked along dim 0 of weight_ih (G*H, I) and weight_hh (G*H, H). So they compute exactly what nn.LSTMCell,
# nn.GRUCell and nn.RNNCell compute, given the same weights (tests/test_rnn.py checks it).


def rnn_cell(x: torch.Tensor, h: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor,
             b_hh: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Elman's simple recurrent network (1990): h' = tanh(W_ih x + b_ih + W_hh h + b_hh).

    The same W_hh multiplies the gradient at every step back in time, so over many steps it shrinks (or grows)
    geometrically: the vanishing-gradient problem (Bengio, Simard & Frasconi 1994) that the gated cells below fix.
    """
    return torch.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)  # (B, H)


def lstm_cell(x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], w_ih: torch.Tensor, w_hh: torch.Tensor,
              b_ih: torch.Tensor, b_hh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers, Schmidhuber & Cummins
    2000), as PyTorch's nn.LSTM documents it. Returns the new (h, c), each (B, H)."""
    h, c = state
    # PyTorch stacks the blocks in the order: input gate, forget gate, cell candidate, output gate.
    W_ii, W_if, W_ig, W_io = w_ih.chunk(4)
    W_hi, W_hf, W_hg, W_ho = w_hh.chunk(4)
    b_ii, b_if, b_ig, b_io = b_ih.chunk(4)
    b_hi, b_hf, b_hg, b_ho = b_hh.chunk(4)
    i = torch.sigmoid(x @ W_ii.T + b_ii + h @ W_hi.T + b_hi)  # input gate: how much of the candidate to write
    f = torch.sigmoid(x @ W_if.T + b_if + h @ W_hf.T + b_hf)  # forget gate: how much of the old cell to keep
    g = torch.tanh(x @ W_ig.T + b_ig + h @ W_hg.T + b_hg)  # candidate content, in (-1, 1)
    o = torch.sigmoid(x @ W_io.T + b_io + h @ W_ho.T + b_ho)  # output gate: how much of the cell to show
    c = f * c + i * g  # the cell: an additive path through time, so gradients need not vanish (f near 1)
    h = o * torch.tanh(c)
    return h, c


def gru_cell(x: torch.Tensor, h: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b_ih: torch.Tensor,
             b_hh: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Gated recurrent unit (Cho et al. 2014), as PyTorch's nn.GRU documents it. Returns the new h (B, H).

    One difference from the paper: the reset gate multiplies (W_hn h + b_hn) after the matrix product, not h
    before it (the cuDNN form, which PyTorch follows).
    """
    # PyTorch stacks the blocks in the order: reset gate, update gate, new (candidate) state.
    W_ir, W_iz, W_in = w_ih.chunk(3)
    W_hr, W_hz, W_hn = w_hh.chunk(3)
    b_ir, b_iz, b_in = b_ih.chunk(3)
    b_hr, b_hz, b_hn = b_hh.chunk(3)
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)  # reset gate: how much of the past the candidate sees
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)  # update gate: keep the old state (1) or take n (0)
    n = torch.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))  # candidate state
    return (1 - z) * n + z * h  # a gated average: with z near 1 the state (and its gradient) passes unchanged


class ReadableRNN(nn.Module):
    """nn.RNN / nn.LSTM / nn.GRU (``batch_first=True``) written as loops over layers, directions and time steps.

    Same arguments, same parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), shapes and initialisation
    (uniform in +-1/sqrt(hidden)), same inputs and outputs, so ``load_state_dict`` works both ways. Dropout is
    applied to the outputs of every layer but the last, as in PyTorch. Many times slower than the fused kernels.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                 bidirectional: bool = False):  # fmt: skip
        super().__init__()
        self.cell, self.hidden_size, self.num_layers = cell, hidden_size, num_layers
        self.dropout, self.bidirectional = dropout, bidirectional
        self.directions = 2 if bidirectional else 1
        gates = GATES[cell] * hidden_size
        for layer in range(num_layers):
            size = input_size if layer == 0 else hidden_size * self.directions
            for suffix in self._suffixes(layer):
                self.register_parameter(f"weight_ih{suffix}", nn.Parameter(torch.empty(gates, size)))
                self.register_parameter(f"weight_hh{suffix}", nn.Parameter(torch.empty(gates, hidden_size)))
                self.register_parameter(f"bias_ih{suffix}", nn.Parameter(torch.empty(gates)))
                self.register_parameter(f"bias_hh{suffix}", nn.Parameter(torch.empty(gates)))
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.directions]

    def forward(self, x: torch.Tensor, state: State | None = None,
                lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:  # fmt: skip
        """x (B, T, I) -> outputs (B, T, D*H) of the last layer, and the final state h (L*D, B, H) [, c].

        ``lengths`` (B,): sequence b is only its first lengths[b] steps; at later steps its state is kept as it is,
        so both directions see exactly what ``pack_padded_sequence`` would give the fused layers (the reverse
        direction starts at the sequence's own last step). Outputs at those later steps are not meaningful."""
        B, T, _ = x.shape
        n = self.num_layers * self.directions
        if state is None:
            zeros = x.new_zeros(n, B, self.hidden_size)
            state = (zeros, zeros) if self.cell == "lstm" else zeros
        h0, c0 = state if self.cell == "lstm" else (state, None)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                w = [getattr(self, f"{name}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                k = layer * self.directions + d
                h, c = h0[k], c0[k] if c0 is not None else None
                ys: list[torch.Tensor] = [x] * T  # placeholders, each replaced by h_t below
                for t in range(T) if d == 0 else reversed(range(T)):  # the reverse direction reads back to front
                    if self.cell == "lstm":
                        h_new, c_new = lstm_cell(x[:, t], (h, c), *w)
                    else:
                        h_new, c_new = (gru_cell if self.cell == "gru" else rnn_cell)(x[:, t], h, *w), None
                    if lengths is None:
                        h, c = h_new, c_new
                    else:  # only the sequences still running take the step
                        live = (t < lengths).unsqueeze(1)  # (B, 1)
                        h = torch.where(live, h_new, h)
                        c = torch.where(live, c_new, c) if c_new is not None else None
                    ys[t] = h
                outputs.append(torch.stack(ys, dim=1))  # (B, T, H)
                h_n.append(h)
                c_n.append(c)
            x = torch.cat(outputs, dim=-1)  # (B, T, D*H): the next layer's input
            if layer < self.num_layers - 1 and self.dropout:
                x = F.dropout(x, self.dropout, self.training)
        h_last = torch.stack(h_n)  # (L*D, B, H)
        return x, ((h_last, torch.stack(c_n)) if self.cell == "lstm" else h_last)


def recurrent_layers(cell: str, input_size: int, hidden: int, layers: int, dropout: float, bidirectional: bool,
                     impl: str) -> nn.Module:  # fmt: skip
    """The fused PyTorch module or its readable twin, checking the arguments a user can get wrong."""
    if cell not in CELLS:
        raise UserError(f"cell must be one of {', '.join(CELLS)}, not {cell!r}.")
    if impl not in IMPLS:
        raise UserError(f"impl must be fused (PyTorch's kernels) or readable (gate by gate), not {impl!r}.")
    for name, value in (("hidden", hidden), ("layers", layers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{name} must be a positive whole number, not {value!r}.")
    if not 0 <= dropout < 1:
        raise UserError(f"dropout must be in [0, 1), not {dropout}.")
    if impl == "readable":
        return ReadableRNN(cell, input_size, hidden, layers, dropout, bidirectional)
    # PyTorch warns about dropout with one layer (it would do nothing); the models apply it after the layers too.
    return FUSED[cell](input_size, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0,
                       bidirectional=bidirectional)  # fmt: skip


def last_hidden(state: State, layers: int, directions: int) -> torch.Tensor:
    """The top layer's final hidden state, both directions side by side: (B, D*H).

    For a bidirectional layer this is not ``outputs[:, -1]``: the backward direction ends at t = 0.
    """
    h = state[0] if isinstance(state, tuple) else state  # (L*D, B, H)
    return torch.cat(list(h[(layers - 1) * directions :]), dim=-1)


# ---- sequence classification ----------------------------------------------------------------------------------------
def add_trunk(model: nn.Module, cell: str, features: int, hidden: int, layers: int, dropout: float,
              bidirectional: bool, impl: str, outputs: int) -> None:  # fmt: skip
    """The recurrent layers, dropout and linear head that read a sequence into ``outputs`` numbers: shared by the
    row-reading classifier and the forecaster (``model.rnn``, ``model.dropout``, ``model.head``)."""
    model.layers, model.directions = layers, 2 if bidirectional else 1
    model.rnn = recurrent_layers(cell, features, hidden, layers, dropout, bidirectional, impl)
    model.dropout = nn.Dropout(dropout)
    model.head = nn.Linear(hidden * model.directions, outputs)


class RNNClassifier(Classifier):
    """Reads an image as a sequence of rows (H steps of C*W features) and classifies the last hidden state."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, cell: str = "lstm", hidden: int = 128,
                 layers: int = 1, dropout: float = 0.0, bidirectional: bool = False, impl: str = "fused",
                 label_smoothing: float = 0.0):  # fmt: skip
        super().__init__(label_smoothing)
        if len(input_shape) == 3:  # (C, H, W) image: H steps of C*W features
            features = input_shape[0] * input_shape[2]
        elif len(input_shape) in (1, 2):  # (T,) or (T, F) sequence
            features = input_shape[1] if len(input_shape) == 2 else 1
        else:
            raise UserError(f"The rnn model reads sequences or images, not inputs of shape {tuple(input_shape)}.")
        add_trunk(self, cell, features, hidden, layers, dropout, bidirectional, impl, outputs=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.permute(0, 2, 1, 3).flatten(2)  # (B, C, H, W) -> (B, H, C*W): one row per time step
        elif x.dim() == 2:
            x = x.unsqueeze(-1)  # (B, T) -> (B, T, 1)
        x = x.contiguous().float() if not x.is_floating_point() else x.contiguous()
        _, state = self.rnn(x)
        return self.head(self.dropout(last_hidden(state, self.layers, self.directions)))  # (B, classes)


class TextRNNClassifier(Classifier):
    """Reads a text as character ids padded at the end with ``pad_id`` (see data/tang_authors.py): embedding ->
    recurrent layers over the real characters only -> the last hidden state (both directions) -> classes.

    The sequences are packed (``pack_padded_sequence``) so that no state ever reads padding: the forward
    direction stops at each text's last character and the backward direction starts there, exactly as if every
    text had been fed alone at its own length.
    """

    def __init__(self, vocab_size: int, pad_id: int, num_classes: int, cell: str = "lstm", hidden: int = 128,
                 layers: int = 1, embed: int = 64, dropout: float = 0.0, bidirectional: bool = False,
                 impl: str = "fused", label_smoothing: float = 0.0):  # fmt: skip
        super().__init__(label_smoothing)
        if impl != "fused":
            raise UserError("Text classification packs its sequences, which only the fused layers read: impl=fused.")
        self.pad_id, self.cell = pad_id, cell
        self.layers, self.directions = layers, 2 if bidirectional else 1
        self.embed = nn.Embedding(vocab_size, embed, padding_idx=pad_id)
        self.rnn = recurrent_layers(cell, embed, hidden, layers, dropout, bidirectional, impl)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden * self.directions, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()  # (B, T)
        lengths = (ids != self.pad_id).sum(dim=1).clamp(min=1)  # an empty text reads one padding step
        x = self.dropout(self.embed(ids))  # (B, T, E)
        if isinstance(self.rnn, ReadableRNN):  # the export twin (see export_twin): masked steps instead of packing
            _, state = self.rnn(x, lengths=lengths)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, state = self.rnn(packed)  # state in the batch's own order (PyTorch unsorts it)
        return self.head(self.dropout(last_hidden(state, self.layers, self.directions)))  # (B, classes)

    def export_twin(self) -> TextRNNClassifier:
        """The same model with the gate-by-gate layers, which mask finished sequences instead of packing them:
        packed sequences do not go through ``torch.export``, while the masked loop does (as a graph unrolled over
        the seq_len steps). Same weights, same logits."""
        twin = copy.deepcopy(self)
        rnn = self.rnn
        twin.rnn = ReadableRNN(self.cell, rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.dropout,
                               rnn.bidirectional)  # fmt: skip
        twin.rnn.load_state_dict(rnn.state_dict())
        return twin.eval()


# ---- character language model ---------------------------------------------------------------------------------------
class CharRNN(LanguageModel):
    """char-rnn (Karpathy 2015; Graves 2013, "Generating sequences with recurrent neural networks"): embedding ->
    recurrent layers -> linear to next-character logits. The state is the recurrent layers' hidden state."""

    def __init__(self, vocab_size: int, cell: str = "lstm", hidden: int = 256, layers: int = 1, embed: int = 64,
                 dropout: float = 0.0, impl: str = "fused"):  # fmt: skip
        super().__init__()
        if isinstance(embed, bool) or not isinstance(embed, int) or embed < 1:
            raise UserError(f"embed must be a positive whole number, not {embed!r}.")
        self.embed = nn.Embedding(vocab_size, embed)
        self.rnn = recurrent_layers(cell, embed, hidden, layers, dropout, False, impl)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def step(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        x = self.dropout(self.embed(ids.long()))  # (B, T) -> (B, T, E)
        out, state = self.rnn(x, state)  # (B, T, H)
        return self.head(self.dropout(out)), state  # (B, T, V)


# ---- forecasting ----------------------------------------------------------------------------------------------------
class RNNForecaster(Model):
    loss_meaning = "mean squared error of the scaled series (MAE and RMSE in the series' own units are reported)"
    """A window of past values (B, L, F) -> the next ``horizon`` values of the first feature (B, horizon).

    With ``relative=True`` (the default) the network sees the window minus its last value and predicts the change
    from it: the output is ``last + correction``, so an untrained network already makes the naive forecast and the
    series' level (which in co2 climbs out of the training range) never reaches the tanh units.
    """

    task = "forecast"

    def __init__(self, input_shape: tuple[int, ...], horizon: int, cell: str = "lstm", hidden: int = 64,
                 layers: int = 1, dropout: float = 0.0, bidirectional: bool = False, impl: str = "fused",
                 relative: bool = True):  # fmt: skip
        super().__init__()
        if horizon < 1:
            raise UserError(f"The forecast horizon must be at least 1 step, not {horizon}.")
        features = input_shape[1] if len(input_shape) == 2 else 1
        self.horizon, self.relative = horizon, relative
        add_trunk(self, cell, features, hidden, layers, dropout, bidirectional, impl, outputs=horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(-1)  # (B, L) -> (B, L, 1)
        last = x[:, -1:, :1]  # (B, 1, 1): the last observed value of the target
        if self.relative:
            x = torch.cat([x[..., :1] - last, x[..., 1:]], dim=-1)
        _, state = self.rnn(x)
        out = self.head(self.dropout(last_hidden(state, self.layers, self.directions)))  # (B, horizon)
        return out + last[:, 0] if self.relative else out

    def compute_loss(self, batch: Batch) -> Metrics:
        x, y = batch
        pred = self(x).float()  # (B, horizon), in the scaled units the data come in
        # Mean squared error in scaled units; the forecast task reports MAE / RMSE / MASE in the series' units.
        return {"loss": F.mse_loss(pred, y), "outputs": pred.detach()}


# ---- the registered builder -----------------------------------------------------------------------------------------
@MODELS.register("rnn", help="Recurrent family, cell=lstm|gru|rnn: classifies rows of an image, writes text, forecasts")
def rnn(spec: DataSpec, cell: str = "lstm", hidden: int | None = None, layers: int = 1, dropout: float = 0.0,
        bidirectional: bool = False, embed: int = 64, impl: str = "fused", relative: bool = True,
        label_smoothing: float = 0.0) -> Model:  # fmt: skip
    """What is built follows the dataset's task. ``embed`` is used by language models and text classifiers,
    ``relative`` by forecasters only, ``label_smoothing`` by classifiers only. ``hidden`` defaults to 128 for classifiers, 256 for
    language models and 64 for forecasters."""
    common: dict[str, Any] = {"cell": cell, "layers": layers, "dropout": dropout, "impl": impl}
    if spec.task == "language-model":
        if bidirectional:
            raise UserError("A language model reads left to right: bidirectional=true would let it see the "
                            "characters it has to predict.")  # fmt: skip
        return CharRNN(spec.num_classes, hidden=_default(hidden, 256), embed=embed, **common)
    if spec.task == "forecast":
        return RNNForecaster(spec.input_shape, spec.extra["horizon"], hidden=_default(hidden, 64),
                             bidirectional=bidirectional, relative=relative, **common)  # fmt: skip
    if spec.task == "classification" and spec.text_ids:  # character ids of a text (tang-authors)
        return TextRNNClassifier(spec.extra["vocab_size"], spec.extra["pad_id"], spec.num_classes,
                                 hidden=_default(hidden, 128), embed=embed, bidirectional=bidirectional,
                                 label_smoothing=label_smoothing, **common)  # fmt: skip
    if spec.task == "classification":
        return RNNClassifier(spec.input_shape, spec.num_classes, hidden=_default(hidden, 128),
                             bidirectional=bidirectional, label_smoothing=label_smoothing, **common)  # fmt: skip
    raise UserError(f"The rnn model has no form for the {spec.task!r} task of {spec.name}.")


def _default(value: int | None, default: int) -> int:
    return default if value is None else value
