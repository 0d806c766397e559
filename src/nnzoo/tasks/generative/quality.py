"""Numbers that say whether generated images are good, measured by a judge: an nnzoo classifier trained on the
same dataset.

* Fréchet distance (Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter 2017, "GANs Trained by a Two Time-Scale
  Update Rule Converge to a Local Nash Equilibrium", eq. 6) between Gaussians fitted to the judge's penultimate-
  layer features of real and of generated images. This is *not* the Inception FID: that needs Inception-v3's
  ImageNet weights, which cannot be downloaded here and know little about 28x28 digits anyway. Values are
  comparable between runs scored by the same judge with the same number of samples, not with published FIDs.
* The judge's mean confidence (top softmax probability) on generated images: low when samples are ambiguous.
* Classes covered: how many classes receive at least a fifth of their fair share (n / classes / 5) of the
  judge's predictions; a collapsing GAN covers few.
* Label accuracy (conditional models): how often the judge agrees with the label the samples were drawn for.

The judge is a run folder (``--set model_args.judge=RUN_DIR``) or, by default for GANs, a SimpleCNN that nnzoo
trains once per dataset (3 epochs of Adam) and caches in ``cache_dir()/judges/DATASET-FINGERPRINT/``
(``~/.cache/nnzoo/`` on Linux); the fingerprint is a hash of the training images, so a judge is never reused for
other data under the same name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ...config import RunConfig, TrainConfig
from ...data.sources import cache_dir
from ...data.spec import DataSpec, Split
from ...errors import UserError
from ...models import MODELS
from ...runs import load_run
from ...training import train

if TYPE_CHECKING:
    from ...data.spec import Dataset

JUDGE_VERSION = 1  # part of the cache key: bump when the judge recipe below changes
BATCH = 500


# ---- the Fréchet distance ----------------------------------------------------------------------------------------
@dataclass
class Stats:
    """Mean and covariance of a set of feature vectors."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int

    @classmethod
    def of(cls, features: np.ndarray) -> Stats:
        f = np.asarray(features, dtype=np.float64)
        if len(f) < 2:
            raise ValueError("the Fréchet distance needs at least 2 samples per set")
        return cls(f.mean(0), np.cov(f, rowvar=False), len(f))


def frechet_distance(a: Stats, b: Stats) -> float:
    """d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))  (Heusel et al. 2017, eq. 6).

    The trace of the square root is computed stably: S_a S_b is not symmetric, but it has the same eigenvalues as
    the symmetric positive semi-definite S_a^(1/2) S_b S_a^(1/2), so Tr((S_a S_b)^(1/2)) is the sum of the square
    roots of that matrix's eigenvalues (``eigvalsh``, clipped at 0 against rounding). This avoids the complex
    results and the epsilon retries that ``scipy.linalg.sqrtm`` needs on near-singular covariances.
    """
    w, v = np.linalg.eigh(a.sigma)
    root_a = (v * np.sqrt(w.clip(min=0))) @ v.T  # S_a^(1/2)
    m = root_a @ b.sigma @ root_a
    tr_sqrt = np.sqrt(np.linalg.eigvalsh((m + m.T) / 2).clip(min=0)).sum()
    d = float(((a.mu - b.mu) ** 2).sum() + np.trace(a.sigma) + np.trace(b.sigma) - 2 * tr_sqrt)
    return max(d, 0.0)  # rounding can leave -1e-12 for identical sets


# ---- the judge -----------------------------------------------------------------------------------------------------
class Judge:
    """A trained nnzoo classifier seen as a feature extractor: features are the input of its last linear layer
    (the penultimate layer: 128 values for SimpleCNN), probabilities its softmax."""

    def __init__(self, model: nn.Module, spec: DataSpec, source: Path):
        self.model, self.spec, self.source = model.eval(), spec, source
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise UserError(f"The judge {source} has no linear output layer to take features from.")
        self.last = linears[-1]
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(spec.mean or (0.0,) * spec.input_shape[0]).view(shape)
        self.std = torch.tensor(spec.std or (1.0,) * spec.input_shape[0]).view(shape)

    @torch.inference_mode()
    def __call__(self, images01: torch.Tensor, device: torch.device) -> tuple[np.ndarray, torch.Tensor]:
        """(features (N, F) float64, probabilities (N, classes)) of images in [0, 1], in fp32 for exact repeats."""
        self.model.to(device)
        feats: list[torch.Tensor] = []
        hook = self.last.register_forward_hook(lambda m, inp, out: feats.append(inp[0].float().cpu()))
        probs = []
        try:
            for i in range(0, len(images01), BATCH):
                x = images01[i : i + BATCH].to(device).float()
                x = (x - self.mean.to(device)) / self.std.to(device)  # the normalisation the judge trained with
                probs.append(self.model(x).float().softmax(1).cpu())
        finally:
            hook.remove()
        return torch.cat(feats).double().numpy(), torch.cat(probs)


def judge_setting(cfg: RunConfig) -> tuple[str, int]:
    """The run's (judge, quality_samples): its model_args, else the defaults of its model's builder."""
    import inspect

    params = inspect.signature(MODELS.get(cfg.model)).parameters
    if "judge" not in params:
        return "none", 0
    judge = cfg.model_args.get("judge", params["judge"].default)
    n = cfg.model_args.get("quality_samples", params["quality_samples"].default if "quality_samples" in params
                           else 10_000)  # fmt: skip
    return str(judge), int(n)


def resolve_judge(setting: str, cfg: RunConfig, data: Dataset, progress: bool = True) -> Judge | None:
    """The judge a run names: None for "none", the cached (or newly trained) default for "auto", else a folder."""
    if setting == "none":
        return None
    path = auto_judge(cfg, data, progress) if setting == "auto" else Path(setting).expanduser()
    return load_judge(path, data.spec)


def load_judge(path: Path, spec: DataSpec) -> Judge:

    if not path.is_dir():
        raise UserError(f"The judge {path} is not a folder: give the run folder of an nnzoo classifier trained on "
                        f"{spec.name}, or model_args.judge=auto.")  # fmt: skip
    run = load_run(path)
    if run.spec.task != "classification":
        raise UserError(f"The judge {path} holds a {run.spec.task} model; the judge must be a classifier.")
    if run.spec.name != spec.name or tuple(run.spec.input_shape) != tuple(spec.input_shape) \
            or run.spec.num_classes != spec.num_classes:  # fmt: skip
        raise UserError(f"The judge {path} was trained on {run.spec.name} {tuple(run.spec.input_shape)}, but this run "
                        f"uses {spec.name} {tuple(spec.input_shape)}: the judge must know the same dataset.")  # fmt: skip
    return Judge(run.model, run.spec, path)


def fingerprint(train: Split) -> str:
    h = hashlib.sha1(f"judge-v{JUDGE_VERSION}".encode())
    h.update(train.x.contiguous().numpy().tobytes())
    h.update(train.y.contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


JUDGE_VERSION = "j2"


def judge_recipe(cfg: RunConfig, spec: DataSpec) -> RunConfig:
    """SimpleCNN (an MLP on images under 10x10) trained as fashion-mnist-simple-cnn-fast is: Adam with a one-cycle
    schedule peaking at 3e-3, batch 128, 6 epochs on the run's own training split (91.5% on Fashion-MNIST's test
    set, where 3 epochs at a constant 1e-3 gave 88.6%: a judge that knows the classes better says more reliably
    whether a sample shows the class it was drawn for)."""

    model = "simple-cnn" if min(spec.input_shape[1:]) >= 10 else "mlp"
    return RunConfig(
        recipe=f"judge-{spec.name}", model=model,
        description="The classifier whose features score generated images (Fréchet distance, confidence, coverage).",
        data=dataclasses.replace(cfg.data),
        train=TrainConfig(epochs=6, batch_size=128, optimizer="adam", lr=3e-3, schedule="onecycle", seed=0,
                          device=cfg.train.device, num_threads=cfg.train.num_threads),
    )  # fmt: skip


def auto_judge(cfg: RunConfig, data: Dataset, progress: bool = True) -> Path:
    """The default judge's run folder, trained on first use (about 1-2 minutes for 60,000 images on 2 CPU cores)."""

    # JUDGE_VERSION changes with judge_recipe, so a judge trained by an older recipe is never reused.
    folder = cache_dir() / "judges" / f"{data.spec.name}-{fingerprint(data.train)}-{JUDGE_VERSION}"
    if (folder / "checkpoints" / "last.pt").is_file():
        return folder
    if progress:
        print(f"training the judge classifier for the quality numbers, once: it is cached in {folder}",
              file=sys.stderr, flush=True)  # fmt: skip
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        # distributed=False: in a run under torchrun, rank 0 trains the judge alone while the others wait.
        result = train(judge_recipe(cfg, data.spec), out=tmp / "run", progress=False, distributed=False)
        try:
            os.replace(tmp / "run", folder)  # atomic: a concurrent run may have finished first, which is fine
        except OSError:
            if not (folder / "checkpoints" / "last.pt").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if progress:
        acc = result.metrics["test"].get("accuracy", float("nan"))
        print(f"judge: {result.metrics['model']} with test accuracy {100 * acc:.2f}%", file=sys.stderr, flush=True)
    return folder


# ---- quality numbers ------------------------------------------------------------------------------------------------
def real_images(split: Split, n: int) -> torch.Tensor:
    return split.x[:n].float() / 255  # (n, C, H, W) in [0, 1]


@torch.inference_mode()
def draw(model: nn.Module, n: int, seed: int, device: torch.device, conditional: bool = False,
         num_classes: int = 0, autocast: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:  # fmt: skip
    """n samples in [0, 1] from fixed noise (seed), in eval mode; balanced labels for conditional models."""
    import contextlib

    was = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes if conditional else None
    out = []
    try:
        for i in range(0, n, BATCH):
            m = min(BATCH, n - i)
            kw = {"labels": labels[i : i + m]} if labels is not None else {}
            with autocast or contextlib.nullcontext():
                out.append(model.sample(m, generator=g, **kw).float().clamp(0, 1).cpu())
    finally:
        model.train(was)
    return torch.cat(out), labels


def scores(judge: Judge, images01: torch.Tensor, reference: Stats, device: torch.device,
           labels: torch.Tensor | None = None) -> dict[str, float]:  # fmt: skip
    """fd, confidence, classes_covered (and label_accuracy) of a set of generated images."""
    feats, probs = judge(images01, device)
    k = probs.shape[1]
    pred = probs.argmax(1)
    counts = torch.bincount(pred, minlength=k)
    out = {
        "fd": frechet_distance(Stats.of(feats), reference),
        "confidence": float(probs.max(1).values.mean()),
        "classes_covered": float((counts >= len(pred) / k / 5).sum()),
    }
    if labels is not None:
        out["label_accuracy"] = float((pred == labels).float().mean())
    return out


def reference_stats(judge: Judge, split: Split, n: int, device: torch.device) -> Stats:
    return Stats.of(judge(real_images(split, n), device)[0])
