"""The generative recipes through the real command line (--max-steps 2 on the tiny MNIST-format fixture), the
`generate` verb, and every bad input a user can cause: one sentence, non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from PIL import Image

from nnzoo.cli import main

RECIPES = ["mnist-vae", "fashion-mnist-vae", "fashion-mnist-conv-ae", "mnist-denoising-ae", "mnist-gan", "mnist-dcgan",
           "fashion-mnist-dcgan", "mnist-cgan"]  # fmt: skip
# Small and single-threaded: these check the plumbing, not the quality (see docs/generative.md for the recipes).
QUICK = ["--max-steps", "2", "--quiet", "--set", "train.num_threads=1", "--set", "data.val_size=50"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    """One run of each generative recipe, trained once for this module; the GANs scored by a small judge."""
    root = tmp_path_factory.mktemp("gen-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        judge = root / "judge"
        assert main(["train", "mnist-simple-cnn", "--data-dir", str(data_dir), "--out", str(judge), *QUICK[2:],
                     "--max-steps", "20"]) == 0  # fmt: skip
        out = {"judge": judge}
        for recipe in RECIPES:
            extra = ["--dataset", "mnist"] if recipe.startswith("fashion") else []  # the fixture is MNIST-format
            if "gan" in recipe:
                extra += ["--set", f"model_args.judge={judge}", "--set", "model_args.quality_samples=100"]
            out[recipe] = root / recipe
            argv = ["train", recipe, "--data-dir", str(data_dir), "--out", str(out[recipe]), *QUICK, *extra]
            assert main(argv) == 0, recipe
    return out


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_trains_and_reports(runs: dict[str, Path], recipe: str) -> None:
    run = runs[recipe]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["recipe"] == recipe
    test = metrics["test"]
    report = {p.name for p in (run / "report").iterdir()}
    if "gan" in recipe:
        assert {"d_loss", "g_loss", "fd", "fd_floor", "confidence", "classes_covered"} <= set(test)
        assert {"samples.png", "walk.png", "quality.png", "progress.gif", "epochs"} <= report
        epoch = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
        assert {"fd", "confidence", "classes_covered"} <= set(epoch)
        assert ("label_accuracy" in test) == (recipe == "mnist-cgan")
    else:
        assert {"loss", "bce", "mse", "psnr"} <= set(test) and test["bce"] > 0
        assert {"reconstructions.png", "walk.png", "latent.png", "curves.png"} <= report
        assert ("samples.png" in report) == ("vae" in recipe) and ("kl" in test) == ("vae" in recipe)
        assert ("neg_elbo" in test) == ("vae" in recipe) and "nats per image" in metrics["loss_is"]
        assert ("denoising.png" in report) == ("psnr_noisy" in test) == (recipe == "mnist-denoising-ae")


@pytest.mark.parametrize(
    "recipe,n,rows,cols", [("mnist-dcgan", 10, 3, 4), ("mnist-vae", 64, 8, 8), ("mnist-gan", 1, 1, 1)]
)
def test_generate_writes_a_grid_of_the_requested_size(runs: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture, recipe: str, n: int, rows: int,
                                                      cols: int) -> None:  # fmt: skip
    out = tmp_path / "grid.png"
    code, stdout, err = run_cli(capsys, "generate", runs[recipe], "--n", n, "--seed", 3, "--out", out, "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["path"] == str(out) and result["n"] == n and result["seed"] == 3
    with Image.open(out) as img:
        assert img.size == (cols * 30 + 2, rows * 30 + 2)  # 28x28 tiles with 2-pixel gaps
    again = tmp_path / "again.png"
    run_cli(capsys, "generate", runs[recipe], "--n", n, "--seed", 3, "--out", again)
    assert again.read_bytes() == out.read_bytes()  # a seed draws the same images


def test_cgan_draws_the_requested_label(runs: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(capsys, "generate", runs["mnist-cgan"], "--label", 7, "--n", 16, "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["label"] == "7" and Path(r["path"]) == runs["mnist-cgan"] / "samples_label7.png"
    code, out, _ = run_cli(capsys, "generate", runs["mnist-cgan"])
    assert code == 0 and out.strip() == str(runs["mnist-cgan"] / "samples.png")


def test_generate_from_images_reconstructs_them(runs: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    from test_cli import draw_digit

    images = [draw_digit(tmp_path / f"d{i}.png", size=40 + 8 * i) for i in range(3)]
    for recipe in ("mnist-vae", "fashion-mnist-conv-ae", "mnist-denoising-ae"):
        out = tmp_path / f"{recipe}.png"
        code, stdout, err = run_cli(capsys, "generate", runs[recipe], "--from", *images, "--out", out, "--json")
        assert code == 0, err
        assert json.loads(stdout)["kind"] == "reconstructions"
        with Image.open(out) as img:
            assert img.size == (8 * 30 + 2, 2 * 30 + 2)  # originals above reconstructions, 8 per row


def test_eval_report_and_summary(runs: dict[str, Path], data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(capsys, "eval", runs["mnist-cgan"], "--json", "--data-dir", data_dir)
    assert code == 0, err
    r = json.loads(out)
    assert {"fd", "label_accuracy", "classes_covered", "d_loss"} <= set(r) and r["samples"] == 200
    (runs["mnist-vae"] / "report" / "latent.png").unlink()
    code, out, _ = run_cli(capsys, "report", runs["mnist-vae"], "--data-dir", data_dir)
    assert code == 0 and (runs["mnist-vae"] / "report" / "latent.png").is_file() and "samples.png" in out
    code, out, _ = run_cli(capsys, "summary", "dcgan", "--dataset", "mnist")
    assert code == 0 and "input (B, 100)" in out and "(B, 1, 28, 28)" in out
    code, out, _ = run_cli(capsys, "summary", "vae", "--dataset", "fashion-mnist")
    assert code == 0 and "652,824" in out  # 784*400+400 + 400*40+40 + 20*400+400 + 400*784+784


BAD_GENERATE = [
    ("mnist-dcgan", ["--label", "7"], "--label needs a class-conditional model (cgan)"),
    ("mnist-cgan", ["--label", "10"], "--label must be a class number from 0 to 9 (0 0, 1 1,"),
    ("mnist-cgan", ["--label", "-1"], "--label must be a class number from 0 to 9"),
    ("mnist-vae", ["--n", "0"], "--n must be a whole number from 1 to 1024 (one grid), not 0."),
    ("mnist-gan", ["--n", "100000"], "--n must be a whole number from 1 to 1024"),
    ("mnist-vae", ["--from", "{tmp}/notes.png"], "notes.png is not an image nnzoo can read"),
    ("mnist-vae", ["--from", "{tmp}/missing.png"], "missing.png does not exist."),
    ("mnist-dcgan", ["--from", "{tmp}/digit.png"], "dcgan has no encoder, so it cannot reconstruct images"),
    ("fashion-mnist-conv-ae", [], "conv-ae is a plain autoencoder: it has no prior to sample from."),
    ("mnist-vae", ["--prompt", "hi"], "--prompt is for language models"),
    ("mnist-vae", ["--out", "{tmp}/grid.xyz"], "give a file name ending in .png"),
    ("mnist-cgan", ["--label", "3", "--from", "{tmp}/digit.png"], "--label and --from do not go together"),
]  # fmt: skip


@pytest.mark.parametrize("recipe,argv,message", BAD_GENERATE, ids=[f"{r} {' '.join(a)}" for r, a, _ in BAD_GENERATE])
def test_bad_generate_input_is_one_sentence(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture,
                                            recipe: str, argv: list[str], message: str) -> None:  # fmt: skip
    from test_cli import draw_digit

    (tmp_path / "notes.png").write_text("not an image")
    draw_digit(tmp_path / "digit.png")
    code, _, err = run_cli(capsys, "generate", runs[recipe], *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2 and err.startswith("error: ") and message in err and "Traceback" not in err
    assert err.count("\n") == 1


BAD_TRAIN = [
    (["mnist-dcgan", "--set", "model_args.judge={tmp}/nowhere"], "The judge {tmp}/nowhere is not a folder"),
    (["mnist-dcgan", "--set", "train.betas=[2, 3]"], "train.betas must be two numbers in [0, 1)"),
    (["mnist-dcgan", "--dataset", "digits", "--set", "model_args.g_width=0"], "dcgan layer sizes must be positive"),
    (["mnist-vae", "--set", "model_args.latent=0"], "vae latent must be a positive whole number, not 0."),
    (["mnist-denoising-ae", "--set", "model_args.noise=speckle"], "noise must be one of gaussian, salt-pepper"),
    (["mnist-cgan", "--set", "model_args.arch=rnn"], "cgan arch must be conv or mlp, not 'rnn'."),
]  # fmt: skip


@pytest.mark.parametrize("argv,message", BAD_TRAIN, ids=[" ".join(a[1:]) for a, _ in BAD_TRAIN])
def test_bad_train_input_is_one_sentence(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                         argv: list[str], message: str) -> None:  # fmt: skip
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = run_cli(
        capsys, "train", *argv, "--data-dir", data_dir, "--max-steps", 1, "--quiet", "--set", "data.val_size=0"
    )
    assert code == 2 and message.replace("{tmp}", str(tmp_path)) in err and "Traceback" not in err
