"""Every registered task, end to end, as test_models.py goes over every registered model: one small run per task
(a row of RUNS) trains two steps, evaluates, predicts or generates, exports to ONNX within 1e-4 of PyTorch, and
its run folder loads back as its checkpoint holds it. A task registered without a row here fails the suite."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli
from PIL import Image

import nnzoo
from nnzoo import checkpoint
from nnzoo.cli import main
from nnzoo.config import RunConfig
from nnzoo.tasks import TASKS, get_task

QUICK = ["--max-steps", "2", "--quiet", "--set", "train.num_threads=1"]


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """co2-lstm (the bundled monthly CO2 series), tiny, two steps."""
    run = tmp_path_factory.mktemp("tasks") / "co2-lstm"
    args = ["co2-lstm", "--set", "data.seq_len=12", "--set", "model_args.hidden=8"]
    assert main(["train", *args, "--out", str(run), *QUICK]) == 0
    return run


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """diabetes-mlp (scikit-learn's bundled table), two steps."""
    run = tmp_path_factory.mktemp("tasks") / "diabetes-mlp"
    assert main(["train", "diabetes-mlp", "--out", str(run), *QUICK]) == 0
    return run


@pytest.fixture(scope="module")
def pretraining_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chnsenticorp-bert-mlm on a file of reviews written here (ChnSentiCorp itself is not on the test machine)."""
    d = tmp_path_factory.mktemp("tasks")
    rows = [f"{i % 2},{'房间很干净，服务也好' if i % 2 else '房间太脏，服务很差'}，第{i}天" for i in range(60)]
    (d / "r.csv").write_text("label,review\n" + "\n".join(rows) + "\n", encoding="utf-8")
    run = d / "chnsenticorp-bert-mlm"
    args = ["chnsenticorp-bert-mlm", "--dataset", "text-labels", "--data-file", str(d / "r.csv"), "--text-column",
            "review", "--set", "data.seq_len=16", "--set", "model_args.dim=16", "--set", "model_args.heads=2"]  # fmt: skip
    assert main(["train", *args, "--out", str(run), *QUICK]) == 0
    return run


@pytest.fixture(scope="module")
def task_runs(serve_runs: dict[str, Path], forecast_run: Path, regression_run: Path,
              pretraining_run: Path) -> dict[str, Path]:  # fmt: skip
    """The run of each task: conftest's serve_runs (trained once per session: digits-mlp, a poem LSTM, a cGAN, an
    autoencoder), the forecaster, the regressor and the masked-LM above."""
    return {"classification": serve_runs["digits"], "language-model": serve_runs["poems"], "forecast": forecast_run,
            "gan": serve_runs["cgan"], "autoencoder": serve_runs["ae"], "regression": regression_run,
            "masked-lm": pretraining_run}  # fmt: skip


def _digit_png(tmp: Path) -> Path:
    """An 8x8 grey ramp, the size of scikit-learn's digits (the runs here are trained on them)."""
    image = tmp / "digit.png"
    Image.fromarray(np.tile(np.arange(0, 256, 32, dtype=np.uint8), (8, 1))).save(image)
    return image


def _predicts_an_image(run: Path, tmp: Path, capsys: pytest.CaptureFixture) -> None:
    image = _digit_png(tmp)
    code, out, err = run_cli(capsys, "predict", run, image, "--json")
    assert code == 0, err
    (r,) = json.loads(out)
    assert sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-4) and r["label"] in r["probabilities"]


def _forecasts(run: Path, tmp: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(capsys, "predict", run, "--json")
    assert code == 0, err
    (r,) = json.loads(out)
    assert len(r["forecast"]) == nnzoo.load_run(run).spec.extra["horizon"]
    assert all(np.isfinite(r["forecast"]))


def _regresses_rows(run: Path, tmp: Path, capsys: pytest.CaptureFixture) -> None:
    from sklearn.datasets import load_diabetes

    rows = load_diabetes(as_frame=True, scaled=False).frame.drop(columns=["target"]).head(5)
    rows.to_csv(tmp / "patients.csv", index=False)
    code, out, err = run_cli(capsys, "predict", run, tmp / "patients.csv", "--json")
    assert code == 0, err
    (r,) = json.loads(out)
    assert r["rows"] == 5 and all(np.isfinite(r["predictions"]))
    assert (tmp / "patients.predictions.csv").read_text().splitlines()[0].endswith(",target")


def _generates_text(run: Path, tmp: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(capsys, "generate", run, "--length", 12, "--seed", 1, "--prompt", "春")
    assert code == 0 and out.startswith("春") and len(out.rstrip("\n")) >= 12, err


def _generates_images(run: Path, tmp: Path, capsys: pytest.CaptureFixture) -> None:
    grid = tmp / "grid.png"
    code, out, err = run_cli(capsys, "generate", run, "--n", 4, "--seed", 1, "--out", grid, "--json")
    assert code == 0, err
    assert grid.read_bytes()[:4] == b"\x89PNG"


def _reconstructs_images(run: Path, tmp: Path, capsys: pytest.CaptureFixture) -> None:
    """A plain autoencoder has no prior to sample from: it generates reconstructions of the images it is given."""
    grid = tmp / "grid.png"
    code, out, err = run_cli(capsys, "generate", run, "--from", _digit_png(tmp), "--out", grid, "--json")
    assert code == 0, err
    assert grid.read_bytes()[:4] == b"\x89PNG"


def _is_for_fine_tuning(run: Path, tmp: Path, capsys: pytest.CaptureFixture) -> None:
    """A masked LM answers no question itself: predict says so in one sentence; its encoder is what --init-from
    takes (tests/test_tokenizers.py fine-tunes one)."""
    code, _, err = run_cli(capsys, "predict", run, "--text", "房间很干净")
    assert code != 0 and err.startswith("error:") and "masked-lm" in err and err.count("\n") == 1


@dataclass(frozen=True)
class Row:
    recipe: str  # what the run was trained from
    uses: Callable[[Path, Path, pytest.CaptureFixture], None]  # predict or generate, and check the answer
    metric: str  # a test metric of this task's, in metrics.json and in `nnzoo eval`'s output


RUNS = {
    "classification": Row("digits-mlp", _predicts_an_image, "majority_baseline"),
    "language-model": Row("tang-poems-char-lstm", _generates_text, "perplexity"),
    "forecast": Row("co2-lstm", _forecasts, "mase"),
    "regression": Row("diabetes-mlp", _regresses_rows, "ridge_baseline_mae"),
    "autoencoder": Row("mnist-vae", _reconstructs_images, "loss"),
    "gan": Row("mnist-cgan", _generates_images, "d_loss"),
    "masked-lm": Row("chnsenticorp-bert-mlm", _is_for_fine_tuning, "masked_perplexity"),
}


def test_every_registered_task_has_a_row() -> None:
    assert sorted(RUNS) == sorted(TASKS), "a task without a row in RUNS (or a row without a task)"
    for name in TASKS:
        assert get_task(name) is TASKS.get(name) and get_task(name).name == name


@pytest.mark.parametrize("task", sorted(TASKS))
def test_a_small_run_of_each_task_end_to_end(task: str, task_runs: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    row, run = RUNS[task], task_runs[task]
    # Trained two steps, as this task.
    payload = checkpoint.load(checkpoint.find(run, "last"))
    loaded = nnzoo.load_run(run)
    assert payload["global_step"] == 2 and loaded.spec.task == task and loaded.config.recipe == row.recipe
    metrics = json.loads((run / "metrics.json").read_text())
    assert row.metric in metrics["test"]
    code, out, err = run_cli(capsys, "eval", run)
    assert code == 0 and out.strip(), err
    row.uses(run, tmp_path, capsys)
    r = nnzoo.export(run, "onnx", tmp_path / "model.onnx")
    assert Path(r["path"]).is_file() and r["max_abs_diff"] <= 1e-4
    # The run folder round-trips: load_run gives the config and weights its checkpoint holds.
    best = checkpoint.load(loaded.checkpoint)
    assert loaded.config == RunConfig.from_dict(best["config"]) and loaded.config.to_dict() == best["config"]
    state = loaded.model.state_dict()
    assert state.keys() == best["model"].keys()
    assert all(torch.equal(state[k], best["model"][k]) for k in state)
