"""The attention family through the command line: train every recipe a couple of steps, generate with and
without the key/value cache, draw attention maps, and refuse bad input in one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli as cli
from PIL import Image

from nnzoo.api import make_config
from nnzoo.cli import main
from nnzoo.data.tang_authors import POETS

RECIPES = ["shakespeare-char-gpt", "shakespeare-char-gpt-fast", "shakespeare-char-gpt-gpu", "tang-poems-char-gpt",
           "tang-authors-transformer", "tang-authors-lstm", "fashion-mnist-vit", "fashion-mnist-transformer"]  # fmt: skip
TINY = ["--set", "model_args.dim=32", "--max-steps", "2", "--quiet"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipes_are_valid(name: str) -> None:
    cfg = make_config(name)
    assert cfg.recipe == name and cfg.expected


def test_gpt_train_generate_with_and_without_cache(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = tmp_path / "play.txt"
    text.write_text("ROMEO:\nBut soft, what light through yonder window breaks?\n" * 60, encoding="utf-8")
    for recipe, extra in [("shakespeare-char-gpt", []), ("shakespeare-char-gpt-fast", []),
                          ("shakespeare-char-gpt-gpu", ["--device", "cpu", "--set", "train.compile=false",
                                                        "--set", "data.seq_len=32", "--set", "data.stride=8", "--set", "model_args.dim=48"])]:  # fmt: skip
        code, _, err = cli(capsys, "train", recipe, "--data-file", text, "--out", tmp_path / recipe, *TINY, *extra)
        assert code == 0, err
    run = tmp_path / "shakespeare-char-gpt"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["test"]["loss"] == pytest.approx(metrics["val"]["loss"])
    texts = []
    for flags in ([], ["--no-cache"]):
        code, out, err = cli(capsys, "generate", run, "--prompt", "ROMEO:", "--length", 80, "--seed", 3, "--json",
                             "--top-k", 5, *flags)  # fmt: skip
        assert code == 0, err
        r = json.loads(out)
        assert r["tokens_per_s"] > 0 and r["text"].startswith("ROMEO:")
        texts.append(r["text"])
    assert texts[0] == texts[1]
    code, out, err = cli(capsys, "generate", run, "--prompt", "Zounds! " + "ROMEO: " * 20, "--length", 5)
    assert code == 0 and "longer than the model's context of 64 characters; kept its last 64" in err
    assert "lacks 'Z!'" in err  # 'Z' and '!' never occur in the training text


def test_text_attention_maps(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = tmp_path / "play.txt"
    text.write_text("To be, or not to be, that is the question.\n" * 80, encoding="utf-8")
    run = tmp_path / "run"
    assert cli(capsys, "train", "shakespeare-char-gpt", "--data-file", text, "--out", run, *TINY)[0] == 0
    code, out, err = cli(capsys, "attention", run, "To be, or not", "--json")
    r = json.loads(out)
    assert code == 0, err
    assert r["shape"] == [4, 4, 13, 13] and r["tokens"] == list("To be, or not")
    assert [Path(f).name for f in r["files"]] == ["layer1.png", "layer2.png", "layer3.png", "layer4.png"]
    for f in r["files"]:
        assert Image.open(f).size[0] > 200
    code, out, err = cli(capsys, "attention", run, "To be", "--layer", 2, "--head", 3, "--out", tmp_path / "maps")
    assert code == 0 and out.strip() == str(tmp_path / "maps" / "layer2_head3.png")
    code, out, err = cli(capsys, "attention", run, "Q" * 3 + "to be " * 20, "--json")
    assert code == 0 and json.loads(out)["shape"] == [4, 4, 64, 64]
    assert "lacks 'Q'" in err and "kept its last 64" in err


def test_poems_acrostic_and_tang_authors(poetry_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "poems"
    code, _, err = cli(capsys, "train", "tang-poems-char-gpt", "--data-dir", poetry_dir, "--out", run,
                       "--set", "data.seq_len=24", *TINY)  # fmt: skip
    assert code == 0, err
    code, out, err = cli(capsys, "generate", run, "--acrostic", "春花秋月", "--seed", 0)
    assert code == 0, err
    assert [line[0] for line in out.replace("，", "\n").replace("。", "\n").split()] == list("春花秋月")
    authors = tmp_path / "authors"
    code, out, err = cli(capsys, "train", "tang-authors-transformer", "--data-dir", poetry_dir, "--out", authors,
                         "--set", "data.seq_len=32", *TINY)  # fmt: skip
    assert code == 0, err
    test = json.loads((authors / "metrics.json").read_text())["test"]
    assert test["majority_baseline"] == pytest.approx(0.2)  # 4 test poems from each of the 5 poets
    code, out, err = cli(capsys, "eval", authors, "--data-dir", poetry_dir, "--json")
    assert code == 0 and json.loads(out)["class_names"] == POETS
    lstm = tmp_path / "authors-lstm"  # the recurrent family on the same task
    code, out, err = cli(
        capsys,
        "train",
        "tang-authors-lstm",
        "--data-dir",
        poetry_dir,
        "--out",
        lstm,
        "--set",
        "data.seq_len=32",
        "--set",
        "model_args.hidden=16",
        "--max-steps",
        "2",
        "--quiet",
    )
    assert code == 0, err
    assert json.loads((lstm / "metrics.json").read_text())["test"]["majority_baseline"] == pytest.approx(0.2)
    code, out, err = cli(capsys, "attention", authors, "床前明月光，疑是地上霜。" * 4, "--json", "--layer", 1)
    r = json.loads(out)
    assert code == 0, err
    assert (
        r["shape"] == [2, 4, 33, 33]
        and len(r["files"]) == 1
        and r["tokens"][0] == "[CLS]"
        and r["prediction"]["label"] in POETS
    )
    assert "kept its first 32" in err


def test_image_attention_maps_and_rollout(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    vit, rows = tmp_path / "vit", tmp_path / "rows"
    for recipe, run in [("fashion-mnist-vit", vit), ("fashion-mnist-transformer", rows)]:
        code, _, err = cli(capsys, "train", recipe, "--dataset", "mnist", "--data-dir", data_dir, "--out", run,
                           "--set", "data.val_size=50", *TINY)  # fmt: skip
        assert code == 0, err
    code, out, err = cli(capsys, "attention", vit, "test:3", "--data-dir", data_dir, "--json")
    r = json.loads(out)
    assert code == 0, err
    assert r["shape"] == [6, 4, 50, 50] and r["grid"] == [7, 7] and r["prediction"]["label"] in list("0123456789")
    assert [Path(f).name for f in r["files"]] == ["rollout.png"] + [f"layer{i}.png" for i in range(1, 7)]
    code, out, err = cli(capsys, "attention", rows, "test:0", "--data-dir", data_dir, "--json")
    assert code == 0 and json.loads(out)["grid"] == [28, 1]
    Image.new("L", (28, 28), 0).save(tmp_path / "ok.png")
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "big.png")
    code, out, err = cli(capsys, "attention", vit, tmp_path / "ok.png", "--head", 2, "--layer", 6)
    assert code == 0 and out.splitlines()[-1].endswith("layer6_head2.png")
    code, out, err = cli(capsys, "attention", vit, tmp_path / "big.png", "--resize")
    assert code == 0, err


BAD = [
    ("vit", ["{tmp}/big.png"], "is a 40x30 colour image, but this model takes 28x28 grayscale images: give one of "
                               "that size, or pass --resize"),
    ("vit", ["test:0", "--layer", "7"], "--layer 7 does not exist: this model has 6 layers, numbered 1 to 6."),
    ("vit", ["test:0", "--head", "0"], "--head 0 does not exist: this model has 4 heads, numbered 1 to 4."),
    ("vit", ["test:x"], "'test:x': write test:N with N a whole number"),
    ("vit", ["test:999"], "the test split of mnist holds images 0 to 199."),
    ("vit", ["{tmp}/missing.png"], "missing.png does not exist."),
    ("cnn", ["test:0"], "holds a simple-cnn model, which has no attention to show"),
    ("gpt", ["xyz"], "No character of the input is in the model's vocabulary."),
    ("gpt", ["ab", "--layer", "5"], "--layer 5 does not exist: this model has 4 layers, numbered 1 to 4."),
]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    text = root / "t.txt"
    text.write_text("abab, cdcd.\n" * 300, encoding="utf-8")
    out = {"vit": root / "vit", "cnn": root / "cnn", "gpt": root / "gpt"}
    for recipe, run, extra in [("fashion-mnist-vit", out["vit"], ["--dataset", "mnist", "--data-dir", data_dir]),
                               ("mnist-simple-cnn", out["cnn"], ["--data-dir", data_dir]),
                               ("shakespeare-char-gpt", out["gpt"], ["--data-file", text])]:  # fmt: skip
        assert main(["train", recipe, "--out", str(run), "--max-steps", "1", "--quiet", "--set", "data.val_size=50",
                     *map(str, extra)]) == 0  # fmt: skip
    return out


@pytest.mark.parametrize("model,args,message", BAD, ids=[f"{m}-{a[0][-8:]}-{i}" for i, (m, a, _) in enumerate(BAD)])
def test_bad_attention_input_is_one_sentence(runs: dict[str, Path], data_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture, model: str, args: list[str],
                                             message: str) -> None:  # fmt: skip
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "big.png")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, out, err = cli(capsys, "attention", runs[model], *argv, "--data-dir", data_dir)
    errors = [line for line in err.splitlines() if not line.startswith("warning: ")]  # checksum notes on test files
    assert code == 2 and len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0], err
