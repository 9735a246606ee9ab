"""Errors raised by the builtin routines.

The tree::

    BuiltinRoutineError
    ├── ExtractionError (+ValueError)              ResultExtractor: every extractor failed and
    │                                              ``return_original_on_failure`` is off
    └── CallableSerializationError (+ValueError)   a callable in a routine's configuration
                                                   cannot be written to, or read back from, a
                                                   serialized flow

Both also subclass ``ValueError`` because routilux 0.10 raised a plain ``ValueError`` in
these places, so existing ``except ValueError`` code keeps working.
"""

from __future__ import annotations

__all__ = ["BuiltinRoutineError", "CallableSerializationError", "ExtractionError"]


class BuiltinRoutineError(Exception):
    """Base class of every error raised by :mod:`routilux.builtin_routines`."""


class ExtractionError(BuiltinRoutineError, ValueError):
    """ResultExtractor found nothing to extract and was told not to pass the input through.

    Attributes:
        errors: one ``{"extractor": name, "error": message}`` dict per extractor that raised.
    """

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.errors = errors


class CallableSerializationError(BuiltinRoutineError, ValueError):
    """A callable in a routine's configuration cannot be serialized or deserialized.

    Attributes:
        path: where the callable sits in the configuration, e.g. ``_config['routes'][1][1]``.
    """

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path
