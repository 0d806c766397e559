"""Your own ``nn.Module`` with a loss, trained by the same Trainer as nnzoo's models (Lightning's LightningModule
and Keras's ``compile(loss=...)`` in one: no subclass to write).

:class:`ModuleModel` keeps the Model contract for any module: ``compute_loss((x, y))`` runs ``module(x)`` and the
loss (a name such as ``"cross_entropy"`` or ``"mse"``, or any callable ``loss(outputs, y)``), logs accuracy when
the loss is a classification loss, and lets the outputs ride along for reports. The first batch is checked once
(the classes a classifier's output has against the labels; an element-wise loss's shapes), so the mistakes that
plain PyTorch turns into an IndexError deep in a kernel, or silently into a broadcast loss, are one sentence.

A run folder records the module's class by its import name (``package.module:Class``) and its constructor
arguments; ``load_run`` imports that class, builds it and loads the weights, so no code is unpickled.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from .base import Metrics, Model

# name -> (function(outputs, targets), task): classification losses take class indices (or probabilities);
# the others compare outputs and targets element by element.
LOSSES: dict[str, tuple[Callable[..., torch.Tensor], str]] = {
    "cross_entropy": (F.cross_entropy, "classification"),
    "nll": (F.nll_loss, "classification"),
    "mse": (F.mse_loss, "regression"),
    "l1": (F.l1_loss, "regression"),
    "smooth_l1": (F.smooth_l1_loss, "regression"),
    "huber": (F.huber_loss, "regression"),
    "bce_with_logits": (F.binary_cross_entropy_with_logits, "regression"),
}
ALIASES = {"ce": "cross_entropy", "crossentropy": "cross_entropy", "mae": "l1", "l2": "mse"}
CLASSIFICATION_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss)


def resolve_loss(loss: str | Callable[..., torch.Tensor] | None) -> tuple[Callable[..., torch.Tensor], str | None, str]:
    """(the function, its task, the name the run folder records) for ``loss=``."""
    if loss is None:
        raise UserError('A plain nn.Module needs a loss: loss="cross_entropy", "mse", ... or a callable '
                        "loss(outputs, targets) -> scalar.")  # fmt: skip
    if isinstance(loss, str):
        key = ALIASES.get(loss.lower(), loss.lower())
        if key not in LOSSES:
            raise UserError(f"Unknown loss {loss!r}; the named losses are: {', '.join(LOSSES)} (or give a callable).")
        fn, task = LOSSES[key]
        return fn, task, key
    if not callable(loss):
        raise UserError(f"loss must be a name ({', '.join(LOSSES)}) or a callable, not {type(loss).__name__}.")
    if isinstance(loss, CLASSIFICATION_LOSSES) or loss in (F.cross_entropy, F.nll_loss):
        task = "classification"
    else:
        task = None  # any other callable: the data decides (integer labels: classification), see data/arrays.py
    return loss, task, import_name(loss if inspect.isfunction(loss) or inspect.isbuiltin(loss) else type(loss))


def import_name(obj: Any) -> str:
    """``package.module:Qualified.Name`` of a class or function, as importlib finds it again."""
    return f"{obj.__module__}:{obj.__qualname__}"


class ModuleModel(Model):
    """A user's module and loss as an nnzoo Model. ``module_args`` are the module's constructor arguments, recorded
    so the run folder can rebuild it; the loss is kept outside the state dict (it is not part of the model)."""

    def __init__(self, module: nn.Module, loss: str | Callable[..., torch.Tensor] | None,
                 module_args: dict[str, Any] | None = None, *, task: str | None = None,
                 loss_name: str | None = None):  # fmt: skip
        super().__init__()
        if not isinstance(module, nn.Module):
            raise UserError(f"The model must be a torch.nn.Module, not {type(module).__name__}.")
        self.module = module
        fn, own_task, own_name = resolve_loss(loss)
        self.task, self.loss_name = task or own_task, loss_name or own_name  # a rebuilt run says what it was
        self.__dict__["loss_fn"] = fn  # not a submodule: its buffers (class weights) are not the model's weights
        self.module_args = dict(module_args or {})
        self.named_loss = self.loss_name in LOSSES  # a loss whose meaning nnzoo knows, so it checks the first batch
        self.loss_meaning = self.loss_name + (", averaged over the batch" if self.loss_name in LOSSES else "")
        self._checked = False

    @property
    def classifies(self) -> bool:
        return self.task == "classification"

    def _apply(self, fn: Any, recurse: bool = True) -> ModuleModel:  # .to(device) moves a loss module's buffers too
        super()._apply(fn, recurse)
        if isinstance(self.loss_fn, nn.Module):
            self.loss_fn._apply(fn)
        return self

    def forward(self, x: Any) -> torch.Tensor:
        return self.module(x)

    def compute_loss(self, batch: Any) -> Metrics:
        x, y = batch
        out = self.module(x)
        if not isinstance(out, torch.Tensor):
            if self.named_loss:
                raise UserError(f"Your module returned a {type(out).__name__}, but {self.loss_name} takes one tensor: "
                                "return one, or give loss= a callable that takes what the module returns.")  # fmt: skip
            return {"loss": self.loss_fn(out, y)}  # (a VAE's (reconstruction, mu, logvar), say): the loss knows
        if not self._checked and self.named_loss:
            check_targets(out, y, self.loss_name, self.classifies)
            self._checked = True
        if self.named_loss and not self.classifies and out.shape != y.shape and out.numel() == y.numel():
            y = y.view_as(out)  # (B, 1) outputs against (B,) targets: compared sample by sample, never broadcast
        loss = self.loss_fn(out.float(), y)  # in fp32 under bf16 autocast, as nnzoo's own models compute theirs
        metrics = {"loss": loss, "outputs": out.detach()}
        if self.classifies and y.dim() == 1 and out.dim() == 2:
            metrics["accuracy"] = (out.argmax(dim=1) == y).float().mean()
        return metrics


def check_targets(out: torch.Tensor, y: torch.Tensor, loss: str, classifies: bool) -> None:
    """The first batch's outputs and targets fit the loss, else one sentence (checked once: it syncs)."""
    if classifies and y.dim() == 1:
        if y.dtype.is_floating_point:
            raise UserError(f"{loss} takes class indices as y (integers 0..C-1), but y holds {y.dtype} values: give "
                            "integer labels, or one row of class probabilities per sample.")  # fmt: skip
        if out.dim() != 2:
            raise UserError(f"{loss} needs outputs of shape (batch, classes), but the module returned "
                            f"{tuple(out.shape)}.")  # fmt: skip
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= out.shape[1]:
            raise UserError(f"The labels run from {low} to {high}, but the module's output has {out.shape[1]} classes "
                            f"(0..{out.shape[1] - 1}): give it at least {high + 1} outputs.")  # fmt: skip
        return
    if out.shape != y.shape and out.numel() != y.numel():
        raise UserError(f"The module returned {tuple(out.shape)} for a batch whose targets are {tuple(y.shape)}: "
                        f"{loss} compares them element by element, so their sizes must match.")  # fmt: skip


def rebuild(saved: dict[str, Any], module: nn.Module | type | None = None, loss: Any = None) -> Model:
    """The model a run folder describes (see ``describe``): the class imported by name (or ``module``: an instance,
    or a class to build with the saved arguments), wrapped with its loss when it was a plain module; the loss by
    name, or imported, or ``loss``, else the run predicts but cannot compute a loss."""
    args = saved.get("args") or {}
    if isinstance(module, nn.Module):
        instance = module
    else:
        cls = module if module is not None else import_class(saved["class"])
        try:
            instance = cls(**args)
        except TypeError as e:
            raise UserError(f"{saved['class']} could not be built from the arguments the run recorded ({e}): give "
                            "load_run(..., module=YourModule(...)) or module_args= when training.") from None  # fmt: skip
    if not saved.get("wrapped", True):
        if not isinstance(instance, Model):
            raise UserError(f"The run holds an nnzoo Model ({saved['class']}), but module= is a plain nn.Module.")
        return instance
    name = saved.get("loss") or "?"
    if loss is None:
        loss = name if name in LOSSES else _loss_by_name(name)
    return ModuleModel(instance, loss, args, task=saved.get("task"), loss_name=name)


def _loss_by_name(name: str) -> Any:
    """An importable loss function, or a loss module's class built with its defaults; else ``_no_loss``."""
    try:
        loss = _import(name) if ":" in name else _no_loss
    except UserError:
        return _no_loss
    if isinstance(loss, type):
        try:
            return loss() if issubclass(loss, nn.Module) else _no_loss
        except TypeError:
            return _no_loss
    return loss if callable(loss) else _no_loss


def _no_loss(*_: Any) -> torch.Tensor:
    raise UserError("This run's loss was a callable nnzoo cannot import by name: predict works; to evaluate or "
                    "resume, give load_run(..., loss=...) or build the Trainer with loss=...")  # fmt: skip


def import_class(name: str) -> type:
    """A class of nn.Module by its ``module:Qualified.Name`` (nothing else is built from a run folder's text)."""
    cls = _import(name)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise UserError(f"{name} is not a torch.nn.Module class, so nnzoo will not build it.")
    return cls


def _import(name: str) -> Any:
    module_name, _, qualname = name.partition(":")
    if module_name == "__main__":
        main = importlib.import_module("__main__")
        if not hasattr(main, qualname.split(".")[0]):
            raise UserError(f"The run's module class {qualname} was defined in a script or notebook (__main__) and is "
                            "not defined here: move it into a module file (e.g. mynet.py) to load the run anywhere, "
                            "or give load_run(..., module=YourModule(...)).")  # fmt: skip
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as e:
        raise UserError(f"Cannot import {name} ({e}): make its module importable (on sys.path) or give "
                        "load_run(..., module=YourModule(...)).") from None  # fmt: skip
    return obj


def describe(model: Model) -> dict[str, Any]:
    """What a run folder records of a user's module (beside the weights): its class by import name, constructor
    arguments, and the loss; for the user's own Model subclass (which computes its loss itself) just the class."""
    if isinstance(model, ModuleModel):
        return {"class": import_name(type(model.module)), "args": model.module_args, "loss": model.loss_name,
                "task": model.task, "wrapped": True}  # fmt: skip
    return {"class": import_name(type(model)), "args": getattr(model, "module_args", {}), "task": model.task,
            "wrapped": False}  # fmt: skip
