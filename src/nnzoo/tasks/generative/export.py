"""What `nnzoo export` writes for the generative family, in the pixel range of every other nnzoo image (0..1):

- a GAN (gan, dcgan): its generator, noise (B, latent) -> images (B, C, H, W);
- a conditional GAN (cgan): noise (B, latent) and labels (B,) int64 -> images; the one-hot coding is in the graph;
- a VAE (vae, conv-vae): its decoder, latent codes (B, latent) -> pixel probabilities (B, C, H, W); codes drawn
  from N(0, I) give new images, as ``nnzoo generate`` does;
- a plain or denoising autoencoder (ae, conv-ae, denoising-ae): images (B, C, H, W) -> reconstructions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ...export import ExportPlan, real_test_inputs

if TYPE_CHECKING:
    from ...runs import LoadedRun

CHECK = 5  # the check's batch (traced: 2)


class Generator(nn.Module):
    """noise (B, latent) -> images (B, C, H, W) in 0..1: G's tanh output mapped from [-1, 1]."""

    def __init__(self, gan: nn.Module):
        super().__init__()
        self.gan = gan

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return (self.gan(noise) + 1) / 2


class ConditionalGenerator(Generator):
    """noise (B, latent) and labels (B,) int64 -> images (B, C, H, W) in 0..1 of those classes."""

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return (self.gan(noise, labels) + 1) / 2


class Decoder(nn.Module):
    """latent (B, latent) -> pixel probabilities (B, C, H, W): the VAE's Bernoulli means."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent)


def gan_plan(run: LoadedRun) -> ExportPlan:
    model = run.model.eval()
    z = model.latent
    g = torch.Generator().manual_seed(0)
    noise, check = torch.randn(2, z, generator=g), torch.randn(CHECK, z, generator=g)
    images = "(batch, C, H, W) float32 images in 0..1"
    docs = {"noise": f"(batch, {z}) float32 draws from N(0, 1)", "images": images}
    meta = {"latent": z, "image_shape": list(model.image_shape)}
    if not model.conditional:
        return ExportPlan(Generator(model).eval(), (noise,), (check,), ["noise"], ["images"], docs=docs, meta=meta)
    k = model.num_classes
    docs.update(labels=f"(batch,) int64 class numbers, 0 to {k - 1}: the class of each image",
                images=f"{images}, each of its label's class")  # fmt: skip
    meta["class_names"] = run.spec.class_names
    labels = torch.arange(CHECK) % k  # the check draws several classes
    return ExportPlan(ConditionalGenerator(model).eval(), (noise, torch.tensor([0, k - 1])), (check, labels),
                      ["noise", "labels"], ["images"], docs=docs, meta=meta)  # fmt: skip


def autoencoder_plan(run: LoadedRun) -> ExportPlan:
    """A model with a prior to sample from (a VAE) exports its decoder; the others image -> reconstruction."""
    model = run.model.eval()
    shape = tuple(model.image_shape)
    meta = {"latent": model.latent, "image_shape": list(shape)}
    if getattr(model, "can_sample", False):
        g = torch.Generator().manual_seed(0)
        docs = {"latent": f"(batch, {model.latent}) float32 codes; draws from N(0, 1) give new images",
                "images": "(batch, C, H, W) float32 pixel probabilities in 0..1"}  # fmt: skip
        return ExportPlan(Decoder(model).eval(), (torch.randn(2, model.latent, generator=g),),
                          (torch.randn(CHECK, model.latent, generator=g),), ["latent"], ["images"], docs=docs,
                          meta=meta)  # fmt: skip
    real, notes = real_test_inputs(run, CHECK)
    check = real.float() / 255 if real is not None else torch.rand(CHECK, *shape)
    docs = {"pixels": "(batch, C, H, W) float32 images in 0..1",
            "reconstruction": "(batch, C, H, W) float32 reconstructed images in 0..1"}  # fmt: skip
    return ExportPlan(model, (torch.rand(2, *shape),), (check,), ["pixels"], ["reconstruction"], notes, docs=docs,
                      meta=meta)  # fmt: skip
