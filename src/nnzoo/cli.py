"""The ``nnzoo`` command: parses argv, calls :mod:`nnzoo.api`, prints. Nothing else lives here."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import typing
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import shtab

from . import api
from .config import CHOICES, TRAIN_FLAGS, flag_type, parse_set
from .errors import Terminated, UserError
from .runtime import versions


class _Version(argparse.Action):
    """``--version``: computed when asked for (it queries the GPU), not each time the parser is built."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> typing.NoReturn:
        print(versions())
        parser.exit()


class Parser(argparse.ArgumentParser):
    """argparse's own errors in nnzoo's form: one line ``error: ...`` naming the help to read, exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


# Written out by hand (a raw formatter keeps the lines as they are): what people type most, each command real.
TRAIN_DESCRIPTION = """\
Train a recipe (a name from `nnzoo list recipes` or a YAML file), or a model
(`nnzoo list models`) on your own data. Flags and --set override any value of
the recipe; the run folder is written to --out (default runs/RECIPE)."""

TRAIN_EXAMPLES = """\
examples:
  nnzoo train digits-mlp                          offline, in seconds
  nnzoo train mnist-simple-cnn --epochs 3         the classic PyTorch example (downloads MNIST, 11 MB)
  nnzoo train simple-cnn --data-dir photos/       your own images: photos/CLASS/*.jpg
  nnzoo train mlp --data-file houses.csv --target price
                                                  your own table (a number: regression)
  nnzoo train mnist-simple-cnn --out runs/cnn --resume --epochs 20
                                                  continue an interrupted run from its last checkpoint
  nnzoo train fashion-mnist-simple-cnn-fast --set train.schedule=cosine --set model_args.hidden=256
                                                  any setting of the recipe (see its YAML)"""


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a recipe into a run folder", description=TRAIN_DESCRIPTION,
                       epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("recipe", help="recipe name, path to a recipe YAML file, or a model name (with your own data)")
    for flag, (setting, text) in TRAIN_FLAGS.items():  # the flags that set a setting, from config's one table
        name, kind = "--" + flag.replace("_", "-"), flag_type(setting)
        if kind is bool:  # a switch: present sets true, absent leaves the recipe's value
            p.add_argument(name, action="store_const", const=True, default=None, help=text)
        else:
            p.add_argument(name, type=kind, choices=CHOICES.get(setting), help=text)
    p.add_argument("--out", help="run folder to write (default: runs/RECIPE, never overwriting a run)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="any setting, e.g. --set train.momentum=0.9 --set model_args.hidden=[256,128]")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train in N processes on this machine with DDP (runs torchrun; --batch-size stays the "
                        "global batch, split N ways)")  # fmt: skip


def _add_run_verbs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="test metrics and confusion matrix of a run")
    p.add_argument("run_dir")
    p.add_argument("--data-dir")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser(
        "predict",
        help="label images, texts or table rows; regress table rows; forecast past the end of a series",
        description="An image classifier labels IMAGE files; a text classifier labels --text and --text-file; a "
        "table model answers every row of one table FILE and writes the rows with its answers beside them "
        "(FILE.predictions.csv, or --out); a forecaster forecasts the steps after the end of its series, or "
        "after the last values of a CSV given with --column.",
    )
    p.add_argument("run_dir")
    p.add_argument("images", nargs="*", metavar="FILE",
                   help="image files (image classifiers), one table (table models) or one CSV (forecasters)")  # fmt: skip
    p.add_argument("--text", action="append", help="a text to classify (text classifiers; repeat for several)")
    p.add_argument("--text-file", help="a UTF-8 file of texts to classify, one a line (text classifiers)")
    p.add_argument("--out", help="where table models write the rows with their answers (.csv, .tsv or .json)")
    p.add_argument("--column", help="the CSV column holding the series (forecasters)")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--device")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("generate", help="text from a language model, images from a GAN or VAE")
    p.add_argument("run_dir")
    p.add_argument("--prompt", help="text to continue (language models)")
    p.add_argument("--length", type=int, default=200, help="characters or tokens to generate")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="above 0: lower is surer, higher more varied; below 1e-4 always picks the most likely "
                        "token (greedy)")  # fmt: skip
    p.add_argument("--top-k", type=int, help="sample only from the K most likely next tokens")
    p.add_argument("--acrostic", help="a poem whose lines start with these characters (poem models)")
    p.add_argument("--no-cache", action="store_true", help="recompute the whole context for every token (slower)")
    p.add_argument("--n", type=int, default=64, help="images to draw (GAN / VAE)")
    p.add_argument("--label", type=int, help="class to draw (conditional models)")
    p.add_argument("--from", dest="from_images", nargs="+", metavar="IMAGE", help="reconstruct these images")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="where to write an image grid (PNG)")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("export", help="write a run's model as ONNX or TorchScript, checked against PyTorch")
    p.add_argument("run_dir")
    p.add_argument("--format", dest="fmt", default="onnx", help="onnx (default) or torchscript")
    p.add_argument("--out", help="file to write (default: RUN_DIR/export/MODEL.onnx or .pt)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("attention", help="heat maps of what a Transformer run attends to (PNG)",
                       description="Per layer and head, PNG heat maps of the attention weights over a text, or "
                                   "over an image's patches with the attention rollout.")  # fmt: skip
    p.add_argument("run_dir")
    p.add_argument("input", metavar="INPUT", help="text (language models, text classifiers); an image file or "
                                                  "test:N, the N-th test image (image models)")  # fmt: skip
    p.add_argument("--layer", type=int, help="only this layer (counting from 1)")
    p.add_argument("--head", type=int, help="only this head (counting from 1)")
    p.add_argument("--out", help="folder for the PNG files (default RUN_DIR/attention)")
    p.add_argument("--resize", action="store_true", help="convert an image of another size as `predict` does")
    p.add_argument("--data-dir", help="where the test images are, for test:N")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true", help="print JSON (without the weights)")

    p = sub.add_parser("serve", help="an HTTP API and a web page for trained runs (pip install \"nnzoo[serve]\")",
                       description="Serve runs over HTTP: GET /v1/models, POST /v1/models/NAME/predict and "
                                   "/generate, a web page at / and API docs at /docs. Each model is named after "
                                   "its run folder. Listens on 127.0.0.1 unless --host says otherwise.")  # fmt: skip
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes the server to the network)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--device", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--max-batch", type=int, help="predict requests stacked into one forward pass (default 32)")
    p.add_argument("--batch-wait-ms", type=float, help="how long a request waits for others to join its batch "
                                                       "(default 5)")  # fmt: skip
    p.add_argument("--header-timeout", type=float, metavar="S", help="seconds a client has to send a request's "
                   "headers, from connecting or from the first byte of its next request (default 10)")  # fmt: skip
    p.add_argument("--body-timeout", type=float, metavar="S", help="seconds a client has to send a request's body "
                   "once its headers are in, else 408 (default 30)")  # fmt: skip
    p.add_argument("--max-connections", type=int, metavar="N", help="connections served at once; a request on "
                   "one more is answered 503 (default 256)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no line per request")

    p = sub.add_parser("report", help="regenerate a run's PNG reports")
    p.add_argument("run_dir")
    p.add_argument("--data-dir")
    p.add_argument("--device")

    p = sub.add_parser("list", help="list models, datasets or recipes")
    p.add_argument("what", choices=["models", "datasets", "recipes"])
    p.add_argument("--long", action="store_true",
                   help="recipes: the whole description (by default its first sentence)")  # fmt: skip

    p = sub.add_parser("bench", help="this machine's peak GFLOP/s and each recipe's training step against it",
                       description="Measure this machine's fp32 and bf16 matmul and convolution throughput, then "
                       "time each recipe's training step (the real Trainer on the recipe's real data) and print "
                       "the achieved GFLOP/s as a fraction of that peak. Recipes whose data is missing are "
                       "skipped with the reason.")  # fmt: skip
    p.add_argument("recipes", nargs="*", metavar="RECIPE", help="recipes to time (default: "
                   "SimpleCNN classic and fast, the char GPTs, tang-poems-char-lstm, fashion-mnist-dcgan)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=3.0, help="time spent on each recipe after its warm-up "
                   "(default 3)")  # fmt: skip
    p.add_argument("--data-dir")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="also print everything as one JSON object at the end")

    p = sub.add_parser("summary", help="layers, output shapes, parameters and FLOPs of a model")
    p.add_argument("model")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="ARG=VALUE",
                   help="a model argument, e.g. --set hidden=[512]")  # fmt: skip


COMPLETION_SHELLS = ("bash", "zsh", "tcsh")  # those shtab writes and that `nnzoo completion` offers


def _names(kind: str, names: Sequence[str], yaml_files: bool = False) -> dict[str, Any]:
    """A shtab completion offering ``names`` (written into the script, so pressing TAB starts no Python), and YAML
    files beside them where a path is accepted too (a recipe)."""
    words = " ".join(names)
    files = '\n  compgen -f -X \'!*.y*ml\' -- "$1"\n  compgen -d -- "$1"' if yaml_files else ""
    return {
        "bash": f"_nnzoo_{kind}",
        "zsh": f"({words})",
        "tcsh": f"({words})",
        "preamble": {"bash": f'_nnzoo_{kind}() {{\n  compgen -W "{words}" -- "$1"{files}\n}}'},
    }


def _add_completions(parser: argparse.ArgumentParser) -> None:
    """What TAB offers for each argument, by its name, in every verb at once: registered names where the
    registries know them, folders for run folders and data folders, files for inputs and outputs."""
    by_dest = {
        "recipe": _names("recipes_or_yaml", [*api.list_recipes(), *api.list_models()], yaml_files=True),
        "recipes": _names("recipes", api.list_recipes()),
        "model": _names("models", api.list_models()),
        "dataset": _names("datasets", api.list_datasets()),
        **dict.fromkeys(["run_dir", "run_dirs", "data_dir"], shtab.DIRECTORY),
        **dict.fromkeys(["images", "from_images", "data_file", "text_file", "out"], shtab.FILE),
    }
    for sub in parser._subparsers._group_actions if parser._subparsers else []:
        for verb in sub.choices.values():
            for action in verb._actions:
                if action.dest in by_dest and not action.choices:
                    action.complete = by_dest[action.dest]  # type: ignore[attr-defined]  # read by shtab


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="nnzoo", description="Every classic neural network family, one interface.")
    parser.add_argument(
        "--version", action=_Version, help="print the versions of nnzoo and torch, the CPU kernels and the GPU"
    )
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    _add_train(sub)
    _add_run_verbs(sub)
    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh or tcsh)",
                       description="Print a completion script for your shell: verbs, flags, recipe, model and "
                       "dataset names. Load it for this shell with  eval \"$(nnzoo completion bash)\"  or write it "
                       "where your shell reads completions (see the README).")  # fmt: skip
    p.add_argument("shell", choices=COMPLETION_SHELLS)
    _add_completions(parser)
    return parser


def _cells(text: str) -> int:
    """Terminal columns ``text`` takes: CJK characters (白居易, 全唐诗) take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns, broken only between words (a longer word keeps its line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and _cells(lines[-1]) + 1 + _cells(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def _print_table(rows: dict[str, str], columns: int | None = None) -> None:
    """Name, two spaces, description. With ``columns`` (a terminal) each description is wrapped to fit, its
    continuation lines under its first; without (a pipe or a file) it stays on one line, for grep and awk.
    A description is never cut."""
    width = max(map(len, rows), default=0)
    room = None if columns is None else columns - width - 2
    for name, text in rows.items():
        if room is None:
            print(f"{name:<{width}}  {text}".rstrip())
        elif room >= 20:
            first, *rest = _wrap(text, room)
            print(f"{name:<{width}}  {first}".rstrip())
            for line in rest:
                print(" " * (width + 2) + line)
        else:  # too narrow for two columns: the name, then its description indented below it
            print(name)
            for line in _wrap(text, max(columns - 4, 20)) if text else []:
                print("    " + line)


def _print_eval(r: dict[str, Any]) -> None:
    print(f"{r['run']} ({r['checkpoint']}): {r['samples']} test samples")
    print("  ".join(f"{k} {v:.4f}" for k, v in r.items() if isinstance(v, float)))  # every scalar metric
    if "confusion_matrix" in r:
        names = [n[:9] for n in r["class_names"]]
        w = max(9, *map(len, names))
        print("\nconfusion matrix (rows: true, columns: predicted)")
        print(" " * (w + 1) + " ".join(f"{n:>{w}}" for n in names) + f" {'accuracy':>9}")
        for n, row in zip(names, r["confusion_matrix"]):
            acc = r["per_class_accuracy"][r["class_names"][names.index(n)]]
            print(f"{n:>{w}} " + " ".join(f"{v:>{w}}" for v in row) + f" {100 * acc:>8.1f}%")
    if "confusion_matrix_png" in r:
        print(f"\nwrote {r['confusion_matrix_png']}")
    for note in r.get("notes", []):
        print(f"note: {note}", file=sys.stderr)


def _without_nproc(argv: Sequence[str]) -> list[str]:
    """argv less --nproc N (or --nproc=N, or an abbreviation argparse accepted, like --np 2)."""
    out, skip = [], False
    for a in argv:
        name = a.split("=", 1)[0]
        if skip:
            skip = False
        elif len(name) > 2 and "--nproc".startswith(name):
            skip = "=" not in a
        else:
            out.append(a)
    return out


def run(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    if args.verb == "train":
        overrides = {k: getattr(args, k) for k in api.FLAG_SETTINGS}
        sets = [parse_set(s) for s in args.sets]
        if args.nproc is not None:  # the same command, minus --nproc, in N processes under torchrun
            cfg = api.train_config(args.recipe, out=args.out, resume=args.resume, overrides=overrides, sets=sets)
            return api.launch(args.nproc, _without_nproc(argv), cfg.train, echo=not args.quiet)
        api.train(args.recipe, out=args.out, resume=args.resume, overrides=overrides, sets=sets,
                  progress=not args.quiet)  # fmt: skip
    elif args.verb == "eval":
        r = api.evaluate(args.run_dir, data_dir=args.data_dir, device=args.device)
        print(json.dumps(r, indent=2)) if args.json else _print_eval(r)
    elif args.verb == "predict":
        results = api.predict(args.run_dir, args.images, top_k=args.top_k, device=args.device, column=args.column,
                              text=args.text, text_file=args.text_file, out=args.out)  # fmt: skip
        if args.json:
            print(json.dumps(results, indent=2, ensure_ascii=False))
        for r in [] if args.json else results:
            if "text" in r:
                print(r["text"])
                continue
            tops = ", ".join(f"{t['label']} {100 * t['probability']:.1f}%" for t in r["top_k"])
            print(f"{r['file']}: {r['label']}  ({tops})")
            for note in r.get("notes", []):
                print(f"  note: {note}")
    elif args.verb == "generate":
        options = {k: v for k, v in vars(args).items() if k not in ("verb", "run_dir", "json")}
        result = api.generate(args.run_dir, **options)
        print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else result.get("text", result.get("path")))
    elif args.verb == "export":
        r = api.export(args.run_dir, args.fmt, args.out)
        if args.json:
            print(json.dumps(r, indent=2))
        else:
            print(
                f"wrote {r['path']} ({r['format']}); inputs {r['inputs']} -> outputs {r['outputs']}; "
                f"max |difference| from PyTorch on {r['checked']}: {r['max_abs_diff']:.2e}"
            )
            print(f"wrote {r['meta']}: shapes and meaning of the inputs and outputs, and what a runtime needs")
            for note in r["notes"]:
                print(f"note: {note}")
    elif args.verb == "attention":
        r = api.attention(args.run_dir, args.input, layer=args.layer, head=args.head, out=args.out,
                          resize=args.resize, data_dir=args.data_dir, device=args.device)  # fmt: skip
        for note in r["notes"]:
            print(f"note: {note}", file=sys.stderr)
        plain = {k: v for k, v in r.items() if k not in ("weights", "rollout")}  # tensors stay in Python
        if args.json:
            print(json.dumps(plain, indent=2, ensure_ascii=False))
        else:
            if "prediction" in r:
                print(f"predicted {r['prediction']['label']} ({100 * r['prediction']['probability']:.1f}%)")
            print("\n".join(r["files"]))
    elif args.verb == "serve":
        api.serve(args.run_dirs, host=args.host, port=args.port, device=args.device, max_batch=args.max_batch,
                  batch_wait_ms=args.batch_wait_ms, header_timeout=args.header_timeout,
                  body_timeout=args.body_timeout, max_connections=args.max_connections, quiet=args.quiet)  # fmt: skip
    elif args.verb == "report":
        for p in api.report(args.run_dir, data_dir=args.data_dir, device=args.device):
            print(p)
    elif args.verb == "list":
        rows = api.list_recipes(long=args.long) if args.what == "recipes" else getattr(api, f"list_{args.what}")()
        _print_table(rows, shutil.get_terminal_size().columns if sys.stdout.isatty() else None)
    elif args.verb == "bench":
        if not 0 < args.seconds <= 600:
            raise UserError(f"--seconds must be more than 0 and at most 600, not {args.seconds:g}.")
        r = api.bench(args.recipes or None, seconds=args.seconds, data_dir=args.data_dir, device=args.device)
        if args.json:
            print(json.dumps(r, indent=2))
    elif args.verb == "completion":
        print(shtab.complete(build_parser(), shell=args.shell), end="")
    elif args.verb == "summary":
        print(api.summary(args.model, args.dataset, **dict(parse_set(s) for s in args.sets)))
    return 0


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


@contextlib.contextmanager
def _signals() -> Iterator[None]:
    """For as long as the command runs: SIGTERM raises Terminated, and SIGXFSZ is ignored so that a write past
    `ulimit -f` fails with EFBIG (one error sentence) instead of killing the process. Restored after, for
    callers of main() in Python."""
    wanted = {signal.SIGTERM: _terminate}
    if hasattr(signal, "SIGXFSZ"):
        wanted[signal.SIGXFSZ] = signal.SIG_IGN
    if threading.current_thread() is not threading.main_thread():  # signal handlers live in the main thread
        wanted = {}
    before = {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _print_whatever_the_encoding() -> None:
    """A stream whose encoding lacks a character (Windows writes pipes and files in cp1252, or cp936, which lacks
    some of 全唐詩's traditional characters) raised UnicodeEncodeError in the middle of the output, a traceback
    for `nnzoo list datasets > names.txt`. Such a stream writes an escape (\\u5168) instead; UTF-8 ones (Linux,
    macOS, Python's UTF-8 mode, PYTHONIOENCODING=utf-8) are left alone."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if encoding not in ("utf8", "utf16", "utf32") and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _print_whatever_the_encoding()
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    try:
        with _signals():
            try:
                args = build_parser().parse_args(argv)
            except SystemExit as e:  # --help (0) or a usage error, already printed as one line (2)
                return int(e.code or 0)
            return run(args, argv)
    except UserError as e:
        if os.environ.get("RANK", "0") == "0":  # under torchrun every process meets the same error: say it once
            print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nnzoo predict ... | head`: the reader left; stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not raise again
        return 141  # 128 + SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
