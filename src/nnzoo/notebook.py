"""Whether this process runs inside a Jupyter kernel, and showing pictures there.

IPython is never imported here: a kernel has already imported it, so when ``sys.modules`` lacks it there is no
notebook, and a plain ``python`` or ``nnzoo`` process (where IPython may not even be installed) pays nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path


def in_notebook() -> bool:
    """True inside a Jupyter kernel (a notebook, JupyterLab, Colab); False in a terminal, a script, plain IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def show_images(paths: Iterable[str | Path]) -> bool:
    """Show PNG files inline when running in a Jupyter kernel; returns whether they were shown."""
    if not in_notebook():
        return False
    from IPython.display import Image, display

    for path in paths:
        if Path(path).suffix.lower() == ".png" and Path(path).is_file():
            display(Image(filename=str(path)))
    return True
