"""The generative family's tasks, "autoencoder" and "gan": per-epoch grids and quality numbers, test metrics that
need new samples, report pictures and the `generate` verb. Registered in nnzoo.tasks.TASKS by tasks/__init__.py; api
never branches on them. The models themselves are in nnzoo/models/autoencoder.py and nnzoo/models/gan.py."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ...data.spec import Dataset
from ...errors import UserError
from ...images import load_images
from ...trainer import resolve_device
from ..base import Task
from . import pictures, quality
from .export import autoencoder_plan, gan_plan
from .monitor import GRID_SEED, QUALITY_SEED, GenerativeMonitor, epoch_grid_path, fixed_grid

if TYPE_CHECKING:
    from ...callbacks import Callback
    from ...config import RunConfig
    from ...runs import LoadedRun
    from ...trainer import Trainer

History = list[dict[str, Any]]
MAX_GENERATE = 1024  # `nnzoo generate --n`: one grid, not a data set


def held_out(data: Dataset) -> Any:
    """Real images the per-epoch numbers compare with: the validation split when the run keeps one, else test."""
    return data.val if data.val is not None and len(data.val) else data.test


# ---- training hooks and test metrics ---------------------------------------------------------------------------
def _callbacks(cfg: RunConfig, data: Dataset, run_dir: Path, progress: bool) -> list[Callback]:
    setting, samples = quality.judge_setting(cfg)
    judge = quality.resolve_judge(setting, cfg, data, progress)
    if judge is not None and progress:
        n = min(samples, len(held_out(data)))
        print(f"judge: {judge.source}; every epoch {n} samples against {n} held-out images", flush=True)
    return [GenerativeMonitor(run_dir, judge, held_out(data), samples)]


def _model_metrics(trainer: Trainer, data: Dataset, cfg: RunConfig) -> dict[str, Any]:
    """With a judge: the quality numbers against the test set, and fd_floor, the distance between as many real
    training images and the test set (the best a generator could hope for with this many samples)."""
    model = trainer.model
    setting, samples = quality.judge_setting(cfg)
    judge = quality.resolve_judge(setting, cfg, data)  # cached by training; `nnzoo eval` may train it anew
    if judge is None or not getattr(model, "can_sample", False):
        return {}
    n = min(samples, len(data.test))
    ref = quality.reference_stats(judge, data.test, n, trainer.device)
    gen, labels = quality.draw(model, n, QUALITY_SEED, trainer.device, getattr(model, "conditional", False),
                               getattr(model, "num_classes", 0), trainer.autocast())  # fmt: skip
    out = quality.scores(judge, gen, ref, trainer.device, labels)
    train_feats, _ = judge(quality.real_images(data.train, min(n, len(data.train))), trainer.device)
    out["fd_floor"] = quality.frechet_distance(quality.Stats.of(train_feats), ref)
    return out


# ---- report pictures -------------------------------------------------------------------------------------------
def _examples(data: Dataset, count: int = 10) -> torch.Tensor:
    """Indices of ``count`` test images, one per class first, so the pictures show every class."""
    y = data.test.y
    firsts = [int((y == k).nonzero()[0]) for k in range(data.spec.num_classes) if (y == k).any()]
    taken = set(firsts)
    rest = [i for i in range(min(len(y), 2 * count)) if i not in taken]
    return torch.tensor((firsts + rest)[:count])


def _names(data: Dataset, idx: torch.Tensor) -> list[str]:
    names = data.spec.class_names
    return [names[int(data.test.y[i])] if names else str(int(data.test.y[i])) for i in idx]


@torch.inference_mode()
def _autoencoder_reports(trainer: Trainer, data: Dataset, folder: Path, cfg: RunConfig) -> list[Path]:
    model, device = trainer.model.eval(), trainer.device
    title = cfg.recipe or cfg.model
    idx = _examples(data)
    x01 = (data.test.x[idx].float() / 255).to(device)
    paths = [pictures.plot_rows([("original", x01), ("reconstructed", model(x01))], folder / "reconstructions.png",
                                f"{title}: test images and their reconstructions")]  # fmt: skip
    if hasattr(model, "corrupt"):
        noisy = model.corrupt(x01.cpu(), torch.Generator().manual_seed(0)).to(device)
        paths.append(pictures.plot_rows([("noisy", noisy), ("denoised", model(noisy)), ("clean", x01)],
                                        folder / "denoising.png",
                                        f"{title}: {model.noise} noise, level {model.noise_level}"))  # fmt: skip
    if getattr(model, "can_sample", False):
        samples = model.sample(64, torch.Generator().manual_seed(GRID_SEED))
        paths.append(pictures.plot_grid(samples, folder / "samples.png", f"{title}: samples from the prior N(0, I)"))
    # A walk between two test images of different classes: decode evenly spaced points between their codes.
    z = model.encode(x01).float()
    steps = torch.linspace(0, 1, 10, device=device)[:, None]
    names = _names(data, idx)
    rows = [
        (f"{names[i]} → {names[i + 1]}", model.decode(z[i] + steps * (z[i + 1] - z[i])))
        for i in range(0, len(idx) - 1, 2)
    ]
    paths.append(pictures.plot_rows(rows, folder / "walk.png", f"{title}: straight lines in latent space"))
    # The latent space in 2-D: the codes themselves when 2-D, else their first two principal components.
    n = min(5000, len(data.test))
    codes = torch.cat([model.encode((data.test.x[i : i + 1000].float() / 255).to(device)).float().cpu()
                       for i in range(0, n, 1000)])  # fmt: skip
    how = (
        "the 2-D latent codes"
        if codes.shape[1] == 2
        else f"first 2 principal components of the {codes.shape[1]}-D codes"
    )
    paths.append(pictures.plot_latent(pictures.pca_2d(codes), data.test.y[:n], data.spec.class_names,
                                      folder / "latent.png", f"{title}: {how} of {n} test images"))  # fmt: skip
    return paths


def _write_reports(history: History, data: Dataset, outputs: torch.Tensor | None, folder: Path,
                   cfg: RunConfig) -> list[Path]:  # fmt: skip
    """From the history alone: the GAN curves, and the GIF of the per-epoch grids."""
    paths = []
    if history and any("d_loss" in h for h in history):
        paths.append(pictures.plot_gan_curves(history, folder / "quality.png", cfg.recipe or cfg.model))
    frames = [epoch_grid_path(folder.parent, h["epoch"]) for h in history]
    gif = pictures.save_gif([f for f in frames if f.is_file()], folder / "progress.gif")
    return paths + ([gif] if gif else [])


@torch.inference_mode()
def _gan_reports(trainer: Trainer, data: Dataset, folder: Path, cfg: RunConfig) -> list[Path]:
    model = trainer.model.eval()
    title = cfg.recipe or cfg.model
    images, nrow = fixed_grid(trainer)
    what = "8 samples per class, one class per row" if model.conditional else "64 samples"
    paths = [pictures.plot_grid(images, folder / "samples.png", f"{title}: {what}", nrow=nrow)]
    # Walks between noise vectors: a smooth walk says G learned a smooth map, not a lookup of training images.
    g = torch.Generator().manual_seed(GRID_SEED + 1)
    z = torch.randn(10, model.latent, generator=g).to(trainer.device)
    steps = torch.linspace(0, 1, 10, device=trainer.device)[:, None]
    rows = []
    for i in range(0, 10, 2):
        labels = torch.full((10,), i % model.num_classes, device=trainer.device) if model.conditional else None
        label = f"class {data.spec.class_names[i % model.num_classes]}" if model.conditional else f"z{i} → z{i + 1}"
        rows.append((label, (model(z[i] + steps * (z[i + 1] - z[i]), labels).float() + 1) / 2))
    paths.append(pictures.plot_rows(rows, folder / "walk.png", f"{title}: straight lines in noise space"))
    return paths


# ---- nnzoo generate ------------------------------------------------------------------------------------------
def _check_options(run: LoadedRun, options: dict[str, Any]) -> int:
    for flag in ("prompt", "acrostic", "top_k"):
        if options.get(flag) is not None:
            raise UserError(f"--{flag.replace('_', '-')} is for language models; {run.run_dir} holds a "
                            f"{run.config.model}, which draws images.")  # fmt: skip
    n = options.get("n")
    n = 64 if n is None else n
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_GENERATE:
        raise UserError(f"--n must be a whole number from 1 to {MAX_GENERATE} (one grid), not {n}.")
    return n


def _generate(run: LoadedRun, options: dict[str, Any]) -> dict[str, Any]:
    """A grid of samples (``--label`` for a class of a conditional model) or, with ``--from``, of reconstructions:
    originals and reconstructions in alternate rows."""
    if options.get("from_images"):
        return _reconstruct(run, options)
    images, result = sample_images(run, options)
    label, out = options.get("label"), options.get("out")
    path = Path(out) if out else run.run_dir / (f"samples_label{label}.png" if label is not None else "samples.png")
    pictures.save_grid(images, path)
    return {**result, "path": str(path), "kind": "samples", "n": len(images)}


def _reconstruct(run: LoadedRun, options: dict[str, Any]) -> dict[str, Any]:
    _check_options(run, options)
    model = run.model.eval()
    device = resolve_device(options.get("device") or "auto")
    model.to(device)
    sources, out = options["from_images"], options.get("out")
    result: dict[str, Any] = {"model": run.config.model, "seed": _seed(options)}
    if options.get("label") is not None:
        raise UserError("--label and --from do not go together: --from reconstructs the given images.")
    if not hasattr(model, "encode"):
        raise UserError(f"{run.config.model} has no encoder, so it cannot reconstruct images; --from works with "
                        "autoencoders (ae, conv-ae, denoising-ae, vae, conv-vae).")  # fmt: skip
    x01 = (load_images(list(sources), run.spec).float() / 255).to(device)
    with torch.inference_mode():
        rec = model(x01)
    pairs = []
    for i in range(0, len(x01), 8):  # rows of up to 8 originals, each followed by their reconstructions
        pairs += [x01[i : i + 8], rec[i : i + 8]]
    rows = [torch.cat([r, torch.zeros(8 - len(r), *r.shape[1:], device=device)]) for r in pairs]
    path = Path(out) if out else run.run_dir / "reconstructions.png"
    pictures.save_grid(torch.cat(rows), path, nrow=8)
    return {**result, "path": str(path), "kind": "reconstructions", "n": len(x01)}


def _seed(options: dict[str, Any]) -> int:
    seed = options.get("seed")
    return random.SystemRandom().randrange(2**31) if seed is None else int(seed)


def sample_images(run: LoadedRun, options: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
    """New images (N, C, H, W) in [0, 1] on the CPU from a GAN or VAE, with what drew them (model, seed, label):
    what `generate` tiles into a grid, and what `nnzoo serve` sends without writing a file. Options as `generate`
    takes them (n, label, seed, device)."""
    n = _check_options(run, options)
    model = run.model.eval()
    device = resolve_device(options.get("device") or "auto")
    model.to(device)
    label = options.get("label")
    result: dict[str, Any] = {"model": run.config.model, "seed": _seed(options)}
    if not getattr(model, "can_sample", False):
        raise UserError(f"{run.config.model} is a plain autoencoder: it has no prior to sample from. Give images to "
                        "reconstruct with --from IMAGE..., or train a vae, conv-vae or GAN to draw new images.")  # fmt: skip
    labels = None
    if label is not None:
        if not getattr(model, "conditional", False):
            raise UserError(f"--label needs a class-conditional model (cgan); {run.config.model} draws images of no "
                            "chosen class.")  # fmt: skip
        k = model.num_classes
        if not isinstance(label, int) or not 0 <= label < k:
            names = ", ".join(f"{i} {c}" for i, c in enumerate(run.spec.class_names))
            raise UserError(f"--label must be a class number from 0 to {k - 1} ({names}), not {label}.")
        labels = torch.full((n,), label, dtype=torch.long)
        result["label"] = run.spec.class_names[label] if run.spec.class_names else str(label)
    g = torch.Generator().manual_seed(result["seed"])
    with torch.inference_mode():
        images = torch.cat([model.sample(min(256, n - i), g, **({"labels": labels[i : i + 256]} if labels is not None else {})).cpu()
                            for i in range(0, n, 256)])  # fmt: skip
    return images, result


# Registered by tasks/__init__.py.
AUTOENCODER_TASK = Task("autoencoder", write_reports=_write_reports, generate=_generate, model_metrics=_model_metrics,
                        model_reports=_autoencoder_reports, callbacks=_callbacks, export=autoencoder_plan)  # fmt: skip
GAN_TASK = Task("gan", write_reports=_write_reports, generate=_generate, model_metrics=_model_metrics,
                model_reports=_gan_reports, callbacks=_callbacks, export=gan_plan)  # fmt: skip

__all__ = ["GenerativeMonitor", "quality", "pictures"]
