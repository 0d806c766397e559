"""The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/, section "FILE FORMATS").

A file is a magic number ``0x0000 TT DD`` (TT: element type, DD: number of dimensions), DD big-endian int32 sizes,
then the data. We read only the unsigned-byte type (0x08) these datasets use, and check every count.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

_UBYTE = 0x08


def read_idx(path: str | Path, expect_dims: int | None = None) -> torch.Tensor:
    """Read a raw or gzipped IDX file of unsigned bytes into a uint8 tensor."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # the gzip magic; decided by content, not by the file name
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise UserError(f"Cannot read {path}: it is not a readable IDX file or gzip archive ({e}).") from None
    if len(raw) < 4:
        raise UserError(f"{path} is too short to be an IDX file ({len(raw)} bytes).")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != _UBYTE or ndim == 0:
        raise UserError(
            f"{path} is not an IDX file of unsigned bytes: its magic number is 0x{raw[:4].hex()}, "
            "expected 0x00000801 (labels) or 0x00000803 (images)."
        )
    if expect_dims is not None and ndim != expect_dims:
        kind = "labels" if expect_dims == 1 else "images"
        raise UserError(f"{path} holds {ndim}-dimensional data, but {kind} need {expect_dims} dimensions.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path} is truncated: its header is incomplete.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise UserError(
            f"{path} is truncated or corrupt: its header promises {'x'.join(map(str, dims))} = {expected} bytes "
            f"of data but it holds {len(raw) - header}."
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    return torch.from_numpy(array.copy())


def write_idx(path: str | Path, data: np.ndarray | torch.Tensor, compress: bool | None = None) -> None:
    """Write uint8 data as IDX (gzipped when the name ends in .gz): used by tests and to export subsets."""
    path = Path(path)
    arr = np.asarray(data, dtype=np.uint8)
    blob = struct.pack(">HBB", 0, _UBYTE, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        blob = gzip.compress(blob, compresslevel=6)
    path.write_bytes(blob)
