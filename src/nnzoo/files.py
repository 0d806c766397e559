"""The one way nnzoo writes a file it must never leave half-written: checkpoints, metrics, configs.

``atomic_write`` writes to a temporary file in the same folder (``.NAME.XXXX.tmp``), fsyncs it and renames it
over NAME, so a kill at any moment leaves either the old file or the new one. A write the system refuses (a full
disk, ``ulimit -f``, a read-only folder) becomes a :class:`WriteFailed`, one sentence naming the file; the old
file is untouched. ``remove_orphans`` deletes the temporary files of writes that were killed.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .errors import UserError

_UMASK = os.umask(0o022)  # reading the umask means setting it: put it back at once
os.umask(_UMASK)


class WriteFailed(UserError):
    """The system refused to write ``path`` (its earlier version, if any, is intact)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"could not write {path}: {reason}")
        self.path, self.reason = path, reason


def write_error(path: Path, err: BaseException) -> WriteFailed | None:
    """The WriteFailed an exception raised while writing ``path`` stands for, or None if it is not a refused write
    (torch.save reports one as a RuntimeError from its C++ writer)."""
    if isinstance(err, OSError):
        return WriteFailed(path, err.strerror or str(err))
    if isinstance(err, RuntimeError) and _REFUSED.search(str(err)):
        return WriteFailed(path, str(err).splitlines()[0])
    return None


# How PyTorch's C++ writers (torch.save, TorchScript, ONNX) word a write the system refused.
_REFUSED = re.compile(r"failed writing|write failed|unexpected pos|no space left|file too large|quota", re.IGNORECASE)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """``write(file)`` into a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_UMASK)  # as open() would create it (mkstemp's are private to the user)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except BaseException as e:
        failed = write_error(path, e)
        if failed is None:
            raise
        raise failed from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def append_text(path: str | os.PathLike, text: str) -> None:
    """Append to a log (metrics.jsonl), with a refused write reported as WriteFailed like the others."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as e:
        raise write_error(Path(path), e) from None


def remove_orphans(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files killed writes left in ``folder`` (``.NAME.XXXX.tmp``, and the ``NAME.tmp`` of
    older versions); returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob(".*.tmp") if p.is_file()] + [p for p in folder.glob("*.jsonl.tmp") if p.is_file()]
    for p in found:
        p.unlink(missing_ok=True)
    return found


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
