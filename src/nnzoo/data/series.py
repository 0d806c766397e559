"""Time series for forecasting: the real series statsmodels bundles (co2, sunspots) and a user's CSV column.

A series is split by time: the first part trains, the next part validates (best checkpoint, early stopping) and
the held-out tail tests. Values are standardised with the mean and standard deviation of the training part only,
so nothing of the validation or test values leaks into the inputs. Samples are windows: ``seq_len`` past values
in, the next ``horizon`` values out, one window per forecast origin (stride 1). A window belongs to the part its
*targets* fall in; its inputs may reach back into earlier parts, as they would when forecasting for real.

Options (``--set data.options.NAME=VALUE``): ``horizon`` (steps to forecast), ``season`` (the seasonal period m of
the seasonal-naive baseline and of MASE's scale; 1 for none), ``test_size`` (a fraction of the series, or a count
of steps). ``data.val_size`` is read the same way (a fraction, or a count; 10 % unless set).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError
from .registry import register_dataset
from .spec import Dataset, DataSpec, Split
from .text import read_user_text

SERIES_OPTIONS = ("horizon", "season", "test_size")  # --set data.options.NAME=VALUE, see the module's docstring

DEFAULT_TEST_SIZE = 0.2
DEFAULT_VAL_SIZE = 0.1  # while data.val_size is unset


@dataclass
class Series:
    name: str
    values: np.ndarray  # (N,) float64, no gaps
    start: float  # time of the first value, in ``time_unit``
    step: float  # time between values
    time_unit: str  # "year" for the bundled series, "step" for a CSV
    unit: str  # the values' unit, for plots
    season: int  # default seasonal period
    horizon: int  # default forecast horizon
    source: str

    def times(self, index: np.ndarray | list[int]) -> np.ndarray:
        return self.start + self.step * np.asarray(index, dtype=np.float64)


# ---- the bundled series -----------------------------------------------------------------------------------------
def _statsmodels() -> Any:
    try:
        import statsmodels.api as sm
    except ImportError:
        raise UserError("The co2 and sunspots series come with statsmodels: pip install statsmodels.") from None
    return sm


def load_co2() -> Series:
    """Mauna Loa atmospheric CO2 (ppm), March 1958 to December 2001, as statsmodels bundles it.

    statsmodels' copy is weekly, with 59 missing weeks. We take monthly means (526 months); five months have no
    measured week at all (1958-06, 1958-10, 1964-02..04) and are filled by linear interpolation between their
    neighbours. All five lie in the training part of every split used here.
    """
    df = _statsmodels().datasets.co2.load_pandas().data
    monthly = df["co2"].resample("MS").mean().interpolate(method="linear")
    first = monthly.index[0]
    return Series("co2", monthly.to_numpy(dtype=np.float64), first.year + (first.month - 1) / 12, 1 / 12, "year",
                  "ppm", season=12, horizon=12, source="statsmodels.datasets.co2 (monthly means)")  # fmt: skip


def load_sunspots() -> Series:
    """Yearly mean sunspot numbers (Wolf / SIDC), 1700 to 2008, as statsmodels bundles them (no gaps).

    The ~11-year solar cycle varies in length, so it is no fixed season: the baseline is the naive forecast (m=1).
    """
    df = _statsmodels().datasets.sunspots.load_pandas().data
    return Series("sunspots", df["SUNACTIVITY"].to_numpy(dtype=np.float64), float(df["YEAR"].iloc[0]), 1.0, "year",
                  "sunspot number", season=1, horizon=11, source="statsmodels.datasets.sunspots")  # fmt: skip


# ---- a user's CSV -------------------------------------------------------------------------------------------------
def read_csv_series(path: str | Path, column: str | None) -> Series:
    """One numeric column of a CSV file with a header row, refusing gaps and non-numbers with one sentence."""
    path = Path(path)
    text = read_user_text(path, "CSV text")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in r)]
    if not rows:
        raise UserError(f"{path} holds no values, only separators: give a header row and a column of numbers.")
    header = [h.strip() for h in rows[0]]
    if column is None:
        if len(header) != 1:
            raise UserError(f"Name the column to forecast with --column NAME; {path} has columns "
                            f"{', '.join(header)}.")  # fmt: skip
        column = header[0]
    if column not in header:
        raise UserError(f"{path} has no column {column!r}; its columns are {', '.join(header)}.")
    j = header.index(column)
    values = []
    for line, row in enumerate(rows[1:], start=2):
        cell = row[j].strip() if j < len(row) else ""
        if not cell:
            raise UserError(f"{path} has a gap: line {line} has no value in column {column!r}; fill or drop the "
                            "missing values first (forecasting needs evenly spaced, complete data).")  # fmt: skip
        try:
            v = float(cell)
        except ValueError:
            raise UserError(f"{path}, line {line}, column {column!r} holds {cell!r}, which is not a number.") from None
        if not math.isfinite(v):
            raise UserError(f"{path}, line {line}, column {column!r} holds {cell!r}; give finite numbers only.")
        values.append(v)
    if not values:
        raise UserError(f"{path} has a header but no rows of data.")
    return Series(column, np.asarray(values, dtype=np.float64), 0.0, 1.0, "step", column, season=1, horizon=1,
                  source=str(path))  # fmt: skip


# ---- windows and splits -------------------------------------------------------------------------------------------
def _count(value: float, n: int, setting: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise UserError(f"{setting} must be a fraction in (0, 1) or a whole number of steps, not {value!r}.")
    return int(round(value * n)) if 0 < value < 1 else int(value)


def _option_int(cfg: DataConfig, name: str, default: int) -> int:
    value = cfg.options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"data.options.{name} must be a positive whole number, not {value!r}.")
    return value


def window_split(z: np.ndarray, seq_len: int, horizon: int, first_target: int, end: int) -> Split:
    """Windows whose targets lie in z[first_target:end]: x (N, seq_len, 1) and y (N, horizon), float32."""
    origins = np.arange(max(first_target, seq_len), end - horizon + 1)  # index of the first target
    x = np.stack([z[t - seq_len : t] for t in origins]) if len(origins) else np.zeros((0, seq_len))
    y = np.stack([z[t : t + horizon] for t in origins]) if len(origins) else np.zeros((0, horizon))
    return Split(torch.from_numpy(x).float().unsqueeze(-1), torch.from_numpy(y).float())


def mase_scale(values: np.ndarray, season: int) -> float:
    """The denominator of MASE (Hyndman & Koehler 2006, "Another look at measures of forecast accuracy", IJF
    22(4)): the in-sample mean absolute error of the one-step (seasonal) naive forecast on the training part,
    (1 / (n - m)) * sum_{t=m+1..n} |y_t - y_{t-m}|. A MASE below 1 beats that in-sample benchmark."""
    return float(np.mean(np.abs(values[season:] - values[:-season])))


def series_dataset(series: Series, cfg: DataConfig) -> Dataset:
    n, L = len(series.values), cfg.seq_len
    horizon = _option_int(cfg, "horizon", series.horizon)
    season = _option_int(cfg, "season", series.season)
    if L < 1:
        raise UserError(f"data.seq_len must be a positive whole number, not {L}.")
    if season > L:
        raise UserError(f"data.seq_len={L} is shorter than the season ({season}): the seasonal-naive baseline "
                        "needs a full season in every window.")  # fmt: skip
    test_size = cfg.options.get("test_size", DEFAULT_TEST_SIZE)
    val_size = DEFAULT_VAL_SIZE if cfg.val_size is None else cfg.val_size

    def parts(n: int) -> tuple[int, int, int]:  # (end of the training part, validation steps, test steps)
        n_test, n_val = _count(test_size, n, "data.options.test_size"), _count(val_size, n, "data.val_size")
        return n - n_test - n_val, n_val, n_test

    def fits(n: int) -> bool:  # a horizon in the test (and validation) part, two windows to train on
        train_end, n_val, n_test = parts(n)
        return n_test >= horizon and (n_val == 0 or n_val >= horizon) and train_end - L - horizon + 1 >= 2

    train_end, n_val, n_test = parts(n)
    if not fits(n):
        need = next((m for m in range(n + 1, 100 * n + 10_000) if fits(m)), None)
        at_least = f"it needs at least {need} values" if need else "raise the share of data.val_size / test_size"
        raise UserError(f"{series.name} has {n} values, too few for windows of data.seq_len={L} and a horizon of "
                        f"{horizon} after holding out {n_val} for validation and {n_test} for test: "
                        f"{at_least}.")  # fmt: skip
    val_end = n - n_test
    train_part = series.values[:train_end]
    mean, std = float(train_part.mean()), float(train_part.std())
    if std == 0:
        raise UserError(f"The training part of {series.name} is constant; there is nothing to learn.")
    z = (series.values - mean) / std  # scaled with the training part's statistics only
    train = window_split(z[:train_end], L, horizon, L, train_end)
    val = window_split(z, L, horizon, train_end, val_end) if n_val else None
    test = window_split(z, L, horizon, val_end, n)
    if cfg.limit_train:
        train = train.subset(slice(0, cfg.limit_train))
    spec = DataSpec(series.name, task="forecast", input_shape=(L, 1), extra={
        "kind": "series", "horizon": horizon, "season": season, "mean": mean, "std": std,
        "mase_scale": mase_scale(train_part, season), "unit": series.unit, "time_unit": series.time_unit,
        "start": series.start, "step": series.step, "length": n, "val_start": train_end, "test_start": val_end,
    })  # fmt: skip
    return Dataset(spec, train, val, test, series.source)


def load_series(cfg: DataConfig) -> Series:
    """The series a DataConfig names: a user's CSV when data.data_file is set, else the bundled one."""
    if cfg.data_file:
        return read_csv_series(cfg.data_file, cfg.column)
    if cfg.name not in BUNDLED:
        raise UserError("The csv-file dataset needs --data-file PATH (a CSV file) and --column NAME.")
    return BUNDLED[cfg.name]()


BUNDLED = {"co2": load_co2, "sunspots": load_sunspots}


def _spec(name: str) -> DataSpec:
    return DataSpec(name, task="forecast", extra={"kind": "series"})  # shapes follow data.seq_len and the options


def _load(cfg: DataConfig) -> Dataset:
    return series_dataset(load_series(cfg), cfg)


# One loader for all three: load_series knows where each series comes from.
for _name, _help in [
    ("co2", "Mauna Loa CO2, monthly 1958-2001 (statsmodels, offline): trend + 12-month season"),
    ("sunspots", "yearly sunspot numbers 1700-2008 (statsmodels, offline): the ~11-year cycle"),
    ("csv-file", "one column of your own CSV: --data-file PATH --column NAME"),
]:
    register_dataset(_spec(_name), help=_help, options=SERIES_OPTIONS, reads=("data_file", "column"))(_load)
