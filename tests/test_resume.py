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
from nnzoo import Callback, Trainer, TrainConfig, api, checkpoint, create_model, load_dataset, seed_everything
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
