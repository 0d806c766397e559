"""Errors a user can cause.

Anything raised as :class:`UserError` is a mistake in the user's input (a name, a flag, a file). The CLI prints
its message as one sentence and exits non-zero; internal bugs keep their tracebacks.
"""


class UserError(Exception):
    """A problem the user can fix; ``str(err)`` is the one sentence shown to them."""

    exit_code = 2


class DataNotFoundError(UserError):
    """A dataset is neither on disk nor downloadable (offline, say)."""

    exit_code = 3


class IncompatibleData(UserError):
    """A model was given a kind of data it does not take (a language model on images, say)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (docker stop, a scheduler, torchrun stopping its workers), which the CLI raises in the main thread
    to be handled as Ctrl-C: the trainer's interrupt path keeps last.pt consistent and says how to resume."""
