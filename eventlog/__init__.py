"""eventlog: a crash-safe, verifiable, append-only log of msgpack records.

It knows nothing about workflows: it stores ``(seq, ts, kind, data)`` records, keeps a
BLAKE2b hash chain over them, and stores snapshots keyed by seq.
"""

from __future__ import annotations

from . import codec
from .base import DURABILITY_MODES, EventLog
from .chain import GENESIS, LINK_SIZE
from .errors import (
    ConcurrencyError,
    CorruptionError,
    EventEncodingError,
    EventLogError,
    LogClosedError,
    LogFailedError,
    LogLockedError,
    LogWriteError,
    RecordDecodeError,
    RecordTooLargeError,
    SnapshotError,
    UnsupportedFormatError,
)
from .memory import InMemoryEventLog
from .record import Record, Snapshot

__all__ = [
    "DURABILITY_MODES",
    "GENESIS",
    "LINK_SIZE",
    "ConcurrencyError",
    "CorruptionError",
    "EventEncodingError",
    "EventLog",
    "EventLogError",
    "InMemoryEventLog",
    "LogClosedError",
    "LogFailedError",
    "LogLockedError",
    "LogWriteError",
    "RecordDecodeError",
    "RecordTooLargeError",
    "Record",
    "Snapshot",
    "SnapshotError",
    "UnsupportedFormatError",
    "codec",
]
