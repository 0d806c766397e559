"""What users and the CLI call: train, evaluate, predict, report, summary, load.

Every function takes plain values and returns plain values (dicts, paths, tensors); the CLI only parses argv
and prints what comes back.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import checkpoint, files, reports
from . import distributed as parallel
from .callbacks import Callback
from .config import FLAG_SETTINGS, RunConfig, TrainConfig
from .data import DATASETS, check_options, dataset_spec, load_dataset
from .data.spec import DataSpec, Dataset
from .errors import Terminated, UserError
from .images import load_images
from .models import MODELS, Model, check_compatible, create_model
from .paths import check_output
from .recipes import RECIPES, load_recipe
from .summary import format_summary, summarize
from .tasks import get_task
from .tasks import generate as _generate_for_task
from .trainer import Trainer, distributed_session, resolve_device, seed_everything, usable_cores

# Metrics where lower is better (for a recipe's `expected` values): any name containing "loss", and these names or
# names ending in "_" + one of them (seasonal_naive_mae); every other metric is better higher.
LOWER_IS_BETTER = ("mae", "rmse", "mase", "perplexity", "bits_per_char")


class Interrupted(UserError):
    exit_code = 130


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


# ---- train ---------------------------------------------------------------------------------------------------------
def make_config(recipe: str | RunConfig, overrides: dict[str, Any] | None = None,
                sets: Sequence[tuple[str, Any]] = ()) -> RunConfig:  # fmt: skip
    """A recipe (name, YAML path or RunConfig) with flag values and ``--set`` pairs applied, validated."""
    cfg = copy.deepcopy(recipe) if isinstance(recipe, RunConfig) else load_recipe(recipe)
    recipe_dataset = cfg.data.name
    for key, value in (overrides or {}).items():
        if value is not None:
            cfg.override(FLAG_SETTINGS.get(key, key), value)
    for key, value in sets:
        cfg.override(key, value)
    cfg.train.validate()
    cfg.data.validate()
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
    run_dir = (Path(out) if out else _latest_run(recipe)) if resume else None
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
        run_dir = run_dir or _new_run_dir(out, cfg.recipe or cfg.model)
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


def launch(nproc: int, argv: Sequence[str], train: TrainConfig | None = None, *, echo: bool = True) -> int:
    """Run ``nnzoo ARGV`` in ``nproc`` processes on this machine under torchrun (``nnzoo train --nproc N``);
    returns torchrun's exit code. With the run's ``train`` config, what would fail in every process (a batch size
    that does not split, too few GPUs) fails here first, as one sentence."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise UserError(f"--nproc must be a positive whole number, not {nproc!r}.")
    if parallel.from_env().enabled:
        raise UserError("--nproc starts torchrun, but this process already runs under it: leave --nproc out.")
    if train is not None:
        parallel.check_batch_size(train.batch_size, nproc)
        resolve_device(train.device, parallel.Context(0, nproc, nproc - 1, nproc))  # the last process's device
    # --standalone: a rendezvous on a free local port, so two runs on one machine do not collide on 29500.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "nnzoo", *argv]  # fmt: skip
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in env:  # else torchrun sets 1 and says so; the trainer sets cores // N itself
        env["OMP_NUM_THREADS"] = str(max(1, usable_cores() // nproc))
    if echo:
        print("launching: python " + " ".join(cmd[1:]), file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt as e:  # Ctrl-C reached torchrun too: let it stop its workers, then report its code
        if isinstance(e, Terminated):  # SIGTERM reached this process alone: pass it on
            proc.terminate()
        return proc.wait()


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
    test.update(_task_metrics(trainer, test, outputs, data, cfg))
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
    write_reports(trainer.history, data, outputs, run_dir, cfg, trainer)
    # Last: a metrics.json newer than last.pt tells --resume that everything is written (see _finished).
    files.atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if progress:
        shown = "  ".join(f"{k} {v:.4f}" for k, v in test.items())
        print(f"test ({which} checkpoint): {shown}\nwrote {run_dir}/metrics.json and {run_dir}/report/", flush=True)
    return metrics


def _task_metrics(trainer: Trainer, test: dict[str, float], outputs: torch.Tensor | None, data: Dataset,
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


def write_reports(history: list[dict[str, Any]], data: Dataset, outputs: torch.Tensor | None, run_dir: Path,
                  cfg: RunConfig, trainer: Trainer | None = None) -> list[Path]:  # fmt: skip
    """Learning curves for every run, then the task's own pictures (confusion matrix, samples, forecasts...);
    with the trainer of the tested weights, also the pictures the model draws itself."""
    folder = run_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    loss_is = trainer.model.loss_meaning if trainer is not None else None
    paths = [reports.plot_curves(history, folder / "curves.png", cfg.recipe or cfg.model, loss_is)] if history else []
    task = get_task(data.spec.task)
    if task.write_reports is not None:
        paths += task.write_reports(history, data, outputs, folder, cfg)
    if task.model_reports is not None and trainer is not None:
        paths += task.model_reports(trainer, data, folder, cfg)
    return paths


def _new_run_dir(out: str | os.PathLike | None, name: str) -> Path:
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


def _latest_run(recipe: str | RunConfig) -> Path:
    name = recipe.recipe if isinstance(recipe, RunConfig) else Path(recipe).stem
    candidates = [p for p in Path("runs").glob(f"{name}*") if (p / "checkpoints" / "last.pt").is_file()]
    if not candidates:
        raise UserError(f"Nothing to resume: no run of {name!r} with a checkpoint under runs/; give --out RUN_DIR.")
    return max(candidates, key=lambda p: (p / "checkpoints" / "last.pt").stat().st_mtime)


# ---- use a trained run ---------------------------------------------------------------------------------------------
def load_run(run_dir: str | os.PathLike, which: str = "best") -> LoadedRun:
    """Rebuild the model of a run folder from its checkpoint alone (no code is unpickled)."""
    path = checkpoint.find(run_dir, which)
    payload = checkpoint.load(path)
    checkpoint.check_schema(payload, path)  # everything below reads only what was checked here
    try:
        cfg = RunConfig.from_dict(payload["config"])
        spec = DataSpec.from_dict(payload["spec"])
        model = create_model(cfg.model, spec, **cfg.model_args)
    except UserError as e:
        raise UserError(f"{path} holds a config this version cannot rebuild: {e}") from None
    except (TypeError, ValueError, KeyError) as e:  # a spec with unknown or ill-typed fields
        raise UserError(f"{path} is damaged: its config or data description is unreadable ({e}).") from None
    checkpoint.check_weights(model, payload["model"], path, cfg.model)
    model.load_state_dict(payload["model"])
    model.eval()
    return LoadedRun(Path(run_dir), cfg, spec, model, path, payload)


def _trainer_for(run: LoadedRun, device: str | None) -> Trainer:
    tc = dataclasses.replace(run.config.train, device=device or "auto", compile=False)
    return Trainer(run.model, tc, spec=run.spec, progress=False)


def _load_data(run: LoadedRun, data_dir: str | None) -> Dataset:
    dc = dataclasses.replace(run.config.data, data_dir=data_dir or run.config.data.data_dir)
    data = load_dataset(dc)
    data.spec = dataclasses.replace(data.spec, task=run.spec.task)  # the run's task (see train)
    return data


def evaluate(run_dir: str | os.PathLike, *, data_dir: str | None = None, device: str | None = None) -> dict[str, Any]:
    """Test-set metrics of a run's best checkpoint, with per-class accuracy and the confusion matrix."""
    run = load_run(run_dir)
    data = _load_data(run, data_dir)
    trainer = _trainer_for(run, device)
    metrics, outputs = trainer.evaluate_with_outputs(data.test)
    metrics.update(_task_metrics(trainer, metrics, outputs, data, run.config))
    result: dict[str, Any] = {"run": str(run_dir), "checkpoint": str(run.checkpoint), "split": "test",
                              "samples": len(data.test), **metrics}  # fmt: skip
    if run.spec.task == "classification" and outputs is not None:
        pred = outputs.argmax(1)
        cm = reports.confusion_matrix(data.test.y, pred, run.spec.num_classes)
        totals = cm.sum(1).clamp(min=1)
        result["per_class_accuracy"] = {n: (cm[i, i] / totals[i]).item() for i, n in enumerate(run.spec.class_names)}
        result["confusion_matrix"] = cm.tolist()
        result["class_names"] = run.spec.class_names
    return result


def predict(run_dir: str | os.PathLike, images: Sequence[str | os.PathLike] = (), *, top_k: int = 3,
            device: str | None = None, **options: Any) -> list[dict[str, Any]]:  # fmt: skip
    """Class and probabilities for each image file (any size; see images.py for the preprocessing), or what the
    run's task predicts (a forecaster: the values after the end of its series, or of a CSV given with --column)."""
    if top_k < 1:
        raise UserError(f"--top-k must be at least 1, not {top_k}.")
    run = load_run(run_dir)
    task = get_task(run.spec.task)
    if task.predict is not None:
        return task.predict(run, [str(p) for p in images], {"device": device, **options})
    if run.spec.task != "classification":
        raise UserError(f"{run_dir} holds a {run.spec.task} model; predict takes classifiers and forecasters.")
    if not images:
        raise UserError("Give at least one image file to predict.")
    x = load_images(list(images), run.spec)
    probs = _trainer_for(run, device).predict(x).softmax(1)
    return [{"file": str(path), **classification_result(p, run.spec.class_names, top_k)} for path, p in zip(images, probs)]


def classification_result(probs: torch.Tensor, class_names: Sequence[str], top_k: int = 3) -> dict[str, Any]:
    """The answer for one input from its class probabilities (C,): the label, the ``top_k`` most likely classes
    and every probability by name (what `nnzoo predict --json` prints and `nnzoo serve` returns)."""
    top = probs.topk(min(top_k, len(class_names)))
    return {
        "label": class_names[int(top.indices[0])],
        "index": int(top.indices[0]),
        "probability": float(top.values[0]),
        "top_k": [{"label": class_names[int(i)], "index": int(i), "probability": float(v)}
                  for v, i in zip(top.values, top.indices)],  # fmt: skip
        "probabilities": {n: float(v) for n, v in zip(class_names, probs)},
    }


def report(run_dir: str | os.PathLike, *, data_dir: str | None = None, device: str | None = None) -> list[Path]:
    """Regenerate a run's PNG reports from its folder (history from the checkpoint, test set reloaded)."""
    run = load_run(run_dir, which="last")
    data = _load_data(run, data_dir)
    trainer = _trainer_for(load_run(run_dir, which="best"), device)
    _, outputs = trainer.evaluate_with_outputs(data.test)
    return write_reports(list(run.payload.get("history", [])), data, outputs, Path(run_dir), run.config, trainer)


def generate(run_dir: str | os.PathLike, **options: Any) -> dict[str, Any]:
    """Text from a language model, or an image grid from a GAN / VAE; the options are `nnzoo generate`'s flags
    (prompt, length, temperature, top_k, seed, acrostic, n, label, from_images, out, device)."""
    if options.get("out") is not None:
        options = {**options, "out": check_output(options["out"], "file", run_dir=run_dir)}
    return _generate_for_task(load_run(run_dir), options)


def export(run_dir: str | os.PathLike, fmt: str = "onnx", out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write a run's model as ONNX or TorchScript and check it against PyTorch (max_abs_diff in the result)."""
    from .export import export as _export

    return _export(run_dir, fmt, out)


def attention(run_dir: str | os.PathLike, input: str, *, layer: int | None = None, head: int | None = None,
              out: str | os.PathLike | None = None, resize: bool = False, data_dir: str | None = None,
              device: str | None = None) -> dict[str, Any]:  # fmt: skip
    """PNG heat maps of what a Transformer run attends to (written under RUN_DIR/attention/ unless ``out``).

    ``input`` is text for language models and text classifiers, or an image file (or ``test:N``, the N-th test
    image) for image models. ``layer`` and ``head`` count from 1; None draws them all. The result holds the
    weights (L, H, T, T) as a tensor, the files written and, for classifiers, the prediction.
    """
    from .attention_maps import attention_for_run

    if out is not None:
        out = check_output(out, "folder", run_dir=run_dir)
    return attention_for_run(load_run(run_dir), input, layer=layer, head=head, out=out, resize=resize,
                             data_dir=data_dir, device=device)  # fmt: skip


def serve(run_dirs: Sequence[str | os.PathLike], *, host: str | None = None, port: int = 8000,
          device: str | None = None, max_batch: int | None = None, batch_wait_ms: float | None = None,
          header_timeout: float | None = None, body_timeout: float | None = None, max_connections: int | None = None,
          quiet: bool = False) -> None:  # fmt: skip
    """Serve runs over HTTP until interrupted: predict / generate endpoints, a web page, docs at /docs (needs
    ``pip install "nnzoo[serve]"``). Listens on 127.0.0.1 unless ``host`` says otherwise. Headers must arrive
    within ``header_timeout`` s (default 10), a body within ``body_timeout`` s more (default 30); at most
    ``max_connections`` (default 256) are served at once. None: the default."""
    from .serve import serve as _serve

    edges = {"header_timeout": header_timeout, "body_timeout": body_timeout, "max_connections": max_connections}
    _serve(run_dirs, host=host, port=port, device=device, max_batch=max_batch, batch_wait_ms=batch_wait_ms,
           quiet=quiet, **{k: v for k, v in edges.items() if v is not None})  # fmt: skip


# ---- explore ---------------------------------------------------------------------------------------------------------
def summary(model: str, dataset: str = "mnist", **model_args: Any) -> str:
    spec = dataset_spec(dataset)
    check_compatible(model, spec)  # before a text corpus is loaded for nothing
    if not spec.input_shape:  # text: the vocabulary (and so the model's size) is known only from the data
        spec = load_dataset(dataset).spec
    net = create_model(model, spec, **model_args)
    rows, params, flops = summarize(net, spec.input_shape)
    shape = tuple(net.example_input().shape[1:]) if hasattr(net, "example_input") else spec.input_shape
    title = f"{model} on {dataset}: input (B, {', '.join(map(str, shape))})"
    return format_summary(title, rows, params, flops)


def list_models() -> dict[str, str]:
    return {n: MODELS.help(n) for n in MODELS}


def list_datasets() -> dict[str, str]:
    return {n: DATASETS.help(n) for n in DATASETS}


def list_recipes() -> dict[str, str]:
    return {n: RECIPES.help(n) for n in RECIPES}


__all__ = ["LoadedRun", "RunResult", "TrainConfig", "attention", "evaluate", "export", "generate", "list_datasets",
           "launch", "list_models", "list_recipes",
           "load_run", "make_config", "predict", "report", "serve", "summary", "train", "train_config"]  # fmt: skip
