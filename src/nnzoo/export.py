"""``nnzoo export``: a trained run as an ONNX or TorchScript file, checked against PyTorch.

Each task says what to export through ``Task.export`` (a function ``run -> ExportPlan``): a module whose inputs and
outputs are what a runtime wants (a classifier takes raw pixels scaled to 0..1 and applies the dataset's
normalisation inside the graph; a language model exports one step with its state as inputs and outputs), example
inputs to trace with, and a check. The batch axis stays dynamic: the check runs a different batch size from the one
traced. Next to the file goes ``FILE.json``: every input and output with its shape and meaning, and what a runtime
needs to use them (the vocabulary of a text model, the class names of a classifier).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import files
from .data import load_dataset
from .errors import UserError
from .paths import check_output
from .runs import load_run
from .tasks.base import get_task

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}

# Runs the exported file on some inputs, as a runtime would: tensors in, tensors out (in output order).
Call = Callable[[tuple[torch.Tensor, ...]], list[torch.Tensor]]


@dataclass
class ExportPlan:
    module: nn.Module
    example: tuple[torch.Tensor, ...]  # traced with these (batch 2)
    check: tuple[torch.Tensor, ...]  # compared on these (another batch size, real data where we have it)
    input_names: list[str]
    output_names: list[str]
    notes: list[str] = field(default_factory=list)
    # Named dynamic axes per input, {input: {axis: name}}; None: axis 0 of every input is "batch".
    axes: dict[str, dict[int, str]] | None = None
    # (min, max) of each named axis; max None: unbounded. An axis not listed here is (1, unbounded).
    limits: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    # What each input and output holds, for FILE.json (and the README).
    docs: dict[str, str] = field(default_factory=dict)
    # Whatever else a runtime needs, written into FILE.json (vocabulary, class names, context length...).
    meta: dict[str, Any] = field(default_factory=dict)
    # A check of its own: (call) -> max |difference| from PyTorch. None: ``module(*check)`` against ``call(check)``.
    verify: Callable[[Call], float] | None = None
    # What the export is checked against, when ``module`` is a twin of the trained model built for exporting.
    reference: nn.Module | None = None
    checked: str = ""  # what the check ran, in words (default: "a batch of N")
    # Run onnxscript's graph optimizer after the ONNX export. Off for graphs unrolled step by step (a masked RNN
    # twin: thousands of nodes, where its pattern rewriter takes minutes); onnxruntime optimises every graph itself
    # when it loads it.
    optimize: bool = True


def real_test_inputs(run: Any, n: int) -> tuple[torch.Tensor | None, list[str]]:
    """The first ``n`` inputs of the run's test split as stored (uint8 images, int16 ids, scaled series), or None
    and a note when the data is not on this machine."""

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            test = load_dataset(run.config.data).test
        return test.x[:n], []
    except UserError:
        return None, ["the run's test data is not on this machine: checked on random inputs"]


def arrays_plan(run: Any) -> ExportPlan:
    """A run of data given in Python (your own module, arrays): the module as it is, taking what training took
    (the recorded input shape and type), checked on random inputs of that shape since the data is not saved."""
    spec = run.spec
    dtype = getattr(torch, spec.extra.get("x_dtype", "float32"))
    g = torch.Generator().manual_seed(0)

    def sample(n: int) -> torch.Tensor:
        if dtype.is_floating_point:
            return torch.randn(n, *spec.input_shape, generator=g).to(dtype)
        return torch.randint(0, 2, (n, *spec.input_shape), generator=g).to(dtype)  # ids any embedding takes

    shape = ", ".join(map(str, spec.input_shape))
    what = "logits; softmax gives the probabilities of class_names" if spec.task == "classification" else "outputs"
    return ExportPlan(run.model.eval(), (sample(2),), (sample(5),), ["x"], ["outputs"],
                      ["the run's data was given in Python: checked on random inputs of its shape"],
                      docs={"x": f"(batch, {shape}) {dtype} inputs, as the training data was given",
                            "outputs": f"what the module returns: {what}"},
                      meta={"class_names": spec.class_names} if spec.class_names else {})  # fmt: skip


# ---- the export itself ----------------------------------------------------------------------------------------
def export(run_dir: str | Path, fmt: str = "onnx", out: str | Path | None = None) -> dict[str, Any]:

    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    if out is not None:
        out = check_output(out, "file", run_dir=run_dir)
        check_output(out.with_name(out.name + ".json"), "file", run_dir=run_dir)  # the description beside it
    run = load_run(run_dir)
    task = get_task(run.spec.task)
    export_plan = arrays_plan if run.spec.corpus_kind == "arrays" else task.export
    if export_plan is None:
        raise UserError(f"{run_dir} holds a {run.spec.task} model, which nnzoo cannot export yet.")
    plan = export_plan(run)
    path = Path(out) if out else Path(run_dir) / "export" / f"{run.config.model}{SUFFIX[fmt]}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        call = _onnx(plan, path) if fmt == "onnx" else _torchscript(plan, path)
    except (OSError, RuntimeError) as e:  # a full disk, `ulimit -f`: one sentence, and no half-written file
        failed = files.write_error(path, e)
        if failed is None:
            raise
        path.unlink(missing_ok=True)
        raise failed from None
    with torch.no_grad():
        diff = (
            plan.verify(call)
            if plan.verify is not None
            else _max_diff(call(plan.check), (plan.reference or plan.module)(*plan.check))
        )
    batch = int(plan.check[0].shape[0])
    meta_path = path.with_name(path.name + ".json")
    files.atomic_write_text(meta_path, json.dumps(_describe(plan, run, path, fmt), indent=2, ensure_ascii=False) + "\n")
    return {"path": str(path), "format": fmt, "inputs": plan.input_names, "outputs": plan.output_names,
            "checked_batch": batch, "checked": plan.checked or f"a batch of {batch}", "max_abs_diff": diff,
            "meta": str(meta_path), "notes": plan.notes}  # fmt: skip


def _max_diff(got: list[torch.Tensor], expected: torch.Tensor | tuple[torch.Tensor, ...]) -> float:
    expected = expected if isinstance(expected, tuple) else (expected,)
    return max(float((g - e).abs().max()) for g, e in zip(got, expected, strict=True))


def _axes(plan: ExportPlan) -> dict[str, dict[int, str]]:
    return plan.axes if plan.axes is not None else {name: {0: "batch"} for name in plan.input_names}


def _describe(plan: ExportPlan, run: Any, path: Path, fmt: str) -> dict[str, Any]:
    """FILE.json: the interface of the exported file, with named dynamic axes and their ranges."""
    axes = _axes(plan)
    with torch.no_grad():
        outs = plan.module(*plan.example)
    outs = outs if isinstance(outs, tuple) else (outs,)

    def port(name: str, t: torch.Tensor, named: dict[int, str]) -> dict[str, Any]:
        shape = [named.get(i, int(n)) for i, n in enumerate(t.shape)]
        dtype = str(t.dtype).removeprefix("torch.")
        return {"name": name, "shape": shape, "dtype": dtype, "doc": plan.docs.get(name, "")}

    used = sorted({a for named in axes.values() for a in named.values()})
    return {"file": path.name, "format": fmt, "model": run.config.model, "task": run.spec.task,
            "dataset": run.spec.name, "run": str(run.run_dir),
            "inputs": [port(n, t, axes.get(n, {})) for n, t in zip(plan.input_names, plan.example)],
            # an output's shape follows the inputs' axes: its doc says how
            "outputs": [{"name": n, "dtype": str(t.dtype).removeprefix("torch."), "doc": plan.docs.get(n, "")}
                        for n, t in zip(plan.output_names, outs)],
            "axes": {a: list(plan.limits.get(a, (1, None))) for a in used}, **plan.meta}  # fmt: skip


def _onnx(plan: ExportPlan, path: Path) -> Call:
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError('ONNX export needs onnx, onnxscript and onnxruntime: pip install "nnzoo[export]".') from None
    named = _axes(plan)
    dims = {
        a: torch.export.Dim(a, min=plan.limits.get(a, (1, None))[0], max=plan.limits.get(a, (1, None))[1])
        for axes in named.values()
        for a in axes.values()
    }  # one Dim per name: axes of one name are equal
    shapes = tuple({i: dims[a] for i, a in named.get(name, {}).items()} or None for name in plan.input_names)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():  # the exporter narrates each pass
        warnings.simplefilter("ignore")
        torch.onnx.export(plan.module, plan.example, str(path), input_names=plan.input_names,
                          output_names=plan.output_names, dynamic_shapes=shapes, dynamo=True,
                          optimize=plan.optimize)  # fmt: skip
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}  # the exporter drops inputs the graph does not use

    def call(inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        feeds = {name: t.numpy() for name, t in zip(plan.input_names, inputs) if name in wanted}
        return [torch.from_numpy(o) for o in session.run(None, feeds)]

    return call


def _torchscript(plan: ExportPlan, path: Path) -> Call:
    with warnings.catch_warnings():  # torch.jit is deprecated in favour of torch.export, but runtimes still load it
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(plan.module, plan.example)
        traced.save(str(path))
        loaded = torch.jit.load(str(path))

    def call(inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        with torch.no_grad():
            out = loaded(*inputs)
        return list(out) if isinstance(out, tuple) else [out]

    return call
