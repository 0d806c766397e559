"""`nnzoo serve` through FastAPI's TestClient: every endpoint, batching, and every bad request a client can send:
a 4xx with {"error": "one sentence"}, never a 500."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("fastapi", reason='nnzoo serve needs its extra: pip install "nnzoo[serve]"')
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")
with warnings.catch_warnings():  # Starlette 1.x would rather have httpx2; httpx still works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

import torch  # noqa: E402
from conftest import POEMS  # noqa: E402

from nnzoo import api  # noqa: E402
from nnzoo.cli import build_parser, main  # noqa: E402
from nnzoo.errors import UserError  # noqa: E402
from nnzoo.serve import build_app, choose_host, is_loopback, listen  # noqa: E402
from nnzoo.serve.limits import MAX_BODY_BYTES, MAX_IMAGE_SIDE  # noqa: E402
from nnzoo.serve.served import load_models  # noqa: E402


@pytest.fixture(scope="module")
def app(serve_runs: dict[str, Path]):  # noqa: ANN201
    return build_app([serve_runs[k] for k in ("digits", "poems", "cgan", "ae")], device="cpu")


@pytest.fixture(scope="module")
def client(app) -> TestClient:  # noqa: ANN001
    with TestClient(app) as c:
        yield c


def png_bytes(size: tuple[int, int] = (64, 64), draw: bool = True) -> bytes:
    """A '7' drawn dark on light, as a user's photo or scan would be."""
    img = Image.new("L", size, 255)
    if draw:
        ImageDraw.Draw(img).line([(12, 12), (52, 12), (26, 56)], fill=0, width=7)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# ---- what the server tells --------------------------------------------------------------------------------------
def test_health_models_docs_and_page(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["models"] == ["digits", "poems", "cgan", "ae"]
    assert list(health["batching"]) == ["digits"]  # classifiers batch; {"requests": ..., "forward_passes": ...}
    body = client.get("/v1/models").json()
    models = {m["name"]: m for m in body["models"]}
    d, p, g, a = models["digits"], models["poems"], models["cgan"], models["ae"]
    assert (d["kind"], d["family"], d["task"], d["input_shape"]) == ("classifier", "mlp", "classification", [1, 8, 8])
    assert d["classes"] == [str(i) for i in range(10)] and d["endpoints"] == ["/v1/models/digits/predict"]
    assert (p["kind"], p["family"], p["task"], p["acrostic"]) == ("text", "rnn", "language-model", True)
    assert p["vocab_size"] == len(set("".join(POEMS) + "\n")) + 1  # + the unknown mark
    assert (g["kind"], g["family"], g["task"], g["conditional"], g["can_sample"]) == (
        "images",
        "gan",
        "gan",
        True,
        True,
    )
    assert len(g["classes"]) == 10 and g["input_shape"] == [1, 8, 8]
    assert (a["family"], a["task"], a["can_sample"], a["conditional"]) == ("autoencoder", "autoencoder", False, False)
    assert body["limits"]["max_body_bytes"] == MAX_BODY_BYTES
    assert client.get("/v1/models/poems").json() == p
    assert "swagger" in client.get("/docs").text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/v1/models", "/v1/models/{name}/predict", "/v1/models/{name}/generate"} <= set(paths)
    assert {"multipart/form-data", "application/json"} <= set(
        paths["/v1/models/{name}/predict"]["post"]["requestBody"]["content"]
    )
    page = client.get("/")
    assert page.status_code == 200 and "Draw a digit · 画一个数字" in page.text and "藏头诗" in page.text
    assert "换一批" in page.text and client.get("/static/app.js").status_code == 200


def test_same_folder_names_are_told_apart(serve_runs: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    copy = shutil.copytree(serve_runs["digits"], tmp_path / "elsewhere" / "digits")
    models = load_models([serve_runs["digits"], copy, serve_runs["digits"]])
    assert list(models) == ["digits", "digits-2", "digits-3"]


# ---- predict ------------------------------------------------------------------------------------------------------
def test_predict_an_upload_as_nnzoo_predict_does(
    client: TestClient, serve_runs: dict[str, Path], tmp_path: Path
) -> None:
    data = png_bytes()
    r = client.post("/v1/models/digits/predict", files={"file": ("seven.png", data, "image/png")}, params={"top_k": 2})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["model"] == "digits" and len(got["top_k"]) == 2 and got["label"] == got["top_k"][0]["label"]
    assert sum(got["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    (tmp_path / "seven.png").write_bytes(data)
    want = api.predict(serve_runs["digits"], [tmp_path / "seven.png"], top_k=2, device="cpu")[0]
    assert got["index"] == want["index"]
    for k, v in want["probabilities"].items():
        assert got["probabilities"][k] == pytest.approx(v, abs=1e-5)


def test_predict_pixels_in_every_layout(client: TestClient) -> None:
    """0..255 and 0..1 give the same answer; (H, W, 1) and (1, H, W) are (H, W); other sizes are prepared."""
    rows = [[0] * 8 for _ in range(8)]
    for i in range(1, 7):
        rows[1][i] = rows[i][7 - i] = 255  # a 7
    answers = []
    for pixels in (rows, [[v / 255 for v in r] for r in rows], [[[v] for v in r] for r in rows], [rows]):
        r = client.post("/v1/models/digits/predict", json={"pixels": pixels})
        assert r.status_code == 200, r.text
        answers.append(r.json()["probabilities"])
    for a in answers[1:]:
        assert a == pytest.approx(answers[0], abs=1e-6)
    big = [[v for v in r for _ in range(4)] for r in rows for _ in range(4)]  # 32x32, prepared like a file
    rgb = [[[v, v, v] for v in r] for r in rows]
    for pixels in (big, rgb):
        r = client.post("/v1/models/digits/predict", json={"pixels": pixels}, params={"top_k": 10})
        assert r.status_code == 200 and len(r.json()["top_k"]) == 10


def test_a_canvas_is_prepared_as_a_file_whichever_its_colours(client: TestClient) -> None:
    """The page sends its canvas at its own size; white on black and black on white are the same drawing."""
    img = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(img).line([(70, 60), (210, 60), (120, 230)], fill=255, width=20)
    white_on_black = np.asarray(img).tolist()
    black_on_white = [[255 - v for v in row] for row in white_on_black]
    answers = []
    for pixels in (white_on_black, black_on_white):
        r = client.post("/v1/models/digits/predict", json={"pixels": pixels}, params={"show_input": "true"})
        assert r.status_code == 200, r.text
        answers.append(r.json())
    assert answers[0]["input"] == answers[1]["input"] and answers[0]["probabilities"] == answers[1]["probabilities"]
    seen = answers[0]["input"]
    assert len(seen) == 8 and seen[-1][0] < 50 and max(seen[0]) > 100  # the 8x8 the model took: a 7, white on black
    again = client.post("/v1/models/digits/predict", json={"pixels": seen}, params={"show_input": "true"}).json()
    assert again["input"] == seen  # in the model's format already: taken as it is
    assert "input" not in client.post("/v1/models/digits/predict", json={"pixels": seen}).json()


async def _concurrently(app, n: int) -> list:  # noqa: ANN001
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        pixels = [[[(x * y + k) % 256 for x in range(8)] for y in range(8)] for k in range(n)]
        return await asyncio.gather(*[c.post("/v1/models/digits/predict", json={"pixels": p}) for p in pixels])


def test_concurrent_predicts_share_one_forward_pass(serve_runs: dict[str, Path]) -> None:
    app = build_app([serve_runs["digits"]], device="cpu", max_batch=2, batch_wait_ms=300)
    served = app.state.models["digits"]
    model = served.run.model
    sizes: list[int] = []
    plain = model.forward
    model.forward = lambda x: (sizes.append(len(x)), plain(x))[1]  # count the forward passes and their batch sizes
    responses = asyncio.run(_concurrently(app, 2))
    assert [r.status_code for r in responses] == [200, 200] and sizes == [2]
    batched = [r.json()["probabilities"] for r in responses]
    sizes.clear()
    responses = asyncio.run(_concurrently(app, 3))  # max_batch 2: one pass of 2, then one of 1
    assert sizes == [2, 1] and [r.status_code for r in responses] == [200] * 3
    alone = [r.json()["probabilities"] for r in responses[:2]]
    assert [list(a) for a in alone] == [list(b) for b in batched]  # the same classes, in the same order
    for a, b in zip(alone, batched):  # pytest.approx takes no list of dicts: compare dict by dict, key by key
        for k in b:
            assert a[k] == pytest.approx(b[k], abs=1e-6), k
    assert served.batcher.forwards == 3 and served.batcher.served == 5
    with TestClient(app) as c:
        assert c.get("/health").json()["batching"] == {"digits": {"requests": 5, "forward_passes": 3}}


# ---- generate -----------------------------------------------------------------------------------------------------
def test_generate_text_prompt_seed_and_acrostic(client: TestClient) -> None:
    ask = {"prompt": "白日", "length": 12, "temperature": 0.8, "top_k": 5, "seed": 7}
    a, b = (client.post("/v1/models/poems/generate", json=ask).json() for _ in range(2))
    assert a["text"] == b["text"] and a["text"].startswith("白日") and len(a["generated"]) == 12 and a["seed"] == 7
    other = client.post("/v1/models/poems/generate", json={**ask, "seed": 8}).json()
    assert other["seed"] == 8 and "text" in other
    free = client.post("/v1/models/poems/generate", json={"length": 5}).json()
    assert isinstance(free["seed"], int) and len(free["generated"]) == 5  # a seed was chosen and told
    poem = client.post("/v1/models/poems/generate", json={"acrostic": "春夏秋冬", "seed": 3}).json()
    lines = re.findall(r"[^，。\n]+[，。]", poem["text"])
    assert [line[0] for line in lines] == list("春夏秋冬") and poem["acrostic"] == "春夏秋冬"


def test_generate_images_png_or_base64(client: TestClient) -> None:
    r = client.post("/v1/models/cgan/generate", json={"n": 4, "seed": 5, "label": 3})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.headers["x-seed"] == "5"
    img = Image.open(io.BytesIO(r.content))
    assert img.size == (22, 22)  # 2x2 tiles of 8x8, 2 grey pixels between and around them
    again = client.post("/v1/models/cgan/generate", json={"n": 4, "seed": 5, "label": 3})
    assert again.content == r.content  # the seed draws the same grid
    j = client.post("/v1/models/cgan/generate?format=json", json={"n": 9, "seed": 5, "label": 3}).json()
    assert (j["n"], j["seed"], j["label"], j["mime"]) == (9, 5, "3", "image/png")
    assert Image.open(io.BytesIO(base64.b64decode(j["png_base64"]))).size == (32, 32)
    plain = client.post("/v1/models/cgan/generate?format=json").json()  # no body: 16 images of any class
    assert plain["n"] == 16 and "label" not in plain


# ---- every bad request: 4xx, {"error": one sentence} -------------------------------------------------------------
def _streamed(total: int):  # noqa: ANN202
    for _ in range(0, total, 256 * 1024):
        yield b"x" * (256 * 1024)


def _multipart(data: bytes, field: str = "file") -> dict:
    return {"files": {field: ("x.png", data, "image/png")}}


PREDICT = "/v1/models/digits/predict"
GEN = "/v1/models/poems/generate"
IMG = "/v1/models/cgan/generate"
BAD = [
    ("unknown model", "post", "/v1/models/nope/predict", {"json": {"pixels": [[0]]}}, 404, "No model named 'nope'"),
    ("unknown model info", "get", "/v1/models/nope", {}, 404, "No model named 'nope'; this server has 'digits'"),
    ("unknown endpoint", "get", "/v2/things", {}, 404, "No such endpoint: GET /v2/things"),
    ("wrong method", "get", PREDICT, {}, 405, "does not take GET"),
    ("oversized upload", "post", PREDICT, _multipart(b"\x89PNG" + b"0" * MAX_BODY_BYTES), 413, "larger than the server"),
    ("oversized stream", "post", PREDICT, {"content": "stream", "headers": {"content-type": "application/json"}}, 413,
     "larger than the server takes (2 MB)"),
    ("non-image upload", "post", PREDICT, _multipart(b"%PDF-1.4 not a picture"), 422,
     "The uploaded file is not an image nnzoo can read"),
    ("empty upload", "post", PREDICT, _multipart(b""), 422, "The uploaded file is empty"),
    ("upload field name", "post", PREDICT, _multipart(png_bytes(), "image"), 422, "a multipart file field named 'file'"),
    ("huge image", "post", PREDICT, _multipart(png_bytes((MAX_IMAGE_SIDE + 1, 4), draw=False)), 422,
     f"at most {MAX_IMAGE_SIDE} on a side"),
    ("plain text body", "post", PREDICT, {"content": b"7", "headers": {"content-type": "text/plain"}}, 415,
     "multipart/form-data"),
    ("broken json", "post", PREDICT, {"content": b'{"pixels": [', "headers": {"content-type": "application/json"}},
     422, "not valid JSON"),
    ("no pixels", "post", PREDICT, {"json": {"image": [[0]]}}, 422, 'must be an object {"pixels"'),
    ("extra field", "post", PREDICT, {"json": {"pixels": [[0]], "top_k": 3}}, 422, "top_k goes in the query"),
    ("ragged pixels", "post", PREDICT, {"json": {"pixels": [[0, 1], [2]]}}, 422, "rectangular array of numbers"),
    ("string pixels", "post", PREDICT, {"json": {"pixels": [["a", "b"]]}}, 422, "rectangular array of numbers"),
    ("4-D pixels", "post", PREDICT, {"json": {"pixels": [[[[0]]]]}}, 422, "not an array of shape [1, 1, 1, 1]"),
    ("pixels range", "post", PREDICT, {"json": {"pixels": [[0, 300]]}}, 422, "0..1 or 0..255, not 0..300"),
    ("negative pixels", "post", PREDICT, {"json": {"pixels": [[-1, 3]]}}, 422, "not -1..3"),
    ("empty pixels", "post", PREDICT, {"json": {"pixels": [[]]}}, 422, "is empty"),
    ("wide pixels", "post", PREDICT, {"json": {"pixels": [[0] * (MAX_IMAGE_SIDE + 1)]}}, 422, "on a side"),
    ("top_k 0", "post", PREDICT + "?top_k=0", {"json": {"pixels": [[0]]}}, 422, "top_k: input should be greater than or equal to 1, not 0."),
    ("top_k 11", "post", PREDICT + "?top_k=11", {"json": {"pixels": [[0]]}}, 422, "top_k must be between 1 and 10"),
    ("predict on an LM", "post", "/v1/models/poems/predict", {"json": {"pixels": [[0]]}}, 400,
     "poems is a language model (rnn), which does not classify images: use POST /v1/models/poems/generate"),
    ("predict on a GAN", "post", "/v1/models/cgan/predict", _multipart(png_bytes()), 400, "cgan is a GAN (cgan), which does not"),
    ("generate on a classifier", "post", "/v1/models/digits/generate", {"json": {}}, 400,
     "which does not generate: use POST /v1/models/digits/predict"),
    ("temperature 0", "post", GEN, {"json": {"temperature": 0}}, 422, "temperature: input should be greater than 0"),
    ("temperature 50", "post", GEN, {"json": {"temperature": 50}}, 422, "less than or equal to 10"),
    ("length 0", "post", GEN, {"json": {"length": 0}}, 422, "length: input should be greater than or equal to 1"),
    ("length 5000", "post", GEN, {"json": {"length": 5000}}, 422, "length: input should be less than or equal to 1000"),
    ("length 2.5", "post", GEN, {"json": {"length": 2.5}}, 422, "length: input should be a valid integer"),
    ("long prompt", "post", GEN, {"json": {"prompt": "春" * 501}}, 422, "prompt: string should have at most 500 characters, not a text of 501 characters."),
    ("long acrostic", "post", GEN, {"json": {"acrostic": "春" * 17}}, 422, "acrostic: string should have at most 16"),
    ("acrostic and prompt", "post", GEN, {"json": {"acrostic": "春", "prompt": "白"}}, 422, "not both"),
    ("acrostic unknown", "post", GEN, {"json": {"acrostic": "春Ω"}}, 422, "vocabulary lacks 'Ω'"),
    ("top_k text 0", "post", GEN, {"json": {"top_k": 0}}, 422, "top_k: input should be greater than or equal to 1"),
    ("seed -1", "post", GEN, {"json": {"seed": -1}}, 422, "seed: input should be greater than or equal to 0"),
    ("typo field", "post", GEN, {"json": {"temprature": 1}}, 422, "Unknown field 'temprature'; valid fields are"),
    ("label on an LM", "post", GEN, {"json": {"label": 3}}, 422, "label is not for poems, which writes text"),
    ("png from an LM", "post", GEN + "?format=png", {"json": {}}, 422, "format=png is for image models"),
    ("body not an object", "post", GEN, {"json": [1, 2]}, 422, "The body must be a JSON object of options"),
    ("n 0", "post", IMG, {"json": {"n": 0}}, 422, "n: input should be greater than or equal to 1"),
    ("n 100", "post", IMG, {"json": {"n": 100}}, 422, "n: input should be less than or equal to 64"),
    ("label 10", "post", IMG, {"json": {"label": 10}}, 422, "label must be a class number from 0 to 9, not 10"),
    ("label -1", "post", IMG, {"json": {"label": -1}}, 422, "label: input should be greater than or equal to 0"),
    ("prompt to a GAN", "post", IMG, {"json": {"prompt": "hi", "length": 3}}, 422,
     "prompt and length are not for cgan, which draws images"),
    ("format gif", "post", IMG + "?format=gif", {"json": {}}, 422, "format: input should be 'png' or 'json'"),
    ("sample a plain AE", "post", "/v1/models/ae/generate", {"json": {}}, 400, "plain autoencoder (ae)"),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_requests_are_one_sentence_4xx(client: TestClient, case: tuple) -> None:
    _, method, path, kwargs, status, message = case
    if kwargs.get("content") == "stream":  # no Content-Length: refused as the bytes arrive
        kwargs = {**kwargs, "content": _streamed(MAX_BODY_BYTES + 512 * 1024)}
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["error"] and message in body["error"], body
    assert body["error"].endswith(".") and "\n" not in body["error"] and "Traceback" not in body["error"]


def test_the_server_still_answers_after_bad_requests(client: TestClient) -> None:
    r = client.post(PREDICT, json={"pixels": [[0, 255], [255, 0]]})
    assert r.status_code == 200 and r.json()["model"] == "digits"


# ---- where it listens, and what it needs ----------------------------------------------------------------------------
@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True),
                                          ("::1", True), ("[::1]", True), ("0.0.0.0", False), ("::", False),
                                          ("192.168.1.20", False), ("example.org", False)])  # fmt: skip
def test_loopback_unless_host_says_otherwise(host: str, loopback: bool) -> None:
    assert choose_host(None) == ("127.0.0.1", None)  # no --host: loopback only
    assert build_parser().parse_args(["serve", "runs/x"]).host is None
    address, warning = choose_host(host)
    assert address == host and is_loopback(host) == loopback
    assert (warning is None) == loopback
    if warning:
        assert (
            warning.startswith(f"listening on {host}, beyond this machine's loopback")
            and "no authentication" in warning
        )


def test_serve_command_binds_loopback_and_warns_beyond(serve_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    import uvicorn

    import nnzoo.serve as serve

    bound: list[socket.socket] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: bound.extend(sockets))
    assert main(["serve", str(serve_runs["digits"]), "--port", "0", "--quiet"]) == 0
    out, err = capsys.readouterr()
    host, port = bound[0].getsockname()[:2]
    bound[0].close()
    assert host == "127.0.0.1" and port > 0 and "warning" not in err
    assert out.startswith(f"nnzoo serve: 1 model(s) (digits) at http://127.0.0.1:{port}/")
    asked: list[tuple[str, int]] = []
    monkeypatch.setattr(serve, "listen", lambda h, p: asked.append((h, p)) or socket.socket())  # no real 0.0.0.0
    assert main(["serve", str(serve_runs["digits"]), "--host", "0.0.0.0", "--port", "8123"]) == 0
    assert asked == [("0.0.0.0", 8123)] and "warning: listening on 0.0.0.0, beyond" in capsys.readouterr().err


def test_serve_command_errors_are_one_sentence(serve_runs: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    taken = listen("127.0.0.1", 0)
    taken.listen()
    port = taken.getsockname()[1]
    with pytest.raises(UserError, match=rf"Cannot listen on 127.0.0.1:{port} \(.+\)\."):
        listen("127.0.0.1", port)
    taken.close()
    for argv, message in [(["--port", "70000"], "--port must be between 0 and 65535, not 70000."),
                          (["--max-batch", "0"], "--max-batch must be at least 1, not 0."),
                          (["--host", " "], "--host must name an address, such as 127.0.0.1 or 0.0.0.0.")]:  # fmt: skip
        assert main(["serve", str(serve_runs["digits"]), *argv]) == 2
        assert capsys.readouterr().err == f"error: {message}\n"
    assert main(["serve", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is not a folder" in err and err.count("\n") == 1


def test_core_works_without_fastapi_and_serve_names_the_extra(serve_runs: dict[str, Path]) -> None:
    code = ("import sys\n"
            "sys.modules['fastapi'] = sys.modules['uvicorn'] = None  # as if not installed\n"
            "import nnzoo, nnzoo.cli, nnzoo.serve\n"
            f"sys.exit(nnzoo.cli.main(['serve', {str(serve_runs['digits'])!r}]))\n")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert (
        r.stderr
        == 'error: nnzoo serve needs fastapi and uvicorn, which are not installed: pip install "nnzoo[serve]".\n'
    )
    assert r.stdout == ""


def test_table_models_take_a_row(table_runs: dict[str, Path]) -> None:
    """A table classifier and a regressor: JSON {"row": {...}} (null for a gap) -> the answer `nnzoo predict` gives
    for the same row; a missing column, an unknown one or a malformed body -> 4xx with one sentence."""
    import pandas as pd

    app = build_app([table_runs["penguins"], table_runs["diabetes"]], device="cpu")
    row = {"island": "Dream", "bill_length_mm": 45.0, "bill_depth_mm": 17.0, "flipper_length_mm": 200,
           "body_mass_g": None, "sex": None, "year": 2008}  # fmt: skip
    with TestClient(app) as c:
        info = {m["name"]: m for m in c.get("/v1/models").json()["models"]}
        assert info["penguins"]["kind"] == info["diabetes"]["kind"] == "table"
        assert {"name": "island", "type": "category", "categories": ["Biscoe", "Dream", "Torgersen"]} in \
            info["penguins"]["columns"]  # fmt: skip
        body = c.post("/v1/models/penguins/predict?top_k=3", json={"row": row}).json()
        assert body["label"] in ("Adelie", "Chinstrap", "Gentoo") and len(body["top_k"]) == 3
        loaded = api.load_run(table_runs["penguins"])
        from nnzoo.data.tables import encode_rows

        with torch.no_grad():
            expected = loaded.model.eval()(encode_rows(loaded.spec, pd.DataFrame([row]), "row")).softmax(1)[0]
        assert abs(body["probability"] - float(expected.max())) < 2e-2
        patient = {"age": 50, "sex": 1, "bmi": 30.0, "bp": 90, "s1": 200, "s2": 120, "s3": 45, "s4": 4, "s5": 4.8,
                   "s6": 90}  # fmt: skip
        value = c.post("/v1/models/diabetes/predict", json={"row": patient}).json()
        assert value["target"] == "target" and np.isfinite(value["value"])
        for bad, words in [({"row": {**row, "wings": 2}}, "never saw the column 'wings'"),
                           ({"row": {"island": "Dream"}}, "lacks the columns"),
                           ({"rows": [row]}, 'takes JSON {"row"'), ({"row": {"island": [1]}}, "numbers, text, or null"),
                           ({"row": {**row, "bill_length_mm": "long"}}, "holds 'long'")]:  # fmt: skip
            r = c.post("/v1/models/penguins/predict", json=bad)
            assert 400 <= r.status_code < 500 and words in r.json()["error"], (bad, r.json())


def test_a_text_classifier_takes_text(serve_runs: dict[str, Path], authors_run: Path) -> None:
    """tang-authors: who wrote this poem? JSON {"text": ...} -> the poets with probabilities; bad bodies -> 4xx."""
    from nnzoo.data.tang_authors import POETS

    app = build_app([authors_run, serve_runs["digits"]], device="cpu")
    with TestClient(app) as c:
        info = {m["name"]: m for m in c.get("/v1/models").json()["models"]}["tang-authors-lstm"]
        assert info["kind"] == "text-classifier" and info["classes"] == POETS and info["seq_len"] == 32
        poem = "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。" * 2 + "龘"
        r = c.post("/v1/models/tang-authors-lstm/predict?top_k=2", json={"text": poem})
        body = r.json()
        assert r.status_code == 200 and body["label"] in POETS and len(body["top_k"]) == 2
        assert abs(sum(body["probabilities"].values()) - 1) < 1e-4
        assert any("first 32 characters" in n for n in body["notes"])
        # The same answer as the model on the text encoded by hand (the dataset's encoding).
        loaded = api.load_run(authors_run)
        vocab, pad = loaded.spec.extra["vocab"], loaded.spec.extra["pad_id"]
        ids = torch.full((1, 32), pad, dtype=torch.long)
        ids[0] = torch.tensor([vocab.index(ch) if ch in vocab else 0 for ch in poem[:32]])
        with torch.no_grad():
            expected = loaded.model.eval()(ids).float().softmax(1)[0]
        assert abs(body["probability"] - float(expected.max())) < 2e-2  # the server runs under bf16 autocast
        for bad, status, words in [({"text": ""}, 422, "some text in it"), ({"pixels": [[0]]}, 422, "some text"),
                                   ({"text": "春", "lang": "zh"}, 422, "Unknown field 'lang'"),
                                   ({"text": "春" * 20_001}, 422, "the limit is 20,000")]:  # fmt: skip
            r = c.post("/v1/models/tang-authors-lstm/predict", json=bad)
            assert r.status_code == status and words in r.json()["error"], (bad, r.json())
        r = c.post("/v1/models/tang-authors-lstm/generate", json={"prompt": "床"})
        assert r.status_code == 400 and "does not generate" in r.json()["error"]
