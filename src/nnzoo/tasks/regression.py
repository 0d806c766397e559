"""The regression task: a number for each row of a table. Errors in the target's own units (MAE, RMSE, R²) beside
two baselines fitted in the same run (the training mean; a ridge regression), a predicted-vs-true picture,
predictions written beside the rows of a file, and an export that takes the raw columns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import reports
from ..runs import LoadedRun
from .base import Task
from .tables import (
    is_table,
    model_outputs,
    read_rows,
    regression_baselines,
    regression_errors,
    table_plan,
    to_units,
    write_rows,
)

if TYPE_CHECKING:
    from ..config import RunConfig
    from ..data.spec import Dataset
    from ..export import ExportPlan


def regression_metrics(test: dict[str, float], outputs: torch.Tensor | None, data: Dataset) -> dict[str, float]:
    if outputs is None or not len(outputs):
        return {}
    truth = to_units(data.test.y, data.spec)
    out = regression_errors(to_units(outputs, data.spec), truth)
    for name, pred in regression_baselines(data).items():
        out.update({f"{name}_baseline_{k}": v for k, v in regression_errors(pred, truth).items()})
    out["improvement_over_ridge"] = 1 - out["mae"] / out["ridge_baseline_mae"]  # share of ridge's MAE removed
    return out


def plot_predictions(data: Dataset, outputs: torch.Tensor, path: Path, title: str) -> Path:
    """Predicted against true on the test rows, with the ridge baseline beside the model."""
    plt = reports._plt()
    truth, pred = to_units(data.test.y, data.spec), to_units(outputs, data.spec)
    ridge = regression_baselines(data)["ridge"]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(truth, ridge, s=12, alpha=0.6, color="C3", label=f"ridge (MAE {np.abs(ridge - truth).mean():.3g})")
    ax.scatter(truth, pred, s=12, alpha=0.8, color="C0", label=f"model (MAE {np.abs(pred - truth).mean():.3g})")
    lo, hi = float(min(truth.min(), pred.min())), float(max(truth.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    target = data.spec.extra["target"]
    ax.set_xlabel(f"true {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.set_title(f"{title}: {len(truth)} test rows")
    ax.legend()
    ax.grid(alpha=0.3)
    return reports.save_figure(fig, path)


def regression_reports(history: list[dict[str, Any]], data: Dataset, outputs: torch.Tensor | None, folder: Path,
                       cfg: RunConfig) -> list[Path]:  # fmt: skip
    if outputs is None or not len(outputs):
        return []
    return [plot_predictions(data, outputs, folder / "predictions.png", cfg.recipe or cfg.model)]


def predict_rows(run: LoadedRun, inputs: list[str], options: dict[str, Any]) -> list[dict[str, Any]]:
    """`nnzoo predict RUN rows.csv`: a number for each row, written beside the rows (see tables.write_rows)."""
    df, x, path = read_rows(run, inputs, options)
    values = to_units(model_outputs(run, x, options.get("device")), run.spec)
    target = run.spec.extra["target"]
    written = write_rows(df, {target: values.tolist()}, path, options.get("out"))
    head = f"wrote {written['file']}: {written['rows']} rows with the predicted {target}"
    shown = "\n".join(f"  row {i + 1}: {v:.4g}" for i, v in enumerate(values[:10]))
    more = f"\n  ... {len(values) - 10} more" if len(values) > 10 else ""
    return [{**written, "predictions": values.tolist(), "text": f"{head}\n{shown}{more}"}]


def answers(run: LoadedRun, outputs: torch.Tensor, options: dict[str, Any]) -> list[dict[str, Any]]:
    """nnzoo.predict(run, array): the value of each input (in the target's units for a table's run)."""
    values = to_units(outputs, run.spec) if is_table(run.spec) else outputs.double().numpy()
    return [{"value": v.tolist() if isinstance(v, np.ndarray) else float(v)} for v in values]


def regression_export(run: LoadedRun) -> ExportPlan:
    target = run.spec.extra["target"]
    return table_plan(run, target, f"(batch,) float32: the predicted {target}, in its own units", regression=True)


TASK = Task("regression", extra_metrics=regression_metrics, write_reports=regression_reports, predict=predict_rows,
            export=regression_export, answer=answers)  # fmt: skip
