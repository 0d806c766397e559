"""Progress output, steps.jsonl, the curves drawn from it, and TensorBoard logs: each checked on a real tiny run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import StopAfter

from nnzoo import TrainConfig, Trainer, api, create_model, load_dataset
from nnzoo.callbacks import ProgressBar, read_jsonl
from nnzoo.errors import UserError


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _fit(bar: ProgressBar, epochs: int = 3) -> None:
    data = load_dataset("digits", val_size=0.1)
    model = create_model("mlp", data.spec, hidden=[16])
    cfg = TrainConfig(epochs=epochs, batch_size=64, optimizer="adam", lr=3e-3, log_every=2)
    Trainer(model, cfg, spec=data.spec, callbacks=[bar], progress=False).fit(data.train, data.val)


def test_a_log_file_gets_plain_lines_one_per_epoch() -> None:
    stream = io.StringIO()  # not a terminal: a log file, CI
    _fit(ProgressBar(stream, every=2))
    out = stream.getvalue()
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert [line.split("  ")[0] for line in lines[:-1]] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "val_accuracy" in lines[0] and lines[-1].startswith("done: 3 epochs")


def test_a_long_epoch_in_a_log_file_gets_a_plain_line_now_and_then() -> None:
    stream = io.StringIO()
    _fit(ProgressBar(stream, every=2, plain_seconds=0), epochs=1)  # every refresh is "long enough" apart
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    progress = [line for line in lines if " step " in line]
    assert progress and progress[0].startswith("epoch 1/1  step 2/21 (10%)  loss ") and "epoch ends in" in progress[0]
    assert lines[-2].startswith("epoch 1/1  loss") and lines[-1].startswith("done:")


def test_a_terminal_gets_a_tqdm_bar_then_the_epoch_lines() -> None:
    stream = _Terminal()
    _fit(ProgressBar(stream, every=2), epochs=2)
    out = stream.getvalue()
    assert "\r" in out and "21/21" in out and "samples/s" in out  # tqdm's bar, its postfix our running means
    plain = [part for part in out.replace("\r", "\n").splitlines() if part.startswith("epoch 2/2  loss")]
    assert len(plain) == 1 and out.rstrip().splitlines()[-1].startswith("done: 2 epochs")


def test_steps_jsonl_every_log_every_steps_agrees_with_the_epochs(tmp_path: Path) -> None:
    # 1,298 training digits in batches of 64: 21 steps an epoch, the last of 18 samples.
    sets = [("train.epochs", 2), ("train.batch_size", 64), ("train.log_every", 5), ("data.val_size", 0.1)]
    api.train("digits-mlp", out=tmp_path / "r", sets=sets, progress=False)
    steps = read_jsonl(tmp_path / "r" / "steps.jsonl")
    assert [s["step"] for s in steps] == [5, 10, 15, 20, 21, 25, 30, 35, 40, 42]
    assert [s["epoch"] for s in steps] == [1] * 5 + [2] * 5
    assert steps[4]["epoch_fraction"] == 1.0 and steps[0]["epoch_fraction"] == pytest.approx(5 / 21)
    assert set(steps[0]) >= {"loss", "accuracy", "lr", "samples_per_s"}
    # The windows of one epoch, weighted by their samples, are the epoch's mean.
    epochs = read_jsonl(tmp_path / "r" / "metrics.jsonl")
    samples = [5 * 64, 5 * 64, 5 * 64, 5 * 64, 18]
    mean = sum(s["loss"] * n for s, n in zip(steps[:5], samples)) / sum(samples)
    assert mean == pytest.approx(epochs[0]["loss"], rel=1e-5)
    curves = tmp_path / "r" / "report" / "curves.png"
    assert curves.is_file() and curves.stat().st_size > 10_000


def test_steps_jsonl_on_resume_drops_the_steps_past_the_checkpoint(tmp_path: Path) -> None:
    sets = [("train.epochs", 3), ("train.batch_size", 64), ("train.log_every", 5), ("data.val_size", 0.1)]
    api.train("digits-mlp", out=tmp_path / "full", sets=sets, progress=False)
    with pytest.raises(api.Interrupted):
        api.train("digits-mlp", out=tmp_path / "cut", sets=sets, callbacks=[StopAfter(2)], progress=False)
    log = tmp_path / "cut" / "steps.jsonl"
    # As if the run had trained on into epoch 3 before it was killed, and cut its last line short.
    log.write_text(log.read_text() + json.dumps({"step": 45, "epoch": 3, "epoch_fraction": 0.1, "loss": 9.0}) +
                   '\n{"step": 50, "epo')  # fmt: skip
    api.train("digits-mlp", out=tmp_path / "cut", resume=True, progress=False)

    full, cut = (read_jsonl(tmp_path / run / "steps.jsonl") for run in ("full", "cut"))
    assert [(s["step"], s["epoch"]) for s in cut] == [(s["step"], s["epoch"]) for s in full] and cut[-1]["step"] == 63
    assert [s["loss"] for s in cut] == pytest.approx([s["loss"] for s in full], rel=1e-6)


def test_tensorboard_logs_what_metrics_jsonl_holds(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sets = [("train.epochs", 2), ("train.batch_size", 64), ("train.log_every", 10), ("data.val_size", 0.1),
            ("train.tensorboard", True)]  # fmt: skip
    api.train("digits-mlp", out=tmp_path / "r", sets=sets, progress=False)
    events = EventAccumulator(str(tmp_path / "r" / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    epochs = read_jsonl(tmp_path / "r" / "metrics.jsonl")
    for key, tag in [("loss", "train/loss"), ("accuracy", "train/accuracy"), ("val_loss", "val/loss"),
                     ("val_accuracy", "val/accuracy"), ("lr", "train/lr")]:  # fmt: skip
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [21, 42]
        assert [e.value for e in logged] == pytest.approx([h[key] for h in epochs], rel=1e-6), tag
    steps = read_jsonl(tmp_path / "r" / "steps.jsonl")
    assert [e.step for e in events.Scalars("step/loss")] == [s["step"] for s in steps]
    assert [e.value for e in events.Scalars("step/loss")] == pytest.approx([s["loss"] for s in steps], rel=1e-6)
    assert [e.step for e in events.Scalars("step/lr")] == [10, 20, 21, 30, 40, 42]
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert events.Scalars("hparam/test_accuracy")[0].value == pytest.approx(metrics["test"]["accuracy"])
    assert {"report/curves", "report/confusion_matrix", "report/worst"} <= set(tags["images"])
    assert "run/metrics.json/text_summary" in tags["tensors"]


def test_tensorboard_without_the_package_fails_at_once_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(UserError, match=r'pip install "nnzoo\[tensorboard\]"'):
        api.train("digits-mlp", out=tmp_path / "r", sets=[("train.tensorboard", True)], progress=False)
    assert not (tmp_path / "r").exists()


def test_in_a_jupyter_kernel_the_report_pictures_are_shown_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A kernel is recognised by the IPython it has already imported (nnzoo never imports IPython itself); this
    stands in for one with a shell that has a kernel and a display() that records what it was given."""
    import sys
    import types

    from nnzoo.notebook import in_notebook

    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not in_notebook()
    shown: list[str] = []
    # (events and version_info for matplotlib, which hooks its redraws into a shell it finds)
    shell = types.SimpleNamespace(kernel=object(), config={}, events=types.SimpleNamespace(register=lambda *a: None))
    ipython = types.ModuleType("IPython")
    ipython.version_info = (9, 0)
    ipython.get_ipython = lambda: shell
    display = types.ModuleType("IPython.display")
    display.Image = lambda filename: filename
    display.display = shown.append
    ipython.display = display
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    assert in_notebook()
    api.train("digits-mlp", out=tmp_path / "r", sets=[("train.epochs", 1)])
    assert [Path(p).name for p in shown] == ["curves.png", "confusion_matrix.png", "worst.png"]
    shown.clear()
    api.evaluate(tmp_path / "r")
    assert shown == [str(tmp_path / "r" / "eval" / "confusion_matrix.png")]
    shell.kernel = None  # plain IPython in a terminal: nothing is displayed
    api.report(tmp_path / "r")
    assert shown == [str(tmp_path / "r" / "eval" / "confusion_matrix.png")]


def test_tensorboard_on_resume_hides_the_steps_past_the_checkpoint(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    sets = [("train.epochs", 3), ("train.batch_size", 64), ("train.log_every", 10), ("data.val_size", 0.1),
            ("train.tensorboard", True)]  # fmt: skip
    with pytest.raises(api.Interrupted):
        api.train("digits-mlp", out=tmp_path / "r", sets=sets, callbacks=[StopAfter(2)], progress=False)
    with SummaryWriter(str(tmp_path / "r" / "tensorboard")) as w:  # as if it had trained on to step 50, then died
        for step in (50, 60):
            w.add_scalar("step/loss", 99.0, step)
    api.train("digits-mlp", out=tmp_path / "r", resume=True, progress=False)
    events = EventAccumulator(str(tmp_path / "r" / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    logged = events.Scalars("step/loss")
    steps = read_jsonl(tmp_path / "r" / "steps.jsonl")
    assert [e.step for e in logged] == [s["step"] for s in steps] == [10, 20, 21, 30, 40, 42, 50, 60, 63]
    assert [e.value for e in logged] == pytest.approx([s["loss"] for s in steps], rel=1e-6)
    assert [e.step for e in events.Scalars("train/loss")] == [21, 42, 63]


def test_a_language_model_writes_a_sample_and_tensorboard_shows_it(tmp_path: Path) -> None:
    from conftest import POEMS
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (tmp_path / "poems.txt").write_text("".join(p + "\n" for p in POEMS * 12), encoding="utf-8")
    api.train("tang-poems-char-lstm", out=tmp_path / "lm", progress=False,
              overrides={"dataset": "tang300", "data_file": str(tmp_path / "poems.txt"), "max_steps": 3},
              sets=[("model_args.hidden", 32), ("model_args.embed", 16), ("data.seq_len", 24),
                    ("train.tensorboard", True), ("train.log_every", 1)])  # fmt: skip
    sample = (tmp_path / "lm" / "report" / "sample.txt").read_text(encoding="utf-8")
    assert len(sample.rstrip("\n")) == 200 and set(sample) <= set("".join(POEMS) + "\n\ufffd")
    steps = json.loads((tmp_path / "lm" / "metrics.json").read_text())["steps"]
    assert [s["step"] for s in read_jsonl(tmp_path / "lm" / "steps.jsonl")] == list(range(1, steps + 1))
    events = EventAccumulator(str(tmp_path / "lm" / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    text = events.Tensors("report/sample/text_summary")[0].tensor_proto.string_val[0].decode()
    assert sample.rstrip("\n") in text


def test_a_run_logged_to_tensorboard_is_evaluated_without_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    api.train("digits-mlp", out=tmp_path / "r", sets=[("train.epochs", 1), ("train.tensorboard", True)], progress=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    assert api.evaluate(tmp_path / "r")["accuracy"] > 0.1  # eval, predict and serve need no TensorBoard
    with pytest.raises(UserError, match=r'pip install "nnzoo\[tensorboard\]"'):
        api.train("digits-mlp", out=tmp_path / "r", resume=True, overrides={"epochs": 2}, progress=False)
