"""Models by family, all built through one registry: ``create_model(name, spec=..., **kwargs)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..config import coerce
from ..data.spec import DataSpec
from ..errors import IncompatibleData, UserError
from . import autoencoder, cnn, gan, mlp, rnn, transformer  # noqa: F401  (register the builders)
from .base import Classifier, Model
from .registry import DATA_KINDS, IMAGES, KIND_NAMES, KIND_OF, MODELS, TASK_KINDS, TEXT_CLASSES


def create_model(name: str, spec: DataSpec, **kwargs: Any) -> Model:
    check_compatible(name, spec)
    builder = MODELS.get(name)
    args = check_model_args(name, builder, kwargs)
    model = builder(spec, **args)
    # Noted for a Trainer built in Python with a run folder: load_run rebuilds the model from these.
    model.registry_name, model.registry_args = name, args
    return model


def data_kind(spec: DataSpec) -> str:
    """images, text (a corpus for language models), text-classification (labelled texts) or series: from the
    spec's task and padding first, as a spec built in Python may not say its kind."""
    if spec.task in TASK_KINDS:
        return TASK_KINDS[spec.task]
    if spec.text_ids:
        return TEXT_CLASSES
    return KIND_OF.get(spec.corpus_kind, IMAGES)


def check_compatible(name: str, spec: DataSpec, data: Any = None) -> None:
    """Refuse a model given a kind of data it does not take, before anything is loaded or built (a setting the
    dataset has no use for, like --target on mnist, is data.check_options's to refuse)."""
    MODELS.get(name)  # an unknown name: one sentence with the valid ones
    kind = data_kind(spec)
    takes = DATA_KINDS.get(name)
    if takes is not None and kind not in takes:
        others = ", ".join(m for m in MODELS if kind in DATA_KINDS.get(m, ()))
        names = [KIND_NAMES[k] for k in takes]
        kinds = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise IncompatibleData(f"{name} takes {kinds}, but {spec.name} is "
                               f"{KIND_NAMES[kind]}; models for {spec.name}: {others}.")  # fmt: skip


def check_model_args(name: str, builder: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``model_args`` checked against the builder's signature: known names, and values of the annotated type (or
    of the default's type), so a bad argument is a sentence naming ``model_args.X``, not a TypeError."""
    params = {k: p for k, p in inspect.signature(builder).parameters.items() if k != "spec"}
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise UserError(f"Model {name!r} has no argument {unknown[0]!r}; its arguments are: {', '.join(params)}.")
    return {k: coerce(f"model_args.{k}", v, _param_type(builder, params[k])) for k, v in kwargs.items()}


def _param_type(builder: Callable[..., Any], param: inspect.Parameter) -> Any:
    annotation = param.annotation
    if isinstance(annotation, str):  # postponed annotations (from __future__ import annotations)
        try:
            annotation = eval(annotation, builder.__globals__)  # our own source's annotations, not user input
        except Exception:  # noqa: BLE001  (a name only imported for type checkers)
            annotation = inspect.Parameter.empty
    if annotation is not inspect.Parameter.empty:
        return annotation
    default = param.default
    return object if default is inspect.Parameter.empty or default is None else type(default)


__all__ = ["MODELS", "Classifier", "Model", "check_compatible", "create_model", "data_kind"]
