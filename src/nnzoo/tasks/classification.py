"""The classification task: a label for an image or a text. Its hooks: the answer for one input, the majority
baseline, the confusion matrix and worst mistakes, and what `nnzoo export` writes (the normalisation inside the
graph for images; padded character ids for texts)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import files, reports
from ..data.labelled_text import encode_texts
from ..data.text import read_user_text
from ..errors import UserError
from ..export import ExportPlan, real_test_inputs
from ..images import load_images
from ..runs import LoadedRun, trainer_for
from .base import History, Task
from .tables import classification_baselines, is_table, model_outputs, read_rows, table_plan, write_rows

if TYPE_CHECKING:
    from ..config import RunConfig
    from ..data.spec import Dataset


def classification_result(probs: torch.Tensor, class_names: Sequence[str], top_k: int = 3) -> dict[str, Any]:
    """The answer for one input from its class probabilities (C,): the label, the ``top_k`` most likely classes
    and every probability by name (what `nnzoo predict --json` prints and `nnzoo serve` returns)."""
    top = probs.topk(min(top_k, len(class_names)))
    return {
        "label": class_names[int(top.indices[0])],
        "index": int(top.indices[0]),
        "probability": float(top.values[0]),
        "top_k": [
            {"label": class_names[int(i)], "index": int(i), "probability": float(v)}
            for v, i in zip(top.values, top.indices)
        ],  # fmt: skip
        "probabilities": {n: float(v) for n, v in zip(class_names, probs)},
    }


def classification_reports(history: History, data: Dataset, outputs: torch.Tensor | None, folder: Path,
                            cfg: RunConfig) -> list[Path]:  # fmt: skip
    title = cfg.recipe or cfg.model
    paths = []
    if outputs is not None:
        probs = outputs.softmax(1)
        cm = reports.confusion_matrix(data.test.y, probs.argmax(1), data.spec.num_classes)
        paths.append(reports.plot_confusion(cm, data.spec.class_names, folder / "confusion_matrix.png", title))
        if data.test.x.dim() == 4:  # images: show the most confident mistakes
            paths.append(reports.plot_worst(data.test.x, data.test.y, probs, data.spec.class_names,
                                            folder / "worst.png"))  # fmt: skip
        elif data.spec.text_ids:  # texts: the same, as the tokens the model read
            paths.append(worst_texts(data, probs, folder / "mistakes.md"))
    return paths


def worst_texts(data: Dataset, probs: torch.Tensor, path: Path, count: int = 20) -> Path:
    """The misclassified test texts the model was most confident about, as a Markdown table: each text as the
    model read it (its tokens joined back, cut at seq_len, unknown tokens as their placeholder)."""
    from ..data.tokenizers import load_tokenizer

    extra, names = data.spec.extra, data.spec.class_names
    tok, vocab, pad = load_tokenizer(extra.get("tokenizer")), extra["vocab"], extra["pad_id"]
    pred = probs.argmax(1)
    wrong = (pred != data.test.y).nonzero().flatten()
    order = wrong[probs[wrong, pred[wrong]].argsort(descending=True)][:count].tolist()
    lines = [f"# The {len(order)} most confident mistakes on the test split ({len(wrong)} wrong of {len(pred)})", "",
             "| # | true | predicted | p | text (as the model read it) |", "|---|---|---|---|---|"]  # fmt: skip
    for rank, i in enumerate(order, 1):
        text = tok.join([vocab[t] for t in data.test.x[i].tolist() if t != pad]).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {rank} | {names[int(data.test.y[i])]} | {names[int(pred[i])]} | "
                     f"{float(probs[i, pred[i]]):.3f} | {text} |")  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def classification_metrics(test: dict[str, float], outputs: torch.Tensor | None, data: Dataset) -> dict[str, Any]:
    """Macro-F1 (the mean of the classes' F1, so a rare class counts as much as a common one) and the majority
    baseline: the accuracy of always answering the test split's most common class, the number any classifier has
    to beat (10% on the balanced image sets, about 40% on tang-authors), and its macro-F1. A table's run also
    fits a logistic regression on the same features (tasks/tables.py)."""
    from sklearn.metrics import f1_score

    counts = torch.bincount(data.test.y, minlength=data.spec.num_classes)
    out: dict[str, Any] = {"majority_baseline": counts.max().item() / max(len(data.test), 1)}
    if outputs is not None and len(outputs):
        truth = data.test.y.numpy()
        out["macro_f1"] = float(f1_score(truth, outputs.argmax(1).numpy(), average="macro"))
        majority = torch.full_like(data.test.y, int(counts.argmax())).numpy()
        out["majority_baseline_macro_f1"] = float(f1_score(truth, majority, average="macro"))
    if is_table(data.spec):
        out.update(classification_baselines(data))
    return out


class NormalizedClassifier(nn.Module):
    """pixels (B, C, H, W) in 0..1 -> logits (B, classes), with the training normalisation inside the graph."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.model = model
        shape = (1, -1, 1, 1)
        self.register_buffer("mean", torch.tensor(mean or (0.0,), dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std or (1.0,), dtype=torch.float32).view(shape))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model((pixels - self.mean) / self.std)


def classifier_plan(run: Any) -> ExportPlan:
    """Images (CNN, MLP, ViT, an RNN or encoder reading rows), padded text (character ids) or a table's raw
    columns, by the data's kind."""
    spec = run.spec
    if spec.text_ids:
        return text_classifier_plan(run)
    if is_table(spec):
        return table_plan(run, "logits", "(batch, classes) float32; softmax gives the probabilities of class_names",
                          regression=False)  # fmt: skip
    if len(spec.input_shape) != 3:
        raise UserError(f"Export of {spec.task} models on {spec.name} is not supported yet.")
    module = NormalizedClassifier(run.model, spec.mean, spec.std).eval()
    real, notes = real_test_inputs(run, 5)
    check = real.float() / 255 if real is not None else torch.rand(5, *spec.input_shape)
    return ExportPlan(module, (torch.rand(2, *spec.input_shape),), (check,), ["pixels"], ["logits"], notes,
                      docs={"pixels": "(batch, C, H, W) float32 pixels in 0..1; the normalisation is inside the graph",
                            "logits": "(batch, classes) float32; softmax gives the probabilities"},
                      meta={"class_names": spec.class_names})  # fmt: skip


def text_classifier_plan(run: Any) -> ExportPlan:
    """Character ids (B, seq_len) int64, padded with pad_id after the text, -> logits. The model finds the padding
    itself (ids == pad_id), so the check uses texts of different lengths, padded as training padded them."""
    spec = run.spec
    seq_len, pad_id, vocab = spec.input_shape[0], spec.extra["pad_id"], spec.extra["vocab"]
    real, notes = real_test_inputs(run, 5)
    if real is None:  # texts of 1 to seq_len characters, the rest padding
        g = torch.Generator().manual_seed(0)
        real = torch.randint(1, pad_id, (5, seq_len), generator=g)
        for row, n in zip(real, torch.linspace(1, seq_len, 5).long()):
            row[n:] = pad_id
    check = real.long()
    example = torch.randint(1, pad_id, (2, seq_len))
    example[0, seq_len // 2 :] = pad_id  # trace with some padding too
    tokenizer = spec.extra.get("tokenizer") or {"kind": "char"}
    unit = "character" if tokenizer["kind"] == "char" else f"{tokenizer['kind']} token"
    docs = {"ids": f"(batch, {seq_len}) int64 {unit} ids (index into vocab; 0 = a {unit} not in vocab), the text cut "
                   f"to its first {seq_len} {unit}s and followed by pad_id = {pad_id} up to {seq_len}; tokenizer says "
                   "how a text becomes tokens (char: each character; word: jieba for Chinese runs, lower-cased runs "
                   "of letters/digits and single punctuation marks elsewhere; bpe: the Hugging Face tokenizers JSON)",
            "logits": "(batch, classes) float32; softmax gives the probabilities"}  # fmt: skip
    meta = {
        "class_names": spec.class_names,
        "vocab": vocab,
        "pad_id": pad_id,
        "seq_len": seq_len,
        "tokenizer": tokenizer,
    }
    # A model whose training form does not export (packed sequences) offers a twin that computes the same logits.
    model = run.model.eval()
    module = model.export_twin() if hasattr(model, "export_twin") else model
    return ExportPlan(module, (example,), (check,), ["ids"], ["logits"], notes, docs=docs, meta=meta, reference=model,
                      optimize=module is model)  # fmt: skip


def classify(run: LoadedRun, paths: list[str], options: dict[str, Any]) -> list[dict[str, Any]]:
    """`nnzoo predict` for a classifier, by what it was trained on: image files, texts, or the rows of a table."""
    if is_table(run.spec):
        return classify_rows(run, paths, options)
    if run.spec.text_ids:
        return classify_texts(run, paths, options)
    return classify_images(run, paths, options)


def _refuse_others(run: LoadedRun, options: dict[str, Any], allowed: tuple[str, ...], what: str) -> None:
    unused = [k for k, v in options.items() if v is not None and k not in ("top_k", "device", *allowed)]
    if unused:  # a flag of another task's predict (--column is a forecaster's)
        flag = "--" + unused[0].replace("_", "-")
        raise UserError(f"{flag} has no meaning for {run.run_dir}, a classifier of {what}.")


def classify_rows(run: LoadedRun, paths: list[str], options: dict[str, Any]) -> list[dict[str, Any]]:
    """The label of each row of a table file, with its probability, written beside the rows."""
    df, x, path = read_rows(run, paths, options)
    probs = model_outputs(run, x, options.get("device")).softmax(1)
    names = run.spec.class_names
    target = run.spec.extra["target"]
    best = probs.argmax(1)
    columns = {target: [names[int(i)] for i in best], f"{target}_probability": probs.max(1).values.tolist()}
    written = write_rows(df, columns, path, options.get("out"))
    shown = "\n".join(f"  row {i + 1}: {names[int(k)]} ({100 * float(p.max()):.1f}%)"
                      for i, (k, p) in enumerate(zip(best[:10], probs[:10])))  # fmt: skip
    more = f"\n  ... {len(best) - 10} more" if len(best) > 10 else ""
    text = f"wrote {written['file']}: {written['rows']} rows with the predicted {target}\n{shown}{more}"
    return [{**written, "predictions": [classification_result(p, names, options.get("top_k", 3)) for p in probs],
             "text": text}]  # fmt: skip


def classify_texts(run: LoadedRun, paths: list[str], options: dict[str, Any]) -> list[dict[str, Any]]:
    """`nnzoo predict RUN --text "..."` (or --text-file F, one text a line): the label of each text."""
    _refuse_others(run, options, ("text", "text_file"), "texts")
    texts = list(options.get("text") or [])
    if options.get("text_file"):
        texts += [line for line in read_user_text(options["text_file"]).splitlines() if line.strip()]
    if paths:
        raise UserError(f"{run.run_dir} classifies texts: give them with --text \"...\" or --text-file FILE "
                        "(one text a line), not as files.")  # fmt: skip
    if not texts:
        raise UserError('Give a text to classify with --text "..." or --text-file FILE (one text a line).')
    ids, notes = encode_texts(run.spec, texts)
    probs = trainer_for(run, options.get("device")).predict(ids).softmax(1)
    top_k = options.get("top_k", 3)
    return [{"text_in": t, "file": t if len(t) <= 40 else t[:39] + "…", "notes": n,
             **classification_result(p, run.spec.class_names, top_k)}
            for t, n, p in zip(texts, notes, probs)]  # fmt: skip


def classify_images(run: LoadedRun, paths: list[str], options: dict[str, Any]) -> list[dict[str, Any]]:
    """`nnzoo predict` for a classifier: class and probabilities of each image file (any size: see images.py)."""
    top_k, device = options.get("top_k", 3), options.get("device")
    _refuse_others(run, options, (), "images: it labels the image files given")
    if not paths:
        raise UserError("Give at least one image file to predict.")
    x = load_images(list(paths), run.spec)
    probs = trainer_for(run, device).predict(x).softmax(1)
    return [{"file": path, **classification_result(p, run.spec.class_names, top_k)} for path, p in zip(paths, probs)]


def answers(run: LoadedRun, outputs: torch.Tensor, options: dict[str, Any]) -> list[dict[str, Any]]:
    """nnzoo.predict(run, array): the label and probabilities of each input (softmax of the logits)."""
    names = run.spec.class_names or [str(i) for i in range(outputs.shape[1])]
    return [classification_result(p, names, options.get("top_k", 3)) for p in outputs.float().softmax(1)]


def confusion(run: LoadedRun, data: Dataset, outputs: torch.Tensor | None) -> dict[str, Any]:
    """`nnzoo eval`'s per-class accuracy and confusion matrix (rows: true class, columns: predicted), the matrix
    also drawn as RUN_DIR/eval/confusion_matrix.png. Not report/confusion_matrix.png: that one belongs to the
    run's own final test, and an eval with another --data-dir must not overwrite it."""
    if outputs is None:
        return {}
    cm = reports.confusion_matrix(data.test.y, outputs.argmax(1), run.spec.num_classes)
    totals = cm.sum(1).clamp(min=1)
    names = run.spec.class_names
    out: dict[str, Any] = {"per_class_accuracy": {n: (cm[i, i] / totals[i]).item() for i, n in enumerate(names)},
                           "confusion_matrix": cm.tolist(), "class_names": names}  # fmt: skip
    png = Path(run.run_dir) / "eval" / "confusion_matrix.png"
    try:
        png.parent.mkdir(parents=True, exist_ok=True)
        title = f"{run.config.recipe or run.config.model} ({run.checkpoint.stem} checkpoint)"
        out["confusion_matrix_png"] = str(reports.plot_confusion(cm, names, png, title))
    except (OSError, files.WriteFailed) as e:  # a run folder one may read but not write: the numbers still count
        reason = e.reason if isinstance(e, files.WriteFailed) else e.strerror or str(e)
        out["notes"] = [f"the confusion matrix was not drawn: could not write {png} ({reason})"]
    return out


TASK = Task("classification", extra_metrics=classification_metrics, write_reports=classification_reports,
            export=classifier_plan, predict=classify, evaluation=confusion, answer=answers)  # fmt: skip
