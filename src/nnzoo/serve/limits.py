"""What one request may ask of `nnzoo serve`, and the errors that say, with an HTTP status, what was wrong.

The caps keep one request from holding the machine: a server answers many people, so a 20,000-character poem or a
10,000-pixel-wide photo is refused in one sentence rather than computed.
"""

from __future__ import annotations

from ..errors import UserError

MAX_BODY_BYTES = 2 * 1024 * 1024  # a whole request: an uploaded image with its form fields, or a JSON body
MAX_IMAGE_SIDE = 2048  # pixels on either side of an uploaded image or a `pixels` array
MAX_PROMPT_CHARS = 500
MAX_TEXT_CHARS = 20_000  # a text to classify (the model reads its first seq_len characters; the longest Tang poems fit)
MAX_ACROSTIC_CHARS = 16  # eight couplets
MAX_LENGTH = 1000  # characters or tokens one generate request writes
MAX_TEMPERATURE = 10.0
MAX_IMAGES = 64  # `n`: one grid for a page
MAX_SEED = 2**31 - 1
MAX_PENDING = 256  # requests waiting per model before the server answers "busy" (503)
MAX_BATCH = 32  # predict requests stacked into one forward pass
BATCH_WAIT_MS = 5.0  # how long the first request of a batch waits for others to join it
# The server's edges (`nnzoo serve --header-timeout --body-timeout --max-connections`; see connections.py).
HEADER_TIMEOUT_S = 10.0  # from a connection (or the next request on it) to the end of its headers
BODY_TIMEOUT_S = 30.0  # from the headers to the end of the body: 2 MB at 70 kB/s
MAX_CONNECTIONS = 256  # open at once; a request on one more is answered 503


def as_dict() -> dict[str, float | int]:
    """The caps, as `GET /v1/models` tells them to clients (the page sizes its inputs by them)."""
    return {"max_body_bytes": MAX_BODY_BYTES, "max_image_side": MAX_IMAGE_SIDE, "max_prompt_chars": MAX_PROMPT_CHARS,
            "max_text_chars": MAX_TEXT_CHARS,
            "max_acrostic_chars": MAX_ACROSTIC_CHARS, "max_length": MAX_LENGTH, "max_temperature": MAX_TEMPERATURE,
            "max_images": MAX_IMAGES, "max_seed": MAX_SEED}  # fmt: skip


class ServeError(UserError):
    """A request the server will not do; ``status`` is the HTTP status it answers with (the sentence is the body).
    Plain :class:`UserError` from the rest of nnzoo (not an image, a character the vocabulary lacks) is a 422."""

    status = 400


class NotFound(ServeError):
    status = 404


class TooLarge(ServeError):
    status = 413


class UnsupportedMedia(ServeError):
    status = 415


class Invalid(ServeError):
    status = 422


class Busy(ServeError):
    status = 503
