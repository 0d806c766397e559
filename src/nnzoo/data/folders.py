"""A user's own folder of images: ``nnzoo train MODEL --data-dir photos/`` trains any image model on it.

The layout is the one people already keep (torchvision's ImageFolder): ``FOLDER/CLASS/*.png`` (jpg, jpeg, bmp,
webp; sub-folders of a class folder count for it), the class names the sorted folder names. Or a split of the
user's own, respected: ``FOLDER/train/CLASS/...``, ``FOLDER/val/CLASS/...`` (or ``valid/``, ``validation/``,
``dev/``) and ``FOLDER/test/CLASS/...``. The split follows data/splits.py's rule:

- no split folders: each class shuffled with data.split_seed and cut 80 / 10 / 10;
- train/ and test/ without val/: validation cut from train/ the same way (data.val_size; 0 leaves it out);
- train/ (and val/) without test/: the test split cut from train/ the same way, stratified;
- a class whose test images nnzoo cuts needs at least ``MIN_PER_CLASS`` images (so it has a test and a
  validation image); with train/ and test/ given, one in each is enough.

Hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints``) and files of other types are ignored, and
counted in the dataset's source line. Every image is decoded once with Pillow: grayscale when every image is (an
RGB image whose three channels are equal counts as grayscale), else RGB (transparency laid over white); at the
images' one size, or resized to ``--image-size HxW`` (bilinear, anti-aliased) when it is given, which mixed sizes
need. The result is cached as uint8 tensors under ``cache_dir()/image-folder/``, keyed by the folder, every image's
path, size and modification time, and the size setting: a second run reads the cache in a second, and any change
to the images decodes them again. Bad data is one sentence (a UserError) that names the file or the class.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from itertools import repeat
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..config import DataConfig
from ..errors import UserError
from ..files import WriteFailed, atomic_write
from .registry import register_dataset
from .sources import cache_dir
from .spec import Dataset, DataSpec, Split
from .splits import SPLIT_NAMES, strata, stratified_split

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
MIN_PER_CLASS = 10  # 80/10/10 of 10 images: 8 to train on, one to validate, one to test
MAX_PIXELS = 40_000_000  # one image larger than this is a bad file (a decompression bomb), as in images.py
MAX_BYTES = 8 << 30  # the decoded images held in memory; more asks for a smaller --image-size
CACHE_VERSION = 1  # bump when the decoding changes, so old caches are not read as new ones
CHUNK = 256  # files per task of the decoding pool
POOL_FROM = 1024  # fewer files decode in this process: starting a pool costs more than it saves
USAGE = "give --data-dir FOLDER with one sub-folder of images per class (FOLDER/cat/1.jpg, FOLDER/dog/2.jpg)"
SPLIT_FOLDERS = ("train", "val", "test")  # how a message names split 0, 1, 2

IMAGE_FOLDER_SPEC = DataSpec("image-folder", extra={"kind": "images", "image_folder": True})


@dataclass
class Listing:
    """What the folder holds, before anything is decoded: the image files in a fixed order and what they are."""

    root: Path
    classes: list[str]
    files: list[str]  # paths relative to root, sorted by split, class and name
    labels: np.ndarray  # class index of each file
    splits: np.ndarray  # 0 train, 1 val, 2 test as the user's folders say; -1 where no split is given
    stamps: list[tuple[int, int]]  # (size in bytes, mtime_ns) of each file: what the cache key hashes
    ignored: int  # hidden files and files of other types


@dataclass
class Decoded:
    """The decoded images (the cache file's content): uint8 (N, C, H, W) of the files kept, in listing order."""

    x: torch.Tensor
    files: list[str]
    skipped: list[tuple[str, str]]  # (file, why) of the files that could not be read
    cached: bool = False


@register_dataset(IMAGE_FOLDER_SPEC, reads=("image_size", "skip_bad_files"),
                  help="your own images: --data-dir FOLDER with one sub-folder per class (or train/ val/ test/ of "
                       "them); decoded once and cached")  # fmt: skip
def image_folder(cfg: DataConfig) -> Dataset:
    listing = scan(_root(cfg))
    _check_counts(listing, listing.labels, listing.splits)  # before a long decode, not after it
    decoded = load_images(listing, cfg.image_hw())
    _refuse_or_warn(decoded.skipped, listing.root, cfg.skip_bad_files)
    position = {f: i for i, f in enumerate(listing.files)} if decoded.skipped else {}
    keep = np.asarray([position[f] for f in decoded.files], dtype=np.int64) if decoded.skipped else None
    labels = listing.labels if keep is None else listing.labels[keep]
    splits = listing.splits if keep is None else listing.splits[keep]
    if decoded.skipped:
        _check_counts(listing, labels, splits)  # a class may have lost its images to --skip-bad-files
    y = torch.from_numpy(labels.astype(np.int64))
    parts = [torch.from_numpy(p) for p in split_indices(labels, splits, cfg)]
    train, val, test = (Split(decoded.x[p], y[p]) for p in parts)
    train, test = _limited(train, cfg.limit_train, cfg.split_seed), _limited(test, cfg.limit_test, cfg.split_seed)
    spec = folder_spec(train, listing.classes)
    return Dataset(spec, train, val if len(val) else None, test, _source(listing, decoded, splits, cfg))


# ---- the folder's layout -----------------------------------------------------------------------------------------
def _root(cfg: DataConfig) -> Path:
    if cfg.data_dir is None:
        raise UserError(f"image-folder reads a folder of your images: {USAGE}.")
    root = Path(cfg.data_dir).expanduser()
    if not root.exists():
        raise UserError(f"{root} does not exist: {USAGE}.")
    if not root.is_dir():
        raise UserError(f"{root} is a file, not a folder: {USAGE}.")
    return root.resolve()


def scan(root: Path) -> Listing:
    """The image files of ``root`` by class (and by split, where its sub-folders are train/ val/ test/)."""
    folders = [p for p in _entries(root) if p.is_dir()]
    given = {p: SPLIT_NAMES[p.name.lower()] for p in folders if p.name.lower() in SPLIT_NAMES}
    if given:
        others = [p.name for p in folders if p not in given and _images_under(p)]
        if others:
            raise UserError(f"{root} holds split folders ({', '.join(p.name for p in given)}) beside class folders "
                            f"({', '.join(others)}): put every class folder inside train/, val/ and test/, or use "
                            "no split folders at all.")  # fmt: skip
        parts = _given_splits(root, given)
    else:
        parts = {-1: _classes_of(root)}
    classes = sorted({c for found, _ in parts.values() for c in found})
    if not classes:
        raise UserError(f"{root} holds no class sub-folders with images ({', '.join(IMAGE_SUFFIXES)}): {USAGE}.")
    if len(classes) == 1:
        raise UserError(f"{root} holds one class ({classes[0]}): a classifier needs at least two sub-folders of "
                        "images, one per class.")  # fmt: skip
    _check_same_classes(root, {k: found for k, (found, _) in parts.items()})
    index = {c: i for i, c in enumerate(classes)}
    files, labels, splits, stamps = [], [], [], []
    for code, (found, _) in sorted(parts.items()):
        for name in sorted(found):
            for rel, stamp in found[name]:
                files.append(rel)
                labels.append(index[name])
                splits.append(code)
                stamps.append(stamp)
    ignored = sum(n for _, n in parts.values()) + _loose_files(root)
    return Listing(root, classes, files, np.asarray(labels, dtype=np.int64), np.asarray(splits, dtype=np.int64),
                   stamps, ignored)  # fmt: skip


def _given_splits(root: Path, given: dict[Path, int]) -> dict[int, tuple[dict, int]]:
    """{split code: (class -> files, files ignored)} of a folder with train/ val/ test/ sub-folders."""
    by_code: dict[int, Path] = {}
    for folder, code in sorted(given.items()):
        if code in by_code:
            raise UserError(f"{root} has two folders for one split, {by_code[code].name}/ and {folder.name}/: keep "
                            "one.")  # fmt: skip
        by_code[code] = folder
    if 0 not in by_code:
        raise UserError(f"{root} has {', '.join(p.name + '/' for p in by_code.values())} but no train/ folder: the "
                        "training images go in train/CLASS/.")  # fmt: skip
    return {code: _classes_of(folder, root) for code, folder in by_code.items()}


def _classes_of(folder: Path, root: Path | None = None) -> tuple[dict[str, list[tuple[str, tuple[int, int]]]], int]:
    """(class name -> [(path relative to root, (size, mtime_ns))], files ignored) of the class folders in
    ``folder``; a class folder without images is left out, with a warning (a class nobody can learn)."""
    root = root or folder
    found: dict[str, list[tuple[str, tuple[int, int]]]] = {}
    ignored = 0
    for sub in _entries(folder):
        if not sub.is_dir():
            continue
        images, others = _walk(sub, root)
        ignored += others
        if images:
            found[sub.name] = images
        else:
            warnings.warn(f"{sub} holds no images ({', '.join(IMAGE_SUFFIXES)}): it is not taken as a class.",
                          stacklevel=2)  # fmt: skip
    return found, ignored


def _walk(folder: Path, root: Path) -> tuple[list[tuple[str, tuple[int, int]]], int]:
    """The image files under ``folder`` (hidden ones left out) with their size and mtime; the count of others."""
    images, others = [], 0
    for top, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = os.path.join(top, name)
            if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                others += 1
                continue
            st = os.stat(path)
            images.append((Path(path).relative_to(root).as_posix(), (st.st_size, st.st_mtime_ns)))
    return images, others


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _loose_files(root: Path) -> int:
    """Files directly in the folder: no class says what they are."""
    return sum(1 for p in root.iterdir() if p.is_file())


def _images_under(folder: Path) -> bool:
    return bool(_walk(folder, folder)[0])


def _check_same_classes(root: Path, parts: dict[int, dict]) -> None:
    """Every split folder the user gave holds the same classes (a class missing from test/ cannot be measured,
    one missing from train/ cannot be learnt)."""
    if -1 in parts:
        return
    train = set(parts[0])
    for code, found in parts.items():
        if code == 0 or set(found) == train:
            continue
        lacks = []
        if train - set(found):
            lacks.append(f"{SPLIT_FOLDERS[code]}/ lacks {', '.join(sorted(train - set(found)))}")
        if set(found) - train:
            lacks.append(f"train/ lacks {', '.join(sorted(set(found) - train))}")
        raise UserError(f"The splits of {root} hold different classes: {'; '.join(lacks)}; give every split folder "
                        "the same class folders.")  # fmt: skip


def _check_counts(listing: Listing, labels: np.ndarray, splits: np.ndarray) -> None:
    """Each class has images enough for the splits nnzoo cuts from it: a test split cut from a pool needs
    MIN_PER_CLASS images of every class in that pool; a given split needs one image of every class in it."""
    cut_test = 2 not in splits
    for code in np.unique(splits):
        pool = labels[splits == code]
        need = MIN_PER_CLASS if cut_test and code in (-1, 0) else 1
        for k, name in enumerate(listing.classes):
            n = int((pool == k).sum())
            if n >= need:
                continue
            where = f"{SPLIT_FOLDERS[code]}/{name}" if code >= 0 else name
            if need == 1:
                raise UserError(f"Class {name!r} has no readable images in {listing.root / where}; every split "
                                "needs at least one image of every class.")  # fmt: skip
            raise UserError(f"Class {name!r} has {n} image{'s' * (n != 1)} in {listing.root / where}; each class "
                            f"needs at least {MIN_PER_CLASS} for nnzoo's 80/10/10 split to give it a validation and a "
                            "test image (add images, or give train/ and test/ folders of your own).")  # fmt: skip


# ---- the split ---------------------------------------------------------------------------------------------------
def split_indices(labels: np.ndarray, splits: np.ndarray, cfg: DataConfig) -> list[np.ndarray]:
    """Indices of train / val / test: the user's split where given, the rest cut by data/splits.py's rule."""
    given = [np.flatnonzero(splits == k) for k in range(3)]
    train = np.flatnonzero(splits <= 0)  # no split folders, or train/
    if len(given[1]) and len(given[2]):
        return given
    if len(given[2]):  # no val/: validation from train/, stratified, data.val_size of it
        keep, val, _ = stratified_split(labels[train], cfg, test_fraction=0.0)
        return [train[keep], train[val], given[2]]
    if len(given[1]):  # no test/: the test split from train/, stratified
        keep, _, test = stratified_split(labels[train], replace(cfg, val_size=0))
        return [train[keep], given[1], train[test]]
    keep, val, test = stratified_split(strata(labels[train], classes=True), cfg)  # train/ alone is a plain folder
    return [train[keep], train[val], train[test]]


def _limited(split: Split, limit: int | None, seed: int) -> Split:
    """data.limit_train / limit_test: a seeded sample of every class, not the first N (which are one class)."""
    if not limit or limit >= len(split):
        return split
    keep = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:limit].sort().values
    return split.subset(keep)


# ---- the spec ----------------------------------------------------------------------------------------------------
def folder_spec(train: Split, classes: list[str]) -> DataSpec:
    """The spec of the decoded images: their shape, the classes, and the training images' per-channel mean and
    std (0..1 scale) that Batches normalises with. ``light_on_dark`` says whether they are mostly dark (a mean
    below one half), so `nnzoo predict` inverts a light-background grayscale file to match."""
    mean, std = channel_stats(train.x)
    return replace(IMAGE_FOLDER_SPEC, input_shape=tuple(train.x.shape[1:]), num_classes=len(classes),
                   class_names=list(classes), mean=mean, std=std, content_fraction=1.0,
                   light_on_dark=bool(sum(mean) / len(mean) < 0.5), extra=dict(IMAGE_FOLDER_SPEC.extra))  # fmt: skip


def channel_stats(x: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 (N, C, H, W) on the 0..1 scale, a chunk at a time (no float copy of all)."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for i in range(0, len(x), chunk):
        part = x[i : i + chunk].to(torch.float64).div_(255).transpose(0, 1).flatten(1)
        total += part.sum(1)
        squares += part.square().sum(1)
    n = max(len(x) * x.shape[2] * x.shape[3], 1)
    mean = total / n
    std = (squares / n - mean.square()).clamp_min(0).sqrt().clamp_min(1e-3)  # a constant channel: no division by 0
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())


def _source(listing: Listing, decoded: Decoded, splits: np.ndarray, cfg: DataConfig) -> str:
    """The line the run prints: the folder, its classes, the split rule and what was left out."""
    given = [SPLIT_FOLDERS[k] + "/" for k in np.unique(splits) if k >= 0]  # in train, val, test order
    rule = f"your {' '.join(given)} split" if given else f"a seeded 80/10/10 split (data.split_seed={cfg.split_seed})"
    left = [f"{listing.ignored} other files ignored"] if listing.ignored else []
    left += [f"{len(decoded.skipped)} unreadable skipped"] if decoded.skipped else []
    notes = "; ".join([f"{len(decoded.files)} images, {len(listing.classes)} classes", rule, *left,
                       "decoded from the cache" if decoded.cached else "decoded and cached"])  # fmt: skip
    return f"{listing.root} ({notes})"


# ---- decoding, once, and the cache -------------------------------------------------------------------------------
def load_images(listing: Listing, hw: tuple[int, int] | None) -> Decoded:
    """The folder's images from the cache when it holds exactly these files decoded this way, else decoded (in a
    pool of processes) and cached. A cache file that does not read is decoded again, never an error."""
    path = cache_path(listing, hw)
    cached = _read_cache(path)
    if cached is not None:
        return cached
    decoded = decode_folder(listing, hw)
    _write_cache(path, decoded)
    return decoded


def cache_path(listing: Listing, hw: tuple[int, int] | None) -> Path:
    """``cache_dir()/image-folder/FOLDER-CONTENT.pt``: FOLDER hashes the folder's path and --image-size (so a new
    version of the images replaces the old file, while two sizes of one folder keep one file each), CONTENT every
    image's relative path, size and mtime_ns and the decoding settings. The channels are no setting: they follow
    from the images, which the key already covers."""
    folder = hashlib.sha256(json.dumps([str(listing.root), hw]).encode()).hexdigest()[:16]
    h = hashlib.sha256(json.dumps([CACHE_VERSION, str(listing.root), hw]).encode())
    for rel, (size, mtime) in zip(listing.files, listing.stamps):
        h.update(f"{rel}\0{size}\0{mtime}\n".encode())
    return cache_dir() / "image-folder" / f"{folder}-{h.hexdigest()[:24]}.pt"


def _read_cache(path: Path) -> Decoded | None:
    if not path.is_file():
        return None
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        if d.get("version") != CACHE_VERSION or d["x"].dtype != torch.uint8 or len(d["x"]) != len(d["files"]):
            return None
        return Decoded(d["x"], list(d["files"]), [tuple(s) for s in d["skipped"]], cached=True)
    except Exception:  # noqa: BLE001  (a truncated or foreign file is only a cache miss)
        return None


def _write_cache(path: Path, decoded: Decoded) -> None:
    """Atomically; then the caches of older versions of the folder go. A cache that cannot be written (a full
    disk, a read-only home) costs the next run a decode, not this run its training."""
    payload = {"version": CACHE_VERSION, "x": decoded.x, "files": decoded.files,
               "skipped": [list(s) for s in decoded.skipped]}  # fmt: skip
    try:
        atomic_write(path, lambda fh: torch.save(payload, fh))
    except WriteFailed as e:
        warnings.warn(f"{e}; the images will be decoded again next time.", stacklevel=3)
        return
    prefix = path.name.split("-")[0] + "-"
    for old in path.parent.glob(prefix + "*.pt"):
        if old != path:
            old.unlink(missing_ok=True)


def decode_folder(listing: Listing, hw: tuple[int, int] | None) -> Decoded:
    """Decode every file: at one size (``hw``, or the first image's own), grayscale when all are, else RGB."""
    paths = [str(listing.root / rel) for rel in listing.files]
    first, size = (0, None) if hw is not None else _first_size(paths)
    results = _decode_everywhere(paths, hw, size)
    kept = [(rel, r) for rel, r in zip(listing.files, results) if r[0] == "ok"]
    skipped = [(rel, r[1]) for rel, r in zip(listing.files, results) if r[0] == "bad"]
    other = next(((rel, r[1]) for rel, r in zip(listing.files, results) if r[0] == "size"), None)
    if other is not None:
        (w, h), (w2, h2) = size, other[1]
        raise UserError(f"The images of {listing.root} differ in size: {listing.files[first]} is {w}x{h} but {other[0]} "
                        f"is {w2}x{h2}; give --image-size HxW (say --image-size {h}x{w}) to resize them all.")  # fmt: skip
    if not kept:
        return Decoded(torch.zeros((0, 1, *(hw or (size[1], size[0]))), dtype=torch.uint8), [], skipped)
    channels = 1 if all(r[2] for _, r in kept) else 3
    h, w = kept[0][1][1].shape[1:]
    _check_memory(len(kept) * channels * h * w, listing.root)
    x = np.empty((len(kept), channels, h, w), dtype=np.uint8)
    for i, (_, r) in enumerate(kept):
        x[i] = r[1]  # a grayscale image in a colour set broadcasts to its three channels
    return Decoded(torch.from_numpy(x), [rel for rel, _ in kept], skipped)


def _first_size(paths: list[str]) -> tuple[int, tuple[int, int] | None]:
    """The index and (width, height) of the first image that opens: the size every other must have without
    --image-size (none opens: every file is reported bad by the decoding itself)."""
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                return i, img.size
        except Exception:  # noqa: BLE001  (Pillow raises many kinds for a broken file)
            continue
    return 0, None


def _check_memory(n_bytes: int, root: Path) -> None:
    if n_bytes > MAX_BYTES:
        raise UserError(f"The images of {root} take {n_bytes / 2**30:.1f} GiB decoded, more than nnzoo holds "
                        f"({MAX_BYTES / 2**30:.0f} GiB): give a smaller --image-size HxW.")  # fmt: skip


def _decode_everywhere(paths: list[str], hw: tuple[int, int] | None, size: tuple[int, int] | None) -> list[tuple]:
    """decode_files over chunks of ``paths`` in a pool of one process per usable core (forked on Linux, where the
    children start at once); a small folder, or a single core, decodes here."""
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    workers = min(_cores(), len(chunks))
    if len(paths) < POOL_FROM or workers < 2:
        return [r for chunk in chunks for r in decode_files(chunk, hw, size)]
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        return [r for part in pool.map(decode_files, chunks, repeat(hw), repeat(size)) for r in part]


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def decode_files(paths: Sequence[str], hw: tuple[int, int] | None, size: tuple[int, int] | None) -> list[tuple]:
    """One chunk, in a worker: ("ok", (C, H, W) uint8, grayscale?) per image, ("bad", why) for a file Pillow
    cannot read, ("size", (w, h)) for one whose size is not ``size`` (it is not decoded: the run stops anyway)."""
    out: list[tuple] = []
    for path in paths:
        try:
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    out.append(("bad", f"{img.width}x{img.height} pixels, more than nnzoo reads"))
                    continue
                if hw is None and img.size != size:
                    out.append(("size", img.size))
                    continue
                if hw is not None and img.format == "JPEG":
                    img.draft(None, (hw[1], hw[0]))  # decode at the smallest 1/2^k scale still at least that size
                a = to_pixels(img, hw)
        except Exception as e:  # noqa: BLE001  (Pillow raises many kinds for a broken file)
            out.append(("bad", str(e).splitlines()[0] if str(e) else type(e).__name__))
            continue
        out.append(("ok", a, a.shape[0] == 1))
    return out


def to_pixels(img: Image.Image, hw: tuple[int, int] | None, channels: int | None = None) -> np.ndarray:
    """(C, H, W) uint8 of an image as a folder's images are decoded (and `nnzoo predict` prepares a file for a model
    trained on them): transparency laid over white, resized to ``hw`` (bilinear, anti-aliased), one channel for a
    grayscale image or an RGB one whose channels are equal, else three; ``channels`` forces one or three."""
    img = _flat(img)
    if hw is not None and img.size != (hw[1], hw[0]):
        img = img.resize((hw[1], hw[0]), Image.Resampling.BILINEAR, reducing_gap=3.0)
    a = np.array(img, dtype=np.uint8)  # a copy: writable, as torch.from_numpy wants
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    if a.shape[0] == 3 and channels != 3 and (a[0] == a[1]).all() and (a[0] == a[2]).all():
        a = a[:1]
    if channels == 1 and a.shape[0] == 3:
        a = np.asarray(img.convert("L"), dtype=np.uint8)[None]
    elif channels == 3 and a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    return np.ascontiguousarray(a)


def _flat(img: Image.Image) -> Image.Image:
    """Mode L or RGB: transparency composited over white (as images.py treats a user's file), 16-bit gray scaled
    down, palettes and CMYK as RGB."""
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba).convert("RGB")
        return flat.convert("L") if img.mode in ("LA", "La") else flat
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img).astype(np.int64)
        top = 65535 if img.mode.startswith("I;16") or a.max() > 255 else 255
        return Image.fromarray((a.clip(0, top) * 255 // top).astype(np.uint8), "L")
    if img.mode in ("1", "F"):
        return img.convert("L")
    if img.mode not in ("L", "RGB"):
        return img.convert("RGB")
    return img


def _refuse_or_warn(skipped: list[tuple[str, str]], root: Path, skip: bool) -> None:
    """Files Pillow could not read: one sentence naming the first (and how many more), or with --skip-bad-files a
    warning naming each."""
    if not skipped:
        return
    if not skip:
        rel, why = skipped[0]
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        raise UserError(f"{root / rel} is not an image nnzoo can read ({why}){more}: remove it, or pass "
                        "--skip-bad-files to skip it.")  # fmt: skip
    for rel, why in skipped:
        warnings.warn(f"skipped {root / rel}: not an image nnzoo can read ({why}).", stacklevel=3)
