"""The masked-LM task (bert-mlm): pretraining a text encoder on the texts of a labelled-text dataset, without
their labels, for ``nnzoo train transformer-encoder --init-from RUN`` to fine-tune. Its test metric is the
perplexity of the masked tokens (masks drawn from a fixed seed in evaluation, so runs compare)."""

from __future__ import annotations

import math
from typing import Any

from ..export import ExportPlan, real_test_inputs
from .base import Task


def masked_lm_metrics(test: dict[str, float], outputs: Any, data: Any) -> dict[str, float]:
    return {"masked_perplexity": math.exp(test["loss"])}


def encoder_plan(run: Any) -> ExportPlan:
    """The pretrained encoder as a feature extractor: token ids (B, seq_len), padded with pad_id, -> the states
    (B, 1 + seq_len, dim), [CLS] first; what a runtime fine-tunes on or pools (the tokenizer in FILE.json)."""
    import torch

    spec = run.spec
    seq_len, pad_id = spec.input_shape[0], spec.extra["pad_id"]
    real, notes = real_test_inputs(run, 5)
    if real is None:
        real = torch.randint(1, pad_id, (5, seq_len), generator=torch.Generator().manual_seed(0))
    example = torch.randint(1, pad_id, (2, seq_len), generator=torch.Generator().manual_seed(1))
    example[0, seq_len // 2 :] = pad_id
    docs = {"ids": f"(batch, {seq_len}) int64 token ids, padded with pad_id = {pad_id} (see tokenizer and vocab)",
            "states": "(batch, 1 + seq_len, dim) float32: the encoder's states, [CLS] first"}  # fmt: skip
    meta = {"vocab": spec.extra["vocab"], "pad_id": pad_id, "mask_id": spec.extra.get("mask_id"), "seq_len": seq_len,
            "tokenizer": spec.extra.get("tokenizer") or {"kind": "char"}}  # fmt: skip
    return ExportPlan(run.model.eval(), (example,), (real.long(),), ["ids"], ["states"], notes, docs=docs, meta=meta)


TASK = Task("masked-lm", extra_metrics=masked_lm_metrics, export=encoder_plan)
