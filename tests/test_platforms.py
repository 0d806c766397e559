"""What differs between the systems people run nnzoo on: modules Windows lacks, how processes start there, and
folder names that are not ASCII (a Chinese user name, a space: C:\\Users\\张伟\\我的 数据)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli, write_mnist_folder
from PIL import Image, ImageDraw

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_import_and_a_training_run_without_the_unix_only_modules(tmp_path: Path) -> None:
    """As on Windows: no resource (peak memory), no fcntl, no sched_getaffinity; nnzoo imports, and a run trains,
    saying its peak memory was not measured (never NaN in metrics.json, which is not JSON)."""
    code = (
        "import os, sys\n"
        "sys.modules['resource'] = None; sys.modules['fcntl'] = None\n"
        "if hasattr(os, 'sched_getaffinity'): del os.sched_getaffinity\n"
        "import nnzoo, nnzoo.cli\n"
        "assert nnzoo.__version__\n"
        "sys.exit(nnzoo.cli.main(['train', 'digits-mlp', '--max-steps', '2', '--out', 'run',\n"
        "                         '--set', 'model_args.hidden=[16]']))\n"
    )
    r = _python(code, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "peak memory not measured here" in r.stderr

    def not_json(constant: str) -> None:
        raise AssertionError(f"metrics.json holds {constant}, which is not JSON")

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"), parse_constant=not_json)
    assert metrics["steps"] == 2


def test_a_spawned_child_does_not_run_the_command_again(tmp_path: Path) -> None:
    """Where processes are spawned (Windows, and macOS for some pools), each child imports the parent's main
    module as __mp_main__: `python -m nnzoo` must then define things, not run the command a second time."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['nnzoo', 'list', 'models']\n"
        "runpy.run_module('nnzoo.__main__', run_name='__mp_main__')\n"
        "print('imported only')\n"
    )
    r = _python(code, tmp_path)
    assert r.returncode == 0 and r.stdout == "imported only\n", r.stdout + r.stderr


def test_train_eval_and_predict_in_folders_with_chinese_names_and_spaces(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    home = tmp_path / "用户 数据"
    data = home / "数据 集"
    write_mnist_folder(data / "mnist", n_train=64, n_test=32)
    run = home / "运行 一"
    code, out, err = run_cli(capsys, "train", "mnist-simple-cnn", "--data-dir", data, "--max-steps", 2, "--out", run,
                             "--set", "data.val_size=16")  # fmt: skip
    assert code == 0, err
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "report" / "curves.png").is_file()
    code, out, err = run_cli(capsys, "eval", run, "--data-dir", data, "--json")
    assert code == 0 and json.loads(out)["samples"] == 32, err
    image = home / "图片" / "七 号.png"
    image.parent.mkdir()
    img = Image.new("L", (56, 56), 255)
    ImageDraw.Draw(img).line([(10, 10), (46, 10), (20, 46)], fill=0, width=5)
    img.save(image)
    code, out, err = run_cli(capsys, "predict", run, image, "--json")
    assert code == 0, err
    result = json.loads(out)[0]
    assert result["file"] == str(image) and 0 <= result["index"] <= 9


def test_the_web_page_names_a_chinese_font_for_every_system() -> None:
    css = (Path(SRC) / "nnzoo" / "serve" / "static" / "style.css").read_text(encoding="utf-8")
    declaration = re.sub(r"/\*.*?\*/", "", css, flags=re.S).split("font-family:", 1)[1].split(";", 1)[0]
    fonts = [f.strip().strip('"') for f in declaration.split(",")]
    for system_font in ("PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Micro Hei"):
        assert system_font in fonts  # macOS, Windows, Linux (Debian's fonts-noto-cjk, fonts-wqy-microhei)
    assert fonts[-1] == "sans-serif" and fonts.index("Noto Sans") < fonts.index("Noto Sans CJK SC")


def test_output_in_a_legacy_windows_encoding_escapes_instead_of_failing(tmp_path: Path) -> None:
    """Windows writes pipes and files in the ANSI code page (cp1252 here), which has no Chinese characters."""
    env = dict(os.environ, PYTHONPATH=SRC, PYTHONIOENCODING="cp1252")
    r = subprocess.run([sys.executable, "-m", "nnzoo", "list", "datasets"], capture_output=True, cwd=tmp_path, env=env,
                       timeout=300)  # fmt: skip
    out = r.stdout.decode("cp1252")
    assert r.returncode == 0 and "Traceback" not in r.stderr.decode("cp1252")
    assert "tang-poems       \\u5168\\u5510\\u8bd7: the Complete Tang Poems" in out  # 全唐诗, escaped
