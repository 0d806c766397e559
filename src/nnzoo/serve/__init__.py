"""`nnzoo serve`: trained runs behind an HTTP API and a web page (FastAPI + uvicorn, the optional extra
``nnzoo[serve]``). This module imports neither, so the core package works without them; see app.py for the
endpoints, served.py for what each kind of model does, batching.py for how predict requests share a forward pass.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from .limits import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_CONNECTIONS
from .served import Served, Settings, load_models

if TYPE_CHECKING:
    from fastapi import FastAPI

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# Module names of the packages `pip install "nnzoo[serve]"` brings: (importable as, package name).
PACKAGES = (
    (("fastapi",), "fastapi"),
    (("uvicorn",), "uvicorn"),
    (("python_multipart", "multipart"), "python-multipart"),
)


def require_packages(needed: Sequence[str] = ("fastapi", "uvicorn", "python-multipart")) -> None:
    """One sentence naming the extra to install when a package the server needs is missing."""
    missing = [pkg for modules, pkg in PACKAGES if pkg in needed
               and not any(importlib.util.find_spec(m) is not None for m in modules)]  # fmt: skip
    if missing:
        raise UserError(f"nnzoo serve needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                        'not installed: pip install "nnzoo[serve]".')  # fmt: skip


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name or an interface's address: it may be reachable from elsewhere


def choose_host(host: str | None) -> tuple[str, str | None]:
    """The address to listen on and, when it is beyond loopback, the warning to print. Without ``--host`` the
    server listens on 127.0.0.1 only: it has no authentication, so exposing it must be asked for."""
    if host is None:
        return DEFAULT_HOST, None
    if not host.strip():
        raise UserError("--host must name an address, such as 127.0.0.1 or 0.0.0.0.")
    if is_loopback(host):
        return host, None
    return host, (f"listening on {host}, beyond this machine's loopback: anyone who can reach this port can use "
                  "these models (nnzoo serve has no authentication).")  # fmt: skip


def build_app(run_dirs: Sequence[str | os.PathLike], *, device: str | None = None, max_batch: int | None = None,
              batch_wait_ms: float | None = None, body_timeout: float = BODY_TIMEOUT_S) -> FastAPI:  # fmt: skip
    """The FastAPI application serving these run folders (what `nnzoo serve` runs; a test client can call it)."""
    require_packages(("fastapi", "python-multipart"))
    _check_positive("--body-timeout", body_timeout)
    settings = Settings(device=device or "auto")
    if max_batch is not None:
        if max_batch < 1:
            raise UserError(f"--max-batch must be at least 1, not {max_batch}.")
        settings.max_batch = max_batch
    if batch_wait_ms is not None:
        if not 0 <= batch_wait_ms <= 1000:
            raise UserError(f"--batch-wait-ms must be between 0 and 1000, not {batch_wait_ms}.")
        settings.batch_wait_ms = batch_wait_ms
    from .app import create_app  # lazy: app.py imports fastapi, the optional nnzoo[serve] extra

    return create_app(load_models([Path(d) for d in run_dirs], settings), body_timeout=body_timeout)


def _check_positive(flag: str, value: float) -> None:
    if not value > 0 or value == float("inf"):
        raise UserError(f"{flag} must be a number of seconds above 0, not {value}.")


def check_port(port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, not {port}.")


def listen(host: str, port: int) -> socket.socket:
    """A bound socket (port 0: any free port), or one sentence saying why not."""
    check_port(port)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        if hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # Windows, where SO_REUSEADDR lets a second server share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        else:  # Unix: restart at once on a port whose old connections are still in TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        raise UserError(f"Cannot listen on {host}:{port} ({e.strerror or e}).") from None
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(run_dirs: Sequence[str | os.PathLike], *, host: str | None = None, port: int = DEFAULT_PORT,
          device: str | None = None, max_batch: int | None = None, batch_wait_ms: float | None = None,
          header_timeout: float = HEADER_TIMEOUT_S, body_timeout: float = BODY_TIMEOUT_S,
          max_connections: int = MAX_CONNECTIONS, quiet: bool = False) -> None:  # fmt: skip
    """Serve the runs until interrupted (Ctrl-C). A request's headers must arrive within ``header_timeout`` seconds
    and its body within ``body_timeout`` more (else 408 and the connection closed); at most ``max_connections``
    connections are served at once (a request on one more gets 503)."""
    require_packages()
    import uvicorn  # lazy, as fastapi above: nnzoo[serve]

    _check_positive("--header-timeout", header_timeout)
    if max_connections < 1:
        raise UserError(f"--max-connections must be at least 1, not {max_connections}.")
    host, warning = choose_host(host)
    check_port(port)  # before the models load, which takes a while
    app = build_app(run_dirs, device=device, max_batch=max_batch, batch_wait_ms=batch_wait_ms,
                    body_timeout=body_timeout)  # fmt: skip
    from .connections import uvicorn_config  # lazy: it imports uvicorn

    config = uvicorn_config(app, header_timeout=header_timeout, max_connections=max_connections, quiet=quiet)
    sock = listen(host, port)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    print(
        f"nnzoo serve: {len(app.state.models)} model(s) ({', '.join(app.state.models)}) at {url(sock)} "
        f"(API docs at {url(sock)}docs); Ctrl-C stops",
        flush=True,
    )
    uvicorn.Server(config).run(sockets=[sock])


__all__ = ["Served", "build_app", "choose_host", "is_loopback", "serve"]
