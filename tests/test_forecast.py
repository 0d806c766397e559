"""Forecasting: splits by time with training-only scaling, the baselines and MASE, a recurrent model that beats the
naive forecast on a small seasonal series, the verbs end to end, and every bad CSV a user can bring."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli

from nnzoo import api, load_dataset
from nnzoo.config import DataConfig
from nnzoo.data.series import mase_scale, read_csv_series
from nnzoo.errors import UserError
from nnzoo.tasks.forecast import baseline_forecasts, errors, to_units


def seasonal_csv(path: Path, n: int = 240, seed: int = 0) -> Path:
    """A monthly-looking series: trend + 12-step season + noise, with a date column the loader ignores."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 50 + 0.08 * t + 4 * np.sin(2 * np.pi * t / 12) + 1.5 * np.cos(2 * np.pi * t / 6) + rng.normal(0, 0.3, n)
    rows = ["month,sales"] + [f"{2000 + i // 12}-{i % 12 + 1:02d},{v:.3f}" for i, v in enumerate(y)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_co2_is_monthly_split_by_time_and_scaled_on_the_training_part_only() -> None:
    cfg = DataConfig(name="co2", seq_len=36, val_size=0.1, options={"horizon": 12, "test_size": 0.2})
    data = load_dataset(cfg)
    ex = data.spec.extra
    assert ex["length"] == 526 and ex["season"] == 12 and data.spec.input_shape == (36, 1)
    assert ex["val_start"] == 526 - 105 - 53 and ex["test_start"] == 526 - 105
    # Every test window's targets lie in the tail; the last one ends at the last month; one window per origin.
    assert len(data.test) == 105 - 12 + 1 and len(data.val) == 53 - 12 + 1
    last = to_units(data.test.y[-1], data.spec)
    assert last[-1] == pytest.approx(371.02, abs=0.01)  # December 2001, the mean of its weekly values
    train_values = to_units(torch.cat([data.train.x[0, :, 0], data.train.y[:, 0], data.train.y[-1, 1:]]), data.spec)
    assert len(train_values) == ex["val_start"]
    assert train_values.mean() == pytest.approx(ex["mean"], rel=1e-6)  # the scaler saw the training part only
    assert not torch.isnan(data.train.x).any() and not torch.isnan(data.test.y).any()


def test_baselines_errors_and_mase_by_hand() -> None:
    windows = np.array([[1.0, 2, 3, 4, 5, 6]])
    b = baseline_forecasts(windows, horizon=5, season=4)
    assert b["naive"].tolist() == [[6, 6, 6, 6, 6]]
    assert b["seasonal_naive"].tolist() == [[3, 4, 5, 6, 3]]  # the last observed season, repeated
    assert "seasonal_naive" not in baseline_forecasts(windows, 2, 1)
    e = errors(np.array([[1.0, 3.0]]), np.array([[2.0, 2.0]]), scale=0.5)
    assert e == {"mae": 1.0, "rmse": 1.0, "mase": 2.0}
    # Hyndman & Koehler's scale: the in-sample MAE of the one-step (seasonal) naive forecast.
    assert mase_scale(np.array([1.0, 3, 2, 5]), 1) == pytest.approx((2 + 1 + 3) / 3)
    assert mase_scale(np.array([1.0, 3, 2, 5]), 2) == pytest.approx((1 + 2) / 2)


def test_recurrent_forecaster_beats_the_naive_forecast_on_a_seasonal_series(tmp_path: Path) -> None:
    csv = seasonal_csv(tmp_path / "sales.csv")
    res = api.train("co2-lstm", out=tmp_path / "run", progress=False,
                    overrides={"dataset": "csv-file", "data_file": str(csv), "column": "sales", "epochs": 40,
                               "lr": 0.01, "batch_size": 16},
                    sets=[("data.seq_len", 24), ("model_args.hidden", 16), ("train.num_threads", 1),
                          ("data.options.horizon", 6)])  # fmt: skip
    test = res.metrics["test"]
    assert test["mase"] < test["naive_mase"] and test["improvement_over_naive"] > 0.5, test
    assert test["mase"] < test["seasonal_naive_mase"], test  # the trend is learnt, which seasonal naive misses
    assert test["mae"] / test["mase"] == pytest.approx(test["naive_mae"] / test["naive_mase"])  # one scale for all
    assert (tmp_path / "run" / "report" / "forecast.png").read_bytes()[:4] == b"\x89PNG"
    assert res.metrics["meets_expected"] == {"test_improvement_over_seasonal_naive": True}


def test_forecast_verbs_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "sunspots-gru", "--max-steps", 2, "--out", run, "--quiet", "--set",
                             "train.num_threads=1")  # fmt: skip
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"mae", "rmse", "mase", "naive_mase", "improvement_over_naive"} <= set(metrics["test"])
    code, out, err = run_cli(capsys, "eval", run)
    assert code == 0 and "mase" in out and "naive_mae" in out, err
    code, out, err = run_cli(capsys, "predict", run)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("sunspots: the next 11 values after the last of 309")
    assert lines[1].startswith("2009 ") and lines[-1].startswith("2019 ")
    (run / "report" / "forecast.png").unlink()
    code, out, err = run_cli(capsys, "report", run)
    assert code == 0 and (run / "report" / "forecast.png").is_file()
    # A forecast from the last 30 values of the user's own CSV.
    csv = tmp_path / "recent.csv"
    csv.write_text("year,spots\n" + "".join(f"{1990 + i},{50 + 40 * math.sin(i / 1.7):.1f}\n" for i in range(35)))
    code, out, err = run_cli(capsys, "predict", run, csv, "--column", "spots", "--json")
    r = json.loads(out)[0]
    assert code == 0 and len(r["forecast"]) == 11 and r["times"][0] == 35 and r["column"] == "spots"


def test_a_csv_run_forecasts_after_the_end_of_its_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    csv = seasonal_csv(tmp_path / "sales.csv", n=120)
    code, _, err = run_cli(capsys, "train", "co2-lstm", "--dataset", "csv-file", "--data-file", csv, "--column",
                           "sales", "--max-steps", 2, "--out", tmp_path / "r", "--quiet", "--set",
                           "train.num_threads=1")  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli(capsys, "predict", tmp_path / "r")
    assert code == 0 and out.splitlines()[1].startswith("step 120 "), err


BAD_CSV = [
    ("month,sales\n2000-01,1\n", ["--column", "price"], "has no column 'price'; its columns are month, sales"),
    ("month,sales\n2000-01,1\n2000-02,abc\n", ["--column", "sales"], "column 'sales' holds 'abc', which is not"),
    ("month,sales\n2000-01,1\n2000-02,\n2000-03,2\n", ["--column", "sales"], "has a gap: line 3 has no value"),
    ("month,sales\n2000-01,1\n2000-02,nan\n", ["--column", "sales"], "holds 'nan'; give finite numbers only"),
    ("month,sales\n" + "".join(f"2000-{i},{i}\n" for i in range(30)), ["--column", "sales"], "too few for windows"),
    ("month,sales\n2000-01,1\n", [], "Name the column to forecast with --column NAME"),
    ("", ["--column", "sales"], "is empty"),
    ("\x00\x01binary", ["--column", "sales"], "looks binary"),
]  # fmt: skip


@pytest.mark.parametrize("content,flags,message", BAD_CSV, ids=[m[:24] for _, _, m in BAD_CSV])
def test_bad_csv_is_one_sentence_and_nonzero_exit(tmp_path: Path, capsys: pytest.CaptureFixture, content: str,
                                                  flags: list[str], message: str) -> None:  # fmt: skip
    (tmp_path / "f.csv").write_text(content, encoding="utf-8")
    code, _, err = run_cli(capsys, "train", "co2-lstm", "--dataset", "csv-file", "--data-file", tmp_path / "f.csv",
                           *flags, "--max-steps", 1)  # fmt: skip
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err


def test_other_bad_series_input(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="csv-file dataset needs --data-file"):
        load_dataset("csv-file")
    with pytest.raises(UserError, match="does not exist"):
        read_csv_series(tmp_path / "nope.csv", "x")
    with pytest.raises(UserError, match="shorter than the season"):
        load_dataset(DataConfig(name="co2", seq_len=6, val_size=0.1))
    with pytest.raises(UserError, match="data.options.horizon must be a positive whole number"):
        load_dataset(DataConfig(name="sunspots", seq_len=20, val_size=0.1, options={"horizon": 0}))
    (tmp_path / "semi.csv").write_text("a;b\n1;2\n3;4\n", encoding="utf-8")
    assert read_csv_series(tmp_path / "semi.csv", "b").values.tolist() == [2.0, 4.0]  # ; and tabs work too


def test_expected_metrics_know_which_way_is_better() -> None:
    from nnzoo.api import _meets

    metrics = {"test": {"mase": 0.4, "seasonal_naive_mae": 2.0, "improvement_over_naive": 0.5, "g_loss": 0.3},
               "val": {"loss": 1.5}}  # fmt: skip
    expected = {"test_mase": 0.5, "test_seasonal_naive_mae": 1.0, "test_improvement_over_naive": 0.3,
                "test_g_loss": 0.2, "val_loss": 1.6}  # fmt: skip
    assert _meets(metrics, expected) == {
        "test_mase": True,
        "test_seasonal_naive_mae": False,
        "test_improvement_over_naive": True,
        "test_g_loss": False,
        "val_loss": True,
    }
