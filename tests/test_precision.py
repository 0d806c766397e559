"""Which precision each device trains in (runtime.autocast_dtype), and fp16's loss scaling in Trainer.optimize.

No GPU here: the CUDA choice is checked with the capability and bf16 answers of a T4, an A100 and a P100 put in
place of the real calls; the GradScaler path runs for real on the CPU (PyTorch's CPU autocast takes fp16 and
GradScaler("cpu") scales, unscales, skips and saves as the CUDA one does).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from conftest import StopAfter

from nnzoo import TrainConfig, Trainer, api, checkpoint, create_model, load_dataset, runtime
from nnzoo.runtime import autocast_dtype


def _gpu(monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], emulated: bool) -> None:
    """A CUDA GPU of ``capability``: is_bf16_supported() says True when bf16 runs natively or, by default (with
    including_emulation=True, as PyTorch does), when it can be emulated."""
    native = capability >= (8, 0)

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return native or (including_emulation and emulated)

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)


@pytest.mark.parametrize("capability, emulated, expected", [
    ((7, 5), True, torch.float16),   # a T4 (Colab): PyTorch's default answer would have given it emulated bf16
    ((7, 0), True, torch.float16),   # a V100
    ((8, 0), False, torch.bfloat16),  # an A100
    ((9, 0), False, torch.bfloat16),  # an H100
    ((6, 1), True, None),            # a P100 / GTX 1080: fp32
])  # fmt: skip
def test_cuda_precision_by_compute_capability(monkeypatch: pytest.MonkeyPatch, capability: tuple, emulated: bool,
                                              expected: torch.dtype | None) -> None:  # fmt: skip
    _gpu(monkeypatch, capability, emulated)
    assert autocast_dtype(torch.device("cuda")) == expected


def test_cuda_precision_with_a_pytorch_that_has_no_including_emulation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 6))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)  # PyTorch < 2.3's signature
    assert autocast_dtype(torch.device("cuda")) == torch.bfloat16


def _digits():
    return load_dataset("digits", val_size=0.1)


def _cfg(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=64, optimizer="adamw", lr=3e-3, clip_grad_norm=1.0, schedule="cosine")
    return TrainConfig(**{**base, **kw})


class _PlainTrainer(Trainer):
    """optimize as it was before loss scaling: backward, clip, step, schedule."""

    def optimize(self, loss: torch.Tensor, name: str = "main") -> None:
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], self.cfg.clip_grad_norm)
        opt.step()
        self.schedulers[name].step()


def test_a_disabled_grad_scaler_trains_exactly_as_without_one() -> None:
    data = _digits()
    weights = []
    for cls in (Trainer, _PlainTrainer):
        torch.manual_seed(0)  # the same initial weights
        model = create_model("mlp", data.spec, hidden=[32])
        t = cls(model, _cfg(amp=False), spec=data.spec, progress=False)
        assert not t.scalers["main"].is_enabled()
        t.fit(data.train, data.val)
        weights.append(model.state_dict())
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


@pytest.fixture
def fp16(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU made to autocast in fp16, as a CUDA 7.x GPU does: the Trainer then scales its losses."""
    monkeypatch.setattr(runtime, "autocast_dtype", lambda device: torch.float16)


def test_fp16_with_loss_scaling_trains(fp16: None) -> None:
    data = _digits()
    t = Trainer(create_model("mlp", data.spec, hidden=[32]), _cfg(epochs=3), spec=data.spec, progress=False)
    assert t.amp_dtype == torch.float16 and t.scalers["main"].is_enabled()
    h = t.fit(data.train, data.val)
    assert h[-1]["loss"] < h[0]["loss"] * 0.5 and h[-1]["val_accuracy"] > 0.8  # chance is 0.10
    scale = t.scalers["main"].get_scale()
    assert 1 <= scale <= 2.0**16 and scale == 2 ** round(torch.log2(torch.tensor(scale)).item())
    assert t.state_dict()["scalers"]["main"]["scale"] == scale


def test_an_overflowing_step_is_skipped_and_the_scale_halves(fp16: None) -> None:
    data = _digits()
    t = Trainer(create_model("mlp", data.spec, hidden=[32]), _cfg(), spec=data.spec, progress=False)
    t._start_schedules(21)  # the cosine schedule, as fit builds it
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    with t.autocast():
        loss = t.model(data.train.x[:64].float()).float().sum() * 1e35  # its scaled gradients overflow
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyTorch's "lr_scheduler.step() before optimizer.step()" is not shown
        t.optimize(loss)
    assert t.scalers["main"].get_scale() == 2.0**15  # from 2**16
    for k, v in t.model.state_dict().items():
        assert torch.equal(v, before[k]), k  # the step was skipped


def test_fp16_resume_restores_the_loss_scale_and_equals_the_uninterrupted_run(tmp_path: Path, fp16: None) -> None:
    sets = [("data.val_size", 0.1), ("train.epochs", 3), ("train.batch_size", 64), ("train.optimizer", "adamw"),
            ("train.clip_grad_norm", 1.0)]  # fmt: skip
    api.train("digits-mlp", out=tmp_path / "full", sets=sets, progress=False)
    with pytest.raises(api.Interrupted):
        api.train("digits-mlp", out=tmp_path / "cut", sets=sets, callbacks=[StopAfter(2)], progress=False)
    assert "main" in checkpoint.load(tmp_path / "cut" / "checkpoints" / "last.pt")["scalers"]
    api.train("digits-mlp", out=tmp_path / "cut", resume=True, progress=False)
    a, b = (checkpoint.load(tmp_path / run / "checkpoints" / "last.pt") for run in ("full", "cut"))
    assert a["scalers"] == b["scalers"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_a_gan_scales_each_of_its_two_losses(tmp_path: Path, fp16: None) -> None:
    small = [("model_args.arch", "mlp"), ("model_args.g_hidden", [32]), ("model_args.d_hidden", [32]),
             ("model_args.judge", "none"), ("model_args.latent", 8), ("train.max_steps", 3)]  # fmt: skip
    api.train("mnist-cgan", out=tmp_path / "gan", overrides={"dataset": "digits"}, sets=small, progress=False)
    saved = checkpoint.load(tmp_path / "gan" / "checkpoints" / "last.pt")
    assert set(saved["scalers"]) == {"discriminator", "generator"} and saved["global_step"] == 3
