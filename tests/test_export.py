from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nnzoo import api
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
    from nnzoo import load_dataset

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
