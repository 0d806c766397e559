"""Typed run configuration: a recipe (YAML) < command-line flags < ``--set key=value``.

Every value has one home in a dataclass below; validation names the setting (and so the flag) that is wrong.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import UserError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
TASK_CHOICES = ("auto", "classification", "regression")  # what a table's target is taken as
TOKENIZER_CHOICES = ("char", "word", "bpe")  # data/tokenizers.py's registry (tests check the two agree)
CHOICES = {
    "data.tokenizer": TOKENIZER_CHOICES,
    "train.optimizer": OPTIMIZERS,
    "train.schedule": SCHEDULES,
    "data.task": TASK_CHOICES,
}  # settings that take one of a few names
MAX_SEED = 2**63 - 1  # torch.manual_seed takes up to 2**64 - 1; generators and NumPy's seed take less
# Said when a run asks for TensorBoard (training.make_config, and the TensorBoard callback for Trainers built in
# Python) and not by validate(): eval, predict and serve rebuild a run's config without needing the package.
TENSORBOARD_MISSING = 'train.tensorboard=true needs the tensorboard package: pip install "nnzoo[tensorboard]".'

# Flags of `nnzoo train` and the settings they set (so a message can name the flag a user typed).
# The flags of `nnzoo train` that set a setting: flag -> (setting, help). cli.py makes its arguments from this table
# (type and choices from the setting's annotation), training.py applies them: each flag is declared here alone.
TRAIN_FLAGS: dict[str, tuple[str, str]] = {
    "dataset": ("data.name", "dataset name (see `nnzoo list datasets`)"),
    "data_dir": ("data.data_dir", "folder holding DATASET/ sub-folders (else NNZOO_DATA_DIR, cache, system)"),
    "data_file": (
        "data.data_file",
        "your own file: UTF-8 text for language models, CSV for series, a table "
        "(CSV/TSV/Parquet) with --target, labelled texts (CSV/TSV/JSONL) with --text-column",
    ),
    "column": ("data.column", "the CSV column to forecast (with --data-file)"),
    "target": ("data.target", "the table column to predict (with --data-file): a label or a number"),
    "task": ("data.task", "auto (a label column is classified, a numeric one regressed), classification or regression"),
    "text_column": ("data.text_column", "the column holding the texts of a labelled-text file"),
    "label_column": ("data.label_column", "the column holding the labels (tables: --target; default: label)"),
    "split_column": (
        "data.split_column",
        "a column saying train / val / test for each row (else a seeded, stratified 80/10/10 split)",
    ),
    "image_size": (
        "data.image_size",
        "HxW (or N for NxN) every image of a folder is resized to; needed when their sizes differ",
    ),
    "skip_bad_files": (
        "data.skip_bad_files",
        "skip unreadable or truncated image files (each is named) instead of stopping",
    ),
    "init_from": (
        "train.init_from",
        "start from this run's weights where names and shapes match (a pretrained "
        "encoder: bert-mlm), and read its tokens",
    ),
    "freeze": ("train.freeze", "with --init-from: encoder keeps the loaded weights fixed and trains the rest"),
    "label_fraction": ("data.label_fraction", "train on this stratified share of the training labels (0-1]"),
    "tokenizer": ("data.tokenizer", "how labelled texts become tokens: char, word (jieba for Chinese) or bpe"),
    "vocab_size": ("data.vocab_size", "tokens kept in the vocabulary, most frequent first (bpe: merges up to it)"),
    "epochs": ("train.epochs", "passes over the training data"),
    "batch_size": ("train.batch_size", "samples per optimizer step (with --nproc: the global batch)"),
    "lr": ("train.lr", "learning rate (the peak rate for the onecycle schedule)"),
    "optimizer": ("train.optimizer", "the optimizer"),
    "seed": ("train.seed", "seed of every random stream of the run"),
    "device": ("train.device", "auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps"),
    "max_steps": ("train.max_steps", "stop after this many optimizer steps (quick checks)"),
    "tensorboard": (
        "train.tensorboard",
        "also log to RUN_DIR/tensorboard/ (open with `tensorboard --logdir runs`; needs nnzoo[tensorboard])",
    ),
}
FLAG_SETTINGS = {flag: setting for flag, (setting, _) in TRAIN_FLAGS.items()}
_FLAGS = {setting: "--" + flag.replace("_", "-") for flag, setting in FLAG_SETTINGS.items()}


def flag_type(setting: str) -> type:
    """The Python type argparse reads a flag's value as: the setting's annotation, less its ``| None``."""
    section, name = setting.split(".")
    t = typing.get_type_hints({"data": DataConfig, "train": TrainConfig}[section])[name]
    args = [a for a in typing.get_args(t) if a is not type(None)] or [t]
    return args[0]


def setting_name(key: str) -> str:
    """How a message names a setting: its flag when it has one (--epochs), else its key (train.momentum)."""
    return _FLAGS.get(key, key)


@dataclass
class DataConfig:
    name: str = "mnist"
    data_dir: str | None = None  # else NNZOO_DATA_DIR, the user cache, system folders, then a download
    # A count, a fraction in (0, 1), or 0 for no validation split; None: the dataset's own default (5,000 images
    # for the image sets of 20,000 or more, else 10 %).
    val_size: float | None = None
    split_seed: int = 0  # the validation split is fixed by this seed, independent of the training seed
    limit_train: int | None = None  # keep only the first N training samples (quick experiments, tests)
    limit_test: int | None = None
    download: bool = True
    seq_len: int = 128  # sequence datasets: characters (or steps) per training window
    stride: int | None = None  # text: characters between the starts of training windows (None: seq_len, no overlap)
    data_file: str | None = None  # a user's own file: UTF-8 text for language models, CSV for series
    column: str | None = None  # the CSV column to forecast
    target: str | None = None  # a table's column to predict
    task: str = "auto"  # a table's target: auto, classification or regression
    text_column: str | None = None  # labelled texts: the column of the texts
    label_column: str | None = None  # labelled texts: the column of the labels (default "label")
    split_column: str | None = None  # a column of train / val / test per row (tables, labelled texts)
    image_size: str | None = None  # image folders: "HxW" or "N"; None: the images' own (one) size
    skip_bad_files: bool = False  # image folders: skip unreadable images (each named in a warning)
    tokenizer: str = "char"  # labelled texts: char, word (jieba for Chinese) or bpe (subwords learnt on train)
    vocab_size: int | None = None  # labelled texts: the most frequent tokens kept (bpe: its target size, 8000)
    # labelled texts: the tokenizer and vocabulary of this run folder instead of fitting new ones (set by
    # --init-from, so a fine-tuned model reads the tokens its pretrained weights know)
    vocab_from: str | None = None
    label_fraction: float | None = None  # labelled texts: train on this stratified share of the training labels
    options: dict[str, Any] = field(default_factory=dict)  # dataset-specific, e.g. {"regular_only": true}

    def validate(self) -> None:
        """Ranges and meaning of the data settings (types were checked when the config was built)."""
        _bounded("data.val_size", self.val_size, 0)
        if self.val_size is not None and self.val_size >= 1 and self.val_size != int(self.val_size):
            raise UserError(f"data.val_size must be 0, a fraction between 0 and 1, or a whole number of samples, "
                            f"not {self.val_size}.")  # fmt: skip
        _bounded("data.split_seed", self.split_seed, 0, MAX_SEED)
        _bounded("data.limit_train", self.limit_train, 1)
        _bounded("data.limit_test", self.limit_test, 1)
        _bounded("data.seq_len", self.seq_len, 1)
        _bounded("data.stride", self.stride, 1, self.seq_len)
        if self.column is not None and self.data_file is None:
            raise UserError("--column names a column of the CSV given with --data-file; give --data-file too.")
        _choice("task", self.task, TASK_CHOICES)
        _choice("tokenizer", self.tokenizer, TOKENIZER_CHOICES)
        _bounded("data.vocab_size", self.vocab_size, 2)
        _bounded("data.label_fraction", self.label_fraction, 0, 1, low_open=True)
        if self.image_size is not None:
            self.image_hw()  # refuses a malformed size
        for key in ("data_file", "column", "data_dir", "target", "text_column", "label_column", "split_column"):
            if getattr(self, key) is not None and not getattr(self, key).strip():
                raise UserError(f"{setting_name('data.' + key)} must not be empty.")

    def image_hw(self) -> tuple[int, int] | None:
        """``data.image_size`` as (height, width): "28" is 28x28, "32x48" is 32 high and 48 wide."""
        if self.image_size is None:
            return None
        m = re.fullmatch(r"\s*(\d+)\s*(?:[xX×]\s*(\d+)\s*)?", str(self.image_size))
        hw = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else None
        if hw is None or not all(4 <= v <= 1024 for v in hw):
            raise UserError(f"--image-size must be HxW or N, each from 4 to 1024 pixels (28, 32x48), not "
                            f"{self.image_size!r}.")  # fmt: skip
        return hw


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 1000
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0  # for adamw too (PyTorch's AdamW would default to 0.01)
    betas: list[float] | None = None  # Adam/AdamW (beta1, beta2); None: PyTorch's (0.9, 0.999). GANs use (0.5, 0.999)
    schedule: str = "none"
    step_epochs: int = 1  # "step": multiply the lr by step_gamma every step_epochs epochs
    step_gamma: float = 0.1
    pct_start: float = 0.25  # "onecycle": fraction of the steps spent warming up
    warmup_steps: int = 0  # "cosine": rise linearly to lr over this many steps first (GPT-2, nanoGPT)
    min_lr: float = 0.0  # "cosine": the rate it decays to (nanoGPT: lr / 10)
    clip_grad_norm: float | None = None
    device: str = "auto"
    amp: bool = True  # autocast: bf16 on CUDA >= 8.0 and CPUs with AVX512-BF16 / AMX, fp16 + loss scaling on CUDA 7.x
    channels_last: bool = True  # NHWC memory layout for convolutions (CUDA and CPU)
    compile: bool = False
    seed: int = 0
    deterministic: bool = False
    num_threads: int | None = None  # CPU threads; default: every core this process may use
    early_stopping_patience: int | None = None
    monitor: str = "val_loss"  # val_loss (lower is better) or val_accuracy (higher is better)
    max_steps: int | None = None  # stop after this many optimizer steps (smoke runs)
    init_from: str | None = None  # a run folder whose weights start this model (a pretrained encoder), by name
    freeze: str | None = None  # "encoder": with init_from, train only what did not come from it (the head)
    log_every: int = 50  # progress refresh and a steps.jsonl line, in steps
    tensorboard: bool = False  # also log to RUN_DIR/tensorboard/ (needs the tensorboard package)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Settings by name (nnzoo.fit's keyword arguments), each checked against its type, then validated."""
        cfg = _build(cls, d, "")
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Ranges and meaning of the training settings (types were checked when the config was built)."""
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise UserError(f"--device must be one of {', '.join(DEVICES)} (or cuda:N), not {self.device!r}.")
        for key in ("epochs", "batch_size", "eval_batch_size", "max_steps", "step_epochs", "num_threads",
                    "early_stopping_patience", "log_every"):  # fmt: skip
            _bounded(f"train.{key}", getattr(self, key), 1)
        _bounded("train.lr", self.lr, 0, low_open=True)
        _bounded("train.momentum", self.momentum, 0, 1, high_open=True)
        if self.nesterov and not self.momentum > 0:
            raise UserError(f"train.nesterov=true needs a positive momentum (--set train.momentum=0.9, say), not "
                            f"{self.momentum}.")  # fmt: skip
        _bounded("train.weight_decay", self.weight_decay, 0)
        _bounded("train.step_gamma", self.step_gamma, 0, 1, low_open=True)
        _bounded("train.pct_start", self.pct_start, 0, 1, low_open=True, high_open=True)
        _bounded("train.warmup_steps", self.warmup_steps, 0)
        _bounded("train.min_lr", self.min_lr, 0, self.lr)
        _bounded("train.clip_grad_norm", self.clip_grad_norm, 0, low_open=True)
        _bounded("train.seed", self.seed, 0, MAX_SEED)
        if self.betas is not None and not (
            isinstance(self.betas, (list, tuple)) and len(self.betas) == 2
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in self.betas)
        ):  # fmt: skip
            raise UserError(f"train.betas must be two numbers in [0, 1), like [0.5, 0.999], not {self.betas!r}.")
        if self.freeze not in (None, "encoder"):
            raise UserError(f"--freeze takes encoder (the weights --init-from loads), not {self.freeze!r}.")
        if self.freeze and not self.init_from:
            raise UserError("--freeze encoder freezes the weights --init-from loads: give --init-from RUN_DIR too.")
        if self.monitor not in ("val_loss", "val_accuracy"):
            raise UserError(f"monitor must be val_loss or val_accuracy, not {self.monitor!r}.")


@dataclass
class RunConfig:
    """Everything needed to rebuild a run: saved as ``config.yaml`` and inside every checkpoint."""

    recipe: str = ""
    description: str = ""
    model: str = "simple-cnn"
    model_args: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    expected: dict[str, Any] = field(default_factory=dict)  # what the recipe is expected to reach

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        return _build(cls, d, "")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def override(self, key: str, value: Any) -> None:
        """Set ``section.field`` (or a bare field name when it is unique) to ``value``, checking its type."""
        obj, name = self._locate(key)
        if obj is self and name == "model" and value != self.model:
            self.model_args = {}  # the recipe's arguments belonged to the other model
        if isinstance(obj, dict):
            obj[name] = value
            return
        ftype = {f.name: f.type for f in dataclasses.fields(obj)}[name]
        setattr(obj, name, coerce(key, value, _resolve(type(obj), name, ftype)))

    def _locate(self, key: str) -> tuple[Any, str]:
        parts = key.split(".")
        if parts[0] == "model_args" and len(parts) == 2:
            return self.model_args, parts[1]
        if parts[:2] == ["data", "options"] and len(parts) == 3:  # a dataset-specific option, e.g. horizon
            return self.data.options, parts[2]
        sections = {"data": self.data, "train": self.train}
        if len(parts) == 2 and parts[0] in sections:
            sec = sections[parts[0]]
            if parts[1] in {f.name for f in dataclasses.fields(sec)}:
                return sec, parts[1]
        if len(parts) == 1:
            owners = [o for o in (self, self.data, self.train) if key in {f.name for f in dataclasses.fields(o)}]
            if len(owners) == 1 and key not in ("data", "train", "model_args"):
                return owners[0], key
        raise UserError(f"Unknown setting {key!r}. Valid settings: {', '.join(valid_keys())}.")


def valid_keys() -> list[str]:
    keys = ["model", "model_args.NAME", "data.options.NAME"]
    keys += [f"data.{f.name}" for f in dataclasses.fields(DataConfig)]
    keys += [f"train.{f.name}" for f in dataclasses.fields(TrainConfig)]
    return keys


def parse_set(item: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (so 0.1, true, [256, 128] and null work); a number in exponent
    form without a dot (1e3, 3e-4), which YAML 1.1 reads as text, is read as the number it is."""
    if "=" not in item:
        raise UserError(f"--set expects KEY=VALUE, got {item!r}.")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
        value = float(value)
    return key.strip(), value


_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _build(cls: type, d: dict[str, Any], prefix: str) -> Any:
    if not isinstance(d, dict):
        raise UserError(f"Setting {prefix.rstrip('.') or 'config'!r} must be a mapping.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise UserError(f"Unknown setting {prefix + unknown[0]!r}. Valid settings: {', '.join(valid_keys())}.")
    kwargs = {}
    for name, value in d.items():
        t = hints[name]
        if dataclasses.is_dataclass(t):
            kwargs[name] = _build(t, value or {}, f"{prefix}{name}.")
        else:
            kwargs[name] = coerce(prefix + name, value, t)
    return cls(**kwargs)


def _resolve(cls: type, name: str, _ftype: Any) -> Any:
    return typing.get_type_hints(cls)[name]


def coerce(key: str, value: Any, t: Any) -> Any:
    """Check (and gently convert) ``value`` to the annotated type ``t``; the message names the setting."""
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(t)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(key, value, a)
            except UserError as e:
                errors.append(e)
        raise errors[0]
    if origin is dict or t is dict:
        if not isinstance(value, dict):
            raise UserError(f"Setting {key!r} must be a mapping, not {value!r}.")
        return dict(value)
    if t is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"Setting {key!r} must be true or false, not {value!r}.")
    if origin in (list, tuple) or t in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"Setting {key!r} must be a list, like [1, 2], not {value!r}.")
        args = [a for a in typing.get_args(t) if a is not Ellipsis]
        return [coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value)] if args else list(value)
    if t is int:  # 3.0 is taken as 3; inf, nan and 2.5 are not whole numbers
        if isinstance(value, bool) or not (isinstance(value, int) or isinstance(value, float) and value.is_integer()):
            raise UserError(f"Setting {key!r} must be a whole number, not {value!r}.")
        return int(value)
    if t is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"Setting {key!r} must be a number, not {value!r}.")
        if not math.isfinite(value):
            raise UserError(f"Setting {key!r} must be a finite number, not {value!r}.")
        return value if isinstance(value, int) else float(value)
    if t is str:
        if not isinstance(value, str):
            raise UserError(f"Setting {key!r} must be text, not {value!r}.")
        return value
    return value


def _choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"--{key.replace('_', '-')} must be one of {', '.join(choices)}, not {value!r}.")


def _bounded(key: str, value: float | None, low: float | None = None, high: float | None = None, *,
             low_open: bool = False, high_open: bool = False) -> None:  # fmt: skip
    """Refuse ``value`` (None passes: an optional setting left unset) outside [low, high], either end open."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{setting_name(key)} must be a finite number, not {value!r}.")  # a config built in Python
    ok = low is None or (value > low if low_open else value >= low)
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if ok:
        return
    if low == 1 and high is None and isinstance(value, int):
        wanted = "a positive whole number"
    elif low == 0 and low_open and high is None:
        wanted = "a positive number"
    elif high is None:
        wanted = f"{'above' if low_open else 'at least'} {low}"
    else:
        wanted = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    raise UserError(f"{setting_name(key)} must be {wanted}, not {value!r}.")
