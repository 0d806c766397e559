"""Reference recipes: one YAML file each in ``nnzoo/recipes/``, stating the result it is expected to reach.

A recipe is a :class:`RunConfig` written down. ``nnzoo train NAME`` takes a registered name or a path to a YAML
file of the same form; flags and ``--set`` override any value.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from .config import RunConfig
from .errors import UserError
from .registry import Registry

RECIPES: Registry[Path] = Registry("recipe")


def _register_bundled() -> None:
    folder = resources.files("nnzoo") / "recipes"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            path = Path(str(entry))
            RECIPES.add(entry.name[: -len(".yaml")], path, first_sentence(description(path)))


def description(path: Path) -> str:
    """A recipe file's whole description (``nnzoo list recipes --long``)."""
    d = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return " ".join(str(d.get("description", "")).split())


def first_sentence(text: str) -> str:
    """``text`` up to its first full stop that ends a sentence, without the stop: the one line ``nnzoo list``
    shows. A stop inside parentheses ("DCGAN (Radford et al. 2016) for 28x28: ...") or after "al" ("Efron et
    al. 2004") ends no sentence; neither does one followed by a digit or a lower-case letter ("0.5", "e.g. a")."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "." and depth <= 0 and text[i + 1 : i + 2] in ("", " "):
            after = text[i + 2 : i + 3]
            if not text[:i].endswith((" al", " e.g", " i.e", " vs")) and (not after or after.isupper()):
                return text[:i]
    return text


def load_recipe(name_or_path: str) -> RunConfig:
    """A bundled recipe by name, or a YAML file by path."""
    if name_or_path.endswith((".yaml", ".yml")) or Path(name_or_path).is_file():
        path = Path(name_or_path)
        if not path.is_file():
            raise UserError(f"Recipe file {path} does not exist.")
        name = path.stem
    else:
        path, name = RECIPES.get(name_or_path), name_or_path
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"Recipe {path} is not valid YAML ({str(e).splitlines()[0]}).") from None
    if not isinstance(raw, dict):
        raise UserError(f"Recipe {path} must be a YAML mapping of settings.")
    raw.setdefault("recipe", name)
    return RunConfig.from_dict(raw)


_register_bundled()
