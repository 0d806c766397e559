from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import StopAfter, needs_fashion

from nnzoo import Callback, TrainConfig, Trainer, api, checkpoint, create_model, load_dataset
from nnzoo.errors import UserError
from nnzoo.trainer import TrainingDiverged


def _digits(val_size: float = 0.1):
    return load_dataset("digits", val_size=val_size)


def test_training_beats_chance_and_loss_falls() -> None:
    data = _digits()
    model = create_model("mlp", data.spec, hidden=[64])
    t = Trainer(model, TrainConfig(epochs=4, batch_size=32, optimizer="adam", lr=3e-3), spec=data.spec, progress=False)
    history = t.fit(data.train, data.val)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["loss"] < history[0]["loss"] * 0.5
    test = t.evaluate(data.test)
    assert test["accuracy"] > 0.85  # chance is 0.10
    assert set(history[-1]) >= {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_s"}


@needs_fashion
def test_simple_cnn_on_a_few_hundred_fashion_mnist_images_beats_chance() -> None:
    data = load_dataset("fashion-mnist", val_size=0, limit_train=600, limit_test=500)
    model = create_model("simple-cnn", data.spec)
    cfg = TrainConfig(epochs=3, batch_size=32, optimizer="adam", lr=2e-3)
    Trainer(model, cfg, spec=data.spec, progress=False).fit(data.train)
    acc = Trainer(model, cfg, spec=data.spec, progress=False).evaluate(data.test)["accuracy"]
    assert acc > 0.55, acc  # chance is 0.10


@pytest.mark.parametrize("recipe_sets", [
    [("train.schedule", "onecycle"), ("train.optimizer", "adam")],
    [("train.schedule", "step"), ("train.momentum", 0.9), ("model_args.dropout", 0.3)],
])  # fmt: skip
def test_resume_equals_uninterrupted(tmp_path: Path, recipe_sets: list) -> None:
    sets = [("data.val_size", 0.2), ("train.epochs", 3), ("train.batch_size", 64), *recipe_sets]
    full = api.train("digits-mlp", out=tmp_path / "full", sets=sets, progress=False)
    with pytest.raises(api.Interrupted, match="last good checkpoint \\(epoch 2\\)"):
        api.train("digits-mlp", out=tmp_path / "cut", sets=sets, callbacks=[StopAfter(2)], progress=False)
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed = api.train("digits-mlp", out=tmp_path / "cut", resume=True, progress=False)
    a = checkpoint.load(tmp_path / "full" / "checkpoints" / "last.pt")
    b = checkpoint.load(tmp_path / "cut" / "checkpoints" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["schedulers"] == b["schedulers"]

    def strip(h):
        return [{k: v for k, v in e.items() if k not in ("epoch_seconds", "samples_per_s")} for e in h]

    assert strip(full.history) == strip(resumed.history)
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert full.metrics["test"] == resumed.metrics["test"]


def test_checkpoint_is_tensors_and_primitives(tmp_path: Path) -> None:
    api.train("digits-mlp", out=tmp_path / "r", overrides={"epochs": 2}, progress=False)
    for name in ("best.pt", "last.pt"):
        payload = torch.load(tmp_path / "r" / "checkpoints" / name, weights_only=True)  # no code is unpickled
        assert payload["schema"] == checkpoint.SCHEMA
        assert payload["config"]["model"] == "mlp" and payload["spec"]["input_shape"] == [1, 8, 8]
    assert not list((tmp_path / "r" / "checkpoints").glob("*.tmp"))
    run = api.load_run(tmp_path / "r")
    assert run.config.recipe == "digits-mlp" and not run.model.training


def test_interrupted_save_keeps_the_last_good_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    checkpoint.save({"value": torch.ones(3)}, path)

    def broken(*args, **kwargs):
        raise KeyboardInterrupt  # as if Ctrl-C arrived in the middle of writing

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save({"value": torch.zeros(3)}, path)
    assert torch.equal(checkpoint.load(path)["value"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_divergence_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    class Poison(Callback):
        def on_epoch_begin(self, trainer, epoch):
            if epoch == 1:
                with torch.no_grad():
                    for p in trainer.model.parameters():
                        p.fill_(math.nan)

    with pytest.raises(TrainingDiverged, match="diverged in epoch 2.*last good checkpoint is kept"):
        api.train("digits-mlp", out=tmp_path / "r", overrides={"epochs": 3}, callbacks=[Poison()], progress=False)
    good = checkpoint.load(tmp_path / "r" / "checkpoints" / "last.pt")
    assert good["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in good["model"].values() if v.is_floating_point())


def test_early_stopping_and_best_checkpoint(tmp_path: Path) -> None:
    # lr 0 with no schedule: validation never improves after epoch 1, so patience 2 stops after epoch 3.
    res = api.train("digits-mlp", out=tmp_path / "r", overrides={"epochs": 10, "lr": 1e-12}, progress=False,
                    sets=[("train.schedule", "none"), ("train.early_stopping_patience", 2),
                          ("train.monitor", "val_loss")])  # fmt: skip
    assert res.metrics["epochs"] == 3 and res.metrics["best_epoch"] == 1
    assert checkpoint.load(tmp_path / "r" / "checkpoints" / "best.pt")["epoch"] == 1


@pytest.mark.parametrize("schedule", ["none", "step", "cosine", "onecycle"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_optimizers_and_schedules_train(schedule: str, optimizer: str) -> None:
    data = _digits(val_size=0)
    model = create_model("mlp", data.spec, hidden=[32])
    cfg = TrainConfig(epochs=2, batch_size=128, optimizer=optimizer, lr=0.01, schedule=schedule, momentum=0.9,
                      nesterov=optimizer == "sgd", weight_decay=1e-4, clip_grad_norm=1.0, step_epochs=1)  # fmt: skip
    t = Trainer(model, cfg, spec=data.spec, progress=False)
    h = t.fit(data.train)
    assert h[-1]["loss"] < h[0]["loss"]
    if schedule == "cosine":
        assert h[-1]["lr"] == pytest.approx(0.0, abs=1e-9)
    if schedule == "step":
        assert h[0]["lr"] == pytest.approx(0.001) and h[1]["lr"] == pytest.approx(0.0001)


def test_max_steps_and_plain_sgd_onecycle_keeps_momentum_zero() -> None:
    data = _digits(val_size=0)
    model = create_model("mlp", data.spec)
    t = Trainer(model, TrainConfig(epochs=5, max_steps=3, schedule="onecycle"), spec=data.spec, progress=False)
    t.fit(data.train)
    assert t.global_step == 3 and t.epoch == 1
    assert t.optimizers["main"].param_groups[0]["momentum"] == 0


def test_config_errors_name_the_setting() -> None:
    for bad, msg in [(dict(optimizer="rmsprop"), "--optimizer must be one of sgd, adam, adamw"),
                     (dict(epochs=0), "--epochs must be a positive whole number"),
                     (dict(lr=-1.0), "--lr must be a positive number"),
                     (dict(device="tpu"), "--device must be one of")]:  # fmt: skip
        with pytest.raises(UserError, match=msg):
            TrainConfig(**bad).validate()
    with pytest.raises(UserError, match="nesterov=true needs a positive momentum"):
        Trainer(create_model("mlp", _digits().spec), TrainConfig(nesterov=True), progress=False)


def test_evaluating_a_run_builds_no_optimizer_and_keeps_the_global_random_state(serve_runs: dict) -> None:
    """eval / predict / serve put the model on its device with a Runner: no optimizer, no reseeding (a Trainer
    built to predict did both)."""
    from nnzoo import api, runs
    from nnzoo.runtime import Runner
    from nnzoo.trainer import Trainer

    runner = runs.trainer_for(api.load_run(serve_runs["digits"]), "cpu")
    assert isinstance(runner, Runner) and not isinstance(runner, Trainer) and not hasattr(runner, "optimizers")
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    result = api.evaluate(serve_runs["digits"], device="cpu")
    assert result["accuracy"] > 0.1 and torch.equal(torch.get_rng_state(), before)
