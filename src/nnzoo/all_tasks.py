"""Every task nnzoo knows, registered in one place: the task registry (tasks.py) sits below the families that
fill it, so no family imports the registry's users and the registry imports no family.

A new task: define its :class:`~nnzoo.tasks.Task` (its hooks) in its own module, then add one ``TASKS.add`` line
here. ``api`` imports this module, so ``import nnzoo`` (or any ``nnzoo.*``) registers them all.
"""

from __future__ import annotations

from . import forecast, generative
from .export import classifier_plan
from .export_lm import language_model_plan
from .generation import generate_for_run, language_model_metrics
from .tasks import TASKS, Task, classification_metrics, classification_reports

TASKS.add("classification", Task("classification", extra_metrics=classification_metrics,
                                 write_reports=classification_reports, export=classifier_plan))  # fmt: skip
TASKS.add("language-model", Task("language-model", extra_metrics=language_model_metrics, generate=generate_for_run,
                                 export=language_model_plan))  # fmt: skip
TASKS.add("forecast", forecast.TASK)
TASKS.add("autoencoder", generative.AUTOENCODER_TASK)
TASKS.add("gan", generative.GAN_TASK)
