"""The forecast task: errors in the series' own units, the baselines every forecast must beat, a forecast-vs-truth
plot, and forecasts past the end of the data (``nnzoo predict RUN [recent.csv]``).

Every test window is a forecast origin: the model forecasts the next ``horizon`` values from the ``seq_len``
values before it (a rolling origin over the held-out tail). Two baselines forecast from the same windows:

- naive: every future value equals the last observed one;
- seasonal naive (season m > 1): each future value equals the value one season earlier, y_{t+k} = y_{t+k-m}
  (for k <= m; further ahead, the last observed season repeats).

MAE and RMSE are in the series' units; MASE divides MAE by the in-sample MAE of the one-step (seasonal) naive
forecast on the training part (Hyndman & Koehler 2006), so model and baselines share one scale.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import reports
from ..data.series import load_series, read_csv_series
from ..errors import UserError
from ..export import ExportPlan, real_test_inputs
from .base import Task

if TYPE_CHECKING:
    from ..config import RunConfig
    from ..data.spec import Dataset, DataSpec
    from ..runs import LoadedRun


def to_units(z: torch.Tensor | np.ndarray, spec: DataSpec) -> np.ndarray:
    """Undo the standardisation fitted on the training part."""
    z = z.numpy() if isinstance(z, torch.Tensor) else z
    return z.astype(np.float64) * spec.extra["std"] + spec.extra["mean"]


def baseline_forecasts(windows: np.ndarray, horizon: int, season: int) -> dict[str, np.ndarray]:
    """Naive and (for season > 1) seasonal-naive forecasts (N, horizon) from input windows (N, L)."""
    L = windows.shape[1]
    out = {"naive": np.repeat(windows[:, -1:], horizon, axis=1)}
    if season > 1:
        k = np.arange(horizon)
        out["seasonal_naive"] = windows[:, L - season + k % season]  # the same month of the last observed year
    return out


def errors(pred: np.ndarray, truth: np.ndarray, scale: float) -> dict[str, float]:
    e = pred - truth
    mae = float(np.abs(e).mean())
    return {"mae": mae, "rmse": float(np.sqrt((e**2).mean())), "mase": mae / scale}


def test_forecasts(outputs: torch.Tensor, data: Dataset) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The truth (N, h) and every forecast by name ("model", "naive", ...), all in the series' units."""
    spec = data.spec
    truth = to_units(data.test.y, spec)
    windows = to_units(data.test.x[..., 0], spec)
    forecasts = {"model": to_units(outputs, spec)}
    forecasts.update(baseline_forecasts(windows, spec.extra["horizon"], spec.extra["season"]))
    return truth, forecasts


def forecast_metrics(test: dict[str, float], outputs: torch.Tensor | None, data: Dataset) -> dict[str, float]:
    if outputs is None or not len(outputs):
        return {}
    truth, forecasts = test_forecasts(outputs, data)
    out: dict[str, float] = {}
    for name, pred in forecasts.items():
        prefix = "" if name == "model" else name + "_"
        out.update({prefix + k: v for k, v in errors(pred, truth, data.spec.extra["mase_scale"]).items()})
    for name in forecasts:
        if name != "model":  # the share of the baseline's MAE the model removes: 0.3 means 30 % lower MAE
            out[f"improvement_over_{name}"] = 1 - out["mae"] / out[f"{name}_mae"]
    return out


# ---- report -----------------------------------------------------------------------------------------------------
COLORS = {"model": "C0", "naive": "C3", "seasonal_naive": "C2"}


def plot_forecast(data: Dataset, outputs: torch.Tensor, path: Path, title: str = "") -> Path:
    """Top: the held-out tail with forecasts from every horizon-th origin; bottom: MAE by steps ahead."""
    plt = reports._plt()
    spec = data.spec
    ex = spec.extra
    h, start = ex["horizon"], ex["test_start"]
    truth, forecasts = test_forecasts(outputs, data)
    context = to_units(data.test.x[0, :, 0], spec)
    series = np.concatenate([context, truth[:, 0], truth[-1, 1:]])  # the inputs of the first origin, then the tail
    t = ex["start"] + ex["step"] * np.arange(start - len(context), start - len(context) + len(series))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), gridspec_kw={"height_ratios": [2, 1]})
    top.plot(t, series, "k-", lw=1.2, label="truth")
    top.axvline(ex["start"] + ex["step"] * (start - 0.5), color="grey", lw=0.8, ls=":")
    baseline = "seasonal_naive" if "seasonal_naive" in forecasts else "naive"
    styles = {"model": (COLORS["model"], "-", "model"), baseline: (COLORS[baseline], "--", baseline.replace("_", " "))}
    origins = list(range(0, len(truth), h))  # non-overlapping forecasts, each from the truth just before it,
    if origins[-1] != len(truth) - 1:
        origins.append(len(truth) - 1)  # and the last one, which reaches the end of the series
    for j in origins:
        tt = ex["start"] + ex["step"] * np.arange(start + j - 1, start + j + h)
        last = series[len(context) + j - 1]
        for name, (color, ls, label) in styles.items():
            top.plot(tt, np.concatenate([[last], forecasts[name][j]]), color=color, ls=ls, lw=1.3,
                     label=label if j == 0 else None)  # fmt: skip
    top.set_xlabel(ex["time_unit"])
    top.set_ylabel(ex["unit"])
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    top.set_title(f"{title}: {h}-step forecasts on the held-out tail".strip(": "))
    steps = np.arange(1, h + 1)
    for name, pred in forecasts.items():
        mae = np.abs(pred - truth).mean(axis=0)
        mase = np.abs(pred - truth).mean() / ex["mase_scale"]
        bottom.plot(steps, mae, "-o", color=COLORS[name], ms=3,
                    label=f"{name.replace('_', ' ')} (MASE {mase:.2f})")  # fmt: skip
    bottom.set_xlabel("steps ahead")
    bottom.set_ylabel(f"MAE ({ex['unit']})")
    bottom.grid(alpha=0.3)
    bottom.legend()
    return reports.save_figure(fig, path)


def forecast_reports(history: list[dict[str, Any]], data: Dataset, outputs: torch.Tensor | None, folder: Path,
                     cfg: RunConfig) -> list[Path]:  # fmt: skip
    if outputs is None or not len(outputs):
        return []
    return [plot_forecast(data, outputs, folder / "forecast.png", cfg.recipe or cfg.model)]


# ---- forecasting past the end of the data -----------------------------------------------------------------------
def forecast_future(run: LoadedRun, inputs: list[str], options: dict[str, Any]) -> list[dict[str, Any]]:
    """The next ``horizon`` values after the end of the run's series, or after the end of a CSV given."""

    spec, cfg = run.spec, run.config.data
    unused = [k for k, v in options.items() if v is not None and k not in ("top_k", "device", "column", "data_dir")]
    if unused:
        raise UserError(f"--{unused[0].replace('_', '-')} has no meaning for {run.run_dir}, a forecaster.")
    if len(inputs) > 1:
        raise UserError("Give at most one CSV file to forecast from (its last values are the model's input).")
    if inputs:
        series = read_csv_series(inputs[0], options.get("column") or cfg.column)
    else:
        series = load_series(dataclasses.replace(cfg, data_dir=options.get("data_dir") or cfg.data_dir))
    L, h = spec.input_shape[0], spec.extra["horizon"]
    n = len(series.values)
    if n < L:
        raise UserError(f"The model reads the last {L} values, but {series.source} holds only {n}.")
    z = (series.values[-L:] - spec.extra["mean"]) / spec.extra["std"]
    model = run.model.eval()
    with torch.inference_mode():
        pred = model(torch.from_numpy(z).float().view(1, L, 1))[0]  # (horizon,)
    values = to_units(pred, spec)
    times = series.times(np.arange(n, n + h))
    unit = "" if spec.extra["unit"] == series.name else f" {spec.extra['unit']}"
    lines = [f"{_time(tm, series.time_unit, series.step)}  {v:.3f}{unit}" for tm, v in zip(times, values)]
    head = f"{series.name}: the next {h} values after the last of {n} ({series.source})"
    return [{"file": str(inputs[0]) if inputs else series.source, "column": series.name, "horizon": h,
             "times": times.tolist(), "forecast": values.tolist(), "text": "\n".join([head, *lines])}]  # fmt: skip


def _time(t: float, unit: str, step: float) -> str:
    if unit != "year":
        return f"step {int(round(t))}"
    if step >= 1:
        return str(int(round(t)))
    year = int(np.floor(t + 1e-6))
    return f"{year}-{int(round((t - year) * 12)) + 1:02d}"  # monthly


# ---- export ------------------------------------------------------------------------------------------------------
class UnitForecaster(torch.nn.Module):
    """values (B, L) in the series' units -> the next ``horizon`` values (B, horizon), in the same units: the
    standardisation fitted on the training part is inside the graph, so a runtime feeds the raw series."""

    def __init__(self, model: torch.nn.Module, mean: float, std: float):
        super().__init__()
        self.model, self.mean, self.std = model, float(mean), float(std)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        z = (values - self.mean) / self.std  # (B, L)
        return self.model(z.unsqueeze(-1)) * self.std + self.mean  # (B, horizon)


def forecast_export(run: LoadedRun) -> Any:

    spec = run.spec
    L, h = spec.input_shape[0], spec.extra["horizon"]
    real, notes = real_test_inputs(run, 5)
    z = real[..., 0] if real is not None else torch.randn(5, L).cumsum(1) / 4  # scaled windows (5, L)
    check = torch.from_numpy(to_units(z, spec)).float()
    example = torch.from_numpy(to_units(torch.randn(2, L).cumsum(1) / 4, spec)).float()
    docs = {"values": f"(batch, {L}) float32: the last {L} values of the series, oldest first, in {spec.extra['unit']}",
            "forecast": f"(batch, {h}) float32: the next {h} values, in the same units"}  # fmt: skip
    meta = {"horizon": h, "window": L, "unit": spec.extra["unit"], "step": spec.extra["step"],
            "time_unit": spec.extra["time_unit"]}  # fmt: skip
    module = UnitForecaster(run.model.eval(), spec.extra["mean"], spec.extra["std"]).eval()
    return ExportPlan(module, (example,), (check,), ["values"], ["forecast"], notes, docs=docs, meta=meta)


# Registered by tasks/__init__.py.
TASK = Task("forecast", extra_metrics=forecast_metrics, write_reports=forecast_reports, predict=forecast_future,
            export=forecast_export)  # fmt: skip
