"""Labelled texts through the same verbs: `nnzoo train transformer-encoder --data-file reviews.csv --text-column
review` (CSV, TSV or JSONL), character ids as tang-authors has them, predict --text / --text-file (export and serve are the text classifiers' own, tested with tang-authors). The
files here are written by the test; ChnSentiCorp, when it is on this machine, goes through the same loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

import nnzoo
from nnzoo.data import load_dataset

GOOD, BAD = "好棒赞美佳爽", "差烂糟坏脏吵"


def _reviews(n: int = 160, seed: int = 0) -> list[tuple[str, str]]:
    """(label, review): a positive review holds more of GOOD's characters, a negative one more of BAD's."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 3 else "neg"  # two to one, as ChnSentiCorp is
        main, other = (GOOD, BAD) if label == "pos" else (BAD, GOOD)
        chars = (
            list(rng.choice(list(main), 5))
            + list(rng.choice(list(other), 1))
            + list(rng.choice(list("房间服务早餐"), 4))
        )
        rng.shuffle(chars)
        rows.append((label, "".join(chars)))
    return rows


def _write_csv(path: Path, rows: list[tuple[str, str]], encoding: str = "utf-8") -> Path:
    text = "label,review\n" + "".join(f'{lab},"{t}"\n' for lab, t in rows)
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nnzoo.cli import main

    d = tmp_path_factory.mktemp("texts")
    rows = _reviews()
    rows.insert(5, ("pos", ""))  # an empty review, as ChnSentiCorp has one: dropped and counted
    _write_csv(d / "reviews.csv", rows)
    run = d / "run"
    argv = ["train", "transformer-encoder", "--data-file", str(d / "reviews.csv"), "--text-column", "review",
            "--epochs", "6", "--set", "data.seq_len=16", "--set", "model_args.dim=32", "--set", "model_args.depth=1",
            "--set", "model_args.heads=2", "--out", str(run), "--quiet", "--set", "train.num_threads=1"]  # fmt: skip
    assert main(argv) == 0
    return run


def test_labelled_texts_train_a_classifier_above_the_majority(text_run: Path) -> None:
    test = json.loads((text_run / "metrics.json").read_text())["test"]
    assert test["accuracy"] > test["majority_baseline"] + 0.15 and "macro_f1" in test
    spec = nnzoo.load_run(text_run).spec
    assert spec.class_names == ["neg", "pos"] and spec.text_ids and spec.input_shape == (16,)


def test_the_empty_review_is_dropped_and_counted(text_run: Path) -> None:
    data = load_dataset(nnzoo.load_run(text_run).config.data)
    assert "1 row without a text or a label dropped" in data.source
    assert len(data.train) + len(data.val) + len(data.test) == 160


def test_predict_texts_from_flags_and_a_file(text_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(capsys, "predict", text_run, "--text", "好棒赞美佳房间", "--text", "差烂糟坏脏房间",
                             "--json")  # fmt: skip
    assert code == 0, err
    first, second = json.loads(out)
    assert (first["label"], second["label"]) == ("pos", "neg")
    assert first["text_in"] == "好棒赞美佳房间"
    (tmp_path / "lines.txt").write_text("好棒赞美佳爽\n\n差烂糟坏脏吵" + "差" * 30 + "\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "predict", text_run, "--text-file", tmp_path / "lines.txt")
    assert code == 0, err
    assert out.count(": pos") == 1 and out.count(": neg") == 1 and "the model reads the first 16 characters" in out


def test_tsv_jsonl_gbk_and_a_split_column(tmp_path: Path) -> None:
    rows = _reviews(60)
    (tmp_path / "r.tsv").write_text("label\treview\n" + "".join(f"{lab}\t{t}\n" for lab, t in rows), encoding="utf-8")
    (tmp_path / "r.jsonl").write_text("".join(json.dumps({"text": t, "y": lab}, ensure_ascii=False) + "\n"
                                              for lab, t in rows), encoding="utf-8")  # fmt: skip
    tsv = load_dataset("text-labels", data_file=str(tmp_path / "r.tsv"), text_column="review")
    jsonl = load_dataset("text-labels", data_file=str(tmp_path / "r.jsonl"), text_column="text", label_column="y")
    assert tsv.spec.class_names == jsonl.spec.class_names == ["neg", "pos"]
    assert (tsv.test.x == jsonl.test.x).all()  # the same rows, the same split
    _write_csv(tmp_path / "gbk.csv", rows, "gb18030")
    with pytest.warns(UserWarning, match="GB18030"):
        gbk = load_dataset("text-labels", data_file=str(tmp_path / "gbk.csv"), text_column="review")
    assert (gbk.test.x == tsv.test.x).all()
    parts = "part\n" + "".join(("test" if i % 4 == 0 else "train") + "\n" for i in range(60))
    body = (tmp_path / "r.tsv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "s.tsv").write_text("\n".join(f"{a}\t{b}" for a, b in zip(body, parts.splitlines())) + "\n",
                                    encoding="utf-8")  # fmt: skip
    given = load_dataset("text-labels", data_file=str(tmp_path / "s.tsv"), text_column="review", split_column="part")
    assert len(given.test) == 15 and given.val is None


def test_chnsenticorp_goes_through_the_same_loader(tmp_path: Path) -> None:
    """A file of ChnSentiCorp's form (label 1 / 0, review) where the real one would sit under --data-dir."""
    folder = tmp_path / "ChnSentiCorp_htl_all"
    folder.mkdir()
    rows = [("1" if lab == "pos" else "0", t) for lab, t in _reviews(90)] + [("1", "")]
    _write_csv(folder / "ChnSentiCorp_htl_all.csv", rows)
    data = load_dataset("chnsenticorp", data_dir=str(tmp_path), download=False)
    assert data.spec.class_names == ["negative", "positive"]
    assert len(data.train) + len(data.val) + len(data.test) == 90 and "1 row without a text" in data.source
    assert abs(data.test.y.float().mean().item() - 2 / 3) < 0.1  # stratified: the positive share kept
