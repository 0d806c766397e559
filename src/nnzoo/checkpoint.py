"""One checkpoint schema: tensors and primitives only, written atomically, read with ``weights_only=True``.

So a checkpoint never runs code when it is loaded, and an interrupted save never leaves a half-written file
where the last good one was: files.atomic_write writes a temporary file in the same folder, fsyncs it, then renames
it over.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import files
from .errors import UserError

SCHEMA = 1
# What every checkpoint holds, and the types of the keys a run folder's readers use when present.
REQUIRED = {"config": dict, "spec": dict, "model": dict}
OPTIONAL = {"history": list, "epoch": int, "global_step": int}


def save(payload: dict[str, Any], path: str | Path) -> None:
    """Write ``payload`` atomically (files.atomic_write); a refused write raises WriteFailed, the old file kept."""
    files.atomic_write(path, lambda fh: torch.save({"schema": SCHEMA, **payload}, fh))


def copy(src: str | Path, dest: str | Path) -> None:
    """``src`` to ``dest`` byte for byte, as atomically as ``save``."""
    data = Path(src).read_bytes()
    files.atomic_write(dest, lambda fh: fh.write(data))


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"No checkpoint at {path}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (a damaged file surfaces as many exception types)
        raise UserError(f"{path} is not a readable nnzoo checkpoint ({type(e).__name__}).") from None
    if not isinstance(payload, dict) or payload.get("schema") != SCHEMA:
        raise UserError(f"{path} is not an nnzoo checkpoint of schema {SCHEMA}.")
    return payload


def check_schema(payload: dict[str, Any], path: str | Path) -> None:
    """The keys (and their types) any reader of ``payload`` relies on, refused as one sentence naming the file."""
    for key, kind in {**REQUIRED, **OPTIONAL}.items():
        if key not in payload:
            if key in REQUIRED:
                raise UserError(f"{path} is damaged or not a run's checkpoint: it has no {key!r}.")
        elif not isinstance(payload[key], kind) or isinstance(payload[key], bool):
            raise UserError(f"{path} is damaged: its {key!r} is a {type(payload[key]).__name__}, not a "
                            f"{kind.__name__}.")  # fmt: skip
    bad = next((k for k, v in payload["model"].items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise UserError(f"{path} is damaged: its weights hold {bad!r}, which is not a tensor.")


def check_weights(module: torch.nn.Module, state: dict[str, Any], path: str | Path, what: str) -> None:
    """``state`` fits ``module`` (the same names, the same shapes), else one sentence saying where it differs."""
    own = module.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [n for n, t in own.items() if n in state and tuple(state[n].shape) != tuple(t.shape)]
    if missing:
        why = f"it lacks {missing[0]!r}"
    elif unexpected:
        why = f"it has an unknown {unexpected[0]!r}"
    elif wrong:
        n = wrong[0]
        why = f"{n!r} is {tuple(state[n].shape)} in the checkpoint but {tuple(own[n].shape)} in the model"
    else:
        return
    raise UserError(f"{path} does not belong to the {what} its config describes: {why}.")


def find(run_dir: str | Path, which: str = "best") -> Path:
    """``checkpoints/best.pt`` (falling back to ``last.pt``), with a clear sentence when the run has none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a folder: give the run folder that `nnzoo train` wrote.")
    names = ["best.pt", "last.pt"] if which == "best" else ["last.pt"]
    for name in names:
        p = run_dir / "checkpoints" / name
        if p.is_file():
            return p
    raise UserError(f"{run_dir} holds no checkpoint (looked for checkpoints/{' or '.join(names)}).")


def capture_rng() -> dict[str, Any]:
    """Every random stream a run draws from, as tensors and primitives."""
    version, state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    out = {
        "python": {"version": version, "state": torch.tensor(state, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },  # fmt: skip
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(rng: dict[str, Any]) -> None:
    p = rng["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    n = rng["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
