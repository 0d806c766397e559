"""Your own nn.Module and arrays through nnzoo.fit / Trainer / load_run / predict / export (docs/python-api.md).

The guide itself runs first, block by block, as a reader would paste it; the tests after it pin down each rule it
states (types, forms of data, reloading, resume, refusals) on scikit-learn's bundled digits, offline.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import nnzoo
from nnzoo.errors import UserError

GUIDE = Path(__file__).parents[1] / "docs" / "python-api.md"


def guide_blocks(path: Path = GUIDE) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def test_the_guide_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    """Every python block of docs/python-api.md, in order, in one namespace; a block starting with `# NAME.py` is
    that file. Then what the guide says of the results holds."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mynet", raising=False)
    ns: dict[str, Any] = {"__name__": "guide"}
    blocks = guide_blocks()
    assert len(blocks) >= 6
    for block in blocks:
        first = block.splitlines()[0]
        if re.fullmatch(r"# \w+\.py", first):
            (tmp_path / first[2:]).write_text(block, encoding="utf-8")
        else:
            exec(compile(block, str(GUIDE), "exec"), ns)  # noqa: S102  (our own documentation)
    assert ns["trainer"].history[-1]["val_accuracy"] > 0.9  # 10 epochs of an MLP on the digits
    assert ns["answers"][0]["label"] in [str(i) for i in range(10)] and 0 < ns["answers"][0]["probability"] <= 1
    assert ns["logits"].shape == (3, 10)
    assert ns["reg"].history[-1]["loss"] < 0.7  # below the mean's 1.0
    assert len(ns["more"].history) == 15 and ns["more"].history[9] == ns["trainer"].history[9]
    assert len(ns["history"]) == 3
    out = capsys.readouterr().out
    assert "parameters: 4,810" in out  # summary of MLP(hidden=64): 64*64+64 + 64*10+10
    assert "mlp" in out.splitlines()[-1]


def test_the_chinese_guide_holds_the_same_code() -> None:
    """docs/python-api.zh.md's blocks are the English ones with Chinese comments: the code that runs above."""

    def code(block: str) -> list[str]:
        lines = [re.sub(r"\s*#.*$", "", line) for line in block.splitlines()]
        return [line for line in lines if line.strip()]

    en, zh = guide_blocks(), guide_blocks(GUIDE.with_name("python-api.zh.md"))
    assert [code(b) for b in zh] == [code(b) for b in en]


# ---- the pieces, one rule each -------------------------------------------------------------------------------


class Small(nn.Module):
    def __init__(self, hidden: int = 32, classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, ...]:
    x, y = load_digits(return_X_y=True)
    return x[:1200] / 16, y[:1200], x[1200:] / 16, y[1200:]


QUICK = {"epochs": 3, "batch_size": 32, "lr": 1e-2, "progress": False}


def _fit(data: Any, **kw: Any) -> nnzoo.Trainer:
    torch.manual_seed(0)
    return nnzoo.fit(Small(), data, loss=kw.pop("loss", "cross_entropy"), **{**QUICK, **kw})


def test_every_in_memory_form_trains_the_same_steps(digits: tuple[np.ndarray, ...]) -> None:
    x, y, *_ = digits
    forms = {
        "pair of float64 / int32 arrays": (x, y.astype(np.int32)),
        "tensors": (torch.tensor(x), torch.tensor(y)),
        "Split of numpy": nnzoo.Split(x.astype(np.float32), y),
        "TensorDataset": TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y)),
        "lists": (x.tolist(), y.tolist()),
    }
    losses = {name: [h["loss"] for h in _fit(data).history] for name, data in forms.items()}
    first = next(iter(losses.values()))
    assert first[-1] < first[0] * 0.5  # it learns
    for name, curve in losses.items():
        assert curve == pytest.approx(first, rel=1e-5), name  # the same batches, the same steps


class Pairs(Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.x[i], int(self.y[i])  # float64 rows, Python ints: typed by the rule in every batch


def test_a_dataset_and_a_dataloader_train(digits: tuple[np.ndarray, ...]) -> None:
    x, y, xt, yt = digits
    for data in (Pairs(x, y), DataLoader(Pairs(x, y), batch_size=32, shuffle=True)):
        t = _fit(data, val=(xt, yt))
        assert t.history[-1]["val_accuracy"] > 0.8, type(data).__name__


def test_a_datasets_shuffle_resumes_in_the_same_order(digits: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    """Stopped after 2 epochs and resumed for a 3rd, a run on a Dataset ends with the weights of 3 straight
    epochs: nnzoo's DataLoader draws its order from (seed, epoch), and the checkpoint holds the rest."""
    x, y, *_ = digits
    straight = _fit(Pairs(x, y), run_dir=tmp_path / "a")
    _fit(Pairs(x, y), run_dir=tmp_path / "b", epochs=2)
    resumed = _fit(Pairs(x, y), run_dir=tmp_path / "b", resume=True)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_refusals_are_one_sentence(digits: tuple[np.ndarray, ...]) -> None:
    x, y, *_ = digits

    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x * self.scale, x

    cases = [
        (lambda: nnzoo.fit(Small(), x, y[:-1], loss="ce", **QUICK), "1200 samples but y has 1199"),
        (lambda: nnzoo.fit(Small(), x.astype(str), y, loss="ce", **QUICK), "holds <U"),
        (lambda: nnzoo.fit(Small(), np.where(x > 0.9, np.nan, x), y, loss="ce", **QUICK), "NaN"),
        (lambda: nnzoo.fit(Small(classes=5), x, y, loss="ce", **QUICK), "labels run from 0 to 9, but the module's "
                                                                         "output has 5 classes"),
        (lambda: nnzoo.fit(Small(), x, y.astype(float), loss="ce", **QUICK), "class indices"),
        (lambda: nnzoo.fit(Small(), x, y, **QUICK), "needs a loss"),
        (lambda: nnzoo.fit(Small(), x, y, loss="hinge", **QUICK), "Unknown loss 'hinge'"),
        (lambda: nnzoo.fit(Small(), x, **QUICK, loss="ce"), "came without targets"),
        (lambda: nnzoo.fit(Small(), x, y, loss="ce", epochs=0), "epochs must be a positive whole number"),
        (lambda: nnzoo.fit(Small(), x, y, loss="ce", epoch=3), "Unknown setting 'epoch'"),
        (lambda: nnzoo.fit(Small(), x, np.zeros((1200, 3)), loss="mse", **QUICK), "(32, 10) for a batch whose "
                                                                                  "targets are (32, 3)"),
        (lambda: nnzoo.fit(Pair(), x, y, loss="mse", **QUICK), "returned a tuple, but mse takes one tensor"),
        (lambda: nnzoo.fit(nn.Flatten(), x, y, loss="mse", **QUICK), "Flatten has no trainable parameters"),
        (lambda: nnzoo.fit(Small(), DataLoader(TensorDataset(torch.tensor(x)), batch_size=8), loss="ce", **QUICK),
         "must be (inputs, targets)"),
        (lambda: nnzoo.fit(Small(), "digits.npy", y, loss="ce", **QUICK), "numpy array or a tensor, not str"),
        (lambda: nnzoo.Trainer(nnzoo.create_model("mlp", nnzoo.dataset_spec("digits")), loss="mse"),
         "loss= is for a plain nn.Module"),
    ]  # fmt: skip
    for call, words in cases:
        with pytest.raises(UserError) as e:
            call()
        assert words in str(e.value), (words, str(e.value))


def test_a_column_output_is_compared_sample_by_sample(digits: tuple[np.ndarray, ...]) -> None:
    """(B, 1) outputs against (B,) targets: the loss is the per-sample one, not a (B, B) broadcast."""
    x, y, *_ = digits
    target = (y - y.mean()) / y.std()
    torch.manual_seed(0)
    as_column = nnzoo.fit(Small(classes=1), (x, target[:, None]), loss="mse", **{**QUICK, "epochs": 1})
    torch.manual_seed(0)
    vector_out = nnzoo.fit(Small(classes=1), (x, target), loss="mse", **{**QUICK, "epochs": 1})
    assert vector_out.history[0]["loss"] == pytest.approx(as_column.history[0]["loss"], rel=1e-5)
    # The per-sample error fell below the target's variance (1); a (B, B) broadcast one cannot: it is at least that.
    assert vector_out.history[0]["loss"] < 0.9


def test_a_run_folder_reloads_predicts_and_exports(digits: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    x, y, xt, yt = digits
    t = nnzoo.fit(Small(hidden=16), x, y, loss="cross_entropy", val=(xt, yt), module_args={"hidden": 16},
                  run_dir=tmp_path / "run", **{**QUICK, "epochs": 5})  # fmt: skip
    run = nnzoo.load_run(tmp_path / "run")
    assert run.model.module.net[0].out_features == 16 and run.spec.num_classes == 10
    expected = t.predict(xt)
    assert torch.allclose(run.predict(xt), expected, atol=1e-5)
    answers = nnzoo.predict(tmp_path / "run", xt[:4])
    assert [a["index"] for a in answers] == expected[:4].argmax(1).tolist()
    assert nnzoo.predict(run, xt[0])[0]["index"] == answers[0]["index"]  # one sample, without its batch axis
    with pytest.raises(UserError, match=r"takes inputs of shape \(64,\)"):
        nnzoo.predict(run, xt[:, :10])
    with pytest.raises(UserError, match="trained on arrays given in Python"):
        nnzoo.predict(run, ["some.png"])
    with pytest.raises(UserError, match="cannot load again"):
        nnzoo.evaluate(tmp_path / "run")
    assert nnzoo.export(tmp_path / "run")["max_abs_diff"] < 1e-4
    assert "Small: input (B, 64)" in nnzoo.summary(Small(), (64,))


def test_a_module_of_main_reloads_only_where_it_is_defined(digits: tuple[np.ndarray, ...], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    x, y, *_ = digits
    monkeypatch.setattr(Small, "__module__", "__main__")  # as a class of a notebook or a script
    _fit((x, y), run_dir=tmp_path / "run", epochs=1)
    with pytest.raises(UserError, match="defined in a script or notebook"):
        nnzoo.load_run(tmp_path / "run")
    run = nnzoo.load_run(tmp_path / "run", module=Small())
    assert run.predict(x[:2]).shape == (2, 10)
    monkeypatch.setitem(sys.modules["__main__"].__dict__, "Small", Small)  # the notebook that defined it
    assert isinstance(nnzoo.load_run(tmp_path / "run").model.module, Small)


def test_a_loss_that_cannot_be_named_leaves_the_run_predicting(digits: tuple[np.ndarray, ...],
                                                              tmp_path: Path) -> None:  # fmt: skip
    x, y, *_ = digits

    def local_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(out, target)

    _fit((x, y), loss=local_loss, run_dir=tmp_path / "run", epochs=1)
    run = nnzoo.load_run(tmp_path / "run")
    assert run.predict(x[:2]).shape == (2, 10)
    with pytest.raises(UserError, match="give load_run"):
        nnzoo.Trainer(run.model, progress=False).evaluate((x, y))
    again = nnzoo.load_run(tmp_path / "run", loss=local_loss)
    assert nnzoo.Trainer(again.model, progress=False).evaluate((x, y))["loss"] > 0


def test_a_registry_model_trained_in_python_reloads(tmp_path: Path) -> None:
    """The folder of a Trainer built in Python names its registry model (it once held no spec and no model name,
    and load_run failed with a TypeError)."""
    data = nnzoo.load_dataset("digits")
    model = nnzoo.create_model("mlp", spec=data.spec, hidden=[24])
    trainer = nnzoo.Trainer(model, nnzoo.TrainConfig(epochs=1, batch_size=64), spec=data.spec,
                            run_dir=tmp_path / "run", progress=False)  # fmt: skip
    trainer.fit(data.train)
    run = nnzoo.load_run(tmp_path / "run")
    assert run.config.model == "mlp" and run.config.model_args == {"hidden": [24]}
    assert torch.allclose(run.predict(data.test.x[:8]), trainer.predict(data.test.x[:8]), atol=1e-5)


def test_predict_applies_an_image_runs_normalisation(serve_runs: dict[str, Path]) -> None:
    """nnzoo.predict(run, pixels) normalises as training did; the bare model on raw pixels answers otherwise, which
    is the mistake this saves (run.model(x) expects normalised inputs)."""
    run = nnzoo.load_run(serve_runs["digits"])
    data = nnzoo.load_dataset("digits")
    pixels = data.test.x[:50]  # uint8, as stored
    expected = nnzoo.api._trainer_for(run, "cpu").predict(nnzoo.Split(pixels, data.test.y[:50]))
    assert torch.allclose(run.predict(pixels.numpy()), expected, atol=1e-5)
    assert torch.allclose(run.predict(pixels[0, 0].numpy())[0], expected[0], atol=1e-5)  # (H, W): one image
    answers = nnzoo.predict(run, pixels.numpy())
    assert [a["index"] for a in answers] == expected.argmax(1).tolist()
    with pytest.raises(UserError, match="0..1: multiply by 255"):
        nnzoo.predict(run, pixels.float().numpy() / 255)
