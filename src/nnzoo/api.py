"""What users and the CLI call: train, evaluate, predict, report, summary, load.

Every function takes plain values and returns plain values (dicts, paths, tensors); the CLI only parses argv
and prints what comes back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import (
    checkpoint,
    parallel,
    tasks,  # noqa: F401  (registers every task: classification, language-model, forecast, ...)
)
from .attention_maps import attention_for_run

# Names api offered before the run folder and training moved out (importable as api.NAME; nnzoo offers them too).
from .bench import DEFAULT_RECIPES, run_bench
from .callbacks import Callback  # noqa: F401
from .config import (  # noqa: F401  (the CLI reads api.FLAG_SETTINGS)
    FLAG_SETTINGS,
    RunConfig,  # noqa: F401
    TrainConfig,
)
from .data import DATASETS, arrays, dataset_spec, load_dataset
from .data.arrays import is_array
from .data.spec import Dataset, DataSpec  # noqa: F401
from .errors import Terminated, UserError
from .export import export as _export
from .models import (
    MODELS,
    Model,  # noqa: F401
    check_compatible,
    create_model,
)
from .notebook import show_images
from .paths import check_output
from .recipes import RECIPES, load_recipe  # noqa: F401
from .recipes import description as recipe_description
from .runs import LoadedRun, RunResult, load_run, write_reports
from .runs import load_data as _load_data
from .runs import trainer_for as _trainer_for
from .summary import format_summary, summarize
from .tasks import generate as _generate_for_task
from .tasks import get_task
from .trainer import Trainer, distributed_session, resolve_device, seed_everything, usable_cores  # noqa: F401
from .training import LOWER_IS_BETTER, Interrupted, _meets, make_config, train, train_config  # noqa: F401
from .training import task_metrics as _task_metrics

# ---- train (the run itself is training.train) ----------------------------------------------------------------------


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


def fit(model: nn.Module, x: Any, y: Any = None, *, loss: Any = None, val: Any = None,
        run_dir: str | os.PathLike | None = None, resume: bool = False, module_args: dict[str, Any] | None = None,
        callbacks: Sequence[Callback] = (), progress: bool = True, **settings: Any) -> Trainer:  # fmt: skip
    """Train ``model`` (any nn.Module with ``loss``, or an nnzoo Model) on ``x`` and ``y`` and return its Trainer
    (``.history``, ``.evaluate(data)``, ``.predict(x)``), as Keras's ``model.fit(x, y)`` and skorch's ``fit(X, y)``.

    ``x``: numpy arrays or tensors with ``y``; or, without ``y``, an ``(x, y)`` pair, a torch Dataset or a
    DataLoader (see data/arrays.py). ``val``: the same forms, validated after every epoch. ``loss``: a name
    ("cross_entropy", "mse", "l1", "huber", "bce_with_logits", ...) or a callable ``loss(outputs, y)``.
    ``settings``: TrainConfig's fields (epochs, batch_size, lr, optimizer, schedule, device, ...), checked as
    ``--set`` checks them; here the optimizer defaults to Adam at lr 1e-3 (TrainConfig's own defaults are the
    classic example's SGD at 0.01). ``run_dir``: checkpoints and metrics.jsonl there, so ``load_run(run_dir)``
    reloads the model (your module's class by its import name, built with ``module_args``); with ``resume`` an
    interrupted run there continues where its last checkpoint left off.
    """
    settings = {"optimizer": "adam", "lr": 1e-3, **settings}
    cfg = TrainConfig.from_dict(settings)
    if run_dir is not None:
        last = Path(run_dir) / "checkpoints" / "last.pt"
        if last.is_file() and not resume:
            raise UserError(f"{run_dir} already holds a run: pass resume=True to continue it, or choose another "
                            "run_dir.")  # fmt: skip
    trainer = Trainer(model, cfg, loss=loss, module_args=module_args, run_dir=run_dir, callbacks=callbacks,
                      progress=progress)  # fmt: skip
    if resume and run_dir is not None and (Path(run_dir) / "checkpoints" / "last.pt").is_file():
        state = checkpoint.load(Path(run_dir) / "checkpoints" / "last.pt")
        checkpoint.check_weights(trainer.model, state["model"], run_dir, type(trainer.model).__name__)
        trainer.load_state_dict(state)
        trainer.spec = DataSpec.from_dict(state["spec"]) if state.get("spec") else None
    trainer.fit((x, y) if y is not None else x, val)
    return trainer


# ---- use a trained run ---------------------------------------------------------------------------------------------


def evaluate(run_dir: str | os.PathLike, *, data_dir: str | None = None, device: str | None = None) -> dict[str, Any]:
    """Test-set metrics of a run's best checkpoint, with per-class accuracy and the confusion matrix."""
    run = load_run(run_dir)
    data = _load_data(run, data_dir)
    trainer = _trainer_for(run, device)
    metrics, outputs = trainer.evaluate_with_outputs(data.test)
    metrics.update(_task_metrics(trainer, metrics, outputs, data, run.config))
    result: dict[str, Any] = {"run": str(run_dir), "checkpoint": str(run.checkpoint), "split": "test",
                              "samples": len(data.test), **metrics}  # fmt: skip
    task = get_task(run.spec.task)
    if task.evaluation is not None:
        result.update(task.evaluation(run, data, outputs))
    if "confusion_matrix_png" in result:
        show_images([result["confusion_matrix_png"]])  # in a Jupyter kernel, inline; elsewhere nothing
    return result


def predict(run: str | os.PathLike | LoadedRun, inputs: Any = (), *, top_k: int = 3, device: str | None = None,
            **options: Any) -> list[dict[str, Any]]:  # fmt: skip
    """What a run answers, one dict per input. ``inputs``: image files (any size; see images.py for the
    preprocessing), or a numpy array / tensor of inputs given as the training data was (pixels 0..255 for nnzoo's
    image models, one sample or a batch: the run's normalisation is applied here); a forecaster predicts the values
    after the end of its series (or of a CSV given with --column). ``run``: a run folder or a loaded run."""
    if top_k < 1:
        raise UserError(f"--top-k must be at least 1, not {top_k}.")
    run = run if isinstance(run, LoadedRun) else load_run(run)
    task = get_task(run.spec.task)
    if is_array(inputs):
        if task.answer is None:
            raise UserError(f"{run.run_dir} holds a {run.spec.task} model; arrays are predicted by classifiers and "
                            "regressors (use its own verb: generate, or predict with files).")  # fmt: skip
        return task.answer(run, run.predict(inputs, device), {"top_k": top_k})
    if run.spec.corpus_kind == "arrays":
        raise UserError(f"{run.run_dir} was trained on arrays given in Python: give predict an array of inputs "
                        "(nnzoo.predict(run, x)), not files.")  # fmt: skip
    if task.predict is None:
        raise UserError(f"{run.run_dir} holds a {run.spec.task} model; predict takes classifiers and forecasters.")
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    return task.predict(run, [str(p) for p in inputs], {"device": device, "top_k": top_k, **options})


def report(run_dir: str | os.PathLike, *, data_dir: str | None = None, device: str | None = None) -> list[Path]:
    """Regenerate a run's PNG reports from its folder (history from the checkpoint, test set reloaded)."""
    run = load_run(run_dir, which="last")
    data = _load_data(run, data_dir)
    trainer = _trainer_for(load_run(run_dir, which="best"), device)
    _, outputs = trainer.evaluate_with_outputs(data.test)
    paths = write_reports(list(run.payload.get("history", [])), data, outputs, Path(run_dir), run.config, trainer)
    show_images(paths)  # in a Jupyter kernel, inline; elsewhere nothing
    return paths


def generate(run_dir: str | os.PathLike, **options: Any) -> dict[str, Any]:
    """Text from a language model, or an image grid from a GAN / VAE; the options are `nnzoo generate`'s flags
    (prompt, length, temperature, top_k, seed, acrostic, n, label, from_images, out, device)."""
    if options.get("out") is not None:
        options = {**options, "out": check_output(options["out"], "file", run_dir=run_dir)}
    return _generate_for_task(load_run(run_dir), options)


def export(run_dir: str | os.PathLike, fmt: str = "onnx", out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write a run's model as ONNX or TorchScript and check it against PyTorch (max_abs_diff in the result)."""
    return _export(run_dir, fmt, out)


def attention(run_dir: str | os.PathLike, input: str, *, layer: int | None = None, head: int | None = None,
              out: str | os.PathLike | None = None, resize: bool = False, data_dir: str | None = None,
              device: str | None = None) -> dict[str, Any]:  # fmt: skip
    """PNG heat maps of what a Transformer run attends to (written under RUN_DIR/attention/ unless ``out``).

    ``input`` is text for language models and text classifiers, or an image file (or ``test:N``, the N-th test
    image) for image models. ``layer`` and ``head`` count from 1; None draws them all. The result holds the
    weights (L, H, T, T) as a tensor, the files written and, for classifiers, the prediction.
    """
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
    # Imported here, not above: the package nnzoo.serve shares its name with this function (nnzoo.serve), and
    # loaded while nnzoo/__init__ runs it would be shadowed by it, so `import nnzoo.serve as m` would give this.
    from .serve import serve as _serve

    edges = {"header_timeout": header_timeout, "body_timeout": body_timeout, "max_connections": max_connections}
    _serve(run_dirs, host=host, port=port, device=device, max_batch=max_batch, batch_wait_ms=batch_wait_ms,
           quiet=quiet, **{k: v for k, v in edges.items() if v is not None})  # fmt: skip


# ---- explore ---------------------------------------------------------------------------------------------------------
def bench(recipes: Sequence[str] | None = None, *, seconds: float = 3.0, data_dir: str | None = None,
          device: str = "auto") -> dict[str, Any]:  # fmt: skip
    """This machine's peak GFLOP/s and each recipe's training step against it (see nnzoo.bench); prints a table."""
    return run_bench(recipes or DEFAULT_RECIPES, seconds=seconds, data_dir=data_dir, device=device)


def summary(model: str | nn.Module, dataset: Any = "mnist", **model_args: Any) -> str:
    """Per-layer output shapes, parameters and FLOPs: of a registry model on a dataset (``summary("simple-cnn",
    "fashion-mnist")``), or of your own module on an example input (``summary(module, (1, 28, 28))``: the shape of
    one sample, or a tensor / array batch)."""
    if isinstance(model, nn.Module):
        if model_args:
            raise UserError(f"summary of a module takes the module and an input, not {', '.join(model_args)}.")
        return _module_summary(model, dataset)
    spec = dataset_spec(dataset)
    check_compatible(model, spec)  # before a text corpus is loaded for nothing
    if not spec.input_shape:  # text: the vocabulary (and so the model's size) is known only from the data
        spec = load_dataset(dataset).spec
    net = create_model(model, spec, **model_args)
    rows, params, flops = summarize(net, spec.input_shape)
    shape = tuple(net.example_input().shape[1:]) if hasattr(net, "example_input") else spec.input_shape
    title = f"{model} on {dataset}: input (B, {', '.join(map(str, shape))})"
    return format_summary(title, rows, params, flops)


def _module_summary(module: nn.Module, example: Any) -> str:
    if isinstance(example, (tuple, list)) and all(isinstance(d, int) and not isinstance(d, bool) for d in example):
        x = torch.zeros(1, *example)
    elif is_array(example):
        x = arrays.features(arrays.to_tensor(example, "the input"), "the input")
    else:
        raise UserError("summary(module, input): give the shape of one sample, like (1, 28, 28), or an example batch "
                        "as a tensor or numpy array.")  # fmt: skip
    rows, params, flops = summarize(module, tuple(x.shape[1:]), example=x[:1])
    title = f"{type(module).__name__}: input (B, {', '.join(map(str, x.shape[1:]))})"
    return format_summary(title, rows, params, flops)


def list_models() -> dict[str, str]:
    return {n: MODELS.help(n) for n in MODELS}


def list_datasets() -> dict[str, str]:
    return {n: DATASETS.help(n) for n in DATASETS}


def list_recipes(long: bool = False) -> dict[str, str]:
    """Each recipe's first sentence, or with ``long`` its whole description."""
    return {n: recipe_description(RECIPES.get(n)) if long else RECIPES.help(n) for n in RECIPES}


__all__ = ["LoadedRun", "RunResult", "TrainConfig", "attention", "evaluate", "export", "fit", "generate", "list_datasets",
           "launch", "list_models", "list_recipes",
           "load_run", "make_config", "predict", "report", "serve", "summary", "train", "train_config"]  # fmt: skip
