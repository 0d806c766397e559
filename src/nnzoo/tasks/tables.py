"""What the classification and regression tasks share for tables: the baselines fitted in the same run, predicting
the rows of a file (written back beside them), and the export whose graph takes the raw columns.

Baselines use scikit-learn on the very features the network sees (the encoding of data/tables.py): a logistic
regression for a label, the mean and a ridge regression (its penalty chosen by cross-validation on the training
rows) for a number. A network that does not beat them on a table has not earned its complexity.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..data.tables import TableEncoding, encode_rows, read_table, unused_columns
from ..errors import UserError
from ..export import ExportPlan
from ..files import atomic_write_text
from ..paths import check_output
from ..runs import trainer_for

if TYPE_CHECKING:
    from ..data.spec import Dataset, DataSpec
    from ..runs import LoadedRun


def is_table(spec: DataSpec) -> bool:
    return spec.corpus_kind == "table"


# ---- baselines ----------------------------------------------------------------------------------------------------
def classification_baselines(data: Dataset) -> dict[str, float]:
    """Test accuracy and macro-F1 of a logistic regression fitted on the training rows (L2, C=1, lbfgs)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    clf = LogisticRegression(max_iter=5000).fit(data.train.x.numpy(), data.train.y.numpy())
    pred = clf.predict(data.test.x.numpy())
    truth = data.test.y.numpy()
    return {"logistic_regression_accuracy": float((pred == truth).mean()),
            "logistic_regression_macro_f1": float(f1_score(truth, pred, average="macro"))}  # fmt: skip


def regression_errors(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R² (1 - residual sum of squares / total sum of squares around the test mean)."""
    e = pred - truth
    ss_tot = float(((truth - truth.mean()) ** 2).sum())
    return {"mae": float(np.abs(e).mean()), "rmse": float(np.sqrt((e**2).mean())),
            "r2": 1 - float((e**2).sum()) / ss_tot if ss_tot > 0 else float("nan")}  # fmt: skip


def to_units(z: torch.Tensor | np.ndarray, spec: DataSpec) -> np.ndarray:
    z = z.numpy() if isinstance(z, torch.Tensor) else z
    return z.astype(np.float64) * spec.extra["target_std"] + spec.extra["target_mean"]


def regression_baselines(data: Dataset) -> dict[str, np.ndarray]:
    """Test predictions, in the target's units, of the training mean and of a ridge regression."""
    from sklearn.linear_model import RidgeCV

    y_train = to_units(data.train.y, data.spec)
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(data.train.x.numpy(), y_train)
    return {"mean": np.full(len(data.test), y_train.mean()), "ridge": ridge.predict(data.test.x.numpy())}


# ---- predict: the rows of a file, answered beside them ------------------------------------------------------------
def read_rows(run: LoadedRun, inputs: list[str], options: dict[str, Any]) -> tuple[Any, torch.Tensor, str]:
    """The one table file of `nnzoo predict RUN FILE`, its rows encoded as in training, and its path."""
    unknown = [k for k, v in options.items() if v is not None and k not in ("top_k", "device", "out")]
    if unknown:
        raise UserError(f"--{unknown[0].replace('_', '-')} has no meaning for {run.run_dir}, a table model: give "
                        "one table file of rows to predict.")  # fmt: skip
    if len(inputs) != 1:
        raise UserError(f"Give one table file (CSV, TSV or Parquet) of rows to predict; {run.run_dir} was trained on "
                        f"the columns {', '.join(TableEncoding.from_dict(run.spec.extra['table']).columns)}.")  # fmt: skip
    path = inputs[0]
    df = read_table(path)
    x = encode_rows(run.spec, df, path)  # first: a column the model needs and the file lacks is an error
    extra = unused_columns(run.spec, df)
    if extra:
        import warnings

        warnings.warn(f"{path}: the model never saw the column{'s' if len(extra) > 1 else ''} "
                      f"{', '.join(map(repr, extra))}; copied to the output unused.", stacklevel=2)  # fmt: skip
    return df, x, path


def model_outputs(run: LoadedRun, x: torch.Tensor, device: str | None) -> torch.Tensor:
    return trainer_for(run, device).predict(x)


def write_rows(df: Any, columns: dict[str, list[Any]], source: str, out: str | None) -> dict[str, Any]:
    """The input rows with the prediction columns added, as CSV or JSON (by ``out``'s suffix); default: beside the
    input as NAME.predictions.csv (a new name, never over an earlier file)."""
    df = df.copy()
    for name, values in columns.items():
        df[name if name not in df.columns else f"predicted_{name}"] = values
    if out is None:
        src = Path(source)
        path, n = src.with_name(f"{src.stem}.predictions.csv"), 2
        while path.exists():
            path, n = src.with_name(f"{src.stem}.predictions-{n}.csv"), n + 1
        path = check_output(path, "file")
    else:
        path = check_output(out, "file")
    if path.suffix.lower() == ".json":
        text = json.dumps(json.loads(df.to_json(orient="records", force_ascii=False)), indent=2, ensure_ascii=False)
        atomic_write_text(path, text + "\n")
    else:
        atomic_write_text(path, df.to_csv(index=False, sep="\t" if path.suffix.lower() == ".tsv" else ","))
    return {"file": str(path), "rows": len(df), "columns": list(columns)}


# ---- export: the raw columns in, the answer out --------------------------------------------------------------------
class TableModel(nn.Module):
    """numeric (B, N) float32 raw values, NaN for a missing cell, and categories (B, K) int64 codes (the index of
    each cell's value in the column's category list; -1 or any code out of range for missing or unseen) ->
    the model's output. The training rows' medians, means, standard deviations and one-hot slots are inside."""

    def __init__(self, model: nn.Module, enc: TableEncoding, target_mean: float = 0.0, target_std: float = 1.0):
        super().__init__()
        self.model = model
        self.register_buffer("median", torch.tensor([c["median"] for c in enc.numeric], dtype=torch.float32))
        self.register_buffer("mean", torch.tensor([c["mean"] for c in enc.numeric], dtype=torch.float32))
        self.register_buffer("std", torch.tensor([c["std"] for c in enc.numeric], dtype=torch.float32))
        self.sizes = [len(c["categories"]) for c in enc.categorical]
        for i, k in enumerate(self.sizes):
            self.register_buffer(f"eye{i}", torch.eye(k + 1))
        self.has_numeric, self.has_categories = bool(enc.numeric), bool(enc.categorical)
        self.target_mean, self.target_std = float(target_mean), float(target_std)

    def encode(self, first: torch.Tensor, second: torch.Tensor | None = None) -> torch.Tensor:
        parts, rest = [], [first] if second is None else [first, second]
        if self.has_numeric:
            v = rest.pop(0)
            v = torch.where(torch.isnan(v), self.median, v)
            parts.append((v - self.mean) / self.std)
        if self.has_categories:
            codes = rest.pop(0)
            for i, k in enumerate(self.sizes):
                c = codes[:, i]
                c = torch.where((c < 0) | (c > k), torch.full_like(c, k), c)  # missing or unseen: the last slot
                parts.append(getattr(self, f"eye{i}")[c])
        return torch.cat(parts, dim=1)

    def forward(self, first: torch.Tensor, second: torch.Tensor | None = None) -> torch.Tensor:
        """(numeric, categories), or the one of them the table has."""
        out = self.model(self.encode(first, second))
        return out * self.target_std + self.target_mean if self.target_std != 1.0 or self.target_mean else out


def raw_inputs(enc: TableEncoding, df: Any) -> tuple[torch.Tensor, ...]:
    """The export's inputs for the rows of ``df``: raw numbers (NaN missing) and category codes (-1 missing)."""
    from ..data.tables import _category, numeric_values

    out = []
    if enc.numeric:
        cols = [numeric_values(df[c["name"]].tolist(), c["name"], "rows", strict=True) for c in enc.numeric]
        out.append(torch.from_numpy(np.stack(cols, axis=1)).float())  # type: ignore[arg-type]
    if enc.categorical:
        codes = []
        for c in enc.categorical:
            slot = {v: i for i, v in enumerate(c["categories"])}
            codes.append([slot.get(_category(cell), -1) for cell in df[c["name"]].tolist()])  # type: ignore[arg-type]
        out.append(torch.tensor(codes, dtype=torch.long).T.contiguous())
    return tuple(out)


def table_plan(run: LoadedRun, output: str, output_doc: str, regression: bool) -> ExportPlan:
    spec = run.spec
    enc = TableEncoding.from_dict(spec.extra["table"])
    mean, std = (spec.extra["target_mean"], spec.extra["target_std"]) if regression else (0.0, 1.0)
    module = TableModel(run.model.eval(), enc, mean, std).eval()
    g = torch.Generator().manual_seed(0)

    def made_up(n: int) -> tuple[torch.Tensor, ...]:
        out = []
        if enc.numeric:
            v = torch.tensor([c["mean"] for c in enc.numeric]) + torch.randn(n, len(enc.numeric), generator=g) * \
                torch.tensor([c["std"] for c in enc.numeric])  # fmt: skip
            v[0, 0] = float("nan")  # a missing cell, imputed inside the graph
            out.append(v.float())
        if enc.categorical:
            hi = torch.tensor([len(c["categories"]) for c in enc.categorical])
            codes = (torch.rand(n, len(hi), generator=g) * (hi + 1)).long() - 1  # -1 (missing) to len (unseen)
            out.append(codes)
        return tuple(out)

    names = (["numeric"] if enc.numeric else []) + (["categories"] if enc.categorical else [])
    docs = {"numeric": f"(batch, {len(enc.numeric)}) float32: the columns {', '.join(c['name'] for c in enc.numeric)} "
                       "as raw values, NaN for a missing cell",
            "categories": f"(batch, {len(enc.categorical)}) int64: for the columns "
                          f"{', '.join(c['name'] for c in enc.categorical)}, the index of the cell's value in that "
                          "column's list under meta categories (-1 for missing or unseen)",
            output: output_doc}  # fmt: skip
    meta = {"numeric_columns": [c["name"] for c in enc.numeric],
            "categories": {c["name"]: c["categories"] for c in enc.categorical},
            "target": spec.extra["target"], "class_names": spec.class_names}  # fmt: skip
    return ExportPlan(module, made_up(2), made_up(7), names, [output], docs=docs, meta=meta)
