"""Training a recipe into a run folder: the settings it runs with (make_config), the run itself (train), resuming
a killed one, and the final test pass with its metrics.json. ``api.train`` is this module's ``train``; it lives
below api so that a task can train a model of its own (a GAN's judge classifier) without importing api.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from . import checkpoint, files, parallel
from .callbacks import Callback
from .config import FLAG_SETTINGS, TENSORBOARD_MISSING, DataConfig, RunConfig, TrainConfig
from .data import DATASETS, check_options, dataset_spec, load_dataset
from .data.spec import Dataset
from .errors import UserError
from .models import MODELS, check_compatible, create_model
from .notebook import show_images
from .paths import check_output
from .recipes import RECIPES, load_recipe
from .runs import RunResult, initialise_from, latest_run, new_run_dir, write_reports
from .tasks.base import get_task
from .trainer import Trainer, distributed_session, seed_everything

# Metrics where lower is better (for a recipe's `expected` values): any name containing "loss", and these names or
# names ending in "_" + one of them (seasonal_naive_mae); every other metric is better higher.
LOWER_IS_BETTER = ("mae", "rmse", "mase", "perplexity", "bits_per_char")


class Interrupted(UserError):
    exit_code = 130


# What `nnzoo train MODEL` trains with (before flags and --set), by the dataset's name or else its kind: the settings
# that worked on the real sets of each kind (README's results table). Adam-family optimizers, as a user's data has
# no tuned recipe; a dataset of none of these kinds trains with TrainConfig's defaults.
STARTER_TRAIN: dict[str, dict[str, Any]] = {
    "image-folder": {"optimizer": "adamw", "lr": 1e-3, "epochs": 10, "batch_size": 64},
    "table": {
        "optimizer": "adamw",
        "lr": 3e-3,
        "epochs": 200,
        "batch_size": 32,
        "weight_decay": 1e-4,
        "early_stopping_patience": 30,
        "log_every": 1000,
    },
    "text-classification": {"optimizer": "adamw", "lr": 1e-3, "epochs": 10, "batch_size": 64},
}


def user_dataset(data: DataConfig) -> str:
    """The dataset a user's data flags describe, for `nnzoo train MODEL`: a table with --target, labelled texts
    with --text-column, a folder of class sub-folders with --data-dir."""
    if data.data_file is not None and data.target is not None:
        return "table"
    if data.data_file is not None and data.text_column is not None:
        return "text-labels"
    if data.data_file is None and data.data_dir is not None:
        return "image-folder"
    raise UserError("Say what to train on: --data-dir FOLDER (one sub-folder of images per class), --data-file "
                    "TABLE --target COLUMN, --data-file TEXTS --text-column COLUMN, or --dataset NAME.")  # fmt: skip


def starter_config(model: str, overrides: dict[str, Any] | None, sets: Sequence[tuple[str, Any]]) -> RunConfig:
    """`nnzoo train MODEL ...`: the model's defaults on the dataset the flags name or describe."""
    probe = RunConfig(model=model)
    for key, value in (overrides or {}).items():
        if value is not None:
            probe.override(FLAG_SETTINGS.get(key, key), value)
    for key, value in sets:
        if key.startswith("data."):
            probe.override(key, value)
    named = (overrides or {}).get("dataset") is not None or any(k in ("data.name", "name") for k, _ in sets)
    name = probe.data.name if named else user_dataset(probe.data)
    starter = STARTER_TRAIN.get(name) or STARTER_TRAIN.get(dataset_spec(name).corpus_kind or "", {})
    train = TrainConfig(**starter)
    return RunConfig(model=model, description=f"{model} on your data ({name})", data=DataConfig(name=name),
                     train=train)  # fmt: skip


def make_config(recipe: str | RunConfig, overrides: dict[str, Any] | None = None,
                sets: Sequence[tuple[str, Any]] = ()) -> RunConfig:  # fmt: skip
    """A recipe (name, YAML path or RunConfig) with flag values and ``--set`` pairs applied, validated. A model
    name in place of a recipe trains that model on the data the flags give (``nnzoo train mlp --data-file t.csv
    --target price``)."""
    if isinstance(recipe, str) and recipe in MODELS and recipe not in RECIPES and not Path(recipe).is_file():
        cfg = starter_config(recipe, overrides, sets)
    else:
        cfg = copy.deepcopy(recipe) if isinstance(recipe, RunConfig) else load_recipe(recipe)
    recipe_dataset = cfg.data.name
    for key, value in (overrides or {}).items():
        if value is not None:
            cfg.override(FLAG_SETTINGS.get(key, key), value)
    for key, value in sets:
        cfg.override(key, value)
    cfg.train.validate()
    cfg.data.validate()
    if cfg.train.init_from and "vocab_from" in DATASETS.get(cfg.data.name).reads and cfg.data.vocab_from is None:
        cfg.data.vocab_from = cfg.train.init_from  # the pretrained run's tokens (recorded in config.yaml too)
    if cfg.train.tensorboard and importlib.util.find_spec("tensorboard") is None:  # found without importing it
        raise UserError(TENSORBOARD_MISSING)
    check_compatible(cfg.model, dataset_spec(cfg.data.name), cfg.data)
    if cfg.data.name != recipe_dataset:  # the recipe's options for its own dataset that this one does not read
        given = {k.removeprefix("data.options.") for k, _ in sets}
        known = DATASETS.get(cfg.data.name).options
        cfg.data.options = {k: v for k, v in cfg.data.options.items() if k in known or k in given}
    check_options(cfg.data)  # a data.options name the dataset never reads: a typo, said rather than ignored
    return cfg


def train(
    recipe: str | RunConfig,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
    sets: Sequence[tuple[str, Any]] = (),
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    distributed: bool = True,
) -> RunResult:
    """Train a recipe into a run folder (config.yaml, metrics.jsonl, checkpoints/, report/, metrics.json).

    Under torchrun (``nnzoo train --nproc N``, or ``torchrun ... -m nnzoo train``) every process calls this and
    they train one model together with DDP (see Trainer): rank 0 prints and writes the run folder, the callbacks
    run there, and every rank returns rank 0's result. ``distributed=False`` trains in this process alone even
    under torchrun (a model trained inside another run, like a GAN's judge).
    """
    cfg, run_dir, state = _prepare(recipe, out, resume, overrides, sets)
    with distributed_session(cfg.train, distributed) as ctx:
        run_dir = Path(parallel.broadcast(str(run_dir), ctx))  # rank 0's choice of runs/NAME-N
        return _train(cfg, run_dir, state, callbacks, progress and ctx.is_main, ctx, distributed)


def train_config(recipe: str | RunConfig, *, out: str | os.PathLike | None = None, resume: bool = False,
                 overrides: dict[str, Any] | None = None,
                 sets: Sequence[tuple[str, Any]] = ()) -> RunConfig:  # fmt: skip
    """The validated config ``train`` would run with these arguments (it raises the same errors, writes nothing)."""
    return _prepare(recipe, out, resume, overrides, sets)[0]


def _prepare(recipe: str | RunConfig, out: str | os.PathLike | None, resume: bool, overrides: dict[str, Any] | None,
             sets: Sequence[tuple[str, Any]]) -> tuple[RunConfig, Path, dict[str, Any] | None]:  # fmt: skip
    state = None
    if out is not None:
        out = check_output(out, "folder")
    run_dir = (Path(out) if out else latest_run(recipe)) if resume else None
    if run_dir is not None and _started(run_dir):
        last = run_dir / "checkpoints" / "last.pt"
        state = checkpoint.load(last)
        checkpoint.check_schema(state, last)
        saved = RunConfig.from_dict(state["config"])
        cfg = make_config(saved, overrides, sets)
        if (cfg.model, cfg.model_args, cfg.data.name) != (saved.model, saved.model_args, saved.data.name):
            raise UserError("The model and dataset of a run cannot change when resuming; start a new run instead.")
        epochs, steps = state.get("epoch", 0), state.get("global_step", 0)
        trained = epochs >= cfg.train.epochs or (cfg.train.max_steps is not None and steps >= cfg.train.max_steps)
        if trained and _finished(run_dir):
            limit = f"--max-steps above {steps}" if cfg.train.max_steps is not None else f"--epochs above {epochs}"
            raise UserError(f"{run_dir} has already trained {epochs} epochs ({steps} steps), all its settings ask "
                            f"for, and written its metrics.json; to train on, resume with {limit}.")  # fmt: skip
    else:  # a --resume of a folder killed before its first checkpoint starts it afresh, in that folder
        cfg = make_config(recipe, overrides, sets)
        run_dir = run_dir or new_run_dir(out, cfg.recipe or cfg.model)
    return cfg, run_dir, state


def _started(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run to continue (a last.pt). A folder a run was started in but killed before
    its first checkpoint (no last.pt) is resumed by starting it afresh; a folder that does not exist is an error."""
    if (run_dir / "checkpoints" / "last.pt").is_file():
        return True
    if run_dir.is_dir():
        return False
    raise UserError(f"Nothing to resume in {run_dir}: it holds no checkpoints/last.pt.")


def _finished(run_dir: Path) -> bool:
    """Whether the final test pass of a run folder's last checkpoint is written: metrics.json, written after the
    reports, and no older than last.pt."""
    metrics, last = run_dir / "metrics.json", run_dir / "checkpoints" / "last.pt"
    return metrics.is_file() and metrics.stat().st_mtime_ns >= last.stat().st_mtime_ns


def _train(cfg: RunConfig, run_dir: Path, state: dict[str, Any] | None, callbacks: Sequence[Callback],
           progress: bool, ctx: parallel.Context, distributed: bool) -> RunResult:  # fmt: skip
    with parallel.main_first(ctx):  # rank 0 downloads; the others then read what it wrote
        data = load_dataset(cfg.data)
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    model = create_model(cfg.model, data.spec, **cfg.model_args)
    if cfg.train.init_from:
        loaded = initialise_from(model, data.spec, cfg.train.init_from, freeze=cfg.train.freeze == "encoder")
        if progress:
            print(f"init from {cfg.train.init_from}: {loaded} weight tensors loaded"
                  f"{' and frozen' if cfg.train.freeze else ''}", flush=True)  # fmt: skip
    if model.task and model.task != data.spec.task:
        # A generative model on an image dataset: its task, saved with the spec, picks metrics, reports, generate.
        data.spec = dataclasses.replace(data.spec, task=model.task)
    if ctx.is_main:
        for folder in (run_dir, run_dir / "report"):  # the temporary files of writes a kill cut short
            files.remove_orphans(folder)
    if progress:
        where = f" in {ctx.world_size} processes (global batch {cfg.train.batch_size})" if ctx.enabled else ""
        print(f"run {run_dir}: {cfg.model} on {data.describe()}{where}", flush=True)
    task = get_task(data.spec.task)
    if task.callbacks is not None and ctx.is_main:  # callbacks run on rank 0 (see Trainer)
        callbacks = [*task.callbacks(cfg, data, run_dir, progress), *callbacks]
    callbacks = [_WriteConfig(run_dir, cfg), *callbacks]
    trainer = Trainer(model, cfg.train, run_dir=run_dir, callbacks=callbacks, spec=data.spec,
                      run_config=cfg.to_dict(), progress=progress, distributed=distributed)  # fmt: skip
    if state is not None:
        trainer.load_state_dict(state)
        if progress and trainer.done():
            print(f"training ended after epoch {trainer.epoch} ({trainer.global_step} steps), but its final test "
                  "was never written: testing it now", flush=True)  # fmt: skip
        elif progress:
            print(f"resuming after epoch {trainer.epoch} of {cfg.train.epochs}", flush=True)
    try:
        trainer.fit(data.train, data.val)
        # Rank 0 tests and writes the reports while the others wait here for its result.
        result = (_finish_run(trainer, data, cfg, run_dir, progress), trainer.history) if ctx.is_main else None
    except files.WriteFailed as e:
        raise files.WriteFailed(e.path, f"{e.reason}; {_last_good(run_dir)}") from None
    except KeyboardInterrupt:
        raise Interrupted(_interrupted(trainer, cfg, run_dir)) from None
    metrics, history = parallel.broadcast(result, ctx)
    return RunResult(run_dir, metrics, history)


class _WriteConfig(Callback):
    """config.yaml, once the trainer has taken the settings: a resume it refuses (a onecycle schedule stretched,
    a best.pt of the wrong epoch) leaves the folder's config.yaml as it was."""

    def __init__(self, run_dir: Path, cfg: RunConfig):
        self.path, self.text = run_dir / "config.yaml", cfg.to_yaml()

    def on_train_begin(self, trainer: Trainer) -> None:
        files.atomic_write_text(self.path, self.text)


def _saved_epoch(run_dir: Path) -> int | None:
    """The epoch of the run folder's last.pt (None if it has none yet): what a kill or a failed write left."""
    last = run_dir / "checkpoints" / "last.pt"
    return checkpoint.load(last)["epoch"] if last.is_file() else None


def _last_good(run_dir: Path) -> str:
    saved = _saved_epoch(run_dir)
    return "no checkpoint had been written yet." if saved is None else \
        f"the last good checkpoint (epoch {saved}) is intact."  # fmt: skip


def _interrupted(trainer: Trainer, cfg: RunConfig, run_dir: Path) -> str:
    """What an interrupted run left on disk, and how to go on (read from last.pt, since the kill may have cut
    short the save of the epoch the trainer had just finished)."""
    saved = _saved_epoch(run_dir)
    resume = f"`nnzoo train {cfg.recipe or 'RECIPE'} --out {run_dir} --resume`"
    if saved is None:
        return f"Interrupted before the first checkpoint was written; {resume} starts the run afresh."
    if saved == trainer.epoch and trainer.done():
        return f"Interrupted after training ended (epoch {saved}), before its final test was written: {resume} " \
            "writes it."  # fmt: skip
    return (f"Interrupted in epoch {saved + 1}; the last good checkpoint (epoch {saved}) is "
            f"{run_dir / 'checkpoints' / 'last.pt'}: continue with {resume}.")  # fmt: skip


def _finish_run(trainer: Trainer, data: Dataset, cfg: RunConfig, run_dir: Path, progress: bool) -> dict[str, Any]:
    which = "last"
    best = run_dir / "checkpoints" / "best.pt"
    if data.val is not None and trainer.best_epoch != trainer.epoch and best.is_file():
        payload = checkpoint.load(best)
        if payload["epoch"] != trainer.best_epoch:  # ModelCheckpoint keeps them in step; never test stale weights
            raise UserError(f"{best} holds epoch {payload['epoch']}, not the best epoch {trainer.best_epoch}: "
                            "its weights were not saved; start a new run.")  # fmt: skip
        trainer.model.load_state_dict(payload["model"])  # test the weights validation chose
        which = "best"
    elif data.val is not None:
        which = "best"  # the last epoch was the best one
    last = trainer.last_validation
    if data.test is data.val and last is not None and last[0] == trainer.epoch == trainer.best_epoch:
        test, outputs = dict(last[1]), last[2]  # the same weights on the same split: already measured
    else:
        test, outputs = trainer.evaluate_with_outputs(data.test)
    test.update(task_metrics(trainer, test, outputs, data, cfg))
    summary = trainer.summary()
    metrics: dict[str, Any] = {
        "recipe": cfg.recipe,
        "model": cfg.model,
        "dataset": cfg.data.name,
        "test": test,
        "loss_is": trainer.model.loss_meaning,
        "test_checkpoint": which,
        "best_epoch": trainer.best_epoch,
        "epochs": trainer.epoch,
        "steps": trainer.global_step,
        "train_seconds": summary["train_seconds"],
        **{k: v for k, v in summary.items() if k not in ("train_seconds", "epochs_run")},
    }
    if data.val is not None and trainer.best_epoch:
        best_logs = trainer.history[trainer.best_epoch - 1]
        metrics["val"] = {k[4:]: v for k, v in best_logs.items() if k.startswith("val_")}
    if cfg.expected:
        metrics["expected"] = cfg.expected
        metrics["meets_expected"] = _meets(metrics, cfg.expected)
    paths = write_reports(trainer.history, data, outputs, run_dir, cfg, trainer)
    # Last: a metrics.json newer than last.pt tells --resume that everything is written (see _finished).
    files.atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    for cb in trainer.callbacks:  # after metrics.json: what a callback does with them cannot lose the result
        cb.on_report(trainer, metrics, paths)
    if progress:
        shown = "  ".join(f"{k} {v:.4f}" for k, v in test.items())
        print(f"test ({which} checkpoint): {shown}\nwrote {run_dir}/metrics.json and {run_dir}/report/", flush=True)
        show_images(paths)  # in a Jupyter kernel: the report pictures inline, under the run's output
    return metrics


def task_metrics(trainer: Trainer, test: dict[str, float], outputs: torch.Tensor | None, data: Dataset,
                  cfg: RunConfig) -> dict[str, Any]:  # fmt: skip
    task = get_task(data.spec.task)
    extra = task.extra_metrics(test, outputs, data) if task.extra_metrics is not None else {}
    if task.model_metrics is not None:
        extra.update(task.model_metrics(trainer, data, cfg))
    return extra


def _meets(metrics: dict[str, Any], expected: dict[str, Any]) -> dict[str, bool]:
    out = {}
    for key, target in expected.items():
        split, _, name = key.partition("_")
        value = metrics.get(split, {}).get(name)
        if value is not None:
            lower = "loss" in name or any(name == m or name.endswith("_" + m) for m in LOWER_IS_BETTER)
            out[key] = bool(value <= target if lower else value >= target)
    return out
