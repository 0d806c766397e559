"""`nnzoo export` for every kind of model: one of each, trained two steps on tiny data the tests write, exported and
run through onnxruntime (or TorchScript) as a runtime would, at a batch size never traced."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nnzoo import api, load_dataset
from nnzoo.cli import main
from nnzoo.errors import UserError

onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "run"
    api.train("digits-mlp", out=out, overrides={"epochs": 2}, progress=False)
    return out


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch_with_a_dynamic_batch(run: Path, fmt: str) -> None:
    r = api.export(run, fmt)
    assert Path(r["path"]).is_file() and r["max_abs_diff"] <= 1e-4 and r["checked_batch"] == 5
    # What a runtime would do: raw pixels / 255 in, logits out, at a batch size never traced.
    loaded = api.load_run(run)
    test = load_dataset(loaded.config.data).test
    pixels = test.x[:7].float() / 255
    spec = loaded.spec
    expected = loaded.model((pixels - spec.mean[0]) / spec.std[0])
    if fmt == "onnx":
        session = onnxruntime.InferenceSession(r["path"], providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(["logits"], {"pixels": pixels.numpy()})[0])
    else:
        got = torch.jit.load(r["path"])(pixels)
    assert got.shape == (7, 10)
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), atol=1e-4)
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_export_bad_format(run: Path) -> None:
    with pytest.raises(UserError, match="--format must be one of onnx, torchscript"):
        api.export(run, "tflite")


# ---- every other kind of model ---------------------------------------------------------------------------------
QUICK = {"max_steps": 2}
ONE_THREAD = [("train.num_threads", 1), ("data.val_size", 50)]


def _session(path: str):  # noqa: ANN202
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])


def _meta(r: dict) -> dict:
    return json.loads(Path(r["meta"]).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def text_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("text") / "play.txt"
    path.write_text("ROMEO:\nBut soft, what light through yonder window breaks?\n" * 30, encoding="utf-8")
    return path


def test_recurrent_classifier_reads_pixels(data_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "lstm"
    api.train("fashion-mnist-lstm", out=run, overrides={"dataset": "mnist", "data_dir": str(data_dir), **QUICK},
              sets=[*ONE_THREAD, ("model_args.hidden", 16)], progress=False)  # fmt: skip
    r = api.export(run, "onnx")
    assert r["inputs"] == ["pixels"] and r["checked_batch"] == 5 and r["max_abs_diff"] <= 1e-4
    loaded = api.load_run(run)
    pixels = load_dataset(loaded.config.data).test.x[:7].float() / 255  # a batch size never traced
    got = _session(r["path"]).run(None, {"pixels": pixels.numpy()})[0]
    expected = loaded.model((pixels - loaded.spec.mean[0]) / loaded.spec.std[0])  # the graph normalises itself
    np.testing.assert_allclose(got, expected.detach().numpy(), atol=1e-4)


@pytest.mark.parametrize(
    "recipe,width",
    [("tang-authors-transformer", ("model_args.dim", 32)), ("tang-authors-lstm", ("model_args.hidden", 16))],
)  # packed -> masked twin
def test_text_classifiers_find_the_padding_themselves(poetry_dir: Path, tmp_path: Path, recipe: str,
                                                      width: tuple) -> None:  # fmt: skip
    L = 16  # the LSTM's masked twin unrolls over L steps, and the ONNX optimizer's time grows fast with the graph
    run = tmp_path / "authors"
    api.train(recipe, out=run, overrides={"data_dir": str(poetry_dir), **QUICK},
              sets=[width, ("data.seq_len", L), ("train.num_threads", 1)], progress=False)  # fmt: skip
    r = api.export(run, "onnx")
    assert r["inputs"] == ["ids"] and r["max_abs_diff"] <= 1e-4
    meta = _meta(r)
    vocab, pad = meta["vocab"], meta["pad_id"]
    assert meta["seq_len"] == L and pad == len(vocab) and meta["inputs"][0]["shape"] == ["batch", L]
    texts = ["床前明月光，疑是地上霜。", "春", "國破山河在，城春草木深。" * 3]  # short, shortest, cut at L
    ids = torch.full((3, L), pad, dtype=torch.long)
    for row, text in zip(ids, texts):
        enc = [vocab.index(c) if c in vocab else 0 for c in text[:L]]
        row[: len(enc)] = torch.tensor(enc)
    got = torch.from_numpy(_session(r["path"]).run(None, {"ids": ids.numpy()})[0])
    model = api.load_run(run).model
    np.testing.assert_allclose(got.numpy(), model(ids).detach().numpy(), atol=1e-4)
    # Padding is invisible: each padded row gives what PyTorch gives for the text alone, unpadded.
    for i, text in enumerate(texts):
        n = min(len(text), L)
        np.testing.assert_allclose(got[i].numpy(), model(ids[i : i + 1, :n])[0].detach().numpy(), atol=1e-4)


def _greedy_through_runtime(session, prompt: torch.Tensor, state: list[np.ndarray], steps: int,
                            one_token: bool) -> torch.Tensor:  # fmt: skip
    """What a runtime does with the exported step: prompt, then greedy tokens, feeding its own state back. Returns
    the logits of every position (B, T, V)."""
    names = [i.name for i in session.get_inputs()]
    ids, logits = prompt, []
    for _ in range(steps + 1):
        for piece in ids.split(1, dim=1) if one_token else (ids,):
            out, *state = session.run(None, dict(zip(names, [piece.numpy(), *state])))
            logits.append(torch.from_numpy(out))
        ids = logits[-1][:, -1].argmax(-1, keepdim=True)
    return torch.cat(logits, dim=1)


@pytest.mark.parametrize("recipe,sets,one_token", [
    ("shakespeare-char-lstm", [("model_args.hidden", 32), ("model_args.layers", 2)], True),
    ("shakespeare-char-gpt", [("model_args.dim", 32), ("model_args.n_layer", 2)], False),
], ids=["char-lstm", "gpt"])  # fmt: skip
def test_language_model_step_generates_like_pytorch(text_file: Path, tmp_path: Path, recipe: str, sets: list,
                                                    one_token: bool) -> None:  # fmt: skip
    run = tmp_path / "lm"
    api.train(recipe, out=run, overrides={"data_file": str(text_file), **QUICK},
              sets=[("data.seq_len", 24), ("train.num_threads", 1), *sets], progress=False)  # fmt: skip
    loaded = api.load_run(run)
    r = api.export(run, "onnx")
    assert r["max_abs_diff"] <= 1e-4 and "fed back" in r["checked"]
    meta = _meta(r)
    assert meta["vocab"] == loaded.spec.extra["vocab"]  # itos, so a runtime can decode
    session = _session(r["path"])
    if one_token:
        assert [p["name"] for p in meta["inputs"]] == ["ids", "h", "c"] and meta["inputs"][1]["shape"] == [
            2,
            "batch",
            32,
        ]
    else:
        assert [p["name"] for p in meta["inputs"]] == ["ids", "past"] and meta["axes"]["past"] == [0, 23]
        assert [i.shape for i in session.get_inputs()] == [["batch", "tokens"], [2, 2, "batch", 4, "past", 8]]
    # The empty state, as a runtime makes it from FILE.json: batch 4 (traced: 2), an empty cache.
    state = [np.zeros([{"batch": 4, "past": 0}.get(d, d) for d in port["shape"]], np.float32)
             for port in meta["inputs"][1:]]  # fmt: skip
    vocab = meta["vocab"]
    prompt = torch.tensor([[vocab.index(c) for c in w] for w in ["ROMEO", "light", "soft,", "But s"]])
    logits = _greedy_through_runtime(
        session, prompt, state, steps=10, one_token=one_token
    )  # (4, 15, V): 5 prompt tokens and 10 more
    # The reference: PyTorch reading the whole text at once, no state carried at all.
    text = torch.cat([prompt, logits[:, 4:-1].argmax(-1)], dim=1)
    with torch.no_grad():
        expected = loaded.model(text)
    np.testing.assert_allclose(logits.numpy(), expected.numpy(), atol=1e-4)
    if not one_token:  # TorchScript takes the same step
        assert api.export(run, "torchscript")["max_abs_diff"] <= 1e-4


def test_conditional_gan_generator_takes_noise_and_labels(data_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "cgan"
    api.train("mnist-cgan", out=run, overrides={"data_dir": str(data_dir), **QUICK}, progress=False,
              sets=[*ONE_THREAD, ("model_args.judge", "none"), ("model_args.latent", 16), ("model_args.g_width", 8),
                    ("model_args.d_width", 8)])  # fmt: skip
    r = api.export(run, "onnx")
    assert r["inputs"] == ["noise", "labels"] and r["outputs"] == ["images"] and r["max_abs_diff"] <= 1e-4
    model = api.load_run(run).model
    noise, labels = torch.randn(7, 16), torch.tensor([0, 1, 2, 3, 7, 8, 9])
    got = _session(r["path"]).run(None, {"noise": noise.numpy(), "labels": labels.numpy()})[0]
    assert got.shape == (7, 1, 28, 28) and got.min() >= 0 and got.max() <= 1
    np.testing.assert_allclose(got, ((model(noise, labels) + 1) / 2).detach().numpy(), atol=1e-4)
    other = _session(r["path"]).run(None, {"noise": noise.numpy(), "labels": (9 - labels).numpy()})[0]
    np.testing.assert_allclose(other, ((model(noise, 9 - labels) + 1) / 2).detach().numpy(), atol=1e-4)
    assert np.abs(other - got).max() > 1e-5  # the label reaches the image (G barely trained: small, but far above 1e-7)


def test_vae_exports_its_decoder(data_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "vae"
    api.train("mnist-vae", out=run, overrides={"data_dir": str(data_dir), **QUICK}, progress=False,
              sets=[*ONE_THREAD, ("model_args.hidden", [32]), ("model_args.latent", 4)])  # fmt: skip
    r = api.export(run, "onnx")
    assert r["inputs"] == ["latent"] and r["max_abs_diff"] <= 1e-4 and _meta(r)["latent"] == 4
    z = torch.randn(3, 4)
    got = _session(r["path"]).run(None, {"latent": z.numpy()})[0]
    np.testing.assert_allclose(got, api.load_run(run).model.decode(z).detach().numpy(), atol=1e-4)


def test_bad_export_input_is_one_sentence(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for argv, message in [([str(run), "--format", "tflite"], "--format must be one of onnx, torchscript"),
                          ([str(tmp_path)], "holds no checkpoint"),
                          ([str(tmp_path / "nowhere")], "is not a folder")]:  # fmt: skip
        assert main(["export", *argv]) != 0
        err = capsys.readouterr().err
        assert message in err and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_forecaster_takes_and_gives_the_series_units(tmp_path: Path) -> None:
    from test_forecast import seasonal_csv

    run = tmp_path / "sales"
    api.train("co2-lstm", out=run, progress=False, overrides={"dataset": "csv-file", "column": "sales", **QUICK,
              "data_file": str(seasonal_csv(tmp_path / "sales.csv"))},
              sets=[("data.seq_len", 12), ("model_args.hidden", 8), ("train.num_threads", 1)])  # fmt: skip
    r = api.export(run, "onnx")
    assert r["inputs"] == ["values"] and r["outputs"] == ["forecast"] and r["max_abs_diff"] <= 1e-4
    loaded = api.load_run(run)
    spec = loaded.spec
    values = (spec.extra["mean"] + spec.extra["std"] * torch.randn(3, 12)).float()  # in the series' units
    got = _session(r["path"]).run(None, {"values": values.numpy()})[0]
    z = (values - spec.extra["mean"]) / spec.extra["std"]
    expected = loaded.model(z.unsqueeze(-1)) * spec.extra["std"] + spec.extra["mean"]
    assert got.shape == (3, 12)
    np.testing.assert_allclose(got, expected.detach().numpy(), rtol=1e-5, atol=1e-4)
