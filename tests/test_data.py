from __future__ import annotations

import gzip
import warnings
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
