"""Every task nnzoo knows, one room each: ``base.py`` is the registry (``Task``, ``TASKS``, ``get_task``,
``generate``) and each family is a module or package beside it that defines its ``Task`` (its hooks). This file
registers every family, one line each; ``api`` imports it, so ``import nnzoo`` (or any ``nnzoo.*``) registers them
all.

A new task: a module ``tasks/NAME.py`` (or a package ``tasks/NAME/``) that defines ``TASK = Task("NAME", ...)``,
then one ``TASKS.add`` line here.

``runs``, ``training`` and ``export`` read the registry as ``nnzoo.tasks.base`` and the families import them, so
Python must load this package before any of those three: ``api`` imports ``tasks`` before anything else of nnzoo's
(docs/architecture.md).
"""

from __future__ import annotations

from . import classification, forecast, generative, language_model, pretraining, regression
from .base import TASKS, History, Task, generate, get_task
from .classification import classification_metrics, classification_reports, classification_result

__all__ = ["TASKS", "History", "Task", "classification_metrics", "classification_reports", "classification_result",
           "generate", "get_task"]  # fmt: skip

TASKS.add("classification", classification.TASK)
TASKS.add("language-model", language_model.TASK)
TASKS.add("forecast", forecast.TASK)
TASKS.add("regression", regression.TASK)
TASKS.add("masked-lm", pretraining.TASK)
TASKS.add("autoencoder", generative.AUTOENCODER_TASK)
TASKS.add("gan", generative.GAN_TASK)
