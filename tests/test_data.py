from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import http.server
import shutil
import sys
import threading
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import IDX_NAMES, write_mnist_folder

from nnzoo.config import DataConfig
from nnzoo.data import Batches, Split, load_dataset, read_idx, sources, write_idx
from nnzoo.data.vision import split_validation
from nnzoo.errors import DataNotFoundError, UserError


# ---- IDX ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["images.idx", "images.idx.gz"])
def test_idx_round_trip_raw_and_gzip(tmp_path: Path, name: str) -> None:
    data = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, data)
    assert (tmp_path / name).read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\x00\x00")
    out = read_idx(tmp_path / name, expect_dims=3)
    assert out.dtype == torch.uint8 and torch.equal(out, torch.from_numpy(data))


def test_idx_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    labels = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "labels", labels, compress=True)  # gzipped, but no .gz in the name
    assert read_idx(tmp_path / "labels", 1).tolist() == list(range(10))


def test_idx_truncated(tmp_path: Path) -> None:
    write_idx(tmp_path / "x.idx", np.zeros((5, 4, 4), np.uint8))
    blob = (tmp_path / "x.idx").read_bytes()
    (tmp_path / "x.idx").write_bytes(blob[:-3])
    with pytest.raises(UserError, match="truncated or corrupt.*5x4x4 = 80 bytes.*holds 77"):
        read_idx(tmp_path / "x.idx")


def test_idx_wrong_magic(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 20)  # 0x0D = float, not unsigned byte
    with pytest.raises(UserError, match="magic number is 0x00000d03"):
        read_idx(tmp_path / "bad")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(tmp_path / "png")


def test_idx_corrupt_gzip_and_wrong_dims(tmp_path: Path) -> None:
    blob = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02ab")
    (tmp_path / "cut.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(UserError, match="not a readable IDX file or gzip archive"):
        read_idx(tmp_path / "cut.gz")
    write_idx(tmp_path / "labels.gz", np.zeros(3, np.uint8))
    with pytest.raises(UserError, match="1-dimensional data, but images need 3"):
        read_idx(tmp_path / "labels.gz", expect_dims=3)


# ---- finding the files -----------------------------------------------------------------------------------------
def test_data_dir_wins_and_layouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = write_mnist_folder(tmp_path / "mine" / "mnist", n_train=50, n_test=20)
    # torchvision's layout, raw (extracted) files, found through NNZOO_DATA_DIR
    write_mnist_folder(tmp_path / "env" / "MNIST" / "raw", gz=False, n_train=60, n_test=30)
    monkeypatch.setenv("NNZOO_DATA_DIR", str(tmp_path / "env"))
    ds = load_dataset("mnist", data_dir=str(tmp_path / "mine"), val_size=0)
    assert len(ds.train) == 50 and ds.source == str(ours)
    ds = load_dataset("mnist", val_size=0)
    assert len(ds.train) == 60 and len(ds.test) == 30
    assert ds.train.x.shape == (60, 1, 28, 28) and ds.train.x.dtype == torch.uint8


def test_user_files_with_unknown_checksum_only_warn(tmp_path: Path) -> None:
    write_mnist_folder(tmp_path / "mnist", n_train=30, n_test=10)
    with pytest.warns(UserWarning, match="does not match the published checksum"):
        ds = load_dataset("mnist", data_dir=str(tmp_path), val_size=0)
    assert len(ds.train) == 30


def test_missing_dataset_offline_says_what_to_put_where(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("mnist", data_dir=str(tmp_path / "nothing"))
    msg = str(err.value)
    assert "MNIST is not on this machine and the download failed" in msg
    assert "train-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path / "nothing" / "mnist") in msg and "NNZOO_DATA_DIR" in msg
    with pytest.raises(DataNotFoundError, match="downloads are off"):
        load_dataset("mnist", data_dir=str(tmp_path / "nothing"), download=False)


def test_download_checks_md5_and_tries_mirrors_in_order(tmp_path: Path) -> None:
    good = write_mnist_folder(tmp_path / "good", n_train=20, n_test=10)
    bad = tmp_path / "bad"
    bad.mkdir()
    for n in IDX_NAMES:  # same names, wrong bytes: must be rejected by the checksum
        (bad / f"{n}.gz").write_bytes(b"corrupt")
    files = tuple(sources.RemoteFile(f"{n}.gz", sources.md5sum(good / f"{n}.gz")) for n in IDX_NAMES)
    src = sources.Source("Tiny", ("tiny",), files, (f"file://{tmp_path}/missing/", f"file://{bad}/", f"file://{good}/"))
    paths = sources.locate(src, data_dir=None)
    assert all(p.parent == sources.cache_dir() / "tiny" for p in paths.values())
    assert not list((sources.cache_dir() / "tiny").glob("*.part"))
    # Found in the cache the second time: no mirror is needed.
    src_offline = sources.Source("Tiny", ("tiny",), files, ())
    assert sources.locate(src_offline) == paths
    only_bad = sources.Source("Tiny2", ("tiny2",), files, (f"file://{bad}/",))
    with pytest.raises(DataNotFoundError, match="checksum mismatch"):
        sources.locate(only_bad)


@contextlib.contextmanager
def http_folder(root: Path) -> Iterator[tuple[str, list[str]]]:
    """``root`` served over HTTP on 127.0.0.1 (a free port), as `python -m http.server -d ROOT` would: yields the
    base URL and the list of paths requested so far."""
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            requested.append(urllib.parse.unquote(self.path))
            super().do_GET()

        def log_message(self, *args) -> None:  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()


def _tiny_source(tmp_path: Path) -> tuple[sources.Source, Path]:
    """A two-file dataset (one name non-ASCII, in a sub-folder, as chinese-poetry's) whose own mirror is missing,
    and a copy of its files laid out as a data folder: MIRROR/tiny/NAME."""
    mirror = tmp_path / "mirror"
    files = []
    for name, data in [("a.bin", b"\x00\x01tiny"), ("诗/b.txt", "春眠不覺曉".encode())]:
        (mirror / "tiny" / name).parent.mkdir(parents=True, exist_ok=True)
        (mirror / "tiny" / name).write_bytes(data)
        files.append(sources.RemoteFile(name, hashlib.md5(data).hexdigest()))
    return sources.Source("Tiny", ("tiny", "Tiny/raw"), tuple(files), (f"file://{tmp_path}/upstream-gone/",)), mirror


def test_nnzoo_mirror_is_fetched_first_at_folder_slash_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    src, mirror = _tiny_source(tmp_path)
    with http_folder(tmp_path) as (base, requested):
        monkeypatch.setenv("NNZOO_MIRROR", f"{base}/mirror/")  # a path prefix, with or without the last slash
        paths = sources.locate(src)
        assert requested == ["/mirror/tiny/a.bin", "/mirror/tiny/诗/b.txt"]  # the mirror alone was asked
    for name, path in paths.items():
        assert path == sources.cache_dir() / "tiny" / name
        assert path.read_bytes() == (mirror / "tiny" / name).read_bytes()
    # Without a terminal the download says one plain line a file: no progress bar, no carriage returns.
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"Downloading {base}/mirror/tiny/a.bin",
        f"Downloading {base}/mirror/tiny/%E8%AF%97/b.txt",
    ]
    # On a terminal, tqdm draws a bar (redrawn with carriage returns) that names the file and its size.
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setenv("NNZOO_CACHE_DIR", str(tmp_path / "second-cache"))
    monkeypatch.setenv("NNZOO_MIRROR", mirror.as_uri())  # and a file:// mirror: a shared drive
    sources.locate(src)
    err = capsys.readouterr().err
    assert f"Downloading {mirror.as_uri()}/tiny/a.bin" in err and "\ra.bin:   0%|" in err and "/6.00 [" in err


def test_a_failed_mirror_is_named_and_the_dataset_mirrors_follow(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    src, mirror = _tiny_source(tmp_path)
    upstream = tmp_path / "upstream"
    shutil.copytree(mirror / "tiny", upstream)
    with http_folder(tmp_path / "empty-mirror") as (base, requested):
        (tmp_path / "empty-mirror").mkdir()
        monkeypatch.setenv("NNZOO_MIRROR", base)
        # The mirror lacks the files: the dataset's own mirror is tried next and serves them.
        ok = sources.Source("Tiny", ("tiny",), src.files, (f"file://{upstream}/",))
        assert set(sources.locate(ok)) == {"a.bin", "诗/b.txt"} and requested[0] == "/tiny/a.bin"
        with pytest.raises(DataNotFoundError) as err:  # neither has them: the error names the mirror first
            sources.locate(dataclasses.replace(src, folders=("tiny2",)))
    msg = str(err.value)
    assert f"the download failed ({base}/tiny2/a.bin (NNZOO_MIRROR): HTTP Error 404" in msg and "upstream-gone" in msg
    for bad in ("mirror.example.org", "ftp://mirror.example.org/", "https://"):
        monkeypatch.setenv("NNZOO_MIRROR", bad)
        with pytest.raises(UserError, match=f"NNZOO_MIRROR={bad} is not a URL"):
            sources.locate(dataclasses.replace(src, folders=("tiny3",)))


def test_the_cache_stays_where_linux_users_have_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.platform == "linux":  # platformdirs' folder is the old one: existing caches are still found
        assert sources.cache_dir() == tmp_path / "cache" / "nnzoo"  # $XDG_CACHE_HOME/nnzoo (set by conftest)
        monkeypatch.delenv("XDG_CACHE_HOME")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert sources.cache_dir() == tmp_path / "home" / ".cache" / "nnzoo"
    monkeypatch.setenv("NNZOO_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert sources.cache_dir() == tmp_path / "elsewhere" and sources.search_roots(None)[0] == tmp_path / "elsewhere"


def test_bad_files_in_a_data_folder(tmp_path: Path) -> None:
    folder = write_mnist_folder(tmp_path / "mnist", n_train=20, n_test=10)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(19, np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UserError, match="20 images but 19 labels"):
            load_dataset("mnist", data_dir=str(tmp_path))


# ---- splits and batches -----------------------------------------------------------------------------------------
def test_validation_split_is_seeded_and_never_touches_test(data_dir: Path) -> None:
    full = load_dataset("mnist", data_dir=str(data_dir), val_size=0)
    a = load_dataset("mnist", data_dir=str(data_dir), val_size=100, split_seed=1)
    b = load_dataset("mnist", data_dir=str(data_dir), val_size=0.25, split_seed=1)
    c = load_dataset("mnist", data_dir=str(data_dir), val_size=100, split_seed=2)
    for ds in (a, b, c):
        assert torch.equal(ds.test.x, full.test.x) and torch.equal(ds.test.y, full.test.y)
        assert len(ds.train) + len(ds.val) == len(full.train)
    assert len(a.val) == len(b.val) == 100
    assert torch.equal(a.val.x, b.val.x)  # same seed, same split
    assert not torch.equal(a.val.x, c.val.x)
    # train and validation partition the original training set
    rows = {r.numpy().tobytes() for r in full.train.x}
    assert {r.numpy().tobytes() for r in a.val.x} <= rows


def test_split_rejects_sizes_that_leave_nothing() -> None:
    split = Split(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.zeros(10, dtype=torch.long))
    with pytest.raises(UserError, match="leaves no training data"):
        split_validation(split, 10, 0)


def test_batches_match_torchvision_normalize_and_cover_each_sample_once() -> None:
    x = torch.randint(0, 256, (130, 1, 28, 28), dtype=torch.uint8)
    y = torch.arange(130)
    b = Batches(Split(x, y), 64, shuffle=True, seed=3, mean=(0.1307,), std=(0.3081,))
    assert len(b) == 3
    seen = []
    for xb, yb in b:
        expected = (x[yb].float() / 255 - 0.1307) / 0.3081  # ToTensor() then Normalize((0.1307,), (0.3081,))
        torch.testing.assert_close(xb, expected, rtol=1e-5, atol=1e-5)
        seen += yb.tolist()
    assert sorted(seen) == list(range(130)) and seen != list(range(130))
    b.set_epoch(0)
    first = [yb.tolist() for _, yb in b]
    b.set_epoch(1)
    assert [yb.tolist() for _, yb in b] != first
    b.set_epoch(0)
    assert [yb.tolist() for _, yb in b] == first  # the order depends only on (seed, epoch)


def test_digits_is_bundled_and_has_a_fixed_test_split() -> None:
    a = load_dataset("digits", val_size=0.1, split_seed=0)
    b = load_dataset("digits", val_size=0.2, split_seed=5)
    assert a.spec.input_shape == (1, 8, 8) and len(a.test) == 355
    assert torch.equal(a.test.x, b.test.x)
    assert len(a.train) + len(a.val) + len(a.test) == 1797


def test_unknown_dataset_lists_choices() -> None:
    with pytest.raises(
        UserError,
        match="Unknown dataset 'mnsit'. Did you mean 'mnist'.*Valid choices: breast-cancer, chnsenticorp, cifar10",
    ):
        load_dataset(DataConfig(name="mnsit"))


def test_cifar10_binary_batches_are_read_without_unpickling(tmp_path: Path) -> None:
    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}.bin", 3) for i in range(1, 6)] + [("test_batch.bin", 4)]:
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        np.concatenate([labels[:, None], pixels], 1).tofile(folder / name)
    ds = load_dataset("cifar10", data_dir=str(tmp_path), val_size=0)
    assert ds.train.x.shape == (15, 3, 32, 32) and len(ds.test) == 4
    raw = np.fromfile(folder / "test_batch.bin", dtype=np.uint8).reshape(4, 3073)
    assert ds.test.y.tolist() == raw[:, 0].tolist()
    assert torch.equal(ds.test.x[1, 2].flatten(), torch.from_numpy(raw[1, 1 + 2048 :].copy()))  # the blue plane
    (folder / "data_batch_3.bin").write_bytes(b"\x01" * 100)
    with pytest.raises(UserError, match="is truncated: 100 bytes is not a whole number of 3073-byte records"):
        load_dataset("cifar10", data_dir=str(tmp_path))
