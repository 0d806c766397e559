"""How long a client may take, and how many may be connected: the edges uvicorn leaves open.

uvicorn cuts an idle keep-alive connection (``timeout_keep_alive``) and answers 503 over ``limit_concurrency``,
but it waits forever for the headers of a request: a client that connects and sends nothing, or sends a header
line a byte at a time, holds its connection as long as it likes. ``HeaderDeadline`` is uvicorn's h11 protocol
with one timer more: from the connection (or the first byte of the next request on a keep-alive one) to the end
of the headers. A slow body is the app's to time (app.py, ``BodyDeadline``: 408), since only it reads the body.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

KEEP_ALIVE_S = 5  # uvicorn's default: an idle keep-alive connection is closed after this
MAX_HEADER_BYTES = 16 * 1024  # h11's default: a request line and headers larger than this are a 400
TOO_SLOW = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 22\r\n"
    b"connection: close\r\n\r\nheaders took too long\n"
)


class HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are not complete ``header_timeout``
    seconds after it opened (or after the first byte of its next request)."""

    header_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = self.loop.call_later(self.header_timeout, self._too_slow)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:  # the first bytes of the next request
            self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the headers are in (h11 has moved on to the body, or done)
            self._cancel_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0]:  # part of a request arrived: say why before closing
            self.transport.write(TOO_SLOW)
        self.transport.close()


def uvicorn_config(app: Any, *, header_timeout: float, max_connections: int, quiet: bool = False) -> uvicorn.Config:
    """The uvicorn configuration of `nnzoo serve`: h11 with a header deadline, at most ``max_connections`` open
    connections served (the next request gets a 503), idle keep-alive connections closed after 5 s."""
    protocol = type("HeaderDeadline", (HeaderDeadline,), {"header_timeout": float(header_timeout)})
    # uvicorn answers 503 once the connections open, this one included, reach limit_concurrency: + 1 lets
    # exactly max_connections be served at once.
    return uvicorn.Config(app, http=protocol, limit_concurrency=max_connections + 1, timeout_keep_alive=KEEP_ALIVE_S,
                          h11_max_incomplete_event_size=MAX_HEADER_BYTES, log_level="info", access_log=not quiet,
                          lifespan="on")  # fmt: skip
