"""The dataset registry: each entry pairs a dataset's spec (known without loading anything) with its loader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import DataConfig, setting_name
from ..errors import UserError
from ..registry import Registry
from .spec import Dataset, DataSpec


@dataclass(frozen=True)
class DatasetEntry:
    spec: DataSpec
    load: Callable[[DataConfig], Dataset]
    options: tuple[str, ...] = ()  # the names its loader reads from ``data.options`` (``--set data.options.NAME``)
    reads: tuple[str, ...] = ()  # the settings of USER_DATA_SETTINGS its loader reads (data_file, column...)


# Settings that describe a user's own data; a dataset whose loader does not read one refuses it (check_options),
# so `--target` on mnist is a sentence, not silently ignored. (setting, what it is for)
USER_DATA_SETTINGS = {
    "data_file": "your own file",
    "column": "the CSV column of a series",
    "target": "the column of a table to predict",
    "task": "what a table's target is taken as",
    "text_column": "the text column of labelled texts",
    "label_column": "the label column of labelled texts",
    "split_column": "a column of train / val / test per row",
    "image_size": "the size images of a folder are resized to",
    "skip_bad_files": "skipping unreadable images of a folder",
    "tokenizer": "how labelled texts are cut into tokens",
    "vocab_size": "the size of a labelled text's vocabulary",
    "vocab_from": "the vocabulary of a pretrained run (--init-from)",
    "label_fraction": "the share of training labels used",
}


DATASETS: Registry[DatasetEntry] = Registry("dataset")


def register_dataset(spec: DataSpec, help: str, options: tuple[str, ...] = (), reads: tuple[str, ...] = ()) -> Callable:
    unknown = set(reads) - set(USER_DATA_SETTINGS)
    if unknown:
        raise ValueError(f"dataset {spec.name!r} reads unknown settings {sorted(unknown)}")

    def decorator(fn: Callable[[DataConfig], Dataset]) -> Callable[[DataConfig], Dataset]:
        DATASETS.add(spec.name, DatasetEntry(spec, fn, options, reads), help)
        return fn

    return decorator


def check_options(cfg: DataConfig) -> None:
    """Refuse a ``data.options`` name, or a setting of a user's own data, that the dataset's loader never reads (a
    typo or a wrong dataset would otherwise be ignored)."""
    entry = DATASETS.get(cfg.name)
    defaults = DataConfig()
    for key, what in USER_DATA_SETTINGS.items():
        if getattr(cfg, key) != getattr(defaults, key) and key not in entry.reads:
            readers = [n for n in DATASETS if key in DATASETS.get(n).reads]
            flag = setting_name("data." + key)
            raise UserError(f"{flag} ({what}) has no meaning for {cfg.name}; the datasets that read it: "
                            f"{', '.join(readers) or 'none'}.")  # fmt: skip
    known = entry.options
    for name in cfg.options:
        if name not in known:
            takes = f"its options are: {', '.join(known)}" if known else "it takes no data.options"
            raise UserError(f"Dataset {cfg.name!r} has no option {name!r} (data.options.{name}); {takes}.")
