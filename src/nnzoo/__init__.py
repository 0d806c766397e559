"""nnzoo: every classic family of neural network as readable PyTorch models, driven by one interface.

    import nnzoo
    data  = nnzoo.load_dataset("fashion-mnist")
    model = nnzoo.create_model("simple-cnn", spec=data.spec)
    run   = nnzoo.Trainer(model, nnzoo.TrainConfig(epochs=3), spec=data.spec).fit(data.train, data.val)
"""

from .api import attention, evaluate, export, generate, load_run, make_config, predict, report, serve, summary, train
from .callbacks import Callback
from .config import DataConfig, RunConfig, TrainConfig
from .data import DATASETS, Batches, DataSpec, Dataset, Split, dataset_spec, load_dataset
from .errors import UserError
from .models import MODELS, Model, create_model
from .recipes import RECIPES, load_recipe
from .trainer import Trainer, seed_everything

from ._version import __version__

__all__ = ["DATASETS", "MODELS", "RECIPES", "Batches", "Callback", "DataConfig", "DataSpec", "Dataset", "Model",
           "RunConfig", "Split", "TrainConfig", "Trainer", "UserError", "attention", "create_model", "dataset_spec",
           "evaluate", "export", "generate", "load_dataset", "load_recipe", "load_run", "make_config", "predict",
           "report", "seed_everything", "serve", "summary", "train"]  # fmt: skip
