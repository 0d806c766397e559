"""Autoencoders, VAE and GANs: every model trains, the VAE's loss is what the paper says, the Fréchet distance
behaves, a GAN resumes exactly, quality numbers flag collapse, and divergence keeps the last good checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import StopAfter

from nnzoo import Callback, RunConfig, Split, TrainConfig, Trainer, api, checkpoint, create_model, load_dataset
from nnzoo.config import DataConfig
from nnzoo.data import dataset_spec
from nnzoo.errors import IncompatibleData, UserError
from nnzoo.models import MODELS
from nnzoo.tasks.generative import quality
from nnzoo.trainer import TrainingDiverged

GENERATIVE = ["ae", "conv-ae", "denoising-ae", "vae", "conv-vae", "gan", "dcgan", "cgan"]
SMALL = {"gan": {"g_hidden": [32, 64], "d_hidden": [32]}, "dcgan": {"g_width": 8, "d_width": 8},
         "cgan": {"g_width": 8, "d_width": 8}, "conv-ae": {"channels": [8, 16]}, "conv-vae": {"channels": [8, 16]},
         "denoising-ae": {"channels": [8, 16]}}  # fmt: skip


def test_the_generative_models_are_all_registered() -> None:
    spec = dataset_spec("mnist")

    def task(name: str) -> str | None:
        try:
            return create_model(name, spec).task
        except IncompatibleData:  # language models do not take images
            return None

    generative = sorted(n for n in MODELS.names() if task(n) in ("autoencoder", "gan"))
    assert generative == sorted(GENERATIVE)


def _random_split(spec, n: int = 24) -> Split:
    g = torch.Generator().manual_seed(0)
    return Split(torch.randint(0, 256, (n, *spec.input_shape), generator=g, dtype=torch.uint8),
                 torch.randint(0, spec.num_classes, (n,), generator=g))  # fmt: skip


@pytest.mark.parametrize("name,args", [*((n, {}) for n in GENERATIVE), ("cgan", {"arch": "mlp"}),
                                       ("cgan", {"condition": "projection"}), ("cgan", {"condition": "planes"}),
                                       ("denoising-ae", {"noise": "salt-pepper", "noise_level": 0.2, "arch": "mlp"}),
                                       ("denoising-ae", {"noise": "masking", "noise_level": 0.3}),
                                       ("ae", {"loss": "mse"})])  # fmt: skip
@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_every_generative_model_trains_with_finite_gradients_everywhere(name: str, args: dict, dataset: str) -> None:
    spec = dataset_spec(dataset)
    torch.manual_seed(0)
    model = create_model(name, spec, **{**SMALL.get(name, {}), **args})
    cfg = TrainConfig(epochs=1, max_steps=3, batch_size=8, optimizer="adam", lr=1e-3, betas=[0.5, 0.999], num_threads=1)
    t = Trainer(model, cfg, spec=spec, progress=False)
    history = t.fit(_random_split(spec))
    assert t.global_step == 3 and all(math.isfinite(v) for v in history[0].values())
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no finite gradient for {missing}"
    if model.task == "gan":
        assert set(t.optimizers) == {"generator", "discriminator"} and {"d_loss", "g_loss"} <= set(history[0])
        assert t.optimizers["generator"].param_groups[0]["betas"] == (0.5, 0.999)
    if getattr(model, "can_sample", False):
        kw = {"labels": torch.arange(4) % spec.num_classes} if getattr(model, "conditional", False) else {}
        out = model.sample(4, torch.Generator().manual_seed(0), **kw)
        assert out.shape == (4, *spec.input_shape) and 0 <= out.min() and out.max() <= 1


def test_projection_discriminator_adds_the_class_vector_times_the_features() -> None:
    """Miyato & Koyama's logit: psi(phi(x)) + <embed(y), phi(x)>, checked by hand."""
    torch.manual_seed(0)
    d = create_model("cgan", dataset_spec("mnist"), condition="projection", d_width=8).discriminator.eval()
    x, y = torch.rand(3, 1, 28, 28), torch.nn.functional.one_hot(torch.tensor([0, 4, 9]), 10).float()
    phi = d.features(x)
    expected = d.out(phi).squeeze(1) + (d.embed.weight.T[[0, 4, 9]] * phi).sum(1)
    torch.testing.assert_close(d(x, y), expected)
    assert not torch.allclose(d(x, y), d(x, y.roll(1, dims=1)))  # another label, another verdict


def test_vae_loss_is_bce_summed_over_pixels_plus_kl_by_hand() -> None:
    spec = dataset_spec("mnist")
    torch.manual_seed(0)
    model = create_model("vae", spec)
    assert [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)] == [400, 40, 400, 784]
    pixels = torch.randint(0, 256, (5, 1, 28, 28)).float()
    x = (pixels / 255 - 0.1307) / 0.3081  # how batches arrive: normalised
    torch.manual_seed(1)
    out = model.compute_loss((x, torch.zeros(5, dtype=torch.long)))
    # By hand, as pytorch/examples' vae/main.py: sigmoid decoder, BCE summed, KL in closed form; per image.
    torch.manual_seed(1)
    x01 = pixels / 255
    h = F.relu(model.encoder[1](x01.flatten(1)))
    mu, logvar = model.encoder[3](h).chunk(2, 1)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    recon = torch.sigmoid(model.decoder[2](F.relu(model.decoder[0](z))))
    bce = F.binary_cross_entropy(recon, x01.flatten(1), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    torch.testing.assert_close(out["loss"], (bce + kld) / 5, rtol=1e-5, atol=1e-3)
    assert torch.equal(out["neg_elbo"], out["loss"])  # the VAE's loss says what it is
    torch.testing.assert_close(out["kl"], kld / 5, rtol=1e-5, atol=1e-4)


def test_denoising_noise_is_what_it_says() -> None:
    spec = dataset_spec("mnist")
    x01 = torch.full((2000, 1, 28, 28), 0.5)
    for noise, level, check in [("masking", 0.3, lambda y: (y == 0).float().mean()),
                                ("salt-pepper", 0.2, lambda y: (y != 0.5).float().mean()),
                                ("gaussian", 0.1, lambda y: (y - 0.5).std())]:  # fmt: skip
        m = create_model("denoising-ae", spec, noise=noise, noise_level=level, arch="mlp")
        assert check(m.corrupt(x01, torch.Generator().manual_seed(0))) == pytest.approx(level, rel=0.02)
    with pytest.raises(UserError, match="noise must be one of gaussian, salt-pepper, masking"):
        create_model("denoising-ae", spec, noise="speckle")
    with pytest.raises(UserError, match="noise_level must be positive"):
        create_model("denoising-ae", spec, noise="masking", noise_level=1.5)


# ---- the Fréchet distance -------------------------------------------------------------------------------------
def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 16)) @ rng.normal(size=(16, 16))  # correlated features
    sa = quality.Stats.of(a)
    assert quality.frechet_distance(sa, sa) == pytest.approx(0, abs=1e-6)
    shifts = [quality.frechet_distance(sa, quality.Stats.of(a + s)) for s in (0.5, 1.0, 2.0)]
    assert shifts == pytest.approx([16 * 0.25, 16 * 1.0, 16 * 4.0], rel=1e-6)  # |shift|^2 in 16 dimensions
    # The same as the textbook formula with scipy's matrix square root, on two different sets.
    from scipy import linalg

    sb = quality.Stats.of(rng.normal(size=(3000, 16)) * 1.5 + 0.3)
    covmean = linalg.sqrtm(sa.sigma @ sb.sigma).real
    expected = ((sa.mu - sb.mu) ** 2).sum() + np.trace(sa.sigma + sb.sigma - 2 * covmean)
    assert quality.frechet_distance(sa, sb) == pytest.approx(expected, rel=1e-6)


@pytest.fixture(scope="module")
def digits_judge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier run on the bundled 8x8 digits: the judge of the tests below."""
    cfg = quality.judge_recipe(RunConfig(data=DataConfig(name="digits", val_size=0)), dataset_spec("digits"))
    cfg.train.epochs, cfg.train.num_threads = 8, 1
    out = tmp_path_factory.mktemp("judge") / "run"
    api.train(cfg, out=out, progress=False)
    return out


def test_quality_numbers_flag_collapse(digits_judge: Path) -> None:
    data = load_dataset("digits", val_size=0)
    judge = quality.load_judge(digits_judge, data.spec)
    cpu = torch.device("cpu")
    ref = quality.reference_stats(judge, data.test, 300, cpu)
    real = quality.scores(judge, quality.real_images(data.train, 300), ref, cpu)
    sevens = data.train.x[data.train.y == 7][:300].float() / 255  # a generator that only draws sevens
    collapsed = quality.scores(judge, sevens, ref, cpu, labels=torch.full((len(sevens),), 7))
    assert real["classes_covered"] == 10 and collapsed["classes_covered"] == 1
    assert collapsed["fd"] > 5 * real["fd"]
    assert collapsed["label_accuracy"] > 0.9 and 0.5 < real["confidence"] <= 1
    noise = quality.scores(judge, torch.rand(300, 1, 8, 8), ref, cpu)
    assert noise["fd"] > collapsed["fd"]


def test_a_judge_must_know_the_same_dataset(digits_judge: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="was trained on digits .* but this run uses mnist"):
        quality.load_judge(digits_judge, dataset_spec("mnist"))
    with pytest.raises(UserError, match="is not a folder"):
        quality.load_judge(tmp_path / "nope", dataset_spec("digits"))


# ---- GAN runs: exact resume, per-epoch numbers, divergence -----------------------------------------------------
def _gan_config(judge: str) -> RunConfig:
    return RunConfig(
        recipe="digits-dcgan", model="dcgan",
        model_args={"g_width": 8, "d_width": 8, "latent": 16, "judge": judge, "quality_samples": 200},
        data=DataConfig(name="digits", val_size=0),
        # One thread: these tiny models gain nothing from two, and lose a lot when other processes share the CPU.
        train=TrainConfig(epochs=3, batch_size=128, optimizer="adam", lr=2e-4, betas=[0.5, 0.999], num_threads=1),
    )  # fmt: skip


def test_gan_resumed_from_a_checkpoint_continues_exactly(tmp_path: Path, digits_judge: Path) -> None:
    cfg = _gan_config(str(digits_judge))
    full = api.train(cfg, out=tmp_path / "full", progress=False)
    with pytest.raises(api.Interrupted):
        api.train(cfg, out=tmp_path / "cut", callbacks=[StopAfter(2)], progress=False)
    resumed = api.train(cfg, out=tmp_path / "cut", resume=True, progress=False)
    a = checkpoint.load(tmp_path / "full" / "checkpoints" / "last.pt")
    b = checkpoint.load(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert set(a["optimizers"]) == {"generator", "discriminator"}
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for name in a["optimizers"]:
        for i, state in a["optimizers"][name]["state"].items():
            assert all(torch.equal(v, b["optimizers"][name]["state"][i][k]) for k, v in state.items())

    def strip(h):
        return [{k: v for k, v in e.items() if k not in ("epoch_seconds", "samples_per_s")} for e in h]

    assert strip(full.history) == strip(resumed.history)
    assert {"fd", "confidence", "classes_covered"} <= set(full.history[0])  # per-epoch quality numbers
    lines = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in lines] == [1, 2, 3] and all("fd" in e for e in lines)
    assert full.metrics["test"] == resumed.metrics["test"]
    assert {"fd", "fd_floor", "confidence", "classes_covered"} <= set(full.metrics["test"])
    report = tmp_path / "full" / "report"
    assert sorted(p.name for p in (report / "epochs").iterdir()) == [f"epoch_00{i}.png" for i in (1, 2, 3)]
    from PIL import Image

    with Image.open(report / "progress.gif") as gif:
        assert gif.n_frames == 3
    assert {"samples.png", "walk.png", "quality.png", "curves.png"} <= {p.name for p in report.iterdir()}


def test_auto_judge_is_trained_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _gan_config("auto")
    cfg.train.epochs, cfg.train.max_steps = 1, 2
    api.train(cfg, out=tmp_path / "a", progress=False)
    judges = list((tmp_path / "cache" / "nnzoo" / "judges").iterdir())
    assert len(judges) == 1 and judges[0].name.startswith("digits-") and (judges[0] / "metrics.json").is_file()
    calls = []
    monkeypatch.setattr(quality, "train", lambda *a, **k: calls.append(a))  # a second run must not train another
    assert quality.auto_judge(cfg, load_dataset(cfg.data)) == judges[0] and not calls


def test_diverging_gan_stops_with_a_sentence_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    class Poison(Callback):
        def on_epoch_begin(self, trainer, epoch):
            if epoch == 1:
                with torch.no_grad():
                    for p in trainer.model.generator.parameters():
                        p.fill_(math.nan)

    cfg = _gan_config("none")
    with pytest.raises(TrainingDiverged, match="diverged in epoch 2.*last good checkpoint is kept"):
        api.train(cfg, out=tmp_path / "r", callbacks=[Poison()], progress=False)
    good = checkpoint.load(tmp_path / "r" / "checkpoints" / "last.pt")
    assert good["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in good["model"].values() if v.is_floating_point())


def test_betas_are_checked() -> None:
    with pytest.raises(UserError, match="train.betas must be two numbers in \\[0, 1\\)"):
        TrainConfig(betas=[0.5]).validate()
