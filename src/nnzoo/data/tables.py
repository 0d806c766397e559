"""Tables: a user's CSV / TSV / Parquet file (``--data-file table.csv --target COLUMN``) and real tables that
install offline (scikit-learn's diabetes, wine and breast_cancer; palmerpenguins' penguins).

What a model gets, and the rule for each column (fitted on the training rows only, saved in the run's spec as
``extra["table"]`` and applied again at predict time, so a file predicted later is encoded exactly as training was):

- a **numeric** column (every filled cell a number): missing cells take the training rows' median, then the column
  is standardised with the training rows' mean and standard deviation (z = (v - mean) / std);
- a **categorical** column (text): one-hot, one slot per category seen in training (the 50 most frequent, when there
  are more), and one slot more for a missing cell or a category training never showed;
- a column of text that differs in every row (an id, a name) is left out, and said so;
- the **target**: a label is classified; a number is regressed, standardised like a feature (the model learns z,
  errors are reported in the target's units). ``--task auto`` (the default) classifies a text target, or a whole
  number target with at most 20 distinct values, and regresses any other number; ``--task`` forces either. Rows with
  no target are dropped, and counted in the data's description.

Pandas reads the files (CSV dialects, quoting, Parquet through pyarrow): a well-kept reader is worth more than one
written here. Text that is not UTF-8 but decodes as GB18030 (GBK Chinese, common from Excel on Chinese Windows) is
read as such, with a warning saying so.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError
from .registry import register_dataset
from .spec import Dataset, DataSpec, Split
from .splits import given_split, strata, stratified_split

MAX_CATEGORIES = 50  # one-hot slots per categorical column, beyond which the rarest share the "other" slot
MAX_CLASS_INTEGERS = 20  # a whole-number target with at most this many values is a label under --task auto
NUMERIC_SHARE = 0.9  # a column whose filled cells are this much numbers is numeric: the rest is garbage, refused
MISSING = "(missing or unseen)"
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None, ".parquet": "parquet", ".pq": "parquet"}


# ---- reading files ------------------------------------------------------------------------------------------------
def decode_text(path: Path, what: str) -> str:
    """A user's text file as str: UTF-8 (with or without BOM), else GB18030 with a warning, else one sentence."""
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist." if not path.exists() else f"{path} is not a file.")
    raw = path.read_bytes()
    if b"\x00" in raw[:65536]:
        raise UserError(f"{path} looks binary (it contains NUL bytes); give a {what.lower()} as text.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            raise UserError(
                f"{path} is not UTF-8 text (undecodable byte at offset {e.start}); convert it first, "
                f"e.g. iconv -f ENCODING -t UTF-8 {path.name} > {path.stem}.utf8{path.suffix}."
            ) from None
        warnings.warn(f"{path} is not UTF-8; read it as GB18030 (GBK) Chinese text. To convert it once: iconv -f "
                      f"GB18030 -t UTF-8 {path.name} > {path.stem}.utf8{path.suffix}", stacklevel=2)  # fmt: skip
    if not text.strip():
        raise UserError(f"{path} is empty.")
    return text


def read_table(path: str | Path, what: str = "Table file") -> Any:
    """A CSV, TSV or Parquet file as a pandas DataFrame of strings and numbers, with a header row."""
    import pandas as pd

    path = Path(path)
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind == "parquet":
        if not path.is_file():
            raise UserError(f"{what} {path} does not exist.")
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise UserError("Reading Parquet needs pyarrow: pip install pyarrow.") from None
        except Exception as e:  # noqa: BLE001  (pyarrow's errors for a file that is not Parquet vary)
            raise UserError(f"{path} is not a readable Parquet file ({type(e).__name__}).") from None
    text = decode_text(path, what)
    sep = kind if kind in (",", "\t") else None  # None: let pandas' sniffer decide (.txt, no suffix)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, engine="python" if sep is None else "c", skipinitialspace=True,
                         keep_default_na=True)  # fmt: skip
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv_error()) as e:
        raise UserError(f"{path} is not a readable table ({str(e).splitlines()[0]}).") from None
    df.columns = [str(c).strip() for c in df.columns]
    if len(set(df.columns)) != len(df.columns):
        dup = next(c for c in df.columns if list(df.columns).count(c) > 1)
        raise UserError(f"{path} has two columns named {dup!r}; rename one.")
    if df.empty:
        raise UserError(f"{path} has a header but no rows of data.")
    return df


def csv_error() -> type[Exception]:
    import csv

    return csv.Error


def require_column(df: Any, column: str, path: str, role: str) -> None:
    if column not in df.columns:
        raise UserError(f"{path} has no column {column!r} ({role}); its columns are {', '.join(map(str, df.columns))}.")


# ---- the encoding: fitted on training rows, saved, applied again at predict time ----------------------------------
def _as_number(cell: Any) -> float | None:
    """A cell as a float, None when missing; raises ValueError for text that is not a number."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return None
    if isinstance(cell, (bool, np.bool_)):
        return float(cell)
    if isinstance(cell, (int, float, np.integer, np.floating)):
        return float(cell)
    text = str(cell).strip()
    if text == "" or text.lower() in ("na", "nan", "null", "none", "n/a", "?"):
        return None
    return float(text)


def _is_missing(cell: Any) -> bool:
    try:
        return _as_number(cell) is None
    except ValueError:
        return False


def numeric_values(values: Sequence[Any], column: str, where: str, strict: bool) -> np.ndarray | None:
    """The column as float64 with NaN for missing cells; None when it is text. A column that is mostly numbers
    but holds a few words is garbage in a numeric column (``strict``: refused, naming the row)."""
    out = np.full(len(values), np.nan)
    bad: list[tuple[int, Any]] = []
    for i, cell in enumerate(values):
        try:
            v = _as_number(cell)
        except ValueError:
            bad.append((i, cell))
            continue
        if v is not None and not math.isfinite(v):
            bad.append((i, cell))
        elif v is not None:
            out[i] = v
    filled = len(values) - int(np.isnan(out).sum())
    if not bad:
        return out
    if filled and filled >= NUMERIC_SHARE * (filled + len(bad)) or strict:
        row, cell = bad[0]
        raise UserError(f"{where}: column {column!r} holds numbers, but row {row + 1} holds {cell!r}; fix or clear "
                        f"that cell ({len(bad)} such cell{'s' if len(bad) > 1 else ''}).")  # fmt: skip
    return None


def _is_number(cell: Any) -> bool:
    try:
        v = _as_number(cell)
    except ValueError:
        return False
    return v is None or math.isfinite(v)


def _category(cell: Any) -> str | None:
    return None if _is_missing(cell) else str(cell).strip()


@dataclass
class TableEncoding:
    """How raw columns become the model's features; a plain dict in the spec (``to_dict``/``from_dict``)."""

    numeric: list[dict[str, Any]] = field(default_factory=list)  # {"name", "median", "mean", "std"}
    categorical: list[dict[str, Any]] = field(default_factory=list)  # {"name", "categories": [...]}
    dropped: list[str] = field(default_factory=list)  # text columns unique per row

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(c["categories"]) + 1 for c in self.categorical)

    @property
    def columns(self) -> list[str]:
        return [c["name"] for c in self.numeric] + [c["name"] for c in self.categorical]

    def feature_names(self) -> list[str]:
        names = [c["name"] for c in self.numeric]
        for c in self.categorical:
            names += [f"{c['name']}={v}" for v in c["categories"]] + [f"{c['name']}={MISSING}"]
        return names

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": self.numeric, "categorical": self.categorical, "dropped": self.dropped}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableEncoding:
        return cls(list(d["numeric"]), list(d["categorical"]), list(d.get("dropped", [])))

    @classmethod
    def fit(cls, df: Any, features: list[str], train: np.ndarray, where: str) -> TableEncoding:
        enc = cls()
        for name in features:
            col = df[name].tolist()
            values = numeric_values(col, name, where, strict=False)
            if values is not None:
                part = values[train]
                if np.isnan(part).all():
                    enc.dropped.append(name)  # empty in every training row: nothing to learn from
                    continue
                median = float(np.nanmedian(part))
                filled = np.where(np.isnan(part), median, part)
                std = float(filled.std())
                enc.numeric.append({"name": name, "median": median, "mean": float(filled.mean()),
                                    "std": std if std > 0 else 1.0})  # fmt: skip
                continue
            cats = [_category(col[i]) for i in train]
            seen = [c for c in cats if c is not None]
            if len(set(seen)) == len(seen) and len(seen) > MAX_CATEGORIES:
                enc.dropped.append(name)  # an id or free text: a one-hot of it would only memorise rows
                continue
            counts: dict[str, int] = {}
            for c in seen:
                counts[c] = counts.get(c, 0) + 1
            top = sorted(counts, key=lambda c: (-counts[c], c))[:MAX_CATEGORIES]
            enc.categorical.append({"name": name, "categories": sorted(top)})
        if not enc.numeric and not enc.categorical:
            raise UserError(f"{where}: no column is left to learn from once the target is set aside"
                            f"{' (left out: ' + ', '.join(enc.dropped) + ')' if enc.dropped else ''}.")  # fmt: skip
        return enc

    def transform(self, df: Any, where: str) -> np.ndarray:
        """(rows, width) float32 features of ``df``, which must hold every column the encoding read."""
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise UserError(f"{where} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
                            f"the model was trained on; it needs {', '.join(self.columns)}.")  # fmt: skip
        parts = []
        for c in self.numeric:
            v = numeric_values(df[c["name"]].tolist(), c["name"], where, strict=True)
            v = np.where(np.isnan(v), c["median"], v)  # type: ignore[arg-type]
            parts.append(((v - c["mean"]) / c["std"])[:, None])
        for c in self.categorical:
            slot = {v: i for i, v in enumerate(c["categories"])}
            codes = [slot.get(_category(cell), len(slot)) for cell in df[c["name"]].tolist()]  # type: ignore[arg-type]
            parts.append(np.eye(len(slot) + 1)[codes])
        return np.concatenate(parts, axis=1).astype(np.float32)


# ---- the target -----------------------------------------------------------------------------------------------------
def choose_task(values: list[Any], column: str, where: str, forced: str) -> tuple[str, np.ndarray | None, str]:
    """("classification" | "regression", the numbers if numeric, why) for a target column without missing cells."""
    try:
        numbers = numeric_values(values, column, where, strict=True)
    except UserError:
        if forced == "regression":
            bad = next(v for v in values if not _is_number(v))
            raise UserError(
                f"--task regression needs numbers in {column!r}, but {where} holds {bad!r} there."
            ) from None
        numbers = None  # labels, some of which look like numbers
    distinct = len(set(values)) if numbers is None else len(np.unique(numbers))
    if forced != "auto":
        return forced, numbers, f"--task {forced}"
    if numbers is None:
        return "classification", None, f"{column!r} holds labels"
    whole = bool(np.all(numbers == np.round(numbers)))
    if whole and distinct <= MAX_CLASS_INTEGERS:
        return "classification", numbers, f"{column!r} holds {distinct} whole-number values; --task regression " \
            "regresses it"  # fmt: skip
    return "regression", numbers, f"{column!r} holds {distinct} distinct numbers; --task classification classifies it"


def _label_text(v: Any) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


# ---- the dataset --------------------------------------------------------------------------------------------------
def table_dataset(name: str, df: Any, target: str, cfg: DataConfig, source: str) -> Dataset:
    """Split, fit the encoding on the training rows, encode every split."""
    require_column(df, target, source, "--target")
    if cfg.split_column is not None:
        require_column(df, cfg.split_column, source, "--split-column")
        if cfg.split_column == target:
            raise UserError("--split-column and --target name the same column.")
    keep = np.array([not _is_missing(v) for v in df[target].tolist()])
    dropped = int((~keep).sum())
    df = df[keep].reset_index(drop=True)
    if len(df) < 3:
        raise UserError(f"{source} holds {len(df)} rows with a {target!r} value; a table needs a few rows for each "
                        "of training, validation and test.")  # fmt: skip
    values = df[target].tolist()
    task, numbers, why = choose_task(values, target, source, cfg.task)
    if task == "classification":
        labels = [_label_text(v) for v in values]
        class_names = sorted(set(labels), key=lambda s: (numbers is None, float(s) if numbers is not None else 0, s))
        if len(class_names) < 2:
            raise UserError(f"{source}: the target {target!r} holds one value only ({class_names[0]!r}); there is "
                            "nothing to learn.")  # fmt: skip
        y_all = np.array([class_names.index(v) for v in labels], dtype=np.int64)
    else:
        if numbers is None or len(np.unique(numbers)) < 2:
            raise UserError(f"{source}: the target {target!r} holds one value only; there is nothing to learn.")
        y_all, class_names = numbers, []
    if cfg.split_column is not None:
        train_i, val_i, test_i = given_split(df[cfg.split_column].tolist(), f"{source}, column {cfg.split_column!r}")
        if task == "classification":
            unseen = sorted({class_names[k] for k in y_all[np.concatenate([val_i, test_i])]} -
                            {class_names[k] for k in y_all[train_i]})  # fmt: skip
            if unseen:
                raise UserError(f"{source}: the label{'s' if len(unseen) > 1 else ''} {', '.join(map(repr, unseen))} "
                                "of the validation or test rows never appear in the training rows.")  # fmt: skip
    else:
        train_i, val_i, test_i = stratified_split(strata(y_all, task == "classification"), cfg)
    features = [c for c in df.columns if c not in (target, cfg.split_column)]
    if not features:
        raise UserError(f"{source} has no column but the target {target!r}; give the columns to predict it from.")
    enc = TableEncoding.fit(df, features, train_i, source)
    x = torch.from_numpy(enc.transform(df, source))
    extra: dict[str, Any] = {"kind": "table", "table": enc.to_dict(), "target": target, "task_reason": why,
                             "feature_names": enc.feature_names()}  # fmt: skip
    if task == "classification":
        y = torch.from_numpy(y_all)
    else:
        mean, std = float(y_all[train_i].mean()), float(y_all[train_i].std()) or 1.0
        extra.update(target_mean=mean, target_std=std)
        y = torch.from_numpy((y_all - mean) / std).float()
    train = Split(x[train_i], y[train_i])
    val = Split(x[val_i], y[val_i]) if len(val_i) else None
    test = Split(x[test_i], y[test_i])
    if cfg.limit_train:
        train = train.subset(slice(0, cfg.limit_train))
    if cfg.limit_test:
        test = test.subset(slice(0, cfg.limit_test))
    spec = DataSpec(name, task=task, input_shape=(enc.width,), num_classes=len(class_names) if class_names else 1,
                    class_names=class_names, extra=extra)  # fmt: skip
    notes = [f"{task} ({why})"]
    if dropped:
        notes.append(f"{dropped} row{'s' if dropped > 1 else ''} without a target dropped")
    if enc.dropped:
        notes.append(f"left out: {', '.join(enc.dropped)} (a value per row, or empty in training)")
    return Dataset(spec, train, val, test, f"{source}; {'; '.join(notes)}")


def encode_rows(spec: DataSpec, df: Any, where: str) -> torch.Tensor:
    """Rows of a file given at predict time, encoded as the run's training rows were."""
    return torch.from_numpy(TableEncoding.from_dict(spec.extra["table"]).transform(df, where))


def unused_columns(spec: DataSpec, df: Any) -> list[str]:
    enc = TableEncoding.from_dict(spec.extra["table"])
    known = set(enc.columns) | set(enc.dropped) | {spec.extra["target"]}
    return [c for c in df.columns if c not in known]


# ---- the registered tables ----------------------------------------------------------------------------------------
TABLE_READS = ("target", "task", "split_column")


def _spec(name: str) -> DataSpec:
    return DataSpec(name, task="classification", extra={"kind": "table"})  # shapes follow the columns


@register_dataset(_spec("table"), help="your own table: --data-file FILE.csv|.tsv|.parquet --target COLUMN",
                  reads=("data_file", *TABLE_READS))  # fmt: skip
def table(cfg: DataConfig) -> Dataset:
    if not cfg.data_file or not cfg.target:
        raise UserError("The table dataset needs --data-file FILE (CSV, TSV or Parquet) and --target COLUMN.")
    path = Path(cfg.data_file)
    return table_dataset(path.stem, read_table(path), cfg.target, cfg, str(path))


def _sklearn_frame(loader: str) -> Any:
    import sklearn.datasets

    kwargs = {"scaled": False} if loader == "load_diabetes" else {}  # the measured values, not pre-standardised
    bunch = getattr(sklearn.datasets, loader)(as_frame=True, **kwargs)
    return bunch.frame


BUNDLED = {  # name -> (how to get the frame, default target, source shown, help)
    "diabetes": (lambda: _sklearn_frame("load_diabetes"), "target", "scikit-learn (bundled): Efron et al. 2004",
                 "442 diabetes patients, 10 features, disease progression after a year (regression, offline)"),
    "wine": (lambda: _sklearn_frame("load_wine"), "target", "scikit-learn (bundled): UCI wine recognition",
             "178 Italian wines, 13 chemical measurements, 3 cultivars (classification, offline)"),
    "breast-cancer": (lambda: _sklearn_frame("load_breast_cancer"), "target",
                      "scikit-learn (bundled): UCI Wisconsin diagnostic breast cancer",
                      "569 tumours, 30 features from cell-nucleus images, malignant or benign (classification)"),
    "penguins": (lambda: _penguins(), "species", "palmerpenguins (bundled in its wheel): Gorman et al. 2014",
                 "344 Palmer penguins: text columns (island, sex) and missing values; --target body_mass_g "
                 "regresses"),
}  # fmt: skip


def _penguins() -> Any:
    try:
        from palmerpenguins import load_penguins
    except ImportError:
        raise UserError("The penguins table comes with palmerpenguins: pip install palmerpenguins.") from None
    return load_penguins()


def _bundled(name: str) -> Any:
    frame, target, source, _ = BUNDLED[name]

    def load(cfg: DataConfig) -> Dataset:
        df = frame()
        if name in ("wine", "breast-cancer"):  # their target is a class index; name the classes as UCI does
            import sklearn.datasets

            names = getattr(sklearn.datasets, "load_" + name.replace("-", "_"))().target_names
            df["target"] = [str(names[int(v)]) for v in df["target"]]
        return table_dataset(name, df, cfg.target or target, cfg, source)

    return load


for _name, (_, _, _, _help) in BUNDLED.items():
    register_dataset(_spec(_name), help=_help, reads=TABLE_READS)(_bundled(_name))
