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
    ├── LogWriteError (+OSError)  an I/O error while writing; keeps the errno
    ├── LogReadOnlyError          a write on a log opened read-only
    ├── WrongKeyError (+ValueError)   the hash-chain key is wrong, missing or superfluous
    ├── BundleError (+ValueError)     not a bundle, truncated, damaged, or the wrong key
    ├── PostgresError             the database failed or the connection was lost (.committed)
    ├── LogNotFoundError (+FileNotFoundError)  no such log in the database
    ├── EventEncodingError (+TypeError, +ValueError)  a value that cannot be stored; names its path
    │   └── RecordTooLargeError (+ValueError)         the encoded record exceeds the size limit
    ├── ProofError (+ValueError)          a Merkle proof (or proof file) that does not verify
    ├── CheckpointError (+ValueError)     a checkpoint that is malformed or whose signature is refused
    ├── SigningKeyError (+ValueError)     a signing or verifier key that cannot be used
    ├── NodeStoreError                    a Merkle node store that failed a check; rebuild it
    └── AuditUnavailableError (+ImportError)  signing needs the optional 'cryptography' package

    UnrepresentableValueWarning (a UserWarning, not an error): lenient encoding stored a
    placeholder for a value no codec can represent (issued once per type).

Every error keeps its context as attributes as well as in the message.
"""

from __future__ import annotations

__all__ = [
    "AuditUnavailableError",
    "CheckpointError",
    "ConcurrencyError",
    "CorruptionError",
    "EventEncodingError",
    "BundleError",
    "EventLogError",
    "LogClosedError",
    "LogFailedError",
    "LogLockedError",
    "LogNotFoundError",
    "LogReadOnlyError",
    "LogWriteError",
    "NodeStoreError",
    "PostgresError",
    "ProofError",
    "RecordDecodeError",
    "RecordTooLargeError",
    "SigningKeyError",
    "SnapshotError",
    "UnrepresentableValueWarning",
    "UnsupportedFormatError",
    "WrongKeyError",
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


class PostgresError(EventLogError):
    """The database failed or the connection was lost during an operation.

    Attributes:
        location: the log (URL without password, and job id).
        operation: what was being done (``"appending 3 events (seq 8..10)"``).
        cause: the underlying psycopg exception.
        committed: for writes, ``False`` when nothing was written (the transaction was
            rolled back), ``True`` when it was found committed after all, ``None`` when
            the outcome is unknown (the connection died during COMMIT and could not be
            checked). Always ``None`` for reads.
    """

    def __init__(self, location: str, operation: str, cause: BaseException,
                 committed: bool | None = None, *, note: str = "") -> None:
        self.location = location
        self.operation = operation
        self.cause = cause
        self.committed = committed
        # libpq messages span lines ("...failed\n\tIs the server running..."): one line reads better.
        reason = " ".join(str(cause).split()) or type(cause).__name__
        msg = f"PostgreSQL error while {operation} on {location}: {reason}"
        if note:
            msg += f" -- {note}"
        super().__init__(msg)


class LogNotFoundError(EventLogError, FileNotFoundError):
    """No log with this job id exists in the database (opened with ``create=False``).

    A :class:`FileNotFoundError`, like a missing file log, so callers handle both alike.
    """


# -- audit proofs (Merkle tree, checkpoints, proof files) --------------------------------------
class ProofError(EventLogError, ValueError):
    """A Merkle proof or proof file was refused; ``reason`` is one line saying why.

    Raised by the verifiers in :mod:`eventlog.merkle` and :mod:`eventlog.proof`, and for
    a proof file that is not one (malformed JSON, unknown version, a missing field).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class CheckpointError(EventLogError, ValueError):
    """A checkpoint note was refused; ``reason`` is one line saying why.

    Malformed text, a signature by another key or by no known key name, or a body changed
    after signing (the signature does not verify).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SigningKeyError(EventLogError, ValueError):
    """A private key file or verifier key that is malformed, or a key name that is not allowed."""


class NodeStoreError(EventLogError):
    """A Merkle node store failed a check: its hashes disagree with each other or with the tree.

    The store is derived data: rebuild it from the log's events. Nothing computed from the
    damaged part was returned.
    """


class AuditUnavailableError(EventLogError, ImportError):
    """Signing or checking a signature needs the optional ``cryptography`` package."""

    def __init__(self) -> None:
        super().__init__(
            "Ed25519 signatures need the 'cryptography' package: pip install 'routilux-es[audit]'"
        )
class UnrepresentableValueWarning(UserWarning):
    """A value no codec can represent was stored as a placeholder (type and repr).

    Only lenient encoding does this; strict encoding (the default) raises
    :class:`EventEncodingError` instead.
    """
