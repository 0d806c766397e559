"""Every verb through the real command line, and every bad input a user can cause: one sentence, non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image, ImageDraw


@pytest.fixture
def trained(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture) -> Path:
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "mnist-simple-cnn", "--data-dir", data_dir, "--max-steps", 2,
                             "--out", run, "--set", "data.val_size=50")  # fmt: skip
    assert code == 0, err
    return run


def draw_digit(path: Path, size: int = 96, background: int = 255) -> Path:
    """A '7' drawn as a user would: dark strokes on a light, larger canvas."""
    img = Image.new("L", (size, size), background)
    d = ImageDraw.Draw(img)
    ink = 255 - background
    d.line([(20, 20), (76, 20), (40, 80)], fill=ink, width=9)
    img.save(path)
    return path


def test_train_writes_the_run_folder(trained: Path) -> None:
    assert (trained / "config.yaml").is_file()
    assert {p.name for p in (trained / "checkpoints").iterdir()} == {"best.pt", "last.pt"}
    metrics = json.loads((trained / "metrics.json").read_text())
    assert (
        set(metrics["test"]) == {"loss", "accuracy", "majority_baseline", "macro_f1", "majority_baseline_macro_f1"}
        and metrics["epochs"] == 1
        and metrics["steps"] == 2
    )
    assert metrics["train_seconds"] > 0 and "expected" in metrics
    lines = (trained / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["epoch"] == 1
    for png in ("curves.png", "confusion_matrix.png", "worst.png"):
        assert (trained / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_and_report(trained: Path, data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(capsys, "eval", trained, "--json", "--data-dir", data_dir)
    r = json.loads(out)
    assert code == 0 and r["samples"] == 200 and 0 <= r["accuracy"] <= 1
    assert np.array(r["confusion_matrix"]).sum() == 200 and len(r["per_class_accuracy"]) == 10
    png = trained / "eval" / "confusion_matrix.png"
    assert r["confusion_matrix_png"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, _ = run_cli(capsys, "eval", trained, "--data-dir", data_dir)
    assert code == 0 and "confusion matrix" in out and "accuracy" in out and f"wrote {png}" in out
    (trained / "report" / "worst.png").unlink()
    code, out, _ = run_cli(capsys, "report", trained, "--data-dir", data_dir)
    assert code == 0 and (trained / "report" / "worst.png").is_file() and "curves.png" in out


def test_predict_on_drawn_images(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = draw_digit(tmp_path / "seven.png")
    b = draw_digit(tmp_path / "seven_dark.jpg", size=40, background=0)
    Image.open(a).convert("RGB").save(tmp_path / "seven.bmp")
    code, out, _ = run_cli(capsys, "predict", trained, a, b, tmp_path / "seven.bmp", "--json", "--top-k", 2)
    results = json.loads(out)
    assert code == 0 and [Path(r["file"]).name for r in results] == ["seven.png", "seven_dark.jpg", "seven.bmp"]
    for r in results:
        assert sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-4)
        assert len(r["top_k"]) == 2 and r["label"] == r["top_k"][0]["label"] == str(r["index"])
    code, out, _ = run_cli(capsys, "predict", trained, a)
    assert code == 0 and out.startswith(f"{a}: ")


def test_list_and_summary(capsys: pytest.CaptureFixture) -> None:
    for what, name in [("models", "simple-cnn"), ("datasets", "fashion-mnist"), ("recipes", "mnist-simple-cnn")]:
        code, out, _ = run_cli(capsys, "list", what)
        assert code == 0 and name in out
    code, out, _ = run_cli(capsys, "summary", "simple-cnn", "--dataset", "mnist")
    assert code == 0 and "(B, 64, 5, 5)" in out and "225,034" in out and "5.26 MFLOPs" in out
    code, out, _ = run_cli(capsys, "summary", "mlp", "--dataset", "digits", "--set", "hidden=[16]")
    assert code == 0 and "(B, 16)" in out


def test_resume_via_cli(trained: Path, data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(capsys, "train", "mnist-simple-cnn", "--out", trained, "--resume", "--epochs", 2,
                             "--max-steps", 4, "--data-dir", data_dir)  # fmt: skip
    assert code == 0, err
    assert "resuming after epoch 1" in out and json.loads((trained / "metrics.json").read_text())["epochs"] == 2
    # Resuming a run that has done all its settings ask for would train nothing: say so instead.
    code, out, err = run_cli(capsys, "train", "mnist-simple-cnn", "--out", trained, "--resume", "--data-dir", data_dir)
    assert code == 2 and "has already trained 2 epochs" in err and "resume with --max-steps above" in err


def test_default_run_folders_never_overwrite(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    for _ in range(2):
        assert run_cli(capsys, "train", "mnist-simple-cnn", "--data-dir", data_dir, "--max-steps", 1, "--quiet")[0] == 0
    assert sorted(p.name for p in Path("runs").iterdir()) == ["mnist-simple-cnn", "mnist-simple-cnn-2"]


BAD_INPUTS = [
    (["train", "mnist-cnn"], 2, "Unknown recipe 'mnist-cnn'. Did you mean 'mnist-simple-cnn'?"),
    (["train", "digits-mlp", "--set", "model=resnet"], 2, "Unknown model 'resnet'. Valid choices: "),
    (["train", "digits-mlp", "--dataset", "imagenet"], 2, "Unknown dataset 'imagenet'. Valid choices: breast-cancer, chnsenticorp, cifar10"),
    (["train", "digits-mlp", "--epochs", "0"], 2, "--epochs must be a positive whole number, not 0."),
    (["train", "digits-mlp", "--set", "train.lr=fast"], 2, "Setting 'train.lr' must be a number, not 'fast'."),
    (["train", "digits-mlp", "--set", "warp=9"], 2, "Unknown setting 'warp'."),
    (["train", "digits-mlp", "--set", "lr"], 2, "--set expects KEY=VALUE, got 'lr'."),
    (["train", "digits-mlp", "--set", "model_args.hidden=[0]"], 2, "mlp hidden sizes must be positive"),
    (["train", "mnist-simple-cnn", "--data-dir", "{tmp}/empty"], 3, "MNIST is not on this machine"),
    (["train", "digits-mlp", "--device", "cuda:77"], 2, "--device cuda:77"),
    (["train", "digits-mlp", "--dataset", "digits", "--set", "model=simple-cnn"], 2,
     "simple-cnn needs input of at least 10x10 pixels"),
    (["train", "digits-mlp", "--resume", "--out", "{tmp}/nothing"], 2, "Nothing to resume in"),
    (["train", "{tmp}/missing.yaml"], 2, "Recipe file"),
    (["eval", "{tmp}/nothing"], 2, "is not a folder"),
    (["eval", "{tmp}"], 2, "holds no checkpoint (looked for checkpoints/best.pt or last.pt)."),
    (["summary", "simple-cnn", "--dataset", "digits"], 2, "needs input of at least 10x10"),
]  # fmt: skip


@pytest.mark.parametrize("argv,code,message", BAD_INPUTS, ids=[" ".join(a[:3]) for a, _, _ in BAD_INPUTS])
def test_bad_input_is_one_sentence_and_nonzero_exit(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str],
                                                    code: int, message: str) -> None:  # fmt: skip
    got, out, err = run_cli(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert got == code
    last = err.strip().splitlines()[-1]  # a failed download attempt may be announced on the line before
    assert last.startswith("error: ") and message in last and "Traceback" not in err
    assert err.count("error: ") == 1


def test_corrupt_idx_and_bad_images(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from conftest import write_mnist_folder

    folder = write_mnist_folder(tmp_path / "d" / "mnist", n_train=30, n_test=10)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x00\x00\x0c\x03broken")
    code, _, err = run_cli(capsys, "train", "mnist-simple-cnn", "--data-dir", tmp_path / "d", "--max-steps", 1)
    assert code == 2 and "is not a readable IDX file" not in err and "magic number" in err
    (tmp_path / "notes.png").write_text("not an image")
    code, _, err = run_cli(capsys, "predict", trained, tmp_path / "notes.png")
    assert (
        code == 2
        and err
        == f"error: {tmp_path / 'notes.png'} is not an image nnzoo can read (PNG, JPEG, BMP, GIF, TIFF or WebP).\n"
    )
    code, _, err = run_cli(capsys, "predict", trained, tmp_path / "nope.png")
    assert code == 2 and "does not exist" in err


def test_existing_run_is_not_overwritten(trained: Path, data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    before = (trained / "checkpoints" / "last.pt").read_bytes()
    code, _, err = run_cli(capsys, "train", "mnist-simple-cnn", "--out", trained, "--data-dir", data_dir)
    assert code == 2 and "already holds a run: pass --resume" in err
    assert (trained / "checkpoints" / "last.pt").read_bytes() == before


@pytest.mark.slow
def test_python_m_and_console_script(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "nnzoo", "train", "digits-mlp", "--max-steps", "2", "--out",
                        str(tmp_path / "r")], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "test (" in r.stdout and (tmp_path / "r" / "metrics.json").is_file()
    r = subprocess.run([sys.executable, "-m", "nnzoo", "train", "nope"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.startswith("error: Unknown recipe 'nope'") and "Traceback" not in r.stderr


def test_generate_with_a_classifier_says_what_generates(trained: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(capsys, "generate", trained, "--prompt", "hi")
    assert code == 2 and "which does not generate; generate works with language models" in err


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    """`nnzoo predict ... | head`: when the reader leaves, stop with SIGPIPE's status and no traceback."""
    code = ("import sys, nnzoo.cli as c\n"
            "c.run = lambda args, argv: [print('x' * 100) for _ in range(100_000)] and 0\n"
            "sys.exit(c.main(['list', 'models']))\n")  # fmt: skip
    p = subprocess.run(f'{sys.executable} -c "{code}" | head -1', shell=True, capture_output=True, text=True,
                       executable="/bin/bash")  # fmt: skip
    assert p.stdout == "x" * 100 + "\n" and "Traceback" not in p.stderr and p.stderr == ""


def test_eval_of_a_run_folder_it_cannot_write_still_answers(
    trained: Path, data_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    (trained / "eval").write_text("a file where the eval/ folder would go")  # mkdir fails, as in a read-only folder
    code, out, err = run_cli(capsys, "eval", trained, "--data-dir", data_dir)
    assert code == 0 and "confusion matrix" in out and "wrote" not in out
    assert err.startswith("note: the confusion matrix was not drawn: could not write") and "Traceback" not in err
