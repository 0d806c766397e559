"""The HTTP face of `nnzoo serve`: FastAPI routes over the served models (served.py), the web page (static/), and
one rule for errors: a request the server will not do is a 4xx with ``{"error": "one clear sentence"}``.

Endpoints (OpenAPI docs at /docs):
  GET  /                              the web page: draw a digit, who wrote this poem, write a poem, a gallery
  GET  /health                        {"status": "ok", "models": [names], "batching": requests and passes}
  GET  /v1/models                     every model (name, family, task, classes or vocabulary size, input shape)
                                      and the server's limits
  POST /v1/models/{name}/predict      an image as a multipart file field ``file``, or JSON {"pixels": [[...]]}
                                      (a text classifier: JSON {"text": "..."}; a table model: JSON
                                      {"row": {"column": value}}, null for a gap);
                                      ?top_k=3 -> the label and the top-k classes with probabilities;
                                      ?show_input=true adds the prepared image the model saw
  POST /v1/models/{name}/generate     JSON options -> text (language models), or a PNG grid (GAN / VAE); with
                                      ?format=json the grid comes base64-encoded in JSON, with its seed
"""

from __future__ import annotations

import asyncio
import base64
import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from ..errors import UserError
from . import inputs, limits
from .limits import Invalid, NotFound, ServeError, UnsupportedMedia
from .served import Served

STATIC = Path(__file__).parent / "static"


class GenerateRequest(BaseModel):
    """Options of `nnzoo generate`: prompt ... length for language models, label / n for GANs and VAEs; seed for
    both (the answer says which seed drew it, so any answer can be drawn again)."""

    model_config = ConfigDict(extra="forbid")
    prompt: str | None = Field(None, max_length=limits.MAX_PROMPT_CHARS, description="text to continue")
    acrostic: str | None = Field(None, min_length=1, max_length=limits.MAX_ACROSTIC_CHARS,
                                 description="a poem whose lines start with these characters (藏头诗; poem models)")  # fmt: skip
    temperature: float | None = Field(None, gt=0, le=limits.MAX_TEMPERATURE, description="default 1.0")
    top_k: int | None = Field(None, ge=1, description="sample from the K most likely next characters only")
    length: int | None = Field(None, ge=1, le=limits.MAX_LENGTH, description="characters to write (default 200)")
    seed: int | None = Field(None, ge=0, le=limits.MAX_SEED)
    label: int | None = Field(None, ge=0, description="class to draw (class-conditional GANs)")
    n: int | None = Field(None, ge=1, le=limits.MAX_IMAGES, description="images in the grid (default 16)")


PREDICT_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    "application/json": {"schema": {"type": "object", "required": ["pixels"], "properties": {"pixels": {
        "type": "array", "items": {},
        "description": "(H, W), (H, W, C) or (C, H, W) numbers in 0..1 or 0..255; an array of the model's input "
                       "size is used as it is, any other is prepared as an uploaded image"}}}}}}}  # fmt: skip


def create_app(models: dict[str, Served], body_timeout: float = limits.BODY_TIMEOUT_S) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        yield
        for m in models.values():
            await m.close()

    app = FastAPI(title="nnzoo serve", version="1", lifespan=lifespan,
                  description="Classify images and generate text or images with trained nnzoo runs.")  # fmt: skip
    app.state.models = models
    app.add_middleware(LimitBody, max_bytes=limits.MAX_BODY_BYTES)
    app.add_middleware(BodyDeadline, seconds=body_timeout)
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def get(name: str) -> Served:
        if name not in models:
            raise NotFound(f"No model named {name!r}; this server has {', '.join(map(repr, models))}.")
        return models[name]

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Alive, which models, and for classifiers how many predict requests shared how many forward passes."""
        batching = {n: {"requests": m.batcher.served, "forward_passes": m.batcher.forwards}
                    for n, m in models.items() if hasattr(m, "batcher")}  # fmt: skip
        return {"status": "ok", "models": list(models), "batching": batching}

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"models": [m.info() for m in models.values()], "limits": limits.as_dict()}

    @app.get("/v1/models/{name}")
    async def model_info(name: str) -> dict[str, Any]:
        return get(name).info()

    @app.post("/v1/models/{name}/predict", openapi_extra=PREDICT_BODY)
    async def predict(name: str, request: Request, top_k: int = Query(3, ge=1),
                      show_input: bool = Query(False, description="images: answer with the model's input too, "
                                               "as `input` (what the web page shows)")) -> dict[str, Any]:  # fmt: skip
        """Class probabilities for one image (a multipart file field `file`, or JSON {"pixels": [[...]]}), for
        one text for a text classifier (JSON {"text": "..."}), or the answer for one row of a table model (JSON
        {"row": {"column": value}}: class probabilities, or the predicted value of a regressor)."""
        served = get(name)
        if served.kind == "table":
            return await served.predict_row(await _row(request), top_k)  # type: ignore[attr-defined]
        if served.kind == "text-classifier":
            ids, notes = served.encode(await _text(request))  # type: ignore[attr-defined]
            return {**await served.predict(ids, top_k), "notes": notes}
        if served.kind != "classifier":
            return await served.predict(None, top_k)  # type: ignore[arg-type]  (says which endpoint to use)
        spec = served.run.spec
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            x = await asyncio.to_thread(inputs.from_upload, await _upload(request), spec)
        elif kind == "application/json":
            x = await asyncio.to_thread(inputs.from_pixels, await _pixels(request), spec)
        else:
            raise UnsupportedMedia("Send the image as multipart/form-data (a file field named 'file') or as JSON "
                                   f'{{"pixels": [[...]]}}, not {kind or "a body without a content type"}.')  # fmt: skip
        answer = await served.predict(x, top_k)
        if show_input:  # (H, W) for grayscale, (H, W, C) for colour: a pixels array the model takes as it is
            answer["input"] = (x[0] if x.shape[0] == 1 else x.permute(1, 2, 0)).tolist()
        return answer

    @app.post(
        "/v1/models/{name}/generate",
        responses={
            200: {
                "content": {"image/png": {}},
                "description": "JSON for language models; a PNG grid for GANs and VAEs (JSON with base64 under ?format=json)",
            }
        },
    )
    async def generate(name: str, options: GenerateRequest | None = None,
                       format: Literal["png", "json"] | None = Query(None, description="images: png (default) "
                                                                     "or json (base64)")) -> Any:  # fmt: skip
        """Text from a language model, or a grid of new images from a GAN or VAE."""
        served = get(name)
        if served.kind == "text" and format == "png":
            raise Invalid(f"format=png is for image models; {name} writes text, answered as JSON.")
        result = await served.generate((options or GenerateRequest()).model_dump())
        if "png" not in result:
            return result
        png = result.pop("png")
        if format == "json":
            return {**result, "mime": "image/png", "png_base64": base64.b64encode(png).decode("ascii")}
        headers = {"X-Seed": str(result["seed"]), "X-Images": str(result["n"])}
        return Response(png, media_type="image/png", headers=headers)

    return app


async def _upload(request: Request) -> bytes:
    form = await request.form(max_files=1, max_fields=16)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise Invalid("Send the image as a multipart file field named 'file'.")
    return await upload.read()


async def _text(request: Request) -> str:
    try:
        payload = json.loads(await request.body())
    except (ValueError, RecursionError):
        raise Invalid('Send the text as JSON {"text": "..."}.') from None
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise Invalid('A text classifier takes JSON {"text": "..."} with some text in it.')
    extra = sorted(set(payload) - {"text"})
    if extra:
        raise Invalid(f"Unknown field {extra[0]!r}: a JSON predict body for a text holds only text.")
    if len(text) > limits.MAX_TEXT_CHARS:
        raise Invalid(f"The text has {len(text):,} characters; the limit is {limits.MAX_TEXT_CHARS:,}.")
    return text.strip()


async def _row(request: Request) -> dict[str, Any]:
    try:
        payload = json.loads(await request.body())
    except (ValueError, RecursionError):
        raise Invalid('Send the row as JSON {"row": {"column": value, ...}}.') from None
    row = payload.get("row") if isinstance(payload, dict) else None
    if not isinstance(row, dict) or not all(v is None or isinstance(v, (str, int, float)) for v in row.values()):
        raise Invalid('A table model takes JSON {"row": {"column": value, ...}}: numbers, text, or null for a gap.')
    extra = sorted(set(payload) - {"row"})
    if extra:
        raise Invalid(f"Unknown field {extra[0]!r}: a JSON predict body for a table holds only row.")
    return row


async def _pixels(request: Request) -> Any:
    try:
        payload = json.loads(await request.body())
    except (ValueError, RecursionError):
        raise Invalid("The body is not valid JSON.") from None
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise Invalid('A JSON body must be an object {"pixels": [[...]]}.')
    extra = sorted(set(payload) - {"pixels"})
    if extra:
        raise Invalid(f"Unknown field {extra[0]!r}: a JSON predict body holds only pixels (top_k goes in the query).")
    return payload["pixels"]


# ---- errors: one sentence, the right status ----------------------------------------------------------------------
def _error(status: int, sentence: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": sentence}, status_code=status, headers=headers)


def _validation_sentence(exc: RequestValidationError) -> str:
    """The first problem pydantic found, as one sentence naming the field."""
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc) or "the body"
    if err.get("type") == "extra_forbidden":
        return f"Unknown field {field!r}; valid fields are {', '.join(GenerateRequest.model_fields)}."
    if err.get("type") == "json_invalid":
        return "The body is not valid JSON."
    if not loc:
        return 'The body must be a JSON object of options, such as {"prompt": "床前", "length": 40}.'
    msg = str(err.get("msg", "is not valid")).rstrip(".")
    value = err.get("input")
    if isinstance(value, str) and len(value) > 40:
        given = f", not a text of {len(value)} characters"
    elif isinstance(value, dict | list) or "input" not in err:
        given = ""
    else:  # query values arrive as text: show them as typed
        given = f", not {value}" if err.get("loc", ("",))[0] == "query" else f", not {value!r}"
    return f"{field}: {msg[0].lower() + msg[1:]}{given}."


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> JSONResponse:
        return _error(422, str(exc))  # the rest of nnzoo's sentences: not an image, a character it lacks...

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_sentence(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        sentence = str(exc.detail)
        if exc.status_code == 404 and sentence == "Not Found":
            sentence = f"No such endpoint: {request.method} {request.url.path} (see /docs)."
        elif exc.status_code == 405:
            sentence = f"{request.url.path} does not take {request.method} (see /docs)."
        return _error(exc.status_code, sentence, getattr(exc, "headers", None))


class LimitBody:
    """ASGI middleware: refuses a request body over ``max_bytes`` (413) by its Content-Length before reading it,
    and, when it is streamed without one, as soon as more arrives, so an upload never fills memory or disk."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    def sentence(self) -> str:
        return f"The request body is larger than the server takes ({self.max_bytes // 1024 // 1024} MB)."

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            return await _error(413, self.sentence())(scope, receive, send)
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, self.sentence())  # FastAPI passes HTTPException through body parsing
            return message

        await self.app(scope, limited, send)


class BodyDeadline:
    """ASGI middleware: a request body must have arrived whole within ``seconds`` of its headers, or the answer is
    408 and the connection is closed, so a client sending a byte a second cannot hold a connection (and a model's
    queue) for hours. Only the body is timed: waiting for the client to leave afterwards is not."""

    def __init__(self, app: Any, seconds: float):
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        done = False

        async def timed() -> dict:
            nonlocal done
            if done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                raise HTTPException(408, f"The request body took longer than {self.seconds:g} s to arrive.",
                                    headers={"Connection": "close"}) from None  # fmt: skip
            done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed, send)
