"""The edges of `nnzoo serve` with real sockets on 127.0.0.1: a client slow to send its headers is cut off, a slow
body is answered 408, and past the connection cap a request gets 503. Short timeouts (1-2 s); every wait is bounded
and the server stops at the end of each test."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason='nnzoo serve needs its extra: pip install "nnzoo[serve]"')

from conftest import uvicorn_in_a_thread

from nnzoo.cli import build_parser, main
from nnzoo.serve import build_app
from nnzoo.serve.connections import uvicorn_config

WAIT_S = 10  # the most any read waits: only reached when the server fails to act


@contextmanager
def server(run: Path, *, header_timeout: float = 10, body_timeout: float = 10,
           max_connections: int = 16) -> Iterator[tuple[str, int]]:  # fmt: skip
    """`nnzoo serve`'s app and uvicorn configuration on a free loopback port, in a thread; yields (host, port)."""
    app = build_app([run], device="cpu", body_timeout=body_timeout)
    config = uvicorn_config(app, header_timeout=header_timeout, max_connections=max_connections, quiet=True)
    config.log_level = "warning"
    with uvicorn_in_a_thread(config) as sock:
        yield sock.getsockname()[:2]


def connect(address: tuple[str, int]) -> socket.socket:
    s = socket.create_connection(address, timeout=WAIT_S)
    s.settimeout(WAIT_S)
    return s


def read_until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (at most WAIT_S of silence)."""
    chunks = []
    while chunk := s.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(s: socket.socket) -> bytes:
    """One response whose body is JSON or text with a Content-Length (enough for /health and errors)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.lower().split(b"\r\n") if line.startswith(b"content-length"))
    )
    while len(body) < length:
        body += s.recv(65536)
    return data


GET_HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def test_headers_sent_too_slowly_are_cut_off(serve_runs: dict[str, Path]) -> None:
    with server(serve_runs["digits"], header_timeout=1) as address:
        with connect(address) as ok:  # a quick client: served, and again on the same connection
            for _ in range(2):
                ok.sendall(GET_HEALTH)
                assert read_response(ok).startswith(b"HTTP/1.1 200")
        with connect(address) as slow, connect(address) as silent:
            start = time.monotonic()
            slow.sendall(b"GET /health HTTP/1.1\r\nHo")  # half a header line, then nothing
            assert read_until_closed(slow).startswith(b"HTTP/1.1 408")
            assert read_until_closed(silent) == b""  # connected and never said anything: closed too
            assert time.monotonic() - start < 1 + 2  # the timeout, and some slack for a busy machine
        with connect(address) as trickle:  # a byte every 0.2 s: each arrives, the headers never do in time
            start = time.monotonic()
            with pytest.raises(OSError):  # BrokenPipe / ConnectionReset once the server has closed
                for byte in GET_HEALTH[:-2]:
                    trickle.sendall(bytes([byte]))
                    time.sleep(0.2)
                    assert time.monotonic() - start < 1 + 2, "still connected after the header timeout"
        with connect(address) as ok:  # the server is fine afterwards
            ok.sendall(GET_HEALTH)
            assert read_response(ok).startswith(b"HTTP/1.1 200")


def test_a_slow_body_is_answered_408_and_closed(serve_runs: dict[str, Path]) -> None:
    body = b'{"pixels": [[0, 0], [0, 0]]}'
    head = (b"POST /v1/models/digits/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))  # fmt: skip
    with server(serve_runs["digits"], body_timeout=1) as address:
        with connect(address) as s:
            start = time.monotonic()
            s.sendall(head + body[:5])  # the headers at once, then the body stalls
            answer = read_until_closed(s)
            assert answer.startswith(b"HTTP/1.1 408") and b"took longer than 1 s" in answer
            assert b"connection: close" in answer.lower() and time.monotonic() - start < 1 + 2
        with connect(address) as s:  # the whole body in time: answered
            s.sendall(head + body)
            assert read_response(s).startswith(b"HTTP/1.1 200")


def test_past_the_connection_cap_requests_get_503(serve_runs: dict[str, Path]) -> None:
    with server(serve_runs["digits"], max_connections=3) as address:
        held = [connect(address) for _ in range(3)]
        try:
            for s in held:
                s.sendall(b"GET /health HTTP/1.1\r\n")  # three connections, their requests not yet complete
            time.sleep(0.3)  # let the server accept them (bounded: the assertions below do not depend on it alone)
            with connect(address) as fourth:
                fourth.sendall(GET_HEALTH)
                answer = read_until_closed(fourth)
                assert answer.startswith(b"HTTP/1.1 503"), answer[:80]
            held[0].sendall(b"Host: 127.0.0.1\r\n\r\n")  # one of the three within the cap finishes: served
            assert read_response(held[0]).startswith(b"HTTP/1.1 200")
        finally:
            for s in held:
                s.close()


def test_serve_flags(serve_runs: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    args = build_parser().parse_args(["serve", "run", "--header-timeout", "2.5", "--body-timeout", "5",
                                      "--max-connections", "8"])  # fmt: skip
    assert (args.header_timeout, args.body_timeout, args.max_connections) == (2.5, 5.0, 8)
    args = build_parser().parse_args(["serve", "run"])
    assert args.header_timeout is args.body_timeout is args.max_connections is None  # serve's defaults: 10, 30, 256
    for flag, value, sentence in [("--header-timeout", "0", "--header-timeout must be a number of seconds above 0"),
                                  ("--body-timeout", "nan", "--body-timeout must be a number of seconds above 0"),
                                  ("--max-connections", "0", "--max-connections must be at least 1")]:  # fmt: skip
        assert main(["serve", str(serve_runs["digits"]), flag, value, "--port", "0"]) == 2  # refused before serving
        assert sentence in capsys.readouterr().err
