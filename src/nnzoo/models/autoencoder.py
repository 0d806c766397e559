"""Autoencoders: a plain MLP and a convolutional one, a denoising one and the variational autoencoder (VAE).

Pixel range. Batches arrive normalised, ``(x / 255 - mean) / std`` (data/batches.py). An autoencoder models pixel
intensities in [0, 1] with a Bernoulli likelihood, so every model here first maps the batch back with
``x * std + mean`` (:meth:`Autoencoder.to_unit`) and works in [0, 1] from there: the encoder sees [0, 1] inputs,
as in pytorch/examples' VAE, and the decoder returns logits whose sigmoid is the reconstructed image.

Losses are per image: summed over the pixels, averaged over the batch, so a VAE's loss is its negative ELBO in
nats per image, the number pytorch/examples prints (it sums over the batch too and divides by the dataset size;
Adam's steps do not depend on that constant factor).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..data.spec import DataSpec
from ..errors import UserError
from .base import Batch, Metrics, Model
from .registry import MODELS

NOISE_TYPES = ("gaussian", "salt-pepper", "masking")


def mlp_coder(input_shape: tuple[int, ...], hidden: list[int], code: int, latent: int) -> tuple[nn.Module, nn.Module]:
    """Encoder ``flatten -> [Linear -> ReLU] * len(hidden) -> Linear(code)`` and the mirrored decoder from
    ``latent``, ending in one logit per pixel. (A VAE's code is 2 * latent: mean and log-variance.)"""
    n = math.prod(input_shape)
    enc: list[nn.Module] = [nn.Flatten()]  # (B, C, H, W) -> (B, C*H*W)
    width = n
    for h in hidden:
        enc += [nn.Linear(width, h), nn.ReLU()]
        width = h
    enc.append(nn.Linear(width, code))  # (B, code)
    dec: list[nn.Module] = []
    width = latent
    for h in reversed(hidden):
        dec += [nn.Linear(width, h), nn.ReLU()]
        width = h
    dec += [nn.Linear(width, n), nn.Unflatten(1, tuple(input_shape))]  # (B, C, H, W) logits
    return nn.Sequential(*enc), nn.Sequential(*dec)


def conv_coder(input_shape: tuple[int, ...], channels: list[int], code: int, latent: int,
               model_name: str) -> tuple[nn.Module, nn.Module]:  # fmt: skip
    """Strided 4x4 convolutions halve the image per layer (28 -> 14 -> 7), a linear layer makes the code; the
    decoder mirrors it with 4x4 transposed convolutions that double it (7 -> 14 -> 28)."""
    c, h, w = input_shape
    k = 2 ** len(channels)
    if h % k or w % k:
        raise UserError(f"{model_name} with {len(channels)} conv layers needs image sides divisible by {k}, "
                        f"but this dataset's images are {h}x{w}.")  # fmt: skip
    hs, ws = h // k, w // k
    enc: list[nn.Module] = []
    width = c
    for ch in channels:
        enc += [nn.Conv2d(width, ch, 4, stride=2, padding=1), nn.ReLU()]  # (B, ch, H/2, W/2)
        width = ch
    enc += [nn.Flatten(), nn.Linear(width * hs * ws, code)]  # (B, code)
    dec: list[nn.Module] = [nn.Linear(latent, width * hs * ws), nn.ReLU(), nn.Unflatten(1, (width, hs, ws))]
    for ch in list(reversed(channels))[1:] + [c]:
        dec.append(nn.ConvTranspose2d(width, ch, 4, stride=2, padding=1))  # (B, ch, 2H, 2W)
        if ch != c:
            dec.append(nn.ReLU())
        width = ch
    return nn.Sequential(*enc), nn.Sequential(*dec)  # decoder: (B, latent) -> (B, C, H, W) logits


class Autoencoder(Model):
    loss_meaning = "reconstruction loss, nats per image: BCE summed over the pixels (loss=mse: MSE times the pixels)"
    """x -> encoder -> z -> decoder -> logits; trained to reconstruct x (BCE summed over pixels, or MSE)."""

    task = "autoencoder"
    can_sample = False  # a plain autoencoder has no prior to draw codes from

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent: int, spec: DataSpec, loss: str = "bce"):
        super().__init__()
        if loss not in ("bce", "mse"):
            raise UserError(f"loss must be bce or mse, not {loss!r}.")
        self.encoder, self.decoder = encoder, decoder
        self.latent, self.loss_name = latent, loss
        self.image_shape = tuple(spec.input_shape)
        shape = (1, -1) + (1,) * (len(spec.input_shape) - 1)
        mean = torch.tensor(spec.mean or (0.0,) * spec.input_shape[0]).view(shape)
        std = torch.tensor(spec.std or (1.0,) * spec.input_shape[0]).view(shape)
        # Not saved in checkpoints: they come from the spec, which is.
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    # ---- pixel ranges ----------------------------------------------------------------------------------------
    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Undo the batches' normalisation: back to pixel intensities in [0, 1]."""
        return (x.float() * self.std + self.mean).clamp(0, 1)

    # ---- the network -----------------------------------------------------------------------------------------
    def encode(self, x01: torch.Tensor) -> torch.Tensor:
        """The code of images in [0, 1] (a VAE: the posterior mean)."""
        return self.encoder(x01)  # (B, latent)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for codes z."""
        return torch.sigmoid(self.decoder(z).float())  # (B, C, H, W)

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        """Reconstructions in [0, 1] of images in [0, 1]."""
        return self.decode(self.encode(x01))

    # ---- the loss --------------------------------------------------------------------------------------------
    def reconstruction_terms(self, logits: torch.Tensor, x01: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image BCE (nats, summed over pixels), per-pixel MSE and PSNR (dB), each of shape (B,)."""
        logits = logits.float()  # the losses in fp32 even under bf16 autocast
        # BCE on logits: the sigmoid and the log fused, stable where sigmoid(logit) rounds to 0 or 1.
        bce = F.binary_cross_entropy_with_logits(logits, x01, reduction="none").flatten(1).sum(1)
        mse = (torch.sigmoid(logits) - x01).pow(2).flatten(1).mean(1)
        return {"bce": bce, "mse": mse, "psnr": psnr(mse)}

    def compute_loss(self, batch: Batch) -> Metrics:
        x01 = self.to_unit(batch[0])
        terms = self.reconstruction_terms(self.decoder(self.encode(x01)), x01)
        # MSE summed over pixels (not averaged) so its gradient has the same scale per image as BCE's.
        loss = terms["bce"] if self.loss_name == "bce" else terms["mse"] * x01[0].numel()
        return {"loss": loss.mean(), **{k: v.mean() for k, v in terms.items()}}


def psnr(mse: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of images in [0, 1]: 10 log10(1 / MSE), per image."""
    return 10 * torch.log10(1 / mse.clamp(min=1e-10))


class DenoisingAutoencoder(Autoencoder):
    """Reconstructs the clean image from a corrupted one (Vincent, Larochelle, Bengio & Manzagol 2008, "Extracting
    and composing robust features with denoising autoencoders"): gaussian noise ``x + level * N(0, 1)`` clipped
    to [0, 1], salt-and-pepper (a ``level`` fraction of pixels set to 0 or 1) or the paper's masking noise (a
    ``level`` fraction set to 0)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent: int, spec: DataSpec, loss: str = "bce",
                 noise: str = "gaussian", noise_level: float = 0.5):  # fmt: skip
        super().__init__(encoder, decoder, latent, spec, loss)
        if noise not in NOISE_TYPES:
            raise UserError(f"noise must be one of {', '.join(NOISE_TYPES)}, not {noise!r}.")
        if not (0 < noise_level and (noise == "gaussian" or noise_level < 1)):
            raise UserError(f"noise_level must be positive (and below 1 for {noise} noise), not {noise_level}.")
        self.noise, self.noise_level = noise, noise_level

    def corrupt(self, x01: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A noisy copy of images in [0, 1]; fresh noise on every call (a fixed ``generator`` for pictures)."""
        if self.noise == "gaussian":
            n = torch.randn(x01.shape, generator=generator, device=x01.device)
            return (x01 + self.noise_level * n).clamp(0, 1)
        u = torch.rand(x01.shape, generator=generator, device=x01.device)
        hit = u < self.noise_level
        if self.noise == "masking":
            return x01.masked_fill(hit, 0.0)
        salt = u < self.noise_level / 2  # half of the hit pixels white, half black
        return torch.where(hit, salt.float(), x01)

    def compute_loss(self, batch: Batch) -> Metrics:
        x01 = self.to_unit(batch[0])
        noisy = self.corrupt(x01)
        terms = self.reconstruction_terms(self.decoder(self.encode(noisy)), x01)  # against the clean image
        loss = terms["bce"] if self.loss_name == "bce" else terms["mse"] * x01[0].numel()
        psnr_noisy = psnr((noisy - x01).pow(2).flatten(1).mean(1))
        return {"loss": loss.mean(), **{k: v.mean() for k, v in terms.items()}, "psnr_noisy": psnr_noisy.mean()}


class VAE(Autoencoder):
    """Variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes").

    The encoder gives the mean and log-variance of a diagonal Gaussian q(z|x); z = mu + sigma * eps with
    eps ~ N(0, I) (the reparameterisation trick, section 2.4); the decoder gives Bernoulli logits p(x|z). The loss
    is the negative ELBO per image: BCE summed over pixels plus KL(q(z|x) || N(0, I)) in closed form (appendix B),
    exactly as pytorch/examples' vae/main.py. Like that example, evaluation draws one z per image too, so test
    losses are the same single-sample estimate and comparable with its 105.6 on MNIST after 10 epochs.
    """

    loss_meaning = "negative ELBO, nats per image (BCE summed over the pixels + KL); also logged as neg_elbo"

    can_sample = True

    def encode_dist(self, x01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x01).float().chunk(2, dim=1)  # (B, 2 * latent) -> 2 x (B, latent)
        return mu, logvar

    def encode(self, x01: torch.Tensor) -> torch.Tensor:
        return self.encode_dist(x01)[0]

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def compute_loss(self, batch: Batch) -> Metrics:
        x01 = self.to_unit(batch[0])
        mu, logvar = self.encode_dist(x01)
        z = self.reparameterize(mu, logvar)
        terms = self.reconstruction_terms(self.decoder(z), x01)
        # -KL(q(z|x) || N(0, I)) = 1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2)   (Kingma & Welling, appendix B)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        neg_elbo = (terms["bce"] + kl).mean()
        return {"loss": neg_elbo, "neg_elbo": neg_elbo, **{k: v.mean() for k, v in terms.items()}, "kl": kl.mean()}

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images in [0, 1] decoded from the prior N(0, I)."""
        device = self.mean.device
        z = torch.randn(n, self.latent, generator=generator).to(device)  # drawn on the CPU: same on every device
        return self.decode(z)


# ---- builders ------------------------------------------------------------------------------------------------
def _sizes(name: str, values: list[int] | int, what: str) -> list[int]:
    sizes = [values] if isinstance(values, int) else list(values)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes):
        raise UserError(f"{name} {what} must be positive whole numbers, not {values!r}.")
    return sizes


def _latent(name: str, latent: int) -> int:
    if not isinstance(latent, int) or isinstance(latent, bool) or latent < 1:
        raise UserError(f"{name} latent must be a positive whole number, not {latent!r}.")
    return latent


@MODELS.register("ae", help="MLP autoencoder (784-400-20 by default, like the VAE): BCE or MSE reconstruction")
def ae(spec: DataSpec, hidden: list[int] | int = (400,), latent: int = 20, loss: str = "bce") -> Autoencoder:
    latent = _latent("ae", latent)
    enc, dec = mlp_coder(spec.input_shape, _sizes("ae", hidden, "hidden sizes"), latent, latent)
    return Autoencoder(enc, dec, latent, spec, loss)


@MODELS.register("conv-ae", help="Convolutional autoencoder: strided convs down to a code, transposed convs back up")
def conv_ae(spec: DataSpec, channels: list[int] | int = (32, 64), latent: int = 32, loss: str = "bce") -> Autoencoder:
    latent = _latent("conv-ae", latent)
    enc, dec = conv_coder(spec.input_shape, _sizes("conv-ae", channels, "channels"), latent, latent, "conv-ae")
    return Autoencoder(enc, dec, latent, spec, loss)


@MODELS.register("denoising-ae", help="Denoising autoencoder (Vincent et al. 2008): gaussian, salt-pepper or masking")
def denoising_ae(spec: DataSpec, noise: str = "gaussian", noise_level: float = 0.5, arch: str = "conv",
                 channels: list[int] | int = (32, 64), hidden: list[int] | int = (400,), latent: int = 32,
                 loss: str = "bce") -> DenoisingAutoencoder:  # fmt: skip
    latent = _latent("denoising-ae", latent)
    if arch == "conv":
        enc, dec = conv_coder(spec.input_shape, _sizes("denoising-ae", channels, "channels"), latent, latent,
                              "denoising-ae")  # fmt: skip
    elif arch == "mlp":
        enc, dec = mlp_coder(spec.input_shape, _sizes("denoising-ae", hidden, "hidden sizes"), latent, latent)
    else:
        raise UserError(f"denoising-ae arch must be conv or mlp, not {arch!r}.")
    return DenoisingAutoencoder(enc, dec, latent, spec, loss, noise, noise_level)


@MODELS.register("vae", help="Variational autoencoder (Kingma & Welling 2014), the classic MLP 784-400-20")
def vae(spec: DataSpec, hidden: list[int] | int = (400,), latent: int = 20, judge: str = "none",
        quality_samples: int = 10_000) -> VAE:  # fmt: skip
    """``judge``: "none", "auto" or a classifier run folder, to score samples like a GAN's (see nnzoo/tasks/generative);
    ``quality_samples``: how many samples it scores. The network does not use either."""
    latent = _latent("vae", latent)
    enc, dec = mlp_coder(spec.input_shape, _sizes("vae", hidden, "hidden sizes"), 2 * latent, latent)
    return VAE(enc, dec, latent, spec)


@MODELS.register("conv-vae", help="Convolutional VAE: strided conv encoder, transposed conv decoder, 20-d latent")
def conv_vae(spec: DataSpec, channels: list[int] | int = (32, 64), latent: int = 20, judge: str = "none",
             quality_samples: int = 10_000) -> VAE:  # fmt: skip
    latent = _latent("conv-vae", latent)
    enc, dec = conv_coder(spec.input_shape, _sizes("conv-vae", channels, "channels"), 2 * latent, latent, "conv-vae")
    return VAE(enc, dec, latent, spec)
