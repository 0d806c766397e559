"""The models a server holds: what each tells clients about itself, and what it does for predict and generate.

One class per kind of model, registered by task (classification, language-model, gan, autoencoder; images or
text for classification), so the app never branches on names. Every model runs in its own thread, one request at
a time; classifiers batch concurrent requests into one forward pass (batching.py). Nothing here imports FastAPI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..data.labelled_text import TextEncoder
from ..data.tables import TableEncoding, encode_rows
from ..errors import UserError
from ..models import MODELS
from ..registry import Registry
from ..runs import LoadedRun, load_run
from ..runtime import Runner, resolve_device
from ..tasks import generate as generate_for_task
from ..tasks.classification import classification_result
from ..tasks.generative import sample_images
from ..tasks.generative.pictures import grid_array
from ..tasks.tables import is_table, to_units
from .batching import Batcher
from .limits import BATCH_WAIT_MS, MAX_BATCH, MAX_PENDING, MAX_SEED, Busy, Invalid, ServeError

TEXT_FIELDS = ("prompt", "acrostic", "temperature", "top_k", "length")
IMAGE_FIELDS = ("label", "n")
DEFAULT_LENGTH = 200
DEFAULT_IMAGES = 16


@dataclasses.dataclass
class Settings:
    device: str = "auto"
    max_batch: int = MAX_BATCH
    batch_wait_ms: float = BATCH_WAIT_MS


class Served:
    """A loaded run behind a name. Subclasses set ``kind`` and override what they do."""

    kind = ""
    endpoints: tuple[str, ...] = ()

    def __init__(self, name: str, run: LoadedRun, settings: Settings):
        self.name, self.run, self.settings = name, run, settings
        self.device = resolve_device(settings.device)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"nnzoo-{name}")
        self.pending = 0

    def info(self) -> dict[str, Any]:
        spec, cfg = self.run.spec, self.run.config
        builder = MODELS.get(cfg.model)
        return {"name": self.name, "kind": self.kind, "model": cfg.model,
                "family": builder.__module__.rsplit(".", 1)[-1],  # the models/ file it lives in: mlp, cnn, rnn...
                "task": spec.task, "dataset": spec.name, "input_shape": list(spec.input_shape),
                "endpoints": [f"/v1/models/{self.name}/{e}" for e in self.endpoints]}  # fmt: skip

    async def predict(self, x: torch.Tensor, top_k: int) -> dict[str, Any]:
        what = {"language-model": "a language model", "gan": "a GAN", "autoencoder": "an autoencoder"}
        raise ServeError(f"{self.name} is {what.get(self.run.spec.task, 'a generative model')} "
                         f"({self.run.config.model}), which does not classify images: use POST "
                         f"/v1/models/{self.name}/generate.")  # fmt: skip

    async def generate(self, options: dict[str, Any]) -> dict[str, Any]:
        raise ServeError(f"{self.name} is a classifier ({self.run.config.model}), which does not generate: use "
                         f"POST /v1/models/{self.name}/predict.")  # fmt: skip

    async def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in this model's thread; refused when too many requests already wait for it."""
        if self.pending >= MAX_PENDING:
            raise Busy(f"{self.name} has {self.pending} requests waiting; try again in a moment.")
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        finally:
            self.pending -= 1

    async def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _refuse(self, options: dict[str, Any], fields: tuple[str, ...], what: str) -> None:
        given = [f for f in fields if options.get(f) is not None]
        if given:
            raise Invalid(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} not for {self.name}, which "
                          f"{what}.")  # fmt: skip


def serving_runner(run: LoadedRun, settings: Settings) -> Runner:
    """The Runner of a served model: it puts the model where it runs and predicts as `nnzoo predict` does
    (normalised, autocast); it builds no optimizer and reseeds nothing."""
    tc = dataclasses.replace(run.config.train, device=settings.device, compile=False, num_threads=None)
    return Runner(run.model, tc, spec=run.spec)


class ImageClassifier(Served):
    kind = "classifier"
    endpoints = ("predict",)

    def __init__(self, name: str, run: LoadedRun, settings: Settings):
        super().__init__(name, run, settings)
        self.trainer = serving_runner(run, settings)
        self.batcher = Batcher(self.forward, self.executor, max_batch=settings.max_batch,
                               wait_ms=settings.batch_wait_ms, name=name)  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, C, H, W) -> class probabilities (B, classes)."""
        return self.trainer.predict(x).softmax(1)

    def info(self) -> dict[str, Any]:
        spec = self.run.spec
        return {**super().info(), "classes": spec.class_names, "num_classes": spec.num_classes,
                "content_fraction": spec.content_fraction, "light_on_dark": spec.light_on_dark}  # fmt: skip

    async def predict(self, x: torch.Tensor, top_k: int) -> dict[str, Any]:
        k = self.run.spec.num_classes
        if not 1 <= top_k <= k:
            raise Invalid(f"top_k must be between 1 and {k} (the classes of {self.name}), not {top_k}.")
        probs = await self.batcher.submit(x)
        return {"model": self.name, **classification_result(probs, self.run.spec.class_names, top_k)}

    async def close(self) -> None:
        await self.batcher.close()
        await super().close()


class TextClassifier(ImageClassifier):
    """A classifier of texts given as token ids (tang-authors: who wrote this poem? ChnSentiCorp: is this review
    positive?). The text is encoded as the dataset encoded its texts (its tokenizer; each token's id in the training
    vocabulary, 0 for one it never showed; cut to seq_len tokens, padded with pad_id); concurrent texts share a
    forward pass like images do."""

    kind = "text-classifier"

    def __init__(self, name: str, run: LoadedRun, settings: Settings):
        super().__init__(name, run, settings)
        self.encoder = TextEncoder(run.spec)  # the run's tokenizer and vocabulary, built once

    def info(self) -> dict[str, Any]:
        extra = self.run.spec.extra
        return {**super().info(), "seq_len": self.run.spec.input_shape[0], "vocab_size": len(extra["vocab"])}

    def encode(self, text: str) -> tuple[torch.Tensor, list[str]]:
        """The text as (seq_len,) ids, and notes on what was cut, unknown or empty (data/labelled_text.py)."""
        ids, notes = self.encoder([text])
        return ids[0], notes[0]


class TextGenerator(Served):
    kind = "text"
    endpoints = ("generate",)

    def info(self) -> dict[str, Any]:
        extra = self.run.spec.extra
        return {**super().info(), "vocab_size": len(extra["vocab"]), "acrostic": self.run.spec.corpus_kind == "poems",
                "max_context": getattr(self.run.model, "max_context", None)}  # fmt: skip

    async def generate(self, options: dict[str, Any]) -> dict[str, Any]:
        self._refuse(options, IMAGE_FIELDS, "writes text")
        if options.get("acrostic") is not None and options.get("prompt") is not None:
            raise Invalid("Give a prompt or an acrostic, not both: an acrostic poem starts from its first character.")
        seed = _seed(options)
        opts = {"prompt": options.get("prompt"), "acrostic": options.get("acrostic"), "seed": seed,
                "length": options.get("length") or DEFAULT_LENGTH, "temperature": options.get("temperature") or 1.0,
                "top_k": options.get("top_k"), "device": str(self.device)}  # fmt: skip
        result = await self.in_thread(generate_for_task, self.run, opts)
        return {"model": self.name, "seed": seed, **result}


class ImageGenerator(Served):
    kind = "images"
    endpoints = ("generate",)

    def info(self) -> dict[str, Any]:
        model, spec = self.run.model, self.run.spec
        conditional = bool(getattr(model, "conditional", False))
        return {**super().info(), "can_sample": bool(getattr(model, "can_sample", False)), "conditional": conditional,
                "classes": spec.class_names if conditional else []}  # fmt: skip

    async def generate(self, options: dict[str, Any]) -> dict[str, Any]:
        """What drew the grid, with the grid itself as PNG bytes under ``"png"``."""
        self._refuse(options, TEXT_FIELDS, "draws images")
        model = self.run.model
        if not getattr(model, "can_sample", False):
            raise ServeError(f"{self.name} is a plain autoencoder ({self.run.config.model}): it has no prior to "
                             "draw new images from; a vae, conv-vae or GAN does.")  # fmt: skip
        label = options.get("label")
        if label is not None:
            if not getattr(model, "conditional", False):
                raise Invalid(f"label is for class-conditional models (cgan); {self.name} draws images of no chosen "
                              "class.")  # fmt: skip
            if not 0 <= label < model.num_classes:
                raise Invalid(f"label must be a class number from 0 to {model.num_classes - 1}, not {label}.")
        opts = {"n": options.get("n") or DEFAULT_IMAGES, "label": label, "seed": _seed(options),
                "device": str(self.device)}  # fmt: skip
        result, png = await self.in_thread(_draw, self.run, opts)
        return {"model": self.name, **result, "n": opts["n"], "png": png}


def _draw(run: LoadedRun, options: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """A grid of new images as PNG bytes (the tiles `nnzoo generate` writes to a file), and what drew them."""

    images, result = sample_images(run, options)
    buf = io.BytesIO()
    Image.fromarray(grid_array(images)).save(buf, format="PNG")
    return result, buf.getvalue()


def _seed(options: dict[str, Any]) -> int:
    """The request's seed, or a fresh one, returned to the client so that any answer can be drawn again."""
    seed = options.get("seed")
    return random.SystemRandom().randrange(MAX_SEED + 1) if seed is None else int(seed)


class TableModel(Served):
    """A classifier or regressor of table rows: a row is sent as JSON {"row": {"column": value, ...}} (null for a
    missing cell) and encoded as the training rows were (data/tables.py), so the page can offer a form of the
    columns: a number field for each numeric column, a choice of the categories seen in training for each other."""

    kind = "table"
    endpoints = ("predict",)

    def __init__(self, name: str, run: LoadedRun, settings: Settings):
        super().__init__(name, run, settings)
        self.trainer = serving_runner(run, settings)
        self.encoding = TableEncoding.from_dict(run.spec.extra["table"])

    def info(self) -> dict[str, Any]:
        spec, enc = self.run.spec, self.encoding
        columns = [{"name": c["name"], "type": "number", "median": c["median"]} for c in enc.numeric]
        columns += [{"name": c["name"], "type": "category", "categories": c["categories"]} for c in enc.categorical]
        return {**super().info(), "target": spec.extra["target"], "columns": columns, "classes": spec.class_names,
                "num_classes": spec.num_classes}  # fmt: skip

    def answer(self, row: dict[str, Any], top_k: int) -> dict[str, Any]:
        import pandas as pd

        unknown = sorted(set(row) - set(self.encoding.columns) - set(self.encoding.dropped))
        if unknown:
            raise Invalid(f"{self.name} never saw the column {unknown[0]!r}; its columns are "
                          f"{', '.join(self.encoding.columns)}.")  # fmt: skip
        x = encode_rows(self.run.spec, pd.DataFrame([row]), "the row")
        out = self.trainer.predict(x)[0]
        target = self.run.spec.extra["target"]
        if self.run.spec.task == "regression":
            return {"model": self.name, "target": target, "value": float(to_units(out.view(1), self.run.spec)[0])}
        k = self.run.spec.num_classes
        if not 1 <= top_k <= k:
            raise Invalid(f"top_k must be between 1 and {k} (the classes of {self.name}), not {top_k}.")
        return {"model": self.name, "target": target,
                **classification_result(out.softmax(0), self.run.spec.class_names, top_k)}  # fmt: skip

    async def predict_row(self, row: dict[str, Any], top_k: int) -> dict[str, Any]:
        return await self.in_thread(self.answer, row, top_k)


def _classifier(name: str, run: LoadedRun, settings: Settings) -> Served:
    """Images, texts of character ids (a dataset whose spec gives a pad_id), or the rows of a table."""
    if is_table(run.spec):
        return TableModel(name, run, settings)
    return (TextClassifier if run.spec.text_ids else ImageClassifier)(name, run, settings)


SERVED: Registry[Callable[[str, LoadedRun, Settings], Served]] = Registry("servable task")
SERVED.add("classification", _classifier)
SERVED.add("regression", TableModel)
SERVED.add("language-model", TextGenerator)
SERVED.add("gan", ImageGenerator)
SERVED.add("autoencoder", ImageGenerator)


def load_models(run_dirs: list[str | Path], settings: Settings | None = None) -> dict[str, Served]:
    """Each run folder loaded (weights_only, through runs.load_run) under its folder's name; a second folder of the
    same name gets -2, a third -3."""
    settings = settings or Settings()
    if not run_dirs:
        raise UserError("Give at least one run folder to serve.")
    models: dict[str, Served] = {}
    for run_dir in run_dirs:
        run = load_run(run_dir)
        task = run.spec.task
        if task not in SERVED:
            raise UserError(f"{run_dir} holds a {task} model ({run.config.model}); nnzoo serve takes image, "
                            "text and table classifiers, table regressors, language models, GANs and autoencoders.")  # fmt: skip
        base = Path(run_dir).resolve().name
        name, k = base, 1
        while name in models:
            k += 1
            name = f"{base}-{k}"
        models[name] = SERVED.get(task)(name, run, settings)
    return models
