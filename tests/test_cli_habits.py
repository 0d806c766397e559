"""The habits people bring from other command-line tools: --version, shell completion, examples in --help, lists
that fit the terminal."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_cli

from nnzoo import api, cli
from nnzoo._version import __version__
from nnzoo.recipes import RECIPES, description, first_sentence


def test_version_names_nnzoo_torch_and_the_cpu_kernels(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and len(out.splitlines()) == 1
    assert out.startswith(f"nnzoo {__version__} (torch {torch.__version__}, CPU ")
    assert torch.backends.cpu.get_cpu_capability() in out


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash here")
def test_bash_completion_offers_verbs_recipes_and_datasets(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, script, _ = run_cli(capsys, "completion", "bash")
    assert code == 0 and "train" in script and "serve" in script and "mnist-simple-cnn" in script
    (tmp_path / "nnzoo.bash").write_text(script, encoding="utf-8")
    assert subprocess.run(["bash", "-n", str(tmp_path / "nnzoo.bash")]).returncode == 0
    (tmp_path / "mine.yaml").touch()  # a recipe file of one's own is offered beside the names

    def tab(line: str) -> list[str]:  # what bash offers for the last word of `line`, as the real TAB would
        words = shlex.split(line) + ([""] if line.endswith(" ") else [])
        probe = (f"source {tmp_path}/nnzoo.bash; COMP_WORDS=({' '.join(map(shlex.quote, words))}); "
                 f"COMP_CWORD={len(words) - 1}; COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}; "
                 "_shtab_nnzoo; printf '%s\\n' \"${COMPREPLY[@]}\"")  # fmt: skip
        return subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True).stdout.split()

    assert tab("nnzoo tr") == ["train"]
    assert tab("nnzoo train mnist-simple") == ["mnist-simple-cnn", "mnist-simple-cnn-fast"]
    assert "mine.yaml" in tab("nnzoo train mi") and "mlp" in tab("nnzoo train ml")  # a file, and a model name
    assert tab("nnzoo train digits-mlp --dataset tang") == ["tang-authors", "tang-poems", "tang300"]
    assert tab("nnzoo summary vi") == ["vit"]
    assert tab("nnzoo list ") == ["models", "datasets", "recipes"]


@pytest.mark.parametrize("shell", ["zsh", "tcsh"])
def test_zsh_and_tcsh_scripts_name_the_recipes(capsys: pytest.CaptureFixture, shell: str) -> None:
    code, script, _ = run_cli(capsys, "completion", shell)
    assert code == 0 and "mnist-simple-cnn-fast" in script and "fashion-mnist" in script
    code, _, err = run_cli(capsys, "completion", "cmd.exe")
    assert code == 2 and err.startswith("error: argument shell: invalid choice")


def test_train_help_ends_with_examples_that_parse_and_configure(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    examples = out[out.index("\nexamples:\n") :].splitlines()[2:]
    commands = [line.split("  ")[1] for line in examples if line.startswith("  nnzoo train ")]
    assert len(commands) >= 5 and any("--resume" in c for c in commands) and any("--set" in c for c in commands)
    # Every example is a command that works: here it is parsed and configured as `nnzoo train` would, on small
    # stand-ins for the user's photos and table.
    for label in ("cat", "dog"):
        (tmp_path / "photos" / label).mkdir(parents=True)
    (tmp_path / "houses.csv").write_text("rooms,price\n3,100\n4,150\n", encoding="utf-8")
    for command in commands:
        args = cli.build_parser().parse_args(shlex.split(command)[1:])
        sets = [cli.parse_set(s) for s in args.sets]
        cfg = api.make_config(args.recipe, {k: getattr(args, k) for k in api.FLAG_SETTINGS}, sets)
        assert cfg.model in api.list_models(), command


# ---- nnzoo list: never a description cut in a word --------------------------------------------------------------
def test_each_recipe_is_listed_with_its_whole_first_sentence() -> None:
    for name in RECIPES:
        full, short = description(RECIPES.get(name)), RECIPES.help(name)
        assert full.startswith(short) and full[len(short) : len(short) + 1] in ("", "."), name
        assert short.count("(") == short.count(")"), name  # "DCGAN (Radford et al" was cut inside parentheses
    assert RECIPES.help("mnist-dcgan").startswith("DCGAN (Radford et al. 2016) for 28x28 MNIST: G projects")
    assert first_sentence("Uses lr 0.5 and e.g. Adam. Then more.") == "Uses lr 0.5 and e.g. Adam"


def _words(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("what", ["models", "datasets", "recipes"])
def test_a_terminal_gets_wrapped_descriptions_a_pipe_whole_lines(capsys: pytest.CaptureFixture,
                                                                  monkeypatch: pytest.MonkeyPatch, what: str) -> None:  # fmt: skip
    rows = api.list_recipes() if what == "recipes" else getattr(api, f"list_{what}")()
    code, piped, _ = run_cli(capsys, "list", what)
    assert code == 0 and len(piped.splitlines()) == len(rows)  # one line each: grep and awk see whole entries
    for line, (name, text) in zip(piped.splitlines(), rows.items()):
        assert _words(line) == [name, *_words(text)]
    for columns in (60, 100, 30):  # 30: too narrow for two columns, the description goes under the name
        monkeypatch.setenv("COLUMNS", str(columns))
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
        code, out, _ = run_cli(capsys, "list", what)
        assert code == 0 and _words(out) == [w for name, text in rows.items() for w in (name, *_words(text))]
        assert all(cli._cells(line) <= columns or " " not in line.strip() for line in out.splitlines()), columns


def test_list_recipes_long_gives_the_whole_description(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(capsys, "list", "recipes", "--long")
    assert code == 0 and "batch norm after its first layer. Adam lr 2e-4, betas (0.5, 0.999)" in out
    assert len(out.splitlines()) == len(RECIPES)
