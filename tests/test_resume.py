"""Resume after any kill, and with changed settings; faults while writing (disk full, ulimit -f); SIGTERM.

The kills are injected (a callback or a patched writer raising KeyboardInterrupt at a chosen moment), not timed.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import StopAfter

from nnzoo import Callback, TrainConfig, Trainer, api, checkpoint, create_model, load_dataset, seed_everything, training
from nnzoo.cli import main
from nnzoo.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


# ---- the learning rate after resuming with changed settings ----------------------------------------------------------
class LrLog(Callback):
    """{global step: the learning rate that step uses}, for every step the trainer takes."""

    def __init__(self) -> None:
        self.lr: dict[int, float] = {}

    def _record(self, trainer: Trainer) -> None:
        self.lr[trainer.global_step] = trainer.optimizers["main"].param_groups[0]["lr"]

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        self._record(trainer)

    def on_batch_end(self, trainer: Trainer, step: int, steps: int) -> None:
        self._record(trainer)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", val_size=0.1)


def _fit(data, cfg: TrainConfig, state: dict | None = None, stop: int | None = None) -> tuple[Trainer, LrLog]:
    seed_everything(cfg.seed)
    log = LrLog()
    t = Trainer(create_model("mlp", data.spec, hidden=[16]), cfg, spec=data.spec, progress=False,
                callbacks=[log, *([StopAfter(stop)] if stop else [])])  # fmt: skip
    if state is not None:
        t.load_state_dict(state)
    try:
        t.fit(data.train, data.val)
    except KeyboardInterrupt:
        pass
    return t, log


SCHEDULES = {"none": {"schedule": "none"}, "step": {"schedule": "step", "step_epochs": 1},
             "cosine": {"schedule": "cosine"}, "warmup-cosine": {"schedule": "cosine", "warmup_steps": 5},
             "onecycle": {"schedule": "onecycle"}}  # fmt: skip


@pytest.mark.parametrize("change", ["nothing", "epochs", "max_steps", "lr"])
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_resume_with_changed_settings_follows_the_new_schedule(digits, schedule: str, change: str) -> None:
    """The rule (Trainer._start_schedules): unchanged settings continue exactly; changed --epochs, --max-steps or
    --lr give every later step the learning rate a run started with the new settings has at that step; a
    onecycle schedule cannot be stretched, and says so."""
    n = len(Trainer(create_model("mlp", digits.spec, hidden=[16]), TrainConfig(batch_size=128), progress=False)
            .batches(digits.train, train=True))  # fmt: skip
    base = TrainConfig(epochs=4, max_steps=3 * n, batch_size=128, optimizer="sgd", momentum=0.9, lr=0.05,
                       num_threads=1, **SCHEDULES[schedule])  # fmt: skip
    new = {"nothing": {}, "epochs": {"epochs": 5, "max_steps": None}, "max_steps": {"max_steps": 3 * n + n // 2},
           "lr": {"lr": 0.02}}[change]  # fmt: skip
    changed = dataclasses.replace(base, **new)
    cut, _ = _fit(digits, base, stop=2)
    assert cut.epoch == 2
    if schedule == "onecycle" and change in ("epochs", "max_steps"):
        with pytest.raises(UserError, match="onecycle schedule was laid out for .* steps and cannot become"):
            _fit(digits, changed, cut.state_dict())
        return
    resumed, got = _fit(digits, changed, cut.state_dict())
    reference, want = _fit(digits, changed)  # trained with the new settings from the start
    assert resumed.global_step == reference.global_step > 2 * n
    assert {s: got.lr[s] for s in got.lr} == {s: want.lr[s] for s in got.lr}, "lr after resume"
    if change == "nothing":  # exact continuation: the very same weights as an uninterrupted run
        for k, v in reference.model.state_dict().items():
            assert torch.equal(v, resumed.model.state_dict()[k]), k
    if change == "lr" and schedule == "none":
        assert set(got.lr.values()) == {0.02}


def test_a_refused_resume_leaves_the_run_folder_as_it_was(tmp_path: Path) -> None:
    run = tmp_path / "run"
    api.train("digits-mlp", out=run, sets=[("train.epochs", 2), ("train.schedule", "onecycle")], progress=False)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(UserError, match="onecycle schedule was laid out for"):
        api.train("digits-mlp", out=run, resume=True, overrides={"epochs": 3}, progress=False)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


# ---- kills at chosen moments, then --resume ------------------------------------------------------------------------
SETS = [("data.val_size", 0.2), ("train.epochs", 3), ("train.batch_size", 64), ("train.monitor", "val_loss"),
        ("model_args.hidden", [32]), ("train.num_threads", 1)]  # fmt: skip


def _strip(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in ("epoch_seconds", "samples_per_s")} for e in history]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> api.RunResult:
    return api.train("digits-mlp", out=tmp_path_factory.mktemp("full") / "run", sets=SETS, progress=False)


class KillAt(Callback):
    """Ctrl-C at a chosen hook: ``when(epoch, step)`` True (step None at epoch begin)."""

    def __init__(self, when):
        self.when = when

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        if self.when(epoch, None):
            raise KeyboardInterrupt

    def on_batch_end(self, trainer: Trainer, step: int, steps: int) -> None:
        if self.when(trainer.epoch, step):
            raise KeyboardInterrupt


def _kill_nth(monkeypatch: pytest.MonkeyPatch, target, name: str, n: int) -> list[int]:
    """Make ``target.name`` raise KeyboardInterrupt on its n-th call, halfway through: what it had written is
    left as a killed process leaves it (a temporary file; an orphan when the kill is SIGKILL)."""
    real, calls = getattr(target, name), [0]

    def cut(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, cut)
    return calls


def _assert_same_run(run: Path, full: api.RunResult, resumed: api.RunResult) -> None:
    assert _strip(resumed.history) == _strip(full.history)
    assert resumed.metrics["test"] == full.metrics["test"]
    assert resumed.metrics["best_epoch"] == full.metrics["best_epoch"]
    best = checkpoint.load(run / "checkpoints" / "best.pt")
    assert best["epoch"] == full.metrics["best_epoch"]
    want = checkpoint.load(full.run_dir / "checkpoints" / "best.pt")["model"]
    assert all(torch.equal(v, best["model"][k]) for k, v in want.items())
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert json.loads((run / "metrics.json").read_text())["test"] == full.metrics["test"]
    assert not [p for p in run.rglob("*.tmp")]


def test_kill_before_the_first_checkpoint(tmp_path: Path, uninterrupted: api.RunResult) -> None:
    run = tmp_path / "run"
    with pytest.raises(api.Interrupted, match="before the first checkpoint was written; .* --resume` starts"):
        api.train("digits-mlp", out=run, sets=SETS, callbacks=[KillAt(lambda e, s: (e, s) == (0, 3))], progress=False)
    assert (run / "config.yaml").is_file() and not (run / "checkpoints" / "last.pt").exists()
    resumed = api.train("digits-mlp", out=run, sets=SETS, resume=True, progress=False)  # starts it afresh
    _assert_same_run(run, uninterrupted, resumed)


@pytest.mark.parametrize("again", ["resume", "fresh start"])
def test_kill_inside_the_first_checkpoint_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, again: str,
                                                uninterrupted: api.RunResult) -> None:  # fmt: skip
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        _kill_nth(m, torch, "save", 1)
        with pytest.raises(api.Interrupted, match="before the first checkpoint"):
            api.train("digits-mlp", out=run, sets=SETS, progress=False)
    # What a SIGKILL in the middle of that write leaves besides: the temporary files of the save and the log.
    (run / "checkpoints").mkdir(exist_ok=True)
    for orphan in ("checkpoints/.last.pt.k1ll3d.tmp", ".metrics.jsonl.k1ll3d.tmp", "metrics.jsonl.tmp"):
        (run / orphan).write_bytes(b"half")
    resumed = api.train("digits-mlp", out=run, sets=SETS, resume=again == "resume", progress=False)
    _assert_same_run(run, uninterrupted, resumed)


def test_kill_inside_a_best_checkpoint_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             uninterrupted: api.RunResult,
                                             capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    assert uninterrupted.metrics["best_epoch"] >= 2  # so the 2nd write of best.pt is an epoch after the first
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        calls = _kill_nth(m, checkpoint, "copy", 2)
        with pytest.raises(api.Interrupted):
            api.train("digits-mlp", out=run, sets=SETS, progress=False)
    assert calls[0] == 2
    last = checkpoint.load(run / "checkpoints" / "last.pt")
    assert checkpoint.load(run / "checkpoints" / "best.pt")["epoch"] == 1 < last["best"]["epoch"] == last["epoch"]
    resumed = api.train("digits-mlp", out=run, sets=SETS, resume=True, progress=False)
    assert f"not the best epoch {last['epoch']}: rewrote it from last.pt" in capsys.readouterr().err
    _assert_same_run(run, uninterrupted, resumed)


def test_a_best_checkpoint_of_another_epoch_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(api.Interrupted):
        api.train("digits-mlp", out=run, sets=SETS, callbacks=[StopAfter(2)], progress=False)
    # last.pt says epoch 1 was the best, but best.pt holds epoch 2 (as an older nnzoo's cut copy could leave it).
    last = checkpoint.load(run / "checkpoints" / "last.pt")
    checkpoint.save({**last, "best": {**last["best"], "epoch": 1}}, run / "checkpoints" / "last.pt")
    checkpoint.save(last, run / "checkpoints" / "best.pt")
    with pytest.raises(UserError, match="best.pt holds epoch .* but .*last.pt says the best epoch was"):
        api.train("digits-mlp", out=run, sets=SETS, resume=True, progress=False)


def test_kill_between_epochs(tmp_path: Path, uninterrupted: api.RunResult) -> None:
    run = tmp_path / "run"
    with pytest.raises(api.Interrupted, match="Interrupted in epoch 3; the last good checkpoint \\(epoch 2\\)"):
        api.train("digits-mlp", out=run, sets=SETS, callbacks=[KillAt(lambda e, s: (e, s) == (2, None))],
                  progress=False)  # fmt: skip
    _assert_same_run(run, uninterrupted, api.train("digits-mlp", out=run, sets=SETS, resume=True, progress=False))


def test_kill_after_the_last_epoch_before_the_final_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         uninterrupted: api.RunResult,
                                                         capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        _kill_nth(m, training, "write_reports", 1)  # what api.train's final test calls
        with pytest.raises(api.Interrupted, match="after training ended \\(epoch 3\\), before its final test"):
            api.train("digits-mlp", out=run, sets=SETS, progress=False)
    assert not (run / "metrics.json").exists()
    code = main(["train", "digits-mlp", "--out", str(run), "--resume"])
    out = capsys.readouterr().out
    assert code == 0 and "but its final test was never written: testing it now" in out
    resumed = api.RunResult(run, json.loads((run / "metrics.json").read_text()),
                            checkpoint.load(run / "checkpoints" / "last.pt")["history"])  # fmt: skip
    _assert_same_run(run, uninterrupted, resumed)
    assert (run / "report" / "curves.png").is_file()
    # Now everything is written: nothing left to do, and it says how to train on.
    assert main(["train", "digits-mlp", "--out", str(run), "--resume"]) == 2
    assert "has already trained 3 epochs" in capsys.readouterr().err


# ---- faults while writing: one sentence, the last good checkpoint intact ---------------------------------------------
def _fail_nth_save(monkeypatch: pytest.MonkeyPatch, n: int, error: BaseException) -> None:
    real, calls = torch.save, [0]

    def save(obj, f, *args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            f.write(b"the first bytes")  # a full disk refuses a write halfway through the file
            raise error
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
                                   RuntimeError("[enforce fail at inline_container.cc:626] . PytorchStreamWriter "
                                                "failed writing file data/0: file write failed")])  # fmt: skip
def test_disk_full_during_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                   error: BaseException) -> None:  # fmt: skip
    run = tmp_path / "run"
    argv = ["train", "digits-mlp", "--out", str(run), "--epochs", "3", "--quiet", "--set", "model_args.hidden=[32]"]
    with monkeypatch.context() as m:
        _fail_nth_save(m, 3, error)  # epoch 3's last.pt
        code = main(argv)
    err = capsys.readouterr().err
    reason = "No space left on device" if isinstance(error, OSError) else "[enforce fail at inline_container.cc:626]"
    assert code == 2 and err.startswith(f"error: could not write {run}/checkpoints/last.pt: {reason}")
    assert err.endswith("; the last good checkpoint (epoch 2) is intact.\n") and err.count("\n") == 1
    assert checkpoint.load(run / "checkpoints" / "last.pt")["epoch"] == 2
    assert checkpoint.load(run / "checkpoints" / "best.pt")["epoch"] <= 2
    assert not list(run.rglob("*.tmp")) and not (run / "metrics.json").exists()
    assert main([*argv, "--resume"]) == 0  # room again: it goes on from epoch 2
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3


def test_disk_full_before_start_and_during_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    import nnzoo.files

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(nnzoo.files.tempfile, "mkstemp", full)
        code = main(["train", "digits-mlp", "--out", str(run), "--max-steps", "2", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: could not write {run}/") and err.count("\n") == 1
    assert err.endswith(": No space left on device; no checkpoint had been written yet.\n")
    assert main(["train", "digits-mlp", "--out", str(run), "--max-steps", "2", "--quiet"]) == 0
    capsys.readouterr()
    before = (run / "checkpoints" / "best.pt").read_bytes()
    with monkeypatch.context() as m:
        m.setattr(torch.jit.ScriptModule, "save", full)
        code = main(["export", str(run), "--format", "torchscript"])
    target = run / "export" / "mlp.pt"
    assert code == 2 and capsys.readouterr().err == f"error: could not write {target}: No space left on device\n"
    assert not target.exists() and (run / "checkpoints" / "best.pt").read_bytes() == before


def _nnzoo(*argv: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, "-m", "nnzoo", *argv], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kwargs)  # fmt: skip


@pytest.mark.slow
def test_a_file_size_limit_is_one_sentence(tmp_path: Path) -> None:
    """`ulimit -f`: the kernel would kill the process with SIGXFSZ; the CLI ignores it, so the write fails."""

    def limit():
        return resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # last.pt is ~50 kB

    run = tmp_path / "run"
    p = _nnzoo("train", "digits-mlp", "--out", str(run), "--epochs", "1", "--quiet", "--set", "model_args.hidden=[32]",
               "--set", "train.num_threads=1", preexec_fn=limit)  # fmt: skip
    _, err = p.communicate(timeout=300)
    assert p.returncode == 2, err
    assert err == (
        f"error: could not write {run}/checkpoints/last.pt: File too large; no checkpoint had been written yet.\n"
    )
    assert not list(run.rglob("*.tmp"))


# A test hook in the child: after epoch 1's checkpoint it says so and waits, for the test to send SIGTERM then.
AFTER_FIRST_CHECKPOINT = """
import sys, threading
from nnzoo import callbacks
from nnzoo.cli import main
save = callbacks.ModelCheckpoint.on_epoch_end
def save_then_wait(self, trainer, epoch, logs):
    save(self, trainer, epoch, logs)
    if epoch == 0:
        print("checkpointed", flush=True)
        threading.Event().wait(120)  # SIGTERM's handler raises KeyboardInterrupt in this wait
callbacks.ModelCheckpoint.on_epoch_end = save_then_wait
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigterm_is_an_interrupt_and_resume_finishes(tmp_path: Path, uninterrupted: api.RunResult) -> None:
    run = tmp_path / "run"
    sets = [a for k, v in SETS for a in ("--set", f"{k}={json.dumps(v)}")]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    argv = ["train", "digits-mlp", "--out", str(run), "--quiet", *sets]
    p = subprocess.Popen([sys.executable, "-c", AFTER_FIRST_CHECKPOINT, *argv], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert p.stdout.readline() == "checkpointed\n"
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 130 and "Traceback" not in err
    assert err.startswith("error: Interrupted in epoch 2; the last good checkpoint (epoch 1) is") and "--resume" in err
    assert checkpoint.load(run / "checkpoints" / "last.pt")["epoch"] == 1
    _assert_same_run(run, uninterrupted, api.train("digits-mlp", out=run, resume=True, progress=False))


# Ctrl-C while PyTorch is being imported (the first second of every command), injected at `import torch`.
CTRL_C_AT_IMPORT = """
import builtins, sys
real = builtins.__import__
def ctrl_c_at_torch(name, *args, **kwargs):
    if name == "torch":
        raise KeyboardInterrupt
    return real(name, *args, **kwargs)
builtins.__import__ = ctrl_c_at_torch
sys.argv[0] = sys.argv[1]  # the console script `nnzoo`, or a program of the user's that imports nnzoo
import nnzoo
"""


def test_ctrl_c_during_start_up() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

    def run(argv0):
        return subprocess.run([sys.executable, "-c", CTRL_C_AT_IMPORT, argv0], env=env, text=True, check=False,
                                           capture_output=True, timeout=120)  # fmt: skip

    command = run("/usr/local/bin/nnzoo")
    assert (command.returncode, command.stderr) == (130, "interrupted\n")
    library = run("my_script.py")  # not the command: the program gets its KeyboardInterrupt
    assert library.returncode == -signal.SIGINT and "KeyboardInterrupt" in library.stderr
