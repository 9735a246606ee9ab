"""eventlog: a crash-safe, verifiable, append-only log of msgpack records.

It knows nothing about workflows: it stores ``(seq, ts, kind, data)`` records, keeps a
BLAKE2b hash chain over them, and stores snapshots keyed by seq. Values become bytes in
one place, :mod:`eventlog.encoding` (with :func:`register_type` for user classes).
"""

from __future__ import annotations

from . import encoding
from .base import DURABILITY_MODES, EventLog
from .bundle import read_bundle, write_bundle
from .chain import GENESIS, LINK_SIZE
from .encoding import StoredObject, Unrepresentable, register_type, unregister_type
from .errors import (
    BundleError,
    ConcurrencyError,
    CorruptionError,
    EventEncodingError,
    EventLogError,
    LogClosedError,
    LogFailedError,
    LogLockedError,
    LogNotFoundError,
    LogReadOnlyError,
    LogWriteError,
    PostgresError,
    RecordDecodeError,
    RecordTooLargeError,
    SnapshotError,
    UnrepresentableValueWarning,
    UnsupportedFormatError,
    WrongKeyError,
)
from .filelog import FileEventLog, open_log
from .memory import InMemoryEventLog
from .personal import Erased, Personal, Unavailable
from .prefix_filter import PrefixFilter
from .record import Record, Snapshot
from .verify import Problem, VerifyReport, verify

__all__ = [
    "DURABILITY_MODES",
    "GENESIS",
    "LINK_SIZE",
    "BundleError",
    "ConcurrencyError",
    "CorruptionError",
    "EventEncodingError",
    "EventLog",
    "EventLogError",
    "Erased",
    "FileEventLog",
    "InMemoryEventLog",
    "LogClosedError",
    "LogFailedError",
    "LogLockedError",
    "LogNotFoundError",
    "LogReadOnlyError",
    "LogWriteError",
    "Problem",
    "Record",
    "RecordDecodeError",
    "RecordTooLargeError",
    "Snapshot",
    "SnapshotError",
    "UnsupportedFormatError",
    "VerifyReport",
    "PostgresError",
    "Personal",
    "PrefixFilter",
    "Unavailable",
    "WrongKeyError",
    "StoredObject",
    "Unrepresentable",
    "UnrepresentableValueWarning",
    "encoding",
    "open_log",
    "register_type",
    "unregister_type",
    "read_bundle",
    "verify",
    "write_bundle",
]
