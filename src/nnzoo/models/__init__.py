"""Models by family, all built through one registry: ``create_model(name, spec=..., **kwargs)``."""

from __future__ import annotations

import inspect
from typing import Any

from ..data.spec import DataSpec
from ..errors import UserError
from . import autoencoder, cnn, gan, mlp, rnn, transformer  # noqa: F401  (register the builders)
from .base import Classifier, Model
from .registry import MODELS


def create_model(name: str, spec: DataSpec, **kwargs: Any) -> Model:
    builder = MODELS.get(name)
    params = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(params) - {"spec"})
    if unknown:
        valid = [p for p in params if p != "spec"]
        raise UserError(f"Model {name!r} has no argument {unknown[0]!r}; its arguments are: {', '.join(valid)}.")
    return builder(spec, **kwargs)


__all__ = ["MODELS", "Classifier", "Model", "create_model"]
