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

One write path: :meth:`EventLog.append` and :meth:`EventLog.append_batch` encode with
:func:`eventlog.encoding.encode_event` and hand the bytes to :meth:`append_encoded` /
:meth:`append_batch_encoded`, the only methods a backend implements to write events.
Layers above that encode events themselves call those two directly.
"""

from __future__ import annotations

import abc
import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from .encoding import MAX_RECORD_BYTES, decode_event, encode_event
from .errors import EventLogError, RecordTooLargeError, WrongKeyError
from .merkle import event_leaf, leaf_hash
from .merkle_tree import MerkleTree
from .personal import Erased, Personal, SealedValue, Unavailable
from .prefix_filter import PrefixFilter
from .record import Record, Snapshot, new_record
from .snapshot import pack_snapshot
from .vault import VaultEntry

__all__ = ["DURABILITY_MODES", "TS_MAX", "EventLog", "check_event_sizes", "check_schema_version", "next_ts"]

#: ``"always"``: fsync before an append returns (group commit across threads).
#: ``"batch"``: bytes reach the kernel before return (survive ``kill -9``); an fsync
#: follows within a few milliseconds, and on ``sync()``/``close()``.
#: ``"none"``: the operating system decides when to write to disk.
DURABILITY_MODES = ("always", "batch", "none")
#: Largest timestamp any backend stores (signed 64-bit nanoseconds, as in the file formats).
TS_MAX = 2**63 - 1

_time_ns = time.time_ns


def next_ts(head_ts: int, ts: int | None) -> int:
    """The timestamp of a new record: ``max(now, head_ts)``, or a checked explicit ``ts``.

    Raises:
        TypeError: ``ts`` is not an int.
        ValueError: ``ts`` is earlier than ``head_ts`` or does not fit in 64 bits.
    """
    if ts is None:
        now = _time_ns()
        return now if now > head_ts else head_ts
    if type(ts) is not int:
        msg = f"ts must be an int (nanoseconds since the epoch), got {type(ts).__name__}"
        raise TypeError(msg)
    if ts < head_ts:
        msg = f"ts {ts} is earlier than the log's last timestamp {head_ts}; timestamps must not decrease"
        raise ValueError(msg)
    if ts > TS_MAX:
        msg = f"ts {ts} does not fit in a signed 64-bit integer (nanoseconds since the epoch)"
        raise ValueError(msg)
    return ts


def check_schema_version(schema_version: int) -> None:
    """Refuse a snapshot schema version that is not a signed 64-bit int."""
    if type(schema_version) is not int:
        msg = f"schema_version must be an int, got {schema_version!r}"
        raise TypeError(msg)
    if not -(2**63) <= schema_version < 2**63:
        msg = f"schema_version {schema_version} does not fit in a signed 64-bit integer"
        raise ValueError(msg)


def check_event_sizes(events: Sequence[bytes]) -> None:
    """What a backend checks of pre-encoded events: at least one, none over the record limit.

    Raises:
        ValueError: ``events`` is empty.
        RecordTooLargeError: an event is larger than :data:`eventlog.encoding.MAX_RECORD_BYTES`.
    """
    if not events:
        msg = "a batch needs at least one event"
        raise ValueError(msg)
    for event_bytes in events:
        if len(event_bytes) > MAX_RECORD_BYTES:
            raise RecordTooLargeError("data", f"the event encodes to {len(event_bytes)} bytes, more than the "
                                              f"limit of {MAX_RECORD_BYTES} bytes")


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
    def persistent(self) -> bool:
        """True if the records outlive the process (False only for the in-memory log)."""
        return True

    @property
    def location(self) -> str:
        """A human-readable location for messages (a path, a URL, ``<memory>``)."""
        return "<memory>"

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return False

    # -- writing ----------------------------------------------------------------
    def append(self, kind: str, data: Mapping[str, Any], *, expected_seq: int | None = None,
               ts: int | None = None) -> Record:
        """Append one event and return its record (with the decoded copy of ``data``).

        Raises:
            EventEncodingError: a value cannot be stored (the message names its path).
            ConcurrencyError: ``expected_seq`` is not the head; nothing was written.
        """
        sealed: list[SealedValue] = []
        event_bytes = encode_event(kind, data, sealed=sealed)
        seq, ts = self.append_encoded(event_bytes, expected_seq=expected_seq, ts=ts, personal=sealed or None)
        kind, decoded = decode_event(event_bytes, seq=seq)
        return new_record(Record, (seq, ts, kind, decoded))

    def append_batch(self, events: Iterable[tuple[str, Mapping[str, Any]]], *,
                     expected_seq: int | None = None, ts: int | None = None) -> list[Record]:
        """Append several events atomically; all get the same ``ts``.

        Every event is encoded before anything is written, so a bad value raises at the
        call and nothing of the batch is stored.
        """
        sealed: list[SealedValue] = []
        encoded = [encode_event(kind, data, sealed=sealed) for kind, data in events]
        first, ts = self.append_batch_encoded(encoded, expected_seq=expected_seq, ts=ts, personal=sealed or None)
        out = []
        for i, event_bytes in enumerate(encoded):
            kind, decoded = decode_event(event_bytes, seq=first + i)
            out.append(Record(first + i, ts, kind, decoded))
        return out

    @abc.abstractmethod
    def append_encoded(self, event_bytes: bytes, *, expected_seq: int | None = None,
                       ts: int | None = None, personal: Sequence[SealedValue] | None = None) -> tuple[int, int]:
        """Append one event encoded by :func:`eventlog.encoding.encode_event`; return ``(seq, ts)``.

        The fast path for callers that encode events themselves. The bytes are TRUSTED:
        only their size is checked (bytes that are not an encoded event make the record
        unreadable). Same expected-seq, timestamp and durability behaviour as :meth:`append`.
        ``personal``: the personal values ``encode_event(..., sealed=...)`` sealed for
        these bytes; the log's vault stores them with the event.

        Raises:
            RecordTooLargeError: ``event_bytes`` is over the record limit.
            ConcurrencyError: ``expected_seq`` is not the head; nothing was written.
        """

    def appender(self, held_lock: object | None = None) -> Callable[..., tuple[int, int]]:
        """Return the function a single writer calls to append each encoded event.

        It takes the arguments of :meth:`append_encoded` and does the same. ``held_lock``:
        a lock the caller holds around every call of the returned function (for example
        the lock under which it also applies the event to its state). A log whose appends
        are guarded by that very lock (an :class:`~eventlog.InMemoryEventLog` given it as
        ``lock=``) returns a variant that does not take it again; any other log returns
        :meth:`append_encoded` itself. Calling the variant without holding ``held_lock``
        is not thread-safe.
        """
        return self.append_encoded

    @abc.abstractmethod
    def append_batch_encoded(self, events: Sequence[bytes], *, expected_seq: int | None = None,
                             ts: int | None = None, personal: Sequence[SealedValue] | None = None
                             ) -> tuple[int, int]:
        """Append events encoded by :func:`eventlog.encoding.encode_event` atomically.

        The batch twin of :meth:`append_encoded`; returns ``(first seq, ts)``.

        Raises:
            ValueError: ``events`` is empty.
            RecordTooLargeError: an event is over the record limit.
        """

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
    def read_raw(self, start: int = 1, stop: int | None = None,
                 select: PrefixFilter | None = None) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(seq, ts, event_bytes)`` without decoding, for copying, hashing and fast replay.

        ``event_bytes`` is the canonical msgpack of ``[kind, data]`` that the hash chain
        covers; checksums are verified as for :meth:`read`. With ``select``, only the
        events it passes are yielded (the others are still read and checked).
        """

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

    def get(self, seq: int) -> Record:
        """Return the record with this seq, or raise ``KeyError``."""
        for rec in self.read(seq, seq):
            return rec
        msg = f"seq {seq} is not in the log (head is {self.head_seq})"
        raise KeyError(msg)

    def link_at(self, seq: int) -> bytes:
        """Return the hash-chain link after ``seq``."""
        raise NotImplementedError

    # -- audit proofs: the Merkle tree over the events (issue 14, eventlog/MERKLE.md) --
    @contextlib.contextmanager
    def _tree(self) -> Iterator[MerkleTree]:
        """A Merkle tree of at least the events ``1..head_seq``, for reading, while the block runs.

        Backends maintain their tree at append and override this to lend it (under their
        lock). This fallback, for a backend that keeps none, builds one from
        :meth:`read_raw`: O(n) per call.
        """
        tree = MerkleTree()
        for first in range(1, self.head_seq + 1, 1 << 14):
            tree.extend(event_leaf(seq, ts, event_bytes)
                        for seq, ts, event_bytes in self.read_raw(first, first + (1 << 14) - 1))
        yield tree

    def _tree_size(self, size: int | None) -> int:
        head = self.head_seq
        if size is None:
            return head
        if type(size) is not int or not 0 <= size <= head:
            msg = f"tree size {size!r} is outside 0..{head} (the log's head)"
            raise ValueError(msg)
        return size

    def merkle_root(self, size: int | None = None) -> bytes:
        """The RFC 6962 Merkle root over events ``1..size`` (default: every event).

        Leaf ``i`` is :func:`eventlog.merkle.event_leaf` of event ``seq = i + 1``: its seq,
        its timestamp and its stored bytes, so the root fixes what, in which order and when.

        Raises:
            ValueError: ``size`` is past the head.
            NodeStoreError: the stored tree is damaged (rebuild: reopen the log).
        """
        size = self._tree_size(size)
        with self._tree() as tree:
            return tree.root_at(size)

    def merkle_inclusion(self, seq: int, size: int | None = None) -> list[bytes]:
        """The audit path proving event ``seq`` is in the tree of ``size`` events (default: all).

        The path is checked against the tree's root before it is returned.

        Raises:
            ValueError: ``seq`` is not in ``1..size`` or ``size`` is past the head.
            NodeStoreError: the stored tree is damaged.
        """
        size = self._tree_size(size)
        if type(seq) is not int or not 1 <= seq <= size:
            msg = f"seq {seq!r} is not in a tree of {size} events"
            raise ValueError(msg)
        with self._tree() as tree:
            return tree.inclusion_proof(seq - 1, size)

    def merkle_consistency(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The proof that the tree of ``size2`` events (default: all) extends the one of ``size1``.

        Raises:
            ValueError: the sizes are out of order or past the head.
            NodeStoreError: the stored tree is damaged.
        """
        size2 = self._tree_size(size2)
        if type(size1) is not int or not 0 <= size1 <= size2:
            msg = f"a consistency proof needs 0 <= size1 <= size2, got {size1!r} and {size2}"
            raise ValueError(msg)
        with self._tree() as tree:
            return tree.consistency_proof(size1, size2)

    def check_merkle(self) -> bool:
        """Re-hash the whole stored tree against the log's events: O(n), for ``verify``.

        Returns False when the log has no stored tree to check (nothing is kept, or it
        is not built yet), True when it was checked.

        Raises:
            NodeStoreError: the first stored node or leaf that does not match the log.
        """
        with self._tree() as tree:
            tree.check(leaf_hash(event_leaf(seq, ts, event_bytes))
                       for seq, ts, event_bytes in self.read_raw(1, tree.size))
        return True

    # -- signed checkpoints (eventlog/audit.py) ------------------------------------------
    def store_checkpoint(self, size: int, note: str) -> None:
        """Keep a signed checkpoint note of the tree at ``size`` with the log (one per size; replaced).

        The note is not checked here (:func:`eventlog.audit.make_checkpoint` makes it);
        whoever reads it checks its signature.

        Raises:
            EventLogError: this backend cannot keep checkpoints (or is read-only).
        """
        msg = f"{type(self).__name__} cannot store checkpoints"
        raise EventLogError(msg)

    def checkpoint_notes(self) -> list[str]:
        """The checkpoint notes kept with the log, by size (unchecked text)."""
        return []

    @property
    def holds_personal_values(self) -> bool:
        """True if this log's vault is meant to hold every personal value its events commit to.

        False for a copy made without them (a saved job file carries commitments only).
        """
        return True

    # -- personal values (eventlog/personal.py, eventlog/vault.py) -------------------------
    def personal_entry(self, commitment: bytes) -> VaultEntry | None:
        """What the log's vault holds for a personal value's commitment (``None``: nothing).

        This fallback is for a backend without a vault (it holds nothing).
        """
        return None

    def personal_entries(self) -> Iterator[VaultEntry]:
        """Every entry of the log's vault (for ``verify``)."""
        return iter(())

    def has_personal_values(self) -> bool:
        """True if the log's vault has any entry (a value or the tombstone of an erased one)."""
        return next(self.personal_entries(), None) is not None

    def erase_personal(self, event_bytes: bytes, commitments: Sequence[bytes], *,
                       expected_seq: int | None = None) -> tuple[int, int]:
        """Append an erasure event and delete the listed values and salts from the vault, as one step.

        ``event_bytes`` is the encoded, signed erasure event (:mod:`eventlog.erasure` makes
        it; call :func:`eventlog.erasure.erase`). After a crash the erasure is either not
        begun or completed by the next writer's open. Returns the event's ``(seq, ts)``.

        Raises:
            EventLogError: this backend keeps no vault.
            ConcurrencyError: ``expected_seq`` is not the head; nothing was erased.
        """
        msg = f"{type(self).__name__} keeps no personal values to erase"
        raise EventLogError(msg)

    def reveal(self, value: Any) -> Any:
        """``value`` with every sealed :class:`~eventlog.personal.Personal` in it replaced by its value.

        The value comes from the vault and is checked against its commitment. An erased
        value becomes an :class:`~eventlog.personal.Erased` (its erasure's seq, reason and
        key), one this log does not hold an :class:`~eventlog.personal.Unavailable`.
        Containers (dicts, lists, tuples, sets, and their read-only subclasses) are copied
        as plain ones; everything else is returned as it is.
        """
        if not self.has_personal_values():
            return value  # nothing to reveal: no walk over a large state
        reasons: dict[int, tuple[str, str]] = {}

        def one(p: Personal) -> Any:
            commitment = p.commitment
            if commitment is None:
                return p.value
            entry = self.personal_entry(commitment)
            if entry is None:
                return Unavailable(commitment)
            if entry.sealed is None:
                seq = entry.erased_seq or 0
                if seq not in reasons:
                    reasons[seq] = _erasure_reason(self, seq)
                reason, key = reasons[seq]
                return Erased(commitment, seq, reason, key)
            if not entry.sealed.matches():
                return Unavailable(commitment, "the vault's entry does not match its commitment (damaged)")
            from .encoding import decode

            try:
                return decode(entry.sealed.value, where="the vault")
            except EventLogError:
                return Unavailable(commitment, "the vault's entry cannot be decoded (damaged)")

        return _walk(value, one)

    # -- snapshots ----------------------------------------------------------------
    @abc.abstractmethod
    def save_snapshot(self, state: Any, *, schema_version: int, seq: int | None = None) -> Snapshot:
        """Store ``state`` as the projection at ``seq`` (default: the head), atomically."""

    def store_snapshot(self, state: Any, *, schema_version: int, seq: int | None = None) -> None:
        """:meth:`save_snapshot` without returning it, for callers that do not read it back.

        A backend may skip work the returned :class:`Snapshot` would need (decoding the
        state back; the in-memory log also defers the snapshot's chain link until it is
        read). Same checks and errors as :meth:`save_snapshot`.
        """
        self.save_snapshot(state, schema_version=schema_version, seq=seq)

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

    def seal_snapshot(self, body: bytes, *, seq: int, ts: int, link: bytes, schema_version: int) -> bytes:
        """A portable snapshot record of the encoded state ``body`` at ``seq``, tagged with this log's key.

        The snapshot section :func:`eventlog.write_bundle` stores (layout and tag in
        ``FORMAT.md``, "Snapshot file"): only a holder of the chain key can make one that
        a keyed reader accepts.

        Raises:
            WrongKeyError: the log's chain is keyed but this handle was opened without the key.
        """
        key = self._seal_key()
        if getattr(self, "keyed", False) and not key:
            msg = f"the log {self.location} has a keyed chain: a snapshot of it can only be sealed with the key"
            raise WrongKeyError(msg)
        return pack_snapshot(seq, ts, link, schema_version, body, key)

    def _seal_key(self) -> bytes:
        """The chain key snapshots are tagged with (empty when unkeyed); backends with a key override it."""
        return b""

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


def _walk(value: Any, fn: Any) -> Any:
    """A copy of ``value`` with ``fn`` applied to every :class:`Personal` in it (see :meth:`EventLog.reveal`)."""
    if isinstance(value, Personal):
        return fn(value)
    if isinstance(value, dict):
        return {_walk(k, fn): _walk(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, fn) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_walk(v, fn) for v in value)
    if isinstance(value, (set, frozenset)):
        return type(value)(_walk(v, fn) for v in value) if type(value) in (set, frozenset) else \
            {_walk(v, fn) for v in value}
    return value


def _erasure_reason(log: EventLog, seq: int) -> tuple[str, str]:
    """The reason and signing key's name of the erasure event at ``seq`` (empty if it cannot be read)."""
    try:
        record = log.get(seq)
    except (KeyError, EventLogError):
        return "", ""
    data = record.data if isinstance(record.data, dict) else {}
    key = data.get("key", "")
    return str(data.get("reason", "")), str(key).split("+", 1)[0] if isinstance(key, str) else ""
