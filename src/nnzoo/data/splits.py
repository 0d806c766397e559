"""How a user's data is cut into train / validation / test: the rule every user-data loader follows.

- A split the user gives is respected: sub-folders ``train/ val/ test/`` of an image folder, or a column of a table
  or of labelled texts (``--split-column``) whose values say ``train``, ``val`` (or ``valid``, ``validation``,
  ``dev``) or ``test`` for each row.
- Otherwise a fixed, seeded, stratified split: each class's samples (for a regression target, each tenth of the
  target's range by quantile, fewer for under 100 samples) are shuffled with ``data.split_seed`` and cut 80 / 10 / 10, so every split keeps
  the classes' proportions and the same data gives the same split on every machine. ``data.val_size`` (a fraction,
  or a count of samples) changes the validation share; 0 leaves validation out.
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import DataConfig
from ..errors import UserError

VAL_FRACTION = TEST_FRACTION = 0.1
SPLIT_NAMES = {"train": 0, "training": 0, "val": 1, "valid": 1, "validation": 1, "dev": 1, "test": 2}


def val_fraction(cfg: DataConfig, n: int) -> float:
    """The validation share: 10 % unless data.val_size says otherwise."""
    if cfg.val_size is None:
        return VAL_FRACTION
    return float(cfg.val_size) if cfg.val_size < 1 else min(1.0, cfg.val_size / max(n, 1))


def strata(y: torch.Tensor | np.ndarray, classes: bool) -> np.ndarray:
    """What a split keeps in proportion: the class of each sample, or the decile of a numeric target."""
    y = np.asarray(y)
    if classes:
        return y.astype(np.int64)
    bins = max(1, min(10, len(y) // 10))  # ten samples a bin at least, so every bin gives the test split one
    edges = np.quantile(y, np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(edges, y, side="right")


def stratified_split(groups: np.ndarray, cfg: DataConfig, test_fraction: float = TEST_FRACTION
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Indices of train / validation / test: each group shuffled with data.split_seed and cut by the fractions.
    A group too small to give every split one sample gives its samples to training first. ``test_fraction`` 0
    cuts only validation (a user gave the test split but no validation split)."""
    rng = np.random.default_rng(cfg.split_seed)
    val_share = val_fraction(cfg, len(groups))
    parts: list[list[int]] = [[], [], []]
    for g in np.unique(groups):
        idx = rng.permutation(np.flatnonzero(groups == g))
        n_test, n_val = round(len(idx) * test_fraction), round(len(idx) * val_share)
        if len(idx) - n_test - n_val < 1:
            n_test, n_val = min(n_test, max(len(idx) - 1, 0)), 0
        parts[2] += idx[:n_test].tolist()
        parts[1] += idx[n_test : n_test + n_val].tolist()
        parts[0] += idx[n_test + n_val :].tolist()
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)  # type: ignore[return-value]


def given_split(values: list[str], where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train / validation / test from a column of split names (case and spaces ignored)."""
    codes = []
    for line, v in enumerate(values, start=1):
        key = str(v).strip().lower()
        if key not in SPLIT_NAMES:
            raise UserError(f"{where}, row {line}: the split column holds {v!r}; each row must say train, val or "
                            "test.")  # fmt: skip
        codes.append(SPLIT_NAMES[key])
    arr = np.asarray(codes)
    train, val, test = (np.flatnonzero(arr == k) for k in range(3))
    if not len(train) or not len(test):
        raise UserError(f"{where}: the split column gives {len(train)} training and {len(test)} test rows; both "
                        "need at least one.")  # fmt: skip
    return train, val, test
