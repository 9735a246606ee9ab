"""The storage interface every log backend implements.

A backend stores :class:`~eventlog.record.Record` s in seq order and snapshots keyed by
seq. The interface is small on purpose so a networked backend (PostgreSQL) can
implement it: append with an expected seq (optimistic concurrency), read a seq
range, find a seq by time, follow new records, snapshots.

Semantics shared by all backends (the contract tests in
``tests/eventlog/test_contract.py`` check them on each one):

* ``seq`` starts at 1 and has no gaps; ``head_seq`` is 0 for an empty log.
* ``ts`` is integer nanoseconds since the epoch, never smaller than the previous
  record's: the log takes ``max(now, head_ts)`` unless an explicit ``ts`` is given.
* ``append_batch`` is atomic: after a crash either every event of the batch is in the
  log or none is. Every event of a batch gets the same ``ts``.
* ``expected_seq`` is the head seq the caller believes the log has; if it differs,
  :class:`~eventlog.errors.ConcurrencyError` is raised and nothing is written.
* A value that cannot be encoded raises :class:`~eventlog.errors.EventEncodingError`
  (a ``TypeError``) naming its path; nothing is written.
* Records read back are equal, types included, to the ``data`` returned by the
  append (which is already the decoded copy, not the caller's object).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .record import Record, Snapshot

__all__ = ["DURABILITY_MODES", "EventLog"]

#: ``"always"``: fsync before an append returns (group commit across threads).
#: ``"batch"``: bytes reach the kernel before return (survive ``kill -9``); an fsync
#: follows within a few milliseconds, and on ``sync()``/``close()``.
#: ``"none"``: the operating system decides when to write to disk.
DURABILITY_MODES = ("always", "batch", "none")


class EventLog(abc.ABC):
    """Abstract append-only log of ``(seq, ts, kind, data)`` records."""

    # -- state ------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def head_seq(self) -> int:
        """Seq of the last record (0 when empty)."""

    @property
    @abc.abstractmethod
    def head_ts(self) -> int:
        """Timestamp (ns) of the last record (0 when empty)."""

    @property
    @abc.abstractmethod
    def head_hash(self) -> bytes:
        """Hash-chain link after the last record (16 zero bytes when empty)."""

    @property
    def head_hash_hex(self) -> str:
        """:attr:`head_hash` as 32 hex digits."""
        return self.head_hash.hex()

    @property
    @abc.abstractmethod
    def durable_seq(self) -> int:
        """Highest seq known to be on stable storage."""

    @property
    @abc.abstractmethod
    def durability(self) -> str:
        """One of :data:`DURABILITY_MODES`."""

    @property
    def location(self) -> str:
        """A human-readable location for messages (a path, a URL, ``<memory>``)."""
        return "<memory>"

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return False

    # -- writing ----------------------------------------------------------------
    @abc.abstractmethod
    def append(self, kind: str, data: Mapping[str, Any], *, expected_seq: int | None = None,
               ts: int | None = None) -> Record:
        """Append one event and return its record (with the decoded copy of ``data``)."""

    @abc.abstractmethod
    def append_batch(self, events: Sequence[tuple[str, Mapping[str, Any]]], *,
                     expected_seq: int | None = None, ts: int | None = None) -> list[Record]:
        """Append several events atomically; all get the same ``ts``."""

    def append_encoded(self, kind: str, event_bytes: bytes, data: Any, *, expected_seq: int | None = None,
                       ts: int | None = None) -> Record:
        """Append one event already encoded by the caller (TRUSTED input: a fast path).

        ``event_bytes`` must be the canonical msgpack of ``[kind, data]``, exactly what
        :func:`eventlog._events.encode_event` returns for it (for example
        ``b"\\x92" + packed kind + codec.pack_unchecked(data)`` after the caller checked
        that ``data`` is storable); ``data`` is put in the returned record as is. The
        file and in-memory logs store the bytes without validating or decoding them
        (bytes that break the encoding rules make the record unreadable). This default,
        for backends without a fast path, ignores ``event_bytes`` and calls
        :meth:`append`, which gives the same record (after the same size check).
        """
        from . import codec
        from ._events import refuse_too_large

        if len(event_bytes) > codec.MAX_RECORD_BYTES:
            refuse_too_large(event_bytes)
        return self.append(kind, data, expected_seq=expected_seq, ts=ts)

    def append_batch_encoded(self, events: Sequence[tuple[str, bytes, Any]], *,
                             expected_seq: int | None = None, ts: int | None = None) -> list[Record]:
        """Append ``(kind, event_bytes, data)`` events already encoded by the caller, atomically.

        The batch twin of :meth:`append_encoded` (TRUSTED input: each ``event_bytes`` must
        be exactly what :func:`eventlog._events.encode_event` returns for ``kind`` and
        ``data``). This default, for backends without a fast path, appends the decoded
        ``data`` through :meth:`append_batch`, which gives the same records.
        """
        return self.append_batch([(kind, data) for kind, _, data in events], expected_seq=expected_seq, ts=ts)

    @abc.abstractmethod
    def sync(self) -> int:
        """Make every appended record durable; return :attr:`durable_seq`."""

    @abc.abstractmethod
    def close(self) -> None:
        """Sync (when writable) and release every resource. Idempotent."""

    # -- reading ----------------------------------------------------------------
    @abc.abstractmethod
    def read(self, start: int = 1, stop: int | None = None) -> Iterator[Record]:
        """Yield records with ``start <= seq <= stop`` (``stop=None``: to the head)."""

    @abc.abstractmethod
    def seq_at_time(self, ts: int) -> int:
        """Return the highest seq whose ``ts`` is ``<= ts`` (0 if none). O(log n)."""

    @abc.abstractmethod
    def follow(self, start: int = 1, *, timeout: float | None = None,
               poll_interval: float = 0.05) -> Iterator[Record]:
        """Yield records from ``start`` on, waiting for new ones as they are appended.

        Stops when ``timeout`` seconds pass with no new record (``None``: wait until the
        log is closed), never skipping or repeating a seq.
        """

    def read_raw(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(seq, ts, event_bytes)`` without decoding, for copying and hashing.

        ``event_bytes`` is the canonical msgpack of ``[kind, data]`` that the hash chain
        covers. The default re-encodes decoded records (canonical, so the bytes are the
        same); backends override it with a cheaper path.
        """
        from ._events import encode_event

        for rec in self.read(start, stop):
            yield rec.seq, rec.ts, encode_event(rec.kind, rec.data)[0]

    def get(self, seq: int) -> Record:
        """Return the record with this seq, or raise ``KeyError``."""
        for rec in self.read(seq, seq):
            return rec
        msg = f"seq {seq} is not in the log (head is {self.head_seq})"
        raise KeyError(msg)

    def link_at(self, seq: int) -> bytes:
        """Return the hash-chain link after ``seq`` (recomputed from the start by default)."""
        raise NotImplementedError

    # -- snapshots ----------------------------------------------------------------
    @abc.abstractmethod
    def save_snapshot(self, state: Any, *, schema_version: int, seq: int | None = None) -> Snapshot:
        """Store ``state`` as the projection at ``seq`` (default: the head), atomically."""

    @abc.abstractmethod
    def latest_snapshot(self, *, max_seq: int | None = None,
                        schema_version: int | None = None) -> Snapshot | None:
        """Return the newest valid snapshot with ``seq <= max_seq`` (and that schema).

        Snapshots that fail their checks are skipped (with a warning) in favour of older
        ones; ``None`` means replay from the start.
        """

    @abc.abstractmethod
    def snapshots(self) -> list[Snapshot]:
        """Every valid snapshot, oldest first (states included)."""

    def snapshot_seqs(self) -> list[int]:
        """The seqs that have a stored snapshot, oldest first, without loading any state.

        Cheap where a backend can list them (file names, one query); the states are not
        checked, so a damaged snapshot is listed too (:meth:`snapshots` and ``verify``
        check them). This default, for backends that cannot list, loads them.
        """
        return [snap.seq for snap in self.snapshots()]

    # -- conveniences -------------------------------------------------------------
    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Record]:
        return self.read()

    def __len__(self) -> int:
        return self.head_seq

    def extend(self, events: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Record]:
        """Append each event on its own (not atomic); returns the records."""
        return [self.append(kind, data) for kind, data in events]
