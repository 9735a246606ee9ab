"""Errors raised by the job-state layer of :mod:`routilux`.

The tree::

    JobStateError
    ├── ReadOnlyJobStateError (+TypeError)    a mutator was called on a read-only JobState
    │   └── DetachedValueError                 an in-place edit of a value no longer in the job
    ├── PayloadShapeError (+TypeError)         an event payload without its kind's declared shape
    └── ReplayError (+ValueError)              events cannot be folded into a JobState
        ├── UnknownEventKindError              an event kind this version does not know
        └── SchemaVersionError                 events or a snapshot from a newer schema

Values that cannot be stored raise :class:`eventlog.EventEncodingError` (a ``TypeError``
naming the bad value's path) and leave the job unchanged.
"""

from __future__ import annotations

__all__ = [
    "DetachedValueError",
    "JobStateError",
    "PayloadShapeError",
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


class DetachedValueError(ReadOnlyJobStateError):
    """An in-place edit of a value read from a job that is no longer part of it.

    A list or dict read from a JobState stays live while it is part of the job; once it
    was replaced (``update_shared_data`` of its key, an assignment over it, ``pop``,
    ``deserialize``...) it keeps showing what it held, like the original's detached
    object, but refuses changes: they would change nothing in the job.
    """


class PayloadShapeError(JobStateError, TypeError):
    """An event payload that does not have its kind's declared shape (``routilux.job_events``).

    Attributes:
        kind: the event kind.
        field: the payload field at fault (``None``: the payload itself).
        problem: what is wrong with it.
    """

    def __init__(self, kind: str, field: str | None, problem: str) -> None:
        self.kind = kind
        self.field = field
        self.problem = problem
        where = f"field {field!r}" if field is not None else "payload"
        super().__init__(f"{kind} event: {where} {problem}")


class ReplayError(JobStateError, ValueError):
    """Events cannot be folded into a JobState (gap in seqs, bad payload, ...).

    Attributes:
        seq: the seq of the offending event, or ``None``.
        field: the payload field at fault, when the event's shape is wrong, or ``None``.
    """

    def __init__(self, message: str, seq: int | None = None, field: str | None = None) -> None:
        self.seq = seq
        self.field = field
        super().__init__(message if seq is None else f"event seq {seq}: {message}")


class UnknownEventKindError(ReplayError):
    """An event kind this version of routilux does not know (a newer writer, or damage)."""


class SchemaVersionError(ReplayError):
    """Events or a snapshot were written by a newer schema version than this one reads."""
