"""``nnzoo export``: a trained run as an ONNX or TorchScript file, checked against PyTorch.

Each task says what to export through ``Task.export`` (a function ``run -> ExportPlan``): a module whose inputs and
outputs are what a runtime wants (a classifier takes raw pixels scaled to 0..1 and applies the dataset's
normalisation inside the graph), example inputs to trace with, and inputs to check with. The batch axis stays
dynamic: the check runs a different batch size from the one traced.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import UserError

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


@dataclass
class ExportPlan:
    module: nn.Module
    example: tuple[torch.Tensor, ...]  # traced with these (batch 2)
    check: tuple[torch.Tensor, ...]  # compared on these (another batch size, real data where we have it)
    input_names: list[str]
    output_names: list[str]
    notes: list[str] = field(default_factory=list)


class NormalizedClassifier(nn.Module):
    """pixels (B, C, H, W) in 0..1 -> logits (B, classes), with the training normalisation inside the graph."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.model = model
        shape = (1, -1, 1, 1)
        self.register_buffer("mean", torch.tensor(mean or (0.0,), dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std or (1.0,), dtype=torch.float32).view(shape))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model((pixels - self.mean) / self.std)


def classifier_plan(run: Any) -> ExportPlan:
    spec = run.spec
    if len(spec.input_shape) != 3:
        raise UserError(f"Export of {spec.task} models on {spec.name} is not supported yet.")
    module = NormalizedClassifier(run.model, spec.mean, spec.std).eval()
    check, notes = _real_images(run, 5)
    return ExportPlan(module, (torch.rand(2, *spec.input_shape),), (check,), ["pixels"], ["logits"], notes)


def _real_images(run: Any, n: int) -> tuple[torch.Tensor, list[str]]:
    from .data import load_dataset

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            test = load_dataset(run.config.data).test
        return test.x[:n].float() / 255, []
    except UserError:
        return torch.rand(n, *run.spec.input_shape), ["the run's test data is not on this machine: checked on random inputs"]


def export(run_dir: str | Path, fmt: str = "onnx", out: str | Path | None = None) -> dict[str, Any]:
    from .api import load_run
    from .tasks import get_task

    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    run = load_run(run_dir)
    task = get_task(run.spec.task)
    if task.export is None:
        raise UserError(f"{run_dir} holds a {run.spec.task} model, which nnzoo cannot export yet.")
    plan = task.export(run)
    path = Path(out) if out else Path(run_dir) / "export" / f"{run.config.model}{SUFFIX[fmt]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        expected = plan.module(*plan.check)
    expected = expected if isinstance(expected, tuple) else (expected,)
    if fmt == "onnx":
        got = _onnx(plan, path)
    else:
        got = _torchscript(plan, path)
    diff = max(float((torch.as_tensor(g) - e).abs().max()) for g, e in zip(got, expected))
    return {"path": str(path), "format": fmt, "inputs": plan.input_names, "outputs": plan.output_names,
            "checked_batch": int(plan.check[0].shape[0]), "max_abs_diff": diff, "notes": plan.notes}  # fmt: skip


def _onnx(plan: ExportPlan, path: Path) -> list[Any]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError('ONNX export needs onnx, onnxscript and onnxruntime: pip install "nnzoo[export]".') from None
    batch = torch.export.Dim("batch", min=1)
    shapes = {name: {0: batch} for name in plan.input_names}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # the exporter narrates each pass
        warnings.simplefilter("ignore")
        torch.onnx.export(plan.module, plan.example, str(path), input_names=plan.input_names,
                          output_names=plan.output_names, dynamic_shapes=shapes, dynamo=True)  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), plan.check)}
    return session.run(None, feeds)


def _torchscript(plan: ExportPlan, path: Path) -> list[Any]:
    with warnings.catch_warnings():  # torch.jit is deprecated in favour of torch.export, but runtimes still load it
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(plan.module, plan.example)
        traced.save(str(path))
        loaded = torch.jit.load(str(path))
        with torch.no_grad():
            out = loaded(*plan.check)
    return list(out) if isinstance(out, tuple) else [out]
