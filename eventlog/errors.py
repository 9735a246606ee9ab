"""Errors raised by :mod:`eventlog`.

The tree::

    EventLogError
    ├── LogLockedError            another process (or handle) holds the writer lock
    ├── CorruptionError           damaged bytes: names segment file, byte offset and seq
    │   └── RecordDecodeError     a frame passed its checksums but its payload is hostile
    ├── UnsupportedFormatError    a newer or unknown on-disk format version
    ├── LogFailedError            a write/fsync/truncate failed; reopen the log
    ├── LogClosedError            the log was closed
    ├── SnapshotError             no usable snapshot where one was required
    ├── ConcurrencyError          expected seq did not match the head; nothing written
    └── LogWriteError (+OSError)  an I/O error while writing; keeps the errno

    EventEncodingError (+TypeError, +ValueError)   a value that cannot be stored; names its path
    └── RecordTooLargeError (+ValueError)          the encoded record exceeds the size limit

Every error keeps its context as attributes as well as in the message.
"""

from __future__ import annotations

__all__ = [
    "ConcurrencyError",
    "CorruptionError",
    "EventEncodingError",
    "EventLogError",
    "LogClosedError",
    "LogFailedError",
    "LogLockedError",
    "LogWriteError",
    "RecordDecodeError",
    "RecordTooLargeError",
    "SnapshotError",
    "UnsupportedFormatError",
]


class EventLogError(Exception):
    """Base class of every error raised by :mod:`eventlog`."""


class LogLockedError(EventLogError):
    """The log directory is locked by another writer.

    Attributes:
        path: the log directory.
        pid: the process id recorded by the holder (``None`` if unknown).
    """

    def __init__(self, path: str, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        who = f"process {pid}" if pid is not None else "another process"
        msg = (
            f"event log {path!r} is already open for writing by {who}; "
            "only one writer is allowed at a time (open it read-only, or close the other writer)"
        )
        super().__init__(msg)


class CorruptionError(EventLogError):
    """Bytes on disk are damaged in a way that cannot be repaired automatically.

    Attributes:
        segment: file name (or path) of the damaged file.
        offset: byte offset of the first bad byte found, or ``None``.
        seq: the seq expected at that position, or ``None``.
        reason: what was wrong.
        repairable: ``True`` if ``open(..., repair_tail=True)`` would truncate it.
    """

    def __init__(
        self,
        segment: str,
        offset: int | None,
        seq: int | None,
        reason: str,
        *,
        repairable: bool = False,
    ) -> None:
        self.segment = segment
        self.offset = offset
        self.seq = seq
        self.reason = reason
        self.repairable = repairable
        where = segment
        if offset is not None:
            where += f" at byte {offset}"
        if seq is not None:
            where += f" (seq {seq})"
        super().__init__(f"{reason} in {where}")


class RecordDecodeError(CorruptionError):
    """A record passed its checksums but its content could not be decoded safely."""


class UnsupportedFormatError(EventLogError):
    """A file was written in a format version this library does not understand."""


class LogFailedError(EventLogError):
    """An earlier write, fsync or truncate failed; the writer refuses to go on.

    After an fsync error the kernel may already have dropped the unsynced pages
    (PostgreSQL's "fsyncgate"), so retrying could acknowledge data that is gone.
    Reopen the log: recovery re-reads what is really on disk.
    """


class LogClosedError(EventLogError):
    """The log has been closed."""


class SnapshotError(EventLogError):
    """No usable snapshot exists where one was required."""


class ConcurrencyError(EventLogError):
    """An append's expected seq did not match the log's head; nothing was written.

    Attributes:
        expected: the seq the caller expected the head to be.
        actual: the head seq found.
    """

    def __init__(self, expected: int, actual: int, where: str = "") -> None:
        self.expected = expected
        self.actual = actual
        loc = f" of {where}" if where else ""
        msg = (
            f"expected the head{loc} to be at seq {expected} but it is at seq {actual}: "
            "another writer appended first; nothing was written (re-read and retry)"
        )
        super().__init__(msg)


class LogWriteError(EventLogError, OSError):
    """An I/O error while writing; ``errno`` is the operating system's."""

    def __init__(self, err: OSError, what: str) -> None:
        OSError.__init__(self, err.errno, f"{what}: {err.strerror or err}")
        self.what = what

    def __str__(self) -> str:
        return f"[Errno {self.errno}] {self.strerror}"


class EventEncodingError(EventLogError, TypeError, ValueError):
    """A value cannot be stored in the log. The message names its path.

    Attributes:
        path: where the bad value sits, for example ``data['items'][3]``.
        problem: what is wrong with it.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class RecordTooLargeError(EventEncodingError):
    """The encoded record is larger than the configured limit."""


class LogReadOnlyError(EventLogError):
    """A write was attempted on a log opened with ``readonly=True``."""


class WrongKeyError(EventLogError, ValueError):
    """The hash-chain key given does not match the log's (or is missing, or superfluous)."""


class BundleError(EventLogError, ValueError):
    """A file is not a valid bundle: not a bundle, truncated, damaged, or the wrong key."""
