"""The record type handed out by every log backend."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Record", "Snapshot", "new_record"]


class Record(NamedTuple):
    """One event in a log.

    A ``NamedTuple`` rather than an attrs class: it is immutable and costs a third of
    the construction time, which matters on the append and replay hot paths.

    Attributes:
        seq: position in the log, 1, 2, 3, ... without gaps.
        ts: integer nanoseconds since the Unix epoch; non-decreasing within a log.
        kind: a short string naming what happened.
        data: the event's payload (a dict), exactly as decoded from the log.
    """

    seq: int
    ts: int
    kind: str
    data: Any


#: ``new_record(Record, (seq, ts, kind, data))``: a Record without the Python-level
#: ``__new__`` a NamedTuple generates (half the cost; the read paths build one per event).
new_record = tuple.__new__


class Snapshot(NamedTuple):
    """A stored state of some projection at a given seq.

    Attributes:
        seq: the last seq folded into ``state``.
        ts: the timestamp of that record (0 for seq 0).
        link: the hash-chain head at ``seq`` (16 bytes), which anchors the snapshot to
            the exact history it was built from.
        schema_version: the projection's schema version, chosen by the caller.
        state: the stored value, as decoded.
        name: where it was read from (file name), for messages.
    """

    seq: int
    ts: int
    link: bytes
    schema_version: int
    state: Any
    name: str = ""
