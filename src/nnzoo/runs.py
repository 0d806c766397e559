"""The run folder: what a trained run is (RunResult, LoadedRun), how one is read back (load_run, load_data), where
a new one goes (new_run_dir, latest_run) and the report pictures written into it (write_reports).

Everything that works on a finished run (api, export, serve, attention maps, a GAN's judge) imports this module,
never ``api``: the arrows run cli -> api -> {export, serve, ...} -> runs -> {trainer, models, data, tasks}.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import checkpoint, reports
from .callbacks import read_jsonl
from .config import RunConfig
from .data import DATASETS, arrays, load_dataset
from .data.spec import Dataset, DataSpec
from .errors import UserError
from .models import Model, create_model
from .models.module import rebuild as rebuild_module
from .runtime import Runner
from .tasks.base import get_task


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


@dataclass
class LoadedRun:
    run_dir: Path
    config: RunConfig
    spec: DataSpec
    model: Model
    checkpoint: Path
    payload: dict[str, Any]

    def preprocess(self, x: Any) -> torch.Tensor:
        """Inputs as the model's training saw them before its own normalisation: one sample or a batch, as a
        numpy array or tensor, checked against the run's input shape (data/arrays.py ``as_inputs``)."""
        return arrays.as_inputs(x, self.spec)

    def predict(self, x: Any, device: str | None = None) -> torch.Tensor:
        """The model's outputs (a classifier's logits) for inputs given as its training data was (pixels 0..255
        for nnzoo's image models: they are normalised here, as in training), on the CPU. ``run.model(x)`` alone
        expects inputs already normalised."""
        return trainer_for(self, device).predict(self.preprocess(x))


def load_run(run_dir: str | os.PathLike, which: str = "best", *, module: torch.nn.Module | type | None = None,
             loss: Any = None) -> LoadedRun:  # fmt: skip
    """Rebuild the model of a run folder from its checkpoint alone (no code is unpickled).

    A run of your own module (trained in Python) names its class; it is imported by that name and built with the
    recorded arguments, or give ``module`` (an instance, or the class) and, for a loss nnzoo could not record by
    name, ``loss``."""
    path = checkpoint.find(run_dir, which)
    payload = checkpoint.load(path)
    checkpoint.check_schema(payload, path)  # everything below reads only what was checked here
    try:
        config = dict(payload["config"])
        own = config.pop("module", None)
        cfg = RunConfig.from_dict(config)
        spec = DataSpec.from_dict(payload["spec"])
        with torch.random.fork_rng(devices=[]):  # its initial weights are replaced by the checkpoint's: drawing
            if own is not None:  # them must not move the caller's stream
                model = rebuild_module(own, module, loss)
            else:
                model = create_model(cfg.model, spec, **cfg.model_args)
    except UserError as e:
        raise UserError(f"{path} holds a config this version cannot rebuild: {e}") from None
    except (TypeError, ValueError, KeyError) as e:  # a spec with unknown or ill-typed fields
        raise UserError(f"{path} is damaged: its config or data description is unreadable ({e}).") from None
    checkpoint.check_weights(model, payload["model"], path, cfg.model if own is None else own["class"])
    model.load_state_dict(payload["model"])
    model.eval()
    return LoadedRun(Path(run_dir), cfg, spec, model, path, payload)


def initialise_from(model: Model, spec: DataSpec, run_dir: str | os.PathLike, freeze: bool = False) -> int:
    """Copy into ``model`` the weights of the run in ``run_dir`` whose names and shapes it shares (a pretrained
    encoder into a classifier: everything but the new head), optionally frozen; returns how many tensors came.

    Refused in one sentence: a run read with other tokens (its vocabulary differs from this data's), a weight of
    the same name and another shape (other dim / depth / heads), or nothing in common at all."""
    pre = load_run(run_dir)
    if "vocab" in pre.spec.extra and pre.spec.extra.get("vocab") != spec.extra.get("vocab"):
        raise UserError(f"{run_dir} was trained on other tokens than this data's (its vocabulary differs): fine-tune "
                        "on labelled texts, which --init-from gives the pretrained run's tokens.")  # fmt: skip
    own = model.state_dict()
    theirs = pre.model.state_dict()
    for name, tensor in theirs.items():
        if name in own and own[name].shape != tensor.shape:
            raise UserError(f"{run_dir}'s {name} is {tuple(tensor.shape)} but this model's is {tuple(own[name].shape)}: "
                            "fine-tune with the model_args (dim, depth, heads) it was pretrained with.")  # fmt: skip
    shared = [n for n in theirs if n in own]
    if not shared:
        raise UserError(f"{run_dir} ({pre.config.model}) shares no weight with {type(model).__name__}: nothing to "
                        "start from.")  # fmt: skip
    model.load_state_dict({n: theirs[n] for n in shared}, strict=False)
    if freeze:
        loaded = set(shared)
        for name, p in model.named_parameters():
            if name in loaded:
                p.requires_grad_(False)
    return len(shared)


def load_data(run: LoadedRun, data_dir: str | None) -> Dataset:
    if run.spec.corpus_kind == "arrays":
        raise UserError(f"{run.run_dir} was trained on data given in Python, which nnzoo cannot load again: evaluate "
                        "it in Python (nnzoo.Trainer(...).evaluate((x, y)), or run.predict(x)).")  # fmt: skip
    dc = dataclasses.replace(run.config.data, data_dir=data_dir or run.config.data.data_dir)
    if "vocab" in run.spec.extra and "vocab_from" in DATASETS.get(dc.name).reads:
        dc = dataclasses.replace(dc, vocab_from=str(run.run_dir))  # texts as the run's own tokens, wherever it lies
    data = load_dataset(dc)
    data.spec = dataclasses.replace(data.spec, task=run.spec.task)  # the run's task (see train)
    return data


def write_reports(history: list[dict[str, Any]], data: Dataset, outputs: torch.Tensor | None, run_dir: Path,
                  cfg: RunConfig, trainer: Runner | None = None) -> list[Path]:  # fmt: skip
    """Learning curves for every run, then the task's own pictures (confusion matrix, samples, forecasts...);
    with the trainer of the tested weights, also the pictures the model draws itself."""
    folder = run_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    loss_is = trainer.model.loss_meaning if trainer is not None else None
    steps = read_jsonl(run_dir / "steps.jsonl")  # written every log_every steps: a curve within each epoch
    paths = [reports.plot_curves(history, folder / "curves.png", cfg.recipe or cfg.model, loss_is, steps)] \
        if history else []  # fmt: skip
    task = get_task(data.spec.task)
    if task.write_reports is not None:
        paths += task.write_reports(history, data, outputs, folder, cfg)
    if task.model_reports is not None and trainer is not None:
        paths += task.model_reports(trainer, data, folder, cfg)
    return paths


def new_run_dir(out: str | os.PathLike | None, name: str) -> Path:
    if out is not None:
        run_dir = Path(out)
        if (run_dir / "checkpoints" / "last.pt").is_file():  # a folder killed before its first one is reused
            raise UserError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another --out.")
        return run_dir
    base = Path("runs") / name
    run_dir, n = base, 1
    while run_dir.exists() and any(run_dir.iterdir()):  # never overwrite an earlier run's results
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    return run_dir


def latest_run(recipe: str | RunConfig) -> Path:
    name = recipe.recipe if isinstance(recipe, RunConfig) else Path(recipe).stem
    candidates = [p for p in Path("runs").glob(f"{name}*") if (p / "checkpoints" / "last.pt").is_file()]
    if not candidates:
        raise UserError(f"Nothing to resume: no run of {name!r} with a checkpoint under runs/; give --out RUN_DIR.")
    return max(candidates, key=lambda p: (p / "checkpoints" / "last.pt").stat().st_mtime)


def trainer_for(run: LoadedRun, device: str | None) -> Runner:
    """The run's model on ``device`` with its autocast and memory format, for evaluating and predicting: a Runner,
    so no optimizer is built and no global random stream reseeded."""
    tc = dataclasses.replace(run.config.train, device=device or "auto", compile=False)
    return Runner(run.model, tc, spec=run.spec, distributed=False)
