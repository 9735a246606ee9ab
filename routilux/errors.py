"""Errors raised by the job-state layer of :mod:`routilux`.

The tree::

    JobStateError
    ├── ReadOnlyJobStateError (+TypeError)    a mutator was called on a read-only JobState
    └── ReplayError (+ValueError)              events cannot be folded into a JobState
        ├── UnknownEventKindError              an event kind this version does not know
        └── SchemaVersionError                 events or a snapshot from a newer schema

Values that cannot be stored raise :class:`eventlog.EventEncodingError` (a ``TypeError``
naming the bad value's path) and leave the job unchanged.
"""

from __future__ import annotations

__all__ = [
    "JobStateError",
    "ReadOnlyJobStateError",
    "ReplayError",
    "SchemaVersionError",
    "UnknownEventKindError",
]


class JobStateError(Exception):
    """Base class of every error raised by the JobState layer."""


class ReadOnlyJobStateError(JobStateError, TypeError):
    """A mutator was called on a read-only JobState (from ``at()``, ``from_events()``,
    ``load(version=...)`` or ``open(readonly=True)``)."""


class ReplayError(JobStateError, ValueError):
    """Events cannot be folded into a JobState (gap in seqs, bad payload, ...).

    Attributes:
        seq: the seq of the offending event, or ``None``.
    """

    def __init__(self, message: str, seq: int | None = None) -> None:
        self.seq = seq
        super().__init__(message if seq is None else f"event seq {seq}: {message}")


class UnknownEventKindError(ReplayError):
    """An event kind this version of routilux does not know (a newer writer, or damage)."""


class SchemaVersionError(ReplayError):
    """Events or a snapshot were written by a newer schema version than this one reads."""
