"""A user's own folder of images (data/folders.py): real training on tiny folders written here, the cache, the
user's split, resizing, grayscale against colour, predict / export / serve of a folder model, and every bad
folder as one `error:` line that writes nothing."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli
from PIL import Image

from nnzoo import api
from nnzoo.data import folders, load_dataset
from nnzoo.data.spec import DataSpec
from nnzoo.images import to_model_input

COLOURS = {"blue": (40, 40, 220), "green": (40, 200, 40), "red": (220, 40, 40)}  # sorted, as the classes are


def colour_image(
    colour: tuple[int, int, int], rng: np.random.Generator, size: tuple[int, int] = (12, 12)
) -> np.ndarray:
    """A coloured square at a random place on a dark, noisy background: (H, W, 3) uint8."""
    h, w = size
    a = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
    top, left = rng.integers(0, h // 3 + 1), rng.integers(0, w // 3 + 1)
    a[top : top + h // 2, left : left + w // 2] = colour
    return a


def write_colours(root: Path, n: int = 20, seed: int = 0, size: tuple[int, int] = (12, 12)) -> Path:
    """ROOT/CLASS/N.png: ``n`` images of each of three colours."""
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(colour_image(colour, rng, size)).save(root / name / f"{i:02d}.png")
    return root


def write_gray(root: Path, classes: tuple[str, ...] = ("bar", "dot"), n: int = 10, rgb: bool = False) -> Path:
    """ROOT/CLASS/N.png grayscale (mode L, or RGB with equal channels)."""
    rng = np.random.default_rng(1)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a = rng.integers(0, 30, (10, 10), dtype=np.uint8)
            a[2:8, 4 + k] = 255
            img = Image.fromarray(a)
            (img.convert("RGB") if rgb else img).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(folder, run): simple-cnn trained six epochs on 3 colours x 20 images of 12x12, through the CLI."""
    from nnzoo.cli import main

    root = tmp_path_factory.mktemp("colour-run")
    folder = write_colours(root / "colours")
    run = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        assert main(["train", "simple-cnn", "--data-dir", str(folder), "--epochs", "6", "--out", str(run),
                     "--quiet"]) == 0  # fmt: skip
    return folder, run


# ---- training, predict, export, serve -----------------------------------------------------------------------------
def test_a_colour_folder_trains_above_chance(colour_run: tuple[Path, Path]) -> None:
    folder, run = colour_run
    loaded = api.load_run(run)
    assert loaded.spec.name == "image-folder" and loaded.spec.input_shape == (3, 12, 12)
    assert loaded.spec.class_names == sorted(COLOURS) and loaded.spec.num_classes == 3
    assert loaded.spec.light_on_dark and len(loaded.spec.mean) == 3 and "pad_id" not in loaded.spec.extra
    metrics = api.evaluate(run, device="cpu")  # reads the folder again, from the path the run saved
    assert metrics["samples"] == 6 and metrics["accuracy"] > 0.6  # chance: one third


def test_predict_a_colour_file_as_the_folder_was_read(colour_run: tuple[Path, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    folder, run = colour_run
    rng = np.random.default_rng(7)
    files = []
    for name, colour in COLOURS.items():  # new images, and one twice the size (resized as training resized)
        files.append(tmp_path / f"{name}.png")
        Image.fromarray(colour_image(colour, rng)).save(files[-1])
    files.append(tmp_path / "big-red.png")
    Image.fromarray(colour_image(COLOURS["red"], rng, (24, 24))).save(files[-1])
    spec = api.load_run(run).spec
    own = folder / "red" / "00.png"
    x = to_model_input(Image.open(own), spec)
    assert x.shape == (3, 12, 12) and torch.equal(x, torch.from_numpy(np.array(Image.open(own))).permute(2, 0, 1))
    got = [r["label"] for r in api.predict(run, files, device="cpu")]
    assert sum(g == w for g, w in zip(got, [*COLOURS, "red"])) >= 3, got
    code, out, _ = run_cli(capsys, "predict", run, files[0])
    assert code == 0 and out.startswith(f"{files[0]}: ")


def test_export_a_folder_model(colour_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("onnxruntime")
    _, run = colour_run
    out = tmp_path / "model.onnx"
    code, stdout, err = run_cli(capsys, "export", run, "--out", out)
    assert code == 0, err
    assert out.is_file() and "max |difference|" in stdout


def test_serve_a_colour_folder_model(colour_run: tuple[Path, Path]) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    from nnzoo.serve import build_app

    folder, run = colour_run
    with TestClient(build_app([run], device="cpu")) as client:
        name = client.get("/v1/models").json()["models"][0]["name"]
        data = (folder / "green" / "03.png").read_bytes()
        r = client.post(f"/v1/models/{name}/predict", files={"file": ("g.png", data, "image/png")})
        assert r.status_code == 200, r.text
        want = api.predict(run, [folder / "green" / "03.png"], device="cpu")[0]
        assert r.json()["label"] == want["label"]
        r = client.post(
            f"/v1/models/{name}/predict", json={"pixels": np.asarray(Image.open(folder / "red" / "01.png")).tolist()}
        )
        assert r.status_code == 200, r.text


def test_a_grayscale_file_on_light_paper_is_inverted_for_a_dark_folder() -> None:
    spec = DataSpec("image-folder", input_shape=(1, 8, 8), num_classes=2, mean=(0.1,), std=(0.2,),
                    extra={"kind": "images", "image_folder": True})  # fmt: skip
    paper = np.full((16, 16), 250, dtype=np.uint8)
    paper[4:12, 6:10] = 0
    x = to_model_input(Image.fromarray(paper), spec)
    assert x.shape == (1, 8, 8) and x[0, 0, 0] < 20 and x[0, 4, 3:5].min() > 200
    colour = Image.fromarray(np.full((4, 4, 3), (200, 10, 10), dtype=np.uint8))  # a colour file, one channel
    assert to_model_input(colour, spec).shape == (1, 8, 8)


# ---- what the loader makes of a folder ----------------------------------------------------------------------------
def test_grayscale_colour_and_what_is_ignored(tmp_path: Path) -> None:
    gray = write_gray(tmp_path / "gray")
    (gray / ".DS_Store").write_bytes(b"\0")
    (gray / "bar" / "notes.txt").write_text("not an image")
    (gray / "bar" / ".hidden.png").write_bytes(b"junk")
    (gray / ".ipynb_checkpoints").mkdir()
    (gray / ".ipynb_checkpoints" / "x.png").write_bytes(b"junk")
    data = load_dataset("image-folder", data_dir=str(gray))
    assert data.spec.input_shape == (1, 10, 10) and data.spec.class_names == ["bar", "dot"]
    assert len(data.train) + len(data.val) + len(data.test) == 20
    assert "3 other files ignored" in data.source
    assert (
        load_dataset("image-folder", data_dir=str(write_gray(tmp_path / "rgb-gray", rgb=True))).spec.input_shape[0] == 1
    )
    mixed = write_gray(tmp_path / "mixed")
    Image.fromarray(np.full((10, 10, 3), (200, 10, 10), dtype=np.uint8)).save(mixed / "dot" / "red.png")
    data = load_dataset("image-folder", data_dir=str(mixed))
    assert data.spec.input_shape == (3, 10, 10)
    everything = torch.cat([data.train.x, data.val.x, data.test.x])
    assert all(torch.equal(img[0], img[1]) for img in everything if img[0, 0, 0] != 200)  # gray ones: R = G = B


def test_the_cache_is_read_then_rebuilt_when_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_gray(tmp_path / "f")
    first = load_dataset("image-folder", data_dir=str(folder))
    assert "decoded and cached" in first.source
    cached = list((tmp_path / "cache" / "nnzoo" / "image-folder").glob("*.pt"))
    assert len(cached) == 1

    def no_decoding(*args: object) -> list:
        raise AssertionError("decoded although the cache holds the folder")

    with monkeypatch.context() as mp:
        mp.setattr(folders, "decode_files", no_decoding)
        second = load_dataset("image-folder", data_dir=str(folder))
    assert "from the cache" in second.source and torch.equal(first.train.x, second.train.x)
    changed = folder / "dot" / "3.png"
    Image.fromarray(np.full((10, 10), 128, dtype=np.uint8)).save(changed)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    third = load_dataset("image-folder", data_dir=str(folder))
    assert "decoded and cached" in third.source
    now = list(cached[0].parent.glob("*.pt"))
    assert len(now) == 1 and now != cached  # the old version's cache is gone
    now[0].write_bytes(b"not a cache")  # a corrupt cache is decoded again, not an error
    assert "decoded and cached" in load_dataset("image-folder", data_dir=str(folder)).source


def test_a_pool_of_processes_decodes_as_this_process_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = folders.scan(write_colours(tmp_path / "f", n=10))
    alone = folders.decode_folder(listing, (8, 8))
    monkeypatch.setattr(folders, "POOL_FROM", 1)
    monkeypatch.setattr(folders, "CHUNK", 7)
    monkeypatch.setattr(folders, "_cores", lambda: 2)
    pooled = folders.decode_folder(listing, (8, 8))
    assert pooled.files == alone.files and torch.equal(pooled.x, alone.x)


def test_a_given_split_is_respected(tmp_path: Path) -> None:
    root = tmp_path / "split"
    for part, n in (("train", 12), ("valid", 3), ("test", 4)):
        write_colours(root / part, n=n, seed=len(part))
    data = load_dataset("image-folder", data_dir=str(root))
    assert (len(data.train), len(data.val), len(data.test)) == (36, 9, 12)
    assert "your train/ val/ test/ split" in data.source
    (root / "valid").rename(tmp_path / "away")  # no val/: 10 % of each class of train/ (data/splits.py's rule)
    data = load_dataset("image-folder", data_dir=str(root))
    assert (len(data.train), len(data.val), len(data.test)) == (33, 3, 12)
    assert torch.bincount(data.val.y).tolist() == [1, 1, 1]
    data = load_dataset("image-folder", data_dir=str(root), val_size=0.25)
    assert (len(data.train), len(data.val), len(data.test)) == (27, 9, 12)
    (root / "test").rename(tmp_path / "away-test")  # train/ alone: split as a plain folder is
    data = load_dataset("image-folder", data_dir=str(root))
    assert (len(data.train), len(data.val), len(data.test)) == (30, 3, 3)


def test_image_size_resizes_and_skip_bad_files_warns(tmp_path: Path) -> None:
    folder = write_colours(tmp_path / "f", n=10)
    Image.fromarray(colour_image(COLOURS["red"], np.random.default_rng(0), (30, 20))).save(folder / "red" / "big.png")
    (folder / "blue" / "broken.png").write_bytes((folder / "blue" / "00.png").read_bytes()[:60])
    Image.fromarray(colour_image(COLOURS["green"], np.random.default_rng(1), (40, 50))).save(folder / "green" / "p.jpg")
    with pytest.warns(UserWarning, match=r"skipped .*broken\.png"):
        data = load_dataset("image-folder", data_dir=str(folder), image_size="8x10", skip_bad_files=True)
    assert data.spec.input_shape == (3, 8, 10)
    assert len(data.train) + len(data.val) + len(data.test) == 32  # 33 files, one unreadable
    assert "1 unreadable skipped" in data.source


def test_every_image_model_trains_on_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = write_colours(tmp_path / "f", n=10)
    for model in ("mlp", "lenet5", "vit", "rnn", "conv-ae", "dcgan"):
        extra = ["--set", "model_args.judge=none"] if model == "dcgan" else []
        code, _, err = run_cli(capsys, "train", model, "--data-dir", folder, "--max-steps", "1", "--epochs", "1",
                               "--out", tmp_path / model, "--quiet", *extra)  # fmt: skip
        assert code == 0, (model, err)


# ---- bad folders: one sentence, nothing written --------------------------------------------------------------------
def _bad_folders(d: Path) -> None:
    (d / "empty").mkdir()
    (d / "a-file.png").write_bytes(b"\x89PNG")
    write_gray(d / "one-class", classes=("only",))
    write_gray(d / "one-image")
    for p in list((d / "one-image" / "dot").iterdir())[1:]:
        p.unlink()
    write_gray(d / "truncated")
    good = (d / "truncated" / "bar" / "0.png").read_bytes()
    (d / "truncated" / "bar" / "0.png").write_bytes(good[: len(good) // 2])
    write_gray(d / "sizes")
    Image.fromarray(np.zeros((14, 9), dtype=np.uint8)).save(d / "sizes" / "dot" / "odd.png")
    write_gray(d / "classes" / "train", classes=("bar", "dot", "ring"))
    write_gray(d / "classes" / "test", classes=("bar", "dot", "star"))
    write_gray(d / "beside" / "train")
    write_gray(d / "beside" / "cats", classes=("x",))
    write_gray(d / "no-train" / "val")
    write_gray(d / "no-train" / "test")


BAD = [
    (["--dataset", "image-folder"], "give --data-dir FOLDER with one sub-folder of images per class"),
    (["--data-dir", "{d}/nowhere"], "nowhere does not exist: give --data-dir FOLDER with one sub-folder"),
    (["--data-dir", "{d}/a-file.png"], "a-file.png is a file, not a folder"),
    (["--data-dir", "{d}/empty"], "holds no class sub-folders with images"),
    (["--data-dir", "{d}/one-class"], "holds one class (only): a classifier needs at least two"),
    (["--data-dir", "{d}/one-image"], "Class 'dot' has 1 image in {d}/one-image/dot; each class needs at least 10"),
    (["--data-dir", "{d}/truncated"], "truncated/bar/0.png is not an image nnzoo can read"),
    (["--data-dir", "{d}/truncated"], "or pass --skip-bad-files to skip it."),
    (["--data-dir", "{d}/sizes"], "differ in size: bar/0.png is 10x10 but dot/odd.png is 9x14; give --image-size HxW"),
    (["--data-dir", "{d}/classes"], "hold different classes: test/ lacks ring; train/ lacks star"),
    (["--data-dir", "{d}/beside"], "beside class folders (cats)"),
    (["--data-dir", "{d}/no-train"], "but no train/ folder"),
    (["--data-dir", "{d}/sizes", "--image-size", "3x3"], "--image-size must be HxW or N, each from 4 to 1024"),
    (["--dataset", "mnist", "--image-size", "28"], "--image-size (the size images of a folder are resized to) has no"),
]  # fmt: skip


@pytest.fixture(scope="module")
def bad_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-folders")
    _bad_folders(root)
    return root


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a)[:60] for a, _ in BAD])
def test_a_bad_folder_is_one_error_line(bad_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                        argv: list[str], message: str) -> None:  # fmt: skip
    before = sorted((str(p), p.stat().st_mtime_ns) for p in bad_root.rglob("*"))
    argv = [a.format(d=bad_root) for a in argv]
    code, _, err = run_cli(capsys, "train", "simple-cnn", *argv, "--out", tmp_path / "run", "--max-steps", "1")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code != 0 and "Traceback" not in err and len(errors) == 1, err
    assert message.format(d=bad_root) in errors[0], errors[0]
    assert not (tmp_path / "run").exists()
    assert sorted((str(p), p.stat().st_mtime_ns) for p in bad_root.rglob("*")) == before
