"""The recurrent family through the real command line: every verb with --max-steps 2, and `nnzoo generate` end to
end on a recurrent run (prompt, seed, acrostic, bad input)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import POEMS, run_cli

from nnzoo.cli import main

FAST = ["--max-steps", "2", "--quiet", "--set", "train.num_threads=1"]


@pytest.fixture(scope="module")
def poem_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A char-LSTM trained (two steps) on a poem file the test writes, as `--dataset tang300 --data-file` does."""
    folder = tmp_path_factory.mktemp("poems")
    (folder / "poems.txt").write_text("".join(p + "\n" for p in POEMS * 12), encoding="utf-8")
    code = main(["train", "tang-poems-char-lstm", "--dataset", "tang300", "--data-file", str(folder / "poems.txt"),
                 "--out", str(folder / "run"), "--set", "model_args.hidden=32", "--set", "data.seq_len=24",
                 *FAST])  # fmt: skip
    assert code == 0
    return folder / "run"


def test_generate_from_a_recurrent_run_is_reproducible_with_a_seed(poem_run: Path, capsys) -> None:
    args = ["generate", poem_run, "--prompt", "白日", "--length", 30, "--temperature", 0.8, "--top-k", 5, "--json"]
    outs = [json.loads(run_cli(capsys, *args, "--seed", s)[1]) for s in (7, 7, 8)]
    assert outs[0]["text"] == outs[1]["text"] != outs[2]["text"]
    assert outs[0]["text"].startswith("白日") and len(outs[0]["generated"]) == 30
    code, out, err = run_cli(capsys, "generate", poem_run, "--prompt", "白Q日", "--length", 5, "--seed", 1)
    assert code == 0 and out.startswith("白日") and "note: the vocabulary lacks 'Q'" in err


@pytest.mark.parametrize("heads", ["春夏秋冬", "明月"])
def test_acrostic_from_a_recurrent_poem_model(poem_run: Path, capsys, heads: str) -> None:
    code, out, err = run_cli(capsys, "generate", poem_run, "--acrostic", heads, "--seed", 3, "--json")
    assert code == 0, err
    poem = json.loads(out)
    lines = re.findall(r"[^，。\n]+[，。]", poem["text"])
    assert [line[0] for line in lines] == list(heads)
    assert {len(line) - 1 for line in lines} == {poem["line_length"]} and poem["line_length"] in (5, 7)
    assert [line[-1] for line in lines] == ["，", "。"] * (len(heads) // 2)


def test_language_model_verbs_and_bad_generation_input(tmp_path: Path, poem_run: Path, capsys) -> None:
    code, out, err = run_cli(capsys, "eval", poem_run)
    assert code == 0 and "perplexity" in out and "bits_per_char" in out, err
    code, _, err = run_cli(capsys, "generate", poem_run, "--acrostic", "春Ω")
    assert code == 2 and err.startswith("error: The model's vocabulary lacks 'Ω'")
    # A model of plain text refuses --acrostic in one sentence.
    (tmp_path / "t.txt").write_text("To be, or not to be, that is the question.\n" * 30, encoding="utf-8")
    code, _, err = run_cli(capsys, "train", "shakespeare-char-lstm", "--data-file", tmp_path / "t.txt", "--out",
                           tmp_path / "txt", "--set", "model_args.hidden=16", "--set", "data.seq_len=32",
                           *FAST)  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(capsys, "generate", tmp_path / "txt", "--acrostic", "春夏")
    assert code == 2 and err.startswith("error: --acrostic needs a model trained on poems") and err.count("\n") == 1
    code, out, _ = run_cli(capsys, "generate", tmp_path / "txt", "--prompt", "To be", "--length", 20, "--seed", 0)
    assert code == 0 and out.startswith("To be") and len(out.rstrip("\n")) >= 25
    code, _, err = run_cli(capsys, "generate", tmp_path / "txt", "--prompt", "春", "--length", 5)
    assert code == 2 and "No character of the prompt is in the model's vocabulary" in err


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_row_wise_classifier_verbs(cell: str, tmp_path: Path, data_dir: Path, capsys) -> None:
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", f"fashion-mnist-{cell}", "--dataset", "mnist", "--data-dir", data_dir,
                           "--out", run, "--set", "data.val_size=50", *FAST)  # fmt: skip
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["model"] == "rnn" and set(metrics["test"]) == {
        "loss",
        "accuracy",
        "majority_baseline",
        "macro_f1",
        "majority_baseline_macro_f1",
    }
    if cell != "lstm":
        return
    code, out, _ = run_cli(capsys, "eval", run, "--data-dir", data_dir)
    assert code == 0 and "confusion matrix" in out
    from test_cli import draw_digit

    code, out, err = run_cli(capsys, "predict", run, draw_digit(tmp_path / "seven.png"), "--json")
    assert code == 0 and len(json.loads(out)[0]["probabilities"]) == 10, err
    code, out, _ = run_cli(capsys, "report", run, "--data-dir", data_dir)
    assert code == 0 and (run / "report" / "confusion_matrix.png").is_file()
    code, out, _ = run_cli(capsys, "summary", "rnn", "--dataset", "mnist", "--set", "cell=gru")
    assert code == 0 and "GRU" in out and "(B, 28, 128)" in out and "MFLOPs" in out
