"""Generative adversarial networks: an MLP GAN, DCGAN and a class-conditional GAN.

One training step (Goodfellow et al. 2014, "Generative Adversarial Nets", algorithm 1, with the non-saturating
generator loss of its section 3): the discriminator D learns to tell real images (target 1) from generated ones
(target 0); then the generator G learns to make D say 1 for its images. D returns logits and the losses are
``binary_cross_entropy_with_logits``: the log and sigmoid fused, stable where D is very sure.

The model overrides ``train_step`` and hands each loss to ``trainer.optimize(loss, name)``, so AMP, clipping,
schedules, checkpoints and exact resume (both networks, both optimizers, RNG) are the trainer's.

Pixel range: G ends in tanh, so it makes images in [-1, 1]; real batches arrive normalised, ``(x / 255 - mean) /
std`` (data/batches.py), and are mapped to the same range with ``2 * (x * std + mean) - 1`` before D sees them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..data.spec import DataSpec
from ..errors import UserError
from .base import Batch, Metrics, Model
from .registry import MODELS

if TYPE_CHECKING:
    from ..trainer import Trainer


# ---- networks --------------------------------------------------------------------------------------------------
class MLPGenerator(nn.Module):
    """z (+ one-hot label) -> [Linear -> (BatchNorm) -> LeakyReLU(0.2)] per hidden size -> Linear -> tanh."""

    def __init__(self, latent: int, image_shape: tuple[int, ...], hidden: list[int], num_classes: int = 0):
        super().__init__()
        self.image_shape = image_shape
        layers: list[nn.Module] = []
        width = latent + num_classes
        for i, h in enumerate(hidden):
            layers.append(nn.Linear(width, h))
            if i:  # no batch norm right on the noise (as in the widely used PyTorch-GAN implementation)
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.LeakyReLU(0.2))
            width = h
        layers += [nn.Linear(width, math.prod(image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = z if y is None else torch.cat([z, y], 1)  # (B, latent + classes)
        return self.net(h).view(-1, *self.image_shape)  # (B, C, H, W) in [-1, 1]


class MLPDiscriminator(nn.Module):
    """image (+ one-hot label) -> [Linear -> LeakyReLU(0.2)] per hidden size -> Linear(1): a logit per image."""

    def __init__(self, image_shape: tuple[int, ...], hidden: list[int], num_classes: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        width = math.prod(image_shape) + num_classes
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = x.flatten(1) if y is None else torch.cat([x.flatten(1), y], 1)
        return self.net(h).squeeze(1)  # (B,)


class ConvGenerator(nn.Module):
    """DCGAN's generator (Radford, Metz & Chintala 2016) for 28x28: project z to a (2w, 7, 7) map, then 4x4
    transposed convolutions with stride 2 up to 14x14 and 28x28; batch norm and ReLU after every layer but the
    last, which is tanh (the paper's guidelines)."""

    def __init__(self, latent: int, image_shape: tuple[int, ...], width: int, num_classes: int = 0):
        super().__init__()
        c, h, w = image_shape
        self.start = (2 * width, h // 4, w // 4)
        self.project = nn.Sequential(
            nn.Linear(latent + num_classes, math.prod(self.start), bias=False),  # the bias is batch norm's job
            nn.Unflatten(1, self.start), nn.BatchNorm2d(2 * width), nn.ReLU(),  # (B, 2w, H/4, W/4)
        )  # fmt: skip
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),  # (B, w, H/2, W/2)
            nn.ConvTranspose2d(width, c, 4, 2, 1), nn.Tanh(),  # (B, C, H, W) in [-1, 1]
        )  # fmt: skip

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = z if y is None else torch.cat([z, y], 1)
        return self.up(self.project(h))


class ConvDiscriminator(nn.Module):
    """DCGAN's discriminator: 4x4 convolutions with stride 2 instead of pooling (28 -> 14 -> 7), LeakyReLU(0.2),
    batch norm on every layer but the input layer, then one logit.

    A conditional one sees the label in one of two ways (``condition``):

    - ``planes``: as extra constant input planes, one per class (Mirza & Osindero's concatenation, in conv form);
    - ``projection``: the projection discriminator of Miyato & Koyama (2018, "cGANs with Projection
      Discriminator"): logit = psi(phi(x)) + <embed(y), phi(x)>, the inner product of the image's features with a
      learned vector per class. The label then acts on what D has found in the image, which makes D far more
      sensitive to a wrong class than planes at the input are.
    """

    def __init__(self, image_shape: tuple[int, ...], width: int, num_classes: int = 0, condition: str = "planes"):
        super().__init__()
        c, h, w = image_shape
        self.planes = num_classes if condition == "planes" else 0
        features = 2 * width * (h // 4) * (w // 4)
        self.features = nn.Sequential(
            nn.Conv2d(c + self.planes, width, 4, 2, 1), nn.LeakyReLU(0.2),  # (B, w, H/2, W/2)
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),  # (B, 2w, H/4, W/4)
            nn.Flatten(),  # (B, features): phi(x)
        )  # fmt: skip
        self.out = nn.Linear(features, 1)  # psi
        # One vector per class, applied to the one-hot label: embed(y) = y @ W, (B, features).
        self.embed = nn.Linear(num_classes, features, bias=False) if num_classes and not self.planes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is not None and self.planes:
            planes = y[:, :, None, None].expand(-1, -1, *x.shape[2:]).to(x.dtype)  # (B, classes, H, W)
            x = torch.cat([x, planes], 1)
        phi = self.features(x)  # (B, features)
        logit = self.out(phi).squeeze(1)  # (B,)
        if y is not None and self.embed is not None:
            logit = logit + (self.embed(y.to(phi.dtype)) * phi).sum(1)
        return logit


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: weights from N(0, 0.02); batch norm scales from N(1, 0.02), shifts 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# ---- the model -------------------------------------------------------------------------------------------------
class GAN(Model):
    """A generator and a discriminator trained against each other; conditional when ``num_classes`` > 0 (Mirza &
    Osindero 2014, "Conditional Generative Adversarial Nets": both networks also see the one-hot label)."""

    loss_meaning = "d_loss + g_loss, a sum of the two players' BCE losses: no measure of quality (watch fd)"

    task = "gan"
    can_sample = True

    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent: int, spec: DataSpec,
                 num_classes: int = 0):  # fmt: skip
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.latent, self.num_classes = latent, num_classes
        self.image_shape = tuple(spec.input_shape)
        shape = (1, -1) + (1,) * (len(spec.input_shape) - 1)
        self.register_buffer("mean", torch.tensor(spec.mean or (0.0,) * spec.input_shape[0]).view(shape), False)
        self.register_buffer("std", torch.tensor(spec.std or (1.0,) * spec.input_shape[0]).view(shape), False)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def optimizer_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"generator": list(self.generator.parameters()), "discriminator": list(self.discriminator.parameters())}

    def to_pm1(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised batch -> [-1, 1], the range of G's tanh."""
        return (x.float() * self.std + self.mean).clamp(0, 1) * 2 - 1

    def one_hot(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        return F.one_hot(labels, self.num_classes).float() if self.conditional and labels is not None else None

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] for noise z (and labels, for a conditional GAN; class 0 when none are given)."""
        if self.conditional and labels is None:
            labels = torch.zeros(len(z), dtype=torch.long, device=z.device)
        return self.generator(z, self.one_hot(labels))

    def example_input(self) -> torch.Tensor:
        return torch.zeros(1, self.latent)  # for `nnzoo summary`: the generator's input

    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """n images in [0, 1]; noise drawn on the CPU, so a seed gives the same images on every device."""
        device = self.mean.device
        z = torch.randn(n, self.latent, generator=generator).to(device)
        if self.conditional and labels is None:
            labels = torch.randint(self.num_classes, (n,), generator=generator)
        labels = labels.to(device) if labels is not None else None
        return (self(z, labels).float() + 1) / 2

    def _losses(self, real: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        b = len(real)
        z = torch.randn(b, self.latent, device=real.device)
        fake_y = torch.randint(self.num_classes, (b,), device=real.device) if self.conditional else None
        fake = self(z, fake_y)  # (B, C, H, W) in [-1, 1]
        d_real = self.discriminator(real, self.one_hot(y)).float()  # logits, (B,)
        d_fake = self.discriminator(fake.detach(), self.one_hot(fake_y)).float()
        # D: maximise log D(x) + log(1 - D(G(z)))
        d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))  # fmt: skip
        return d_loss, d_real, d_fake, fake, fake_y

    def _g_loss(self, fake: torch.Tensor, fake_y: torch.Tensor | None) -> torch.Tensor:
        # G: maximise log D(G(z)) (non-saturating; minimising log(1 - D(G(z))) gives G no gradient early on)
        logits = self.discriminator(fake, self.one_hot(fake_y)).float()
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    def train_step(self, batch: Batch, trainer: Trainer) -> Metrics:
        x, y = batch
        d_loss, d_real, d_fake, fake, fake_y = self._losses(self.to_pm1(x), y)
        trainer.optimize(d_loss, "discriminator")
        # G's step back-propagates through D but must not compute gradients for D's weights: freeze them.
        self.discriminator.requires_grad_(False)
        try:
            g_loss = self._g_loss(fake, fake_y)  # D already updated, as in pytorch/examples' dcgan
            trainer.optimize(g_loss, "generator")
        finally:
            self.discriminator.requires_grad_(True)
        return self._metrics(d_loss, g_loss, d_real, d_fake)

    def compute_loss(self, batch: Batch) -> Metrics:
        """Both losses on a batch without training (validation and test)."""
        x, y = batch
        d_loss, d_real, d_fake, fake, fake_y = self._losses(self.to_pm1(x), y)
        return self._metrics(d_loss, self._g_loss(fake, fake_y), d_real, d_fake)

    @staticmethod
    def _metrics(d_loss: torch.Tensor, g_loss: torch.Tensor, d_real: torch.Tensor, d_fake: torch.Tensor) -> Metrics:
        return {
            "loss": (d_loss + g_loss).detach(),  # logged for the common curves; watch d_loss, g_loss and fd
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "d_real": torch.sigmoid(d_real.detach()).mean(),  # D's mean belief that real images are real
            "d_fake": torch.sigmoid(d_fake.detach()).mean(),  # ... and that generated ones are
        }


# ---- builders ------------------------------------------------------------------------------------------------
def _check(name: str, latent: int, width_or_hidden: object, spec: DataSpec, conv: bool) -> None:
    if not isinstance(latent, int) or isinstance(latent, bool) or latent < 1:
        raise UserError(f"{name} latent must be a positive whole number, not {latent!r}.")
    values = [width_or_hidden] if isinstance(width_or_hidden, int) else list(width_or_hidden)  # type: ignore[arg-type]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise UserError(f"{name} layer sizes must be positive whole numbers, not {width_or_hidden!r}.")
    if conv and (len(spec.input_shape) != 3 or spec.input_shape[1] % 4 or spec.input_shape[2] % 4):
        raise UserError(f"{name} needs images with sides divisible by 4 (28x28, 32x32), but this dataset's "
                        f"inputs are {'x'.join(map(str, spec.input_shape[1:]))}.")  # fmt: skip


def _judge(name: str, judge: object, quality_samples: object) -> None:
    # Read by the gan task (nnzoo/tasks/generative), which scores samples; the networks do not use them.
    if not isinstance(judge, str) or not judge:
        raise UserError(f"{name} judge must be auto, none or a classifier run folder, not {judge!r}.")
    if not isinstance(quality_samples, int) or isinstance(quality_samples, bool) or quality_samples < 2:
        raise UserError(f"{name} quality_samples must be a whole number of at least 2, not {quality_samples!r}.")


@MODELS.register("gan", help="GAN (Goodfellow et al. 2014) with MLP generator and discriminator")
def gan(spec: DataSpec, latent: int = 100, g_hidden: list[int] | int = (256, 512, 1024),
        d_hidden: list[int] | int = (512, 256), judge: str = "auto", quality_samples: int = 10_000) -> GAN:  # fmt: skip
    """``judge``: "auto" (a SimpleCNN trained once on the dataset and cached), "none", or a classifier run folder;
    its features give the per-epoch Fréchet distance of ``quality_samples`` samples."""
    _check("gan", latent, g_hidden, spec, conv=False)
    _check("gan", latent, d_hidden, spec, conv=False)
    _judge("gan", judge, quality_samples)
    g = [g_hidden] if isinstance(g_hidden, int) else list(g_hidden)
    d = [d_hidden] if isinstance(d_hidden, int) else list(d_hidden)
    return GAN(MLPGenerator(latent, spec.input_shape, g), MLPDiscriminator(spec.input_shape, d), latent, spec)


@MODELS.register("dcgan", help="DCGAN (Radford et al. 2016) for 28x28: transposed convs in G, strided convs in D")
def dcgan(spec: DataSpec, latent: int = 100, g_width: int = 64, d_width: int = 64, judge: str = "auto",
          quality_samples: int = 10_000) -> GAN:  # fmt: skip
    _check("dcgan", latent, [g_width, d_width], spec, conv=True)
    _judge("dcgan", judge, quality_samples)
    model = GAN(ConvGenerator(latent, spec.input_shape, g_width), ConvDiscriminator(spec.input_shape, d_width),
                latent, spec)  # fmt: skip
    model.apply(dcgan_init)
    return model


@MODELS.register(
    "cgan", help="Class-conditional GAN (Mirza & Osindero 2014), DCGAN or MLP networks: --label draws a class"
)
def cgan(spec: DataSpec, arch: str = "conv", latent: int = 100, g_width: int = 64, d_width: int = 64,
         g_hidden: list[int] | int = (256, 512, 1024), d_hidden: list[int] | int = (512, 256), judge: str = "auto",
         quality_samples: int = 10_000, condition: str = "planes") -> GAN:  # fmt: skip
    """``condition`` (conv only): how D sees the label, ``planes`` or ``projection`` (see ConvDiscriminator)."""
    k = spec.num_classes
    if k < 2:
        raise UserError(f"cgan needs a dataset with class labels, but {spec.name} has {k} classes.")
    _judge("cgan", judge, quality_samples)
    if condition not in ("planes", "projection"):
        raise UserError(f"cgan condition must be planes or projection, not {condition!r}.")
    if arch == "conv":
        _check("cgan", latent, [g_width, d_width], spec, conv=True)
        model = GAN(ConvGenerator(latent, spec.input_shape, g_width, k),
                    ConvDiscriminator(spec.input_shape, d_width, k, condition), latent, spec, k)  # fmt: skip
        model.apply(dcgan_init)
        return model
    if arch == "mlp":
        _check("cgan", latent, g_hidden, spec, conv=False)
        _check("cgan", latent, d_hidden, spec, conv=False)
        g = [g_hidden] if isinstance(g_hidden, int) else list(g_hidden)
        d = [d_hidden] if isinstance(d_hidden, int) else list(d_hidden)
        return GAN(MLPGenerator(latent, spec.input_shape, g, k), MLPDiscriminator(spec.input_shape, d, k), latent,
                   spec, k)  # fmt: skip
    raise UserError(f"cgan arch must be conv or mlp, not {arch!r}.")
