"""nnzoo: every classic family of neural network as readable PyTorch models, driven by one interface.

import nnzoo
trainer = nnzoo.fit(my_module, x, y, loss="cross_entropy", epochs=5)    # any nn.Module, numpy arrays or tensors

data  = nnzoo.load_dataset("fashion-mnist")
model = nnzoo.create_model("simple-cnn", spec=data.spec)
run   = nnzoo.Trainer(model, nnzoo.TrainConfig(epochs=3), spec=data.spec).fit(data.train, data.val)
"""

import itertools
import os
import sys


def _is_the_command() -> bool:
    """Whether this process is the `nnzoo` command (its console script, or python -m nnzoo), not a program that
    imports nnzoo."""
    argv = getattr(sys, "orig_argv", sys.argv)
    return os.path.basename(sys.argv[0]) == "nnzoo" or ("-m", "nnzoo") in itertools.pairwise(argv)


try:
    from .api import (
        attention,
        evaluate,
        export,
        fit,
        generate,
        load_run,
        make_config,
        predict,
        report,
        serve,
        summary,
        train,  # fmt: skip
    )
    from .callbacks import Callback
    from .config import DataConfig, RunConfig, TrainConfig
    from .data import DATASETS, Batches, Dataset, DataSpec, Split, dataset_spec, load_dataset
    from .errors import UserError
    from .models import MODELS, Model, create_model
    from .recipes import RECIPES, load_recipe
    from .trainer import Trainer, seed_everything
except KeyboardInterrupt:
    # Ctrl-C while PyTorch loads, before cli.main can catch it: the `nnzoo` command (the console script, or
    # python -m nnzoo) ends as it would later, with no traceback. A program importing nnzoo gets the exception.
    if _is_the_command():
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    raise

from ._version import __version__  # noqa: E402  (after the guarded imports above)

__all__ = ["__version__", "DATASETS", "MODELS", "RECIPES", "Batches", "Callback", "DataConfig", "DataSpec", "Dataset", "Model",
           "RunConfig", "Split", "TrainConfig", "Trainer", "UserError", "attention", "create_model", "dataset_spec",
           "evaluate", "export", "fit", "generate", "load_dataset", "load_recipe", "load_run", "make_config", "predict",
           "report", "seed_everything", "serve", "summary", "train"]  # fmt: skip
