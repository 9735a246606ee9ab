"""Errors of the browser debugger (``routilux-replay ui`` / ``html``).

The tree::

    ReplayError (replay_tools.errors)
    └── UiError                          base class of this package
        ├── BadRequestError (+ValueError)    a request parameter that is missing or invalid
        │                                    (the server answers HTTP 400 with the message)
        └── PortInUseError (+OSError)        the port asked for is taken by another program

Library errors (a bad condition, a bad field path, a damaged log) keep their own classes
from :mod:`replay_tools.errors`; the server turns them into HTTP 400 or 500 answers.
"""

from __future__ import annotations

from ..errors import EXIT_USAGE, ReplayError

__all__ = ["BadRequestError", "PortInUseError", "UiError"]


class UiError(ReplayError):
    """Base class of the errors raised by :mod:`replay_tools.ui`."""

    exit_code = EXIT_USAGE


class BadRequestError(UiError, ValueError):
    """A request parameter is missing or invalid; ``param`` names it."""

    def __init__(self, param: str, reason: str) -> None:
        self.param = param
        self.reason = reason
        super().__init__(f"bad parameter {param!r}: {reason}")


class PortInUseError(UiError, OSError):
    """The TCP port asked for is already in use."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        super().__init__(f"cannot listen on {host}:{port}: {reason} (choose another with --port, or 0 for any free port)")
