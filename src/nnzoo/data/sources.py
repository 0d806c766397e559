"""Where data comes from, in this order: ``--data-dir``, ``NNZOO_DATA_DIR``, the user cache, system dataset
folders (Debian's ``dataset-fashion-mnist`` installs to /usr/share/datasets/fashion-mnist), then a download
through an ordered list of mirrors, each file checked against its md5.

``NNZOO_MIRROR=URL`` puts one mirror before a dataset's own: a file is first fetched from
``URL/FOLDER/NAME``, where FOLDER/NAME is where the file sits in a data folder (``mnist/train-images-idx3-ubyte.gz``,
``chinese-poetry/全唐诗/poet.tang.0.json``). That is the cache's layout too, so the cache of a machine that has the
data, served over HTTP (``python -m http.server -d ~/.cache/nnzoo``), is a mirror for the others. ``file://``
URLs work as well (a shared drive). When the mirror fails the dataset's own mirrors are tried, and the error says
which URLs failed and why.

Files a user put on disk are read as they are: an unknown checksum there is a warning, since people bring
subsets and re-exports. Checksums guard downloads, where a mismatch rejects the file.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.parse
import urllib.request
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from tqdm import tqdm

from ..errors import DataNotFoundError, UserError

SYSTEM_DIRS = (Path("/usr/share/datasets"),)
DOWNLOAD_TIMEOUT_S = 30
MIRROR_ENV = "NNZOO_MIRROR"


@dataclass(frozen=True)
class RemoteFile:
    name: str  # as on the mirror, e.g. "train-images-idx3-ubyte.gz"
    md5: str  # of the file as downloaded
    # Digests of other trusted copies: the decompressed file, or a distribution's re-compressed one.
    other_md5: tuple[str, ...] = ()

    @property
    def stem(self) -> str:
        """The name without .gz: torchvision and many users keep the extracted file."""
        return self.name[:-3] if self.name.endswith(".gz") else self.name


@dataclass(frozen=True)
class Source:
    """A dataset's files, the folder names it may sit under and the mirrors it downloads from."""

    name: str
    folders: tuple[str, ...]  # looked for under each root: "mnist", torchvision's "MNIST/raw", ...
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]  # base URLs, tried in order


def cache_dir() -> Path:
    """``NNZOO_CACHE_DIR`` if set, else the user cache folder of this OS: ``$XDG_CACHE_HOME/nnzoo`` or
    ``~/.cache/nnzoo`` on Linux (where it always was), ``~/Library/Caches/nnzoo`` on macOS,
    ``%LOCALAPPDATA%\\nnzoo\\Cache`` on Windows."""
    if os.environ.get("NNZOO_CACHE_DIR"):
        return Path(os.environ["NNZOO_CACHE_DIR"]).expanduser()
    return Path(platformdirs.user_cache_dir("nnzoo", appauthor=False))


def search_roots(data_dir: str | os.PathLike | None) -> list[Path]:
    roots: list[Path] = []
    if data_dir:
        roots.append(Path(data_dir).expanduser())
    if os.environ.get("NNZOO_DATA_DIR"):
        roots.append(Path(os.environ["NNZOO_DATA_DIR"]).expanduser())
    roots.append(cache_dir())
    roots.extend(SYSTEM_DIRS)
    return roots


def locate(source: Source, data_dir: str | os.PathLike | None = None, download: bool = True) -> dict[str, Path]:
    """Return ``{remote file name: local path}`` for every file of ``source``, downloading when needed."""
    roots = search_roots(data_dir)
    for root in roots:
        for folder in source.folders:
            found = _complete_folder(root / folder, source.files)
            if found:
                for f, path in found.items():
                    _warn_if_unknown(f, path)
                return {f.name: p for f, p in found.items()}
    target = cache_dir() / source.folders[0]
    where = ", ".join(str(r / source.folders[0]) for r in roots)
    names = ", ".join(f.name for f in source.files)
    if download:
        try:
            return download_files(source, target)
        except OSError as e:
            reason = f"the download failed ({e})"
    else:
        reason = "downloads are off (data.download=false)"
    raise DataNotFoundError(
        f"{source.name} is not on this machine and {reason}: put {names} (gzipped or not) into "
        f"{Path(data_dir or '<DIR>') / source.folders[0]} and pass --data-dir (or set NNZOO_DATA_DIR); "
        f"looked in {where}."
    )


def _complete_folder(folder: Path, files: Sequence[RemoteFile]) -> dict[RemoteFile, Path] | None:
    if not folder.is_dir():
        return None
    found = {}
    for f in files:
        for candidate in (folder / f.name, folder / f.stem):
            if candidate.is_file():
                found[f] = candidate
                break
        else:
            return None
    return found


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _warn_if_unknown(f: RemoteFile, path: Path) -> None:
    # Only files in the form we know a digest for are checked; a mismatch is a warning (subsets, re-exports).
    if path.name == f.name or f.other_md5:
        digest = md5sum(path)
        if digest != f.md5 and digest not in f.other_md5:
            warnings.warn(
                f"{path} does not match the published checksum of {f.name}; reading it as it is.", stacklevel=3
            )


def download_files(source: Source, target: Path) -> dict[str, Path]:
    """Download every file of ``source`` into ``target``, trying each mirror in turn; md5-checked, atomic."""
    target.mkdir(parents=True, exist_ok=True)
    out = {}
    for f in source.files:
        dest = target / f.name
        if dest.is_file() and md5sum(dest) == f.md5:
            out[f.name] = dest
            continue
        errors = []
        for url, label in _urls(source, f):
            try:
                _fetch(url, dest, f.md5)
                out[f.name] = dest
                break
            except (OSError, ValueError) as e:
                errors.append(f"{url}{label}: {e}")
        else:
            raise OSError("; ".join(errors))
    return out


def _urls(source: Source, f: RemoteFile) -> list[tuple[str, str]]:
    """Where ``f`` is fetched from, in order, each with what an error should add to its URL: NNZOO_MIRROR's copy
    first (FOLDER/NAME under it, the layout of a data folder), then the dataset's own mirrors (NAME under each)."""
    urls = [(mirror.rstrip("/") + "/" + urllib.parse.quote(f.name), "") for mirror in source.mirrors]
    base = os.environ.get(MIRROR_ENV, "").strip()
    if base:
        scheme = urllib.parse.urlsplit(base)
        if scheme.scheme not in ("http", "https", "file") or (scheme.scheme != "file" and not scheme.netloc):
            raise UserError(f"{MIRROR_ENV}={base} is not a URL: give one like https://mirror.example.org/nnzoo "
                            "or file:///shared/datasets.")  # fmt: skip
        path = urllib.parse.quote(f"{source.folders[0]}/{f.name}")  # names may hold non-ASCII (全唐诗/...)
        urls.insert(0, (base.rstrip("/") + "/" + path, f" ({MIRROR_ENV})"))
    return urls


def _fetch(url: str, dest: Path, md5: str) -> None:
    print(f"Downloading {url}", file=sys.stderr, flush=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        h = hashlib.md5()
        with (os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp,
              _progress(resp, dest.name) as bar):  # fmt: skip
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                h.update(chunk)
                out.write(chunk)
                bar.update(len(chunk))
        if h.hexdigest() != md5:
            raise ValueError(f"checksum mismatch (md5 {h.hexdigest()}, expected {md5})")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _progress(resp: Any, name: str) -> tqdm:
    """A progress bar on a terminal; nothing in a log or a pipe, where the "Downloading URL" line says enough and
    a bar's carriage returns would only garble the file. pythonw on Windows has no stderr at all."""
    size = resp.headers.get("Content-Length")
    tty = sys.stderr is not None and sys.stderr.isatty()
    return tqdm(total=int(size) if size and size.isdigit() else None, desc=name, unit="B", unit_scale=True,
                unit_divisor=1024, leave=False, disable=not tty, file=sys.stderr)  # fmt: skip
