"""An in-memory log with the same interface and semantics as the file log.

It is the default store of a plain ``JobState()`` and the oracle the tests compare the
file log against. Events are kept encoded, so reads return fresh decoded copies
exactly as the file log does, and the hash chain is the same: the same events with
the same timestamps give the same head hash on every backend.
"""

from __future__ import annotations

import bisect
import functools
import gc
import hashlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import msgpack

from . import codec
from ._events import (
    check_schema_version,
    decode_event,
    encode_batch,
    encode_event,
    encoded_batch,
    next_ts,
    refuse_too_large,
)
from .base import DURABILITY_MODES, EventLog
from .chain import _SEQ_TS, GENESIS, LINK_SIZE
from .errors import ConcurrencyError, CorruptionError, LogClosedError, SnapshotError
from .record import Record, Snapshot

__all__ = ["InMemoryEventLog"]

_time_ns = time.time_ns
_new_record = tuple.__new__
_blake2b = hashlib.blake2b
_pack_seq_ts = _SEQ_TS.pack

_TS_MAX = 2**63 - 1  # timestamps are stored as signed 64-bit integers (as in the file formats)


def _checked_ts(head_ts: int, ts: int | None) -> int:
    """:func:`next_ts`, plus the signed 64-bit range every backend can store."""
    ts = next_ts(head_ts, ts)
    if ts > _TS_MAX:
        msg = f"ts {ts} does not fit in a signed 64-bit integer (nanoseconds since the epoch)"
        raise ValueError(msg)
    return ts


# msgpack.unpackb with codec.decode's options, bound once (keyword parsing per call
# is a measurable part of checking a large bundle in from_raw).
_unpacker = functools.partial(msgpack.unpackb, raw=False, strict_map_key=True, timestamp=3,
                              ext_hook=codec._refuse_ext)

_NOT_CONTAINER = codec._NOT_CONTAINER
_unpackb = msgpack.unpackb
_refuse_ext = codec._refuse_ext
_EVENT_DEPTH = codec.MAX_DEPTH + 1  # the [kind, data] wrapper adds one level (as decode_event)

#: Snapshot states may nest a few levels deeper than event data (they wrap it).
SNAPSHOT_MAX_DEPTH = codec.MAX_DEPTH + 8
SNAPSHOT_MAX_BYTES = 1 << 30


class InMemoryEventLog(EventLog):
    """A log held in memory. Thread-safe; nothing survives the process.

    Args:
        key: optional secret key for the hash chain (BLAKE2b keyed mode, up to 64 bytes).
    """

    def __init__(self, *, key: bytes | None = None) -> None:
        self._key = bytes(key or b"")
        if len(self._key) > 64:
            msg = "hash-chain key must be at most 64 bytes"
            raise ValueError(msg)
        # Reentrant so an owner (a JobState) can hold it around append + apply and
        # call the locked fast path (:meth:`_append_event_locked`) without a second lock.
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._followers = 0  # threads waiting in follow(); appends notify only if any
        self._ts: list[int] = []
        self._bytes: list[bytes] = []
        # Hash-chain links, computed lazily: _links[i] is the link after seq i for every
        # i < len(_links). Appends only store bytes; the chain catches up (under the
        # lock) when a link is asked for. The links are a pure function of (seq, ts,
        # event bytes), so computing them later gives the same values.
        self._links: list[bytes] = [GENESIS]
        self._snapshots: dict[int, tuple[int, bytes | None, int, bytes]] = {}
        self._closed = False
        self._first_reads: dict[int, tuple[str, Any]] = {}  # see from_raw

    @classmethod
    def from_raw(cls, items: Iterator[tuple[int, bytes]] | list[tuple[int, bytes]], *,
                 key: bytes | None = None, expect_links: dict[int, bytes] | None = None,
                 where: str = "<memory>", check_events: bool = True) -> InMemoryEventLog:
        """Build a log from ``(ts, event_bytes)`` pairs in seq order (seq 1, 2, ...).

        The chain is recomputed; ``expect_links`` maps seqs to the links stored beside
        the data (for example one per frame of a bundle) and a mismatch raises
        :class:`~eventlog.errors.CorruptionError`, as does a decreasing timestamp.
        With ``check_events`` (the default) every event is decoded once to check it, and
        the decoded values are kept for the first read of each seq (a load that replays
        the log right away decodes each event once, not twice). Without it the bytes
        are only decoded when read -- for bytes that come from a checksummed source
        (:func:`eventlog.read_bundle`): a bad event then raises
        :class:`~eventlog.errors.RecordDecodeError` when it is read, never earlier.
        """
        pairs = items if isinstance(items, list) else list(items)
        return cls._from_lists([t for t, _ in pairs], [b for _, b in pairs], key=key,
                               expect_links=expect_links, where=where, check_events=check_events)

    @classmethod
    def _from_lists(cls, tss: list[int], events: list[bytes], *, key: bytes | None,
                    expect_links: dict[int, bytes] | None, where: str,
                    check_events: bool) -> InMemoryEventLog:
        """:meth:`from_raw` on parallel lists of timestamps and event bytes (taken over)."""
        log = cls(key=key)
        if len(tss) != len(events):
            msg = f"{len(tss)} timestamps for {len(events)} events"
            raise ValueError(msg)
        # Decoding builds one container per event: pause the cyclic collector, whose
        # repeated passes over the growing set would cost more than the decoding.
        paused = gc.isenabled() and len(events) > 1024
        if paused:
            gc.disable()
        try:
            # The chain, with a primed (keyed) hasher copied per event: cheaper than a
            # new BLAKE2b object each time.
            hasher = _blake2b(digest_size=LINK_SIZE, key=log._key)
            link = GENESIS
            links = log._links
            append_link = links.append
            last_ts = 0
            checks = expect_links or {}
            pack = _pack_seq_ts
            for seq, ts, event_bytes in zip(range(1, len(events) + 1), tss, events, strict=True):
                if ts < last_ts:
                    raise CorruptionError(where, None, seq, f"timestamp {ts} is earlier than the previous {last_ts}")
                last_ts = ts
                h = hasher.copy()
                h.update(link)
                h.update(pack(seq, ts))
                h.update(event_bytes)
                link = h.digest()
                append_link(link)
            for seq, want in checks.items():
                if 1 <= seq < len(links) and links[seq] != want:
                    raise CorruptionError(where, None, seq,
                                          "hash chain mismatch (wrong key, or the history was altered)")
            if check_events:
                decoded: list[Any] = []
                unpack = _unpacker
                max_depth = codec.MAX_DEPTH
                not_container = codec._NOT_CONTAINER
                for seq, event_bytes in enumerate(events, start=1):
                    # decode_event's checks, inlined for the common case; anything unusual
                    # (a msgpack error, a wrong shape, possibly deep nesting) goes through
                    # decode_event itself, which raises the precise RecordDecodeError.
                    try:
                        value = unpack(event_bytes)
                    except Exception:
                        value = None
                    if type(value) is list and len(value) == 2 and type(value[0]) is str \
                            and type(value[1]) is dict \
                            and len(event_bytes.translate(None, not_container)) <= max_depth:
                        decoded.append(value)
                    else:
                        decoded.append(decode_event(event_bytes, where=where, seq=seq))
                log._first_reads = dict(enumerate(decoded, start=1))
            log._bytes = events
            log._ts = tss
        finally:
            if paused:
                gc.enable()
        return log

    # -- state ------------------------------------------------------------------
    @property
    def head_seq(self) -> int:
        return len(self._bytes)

    @property
    def head_ts(self) -> int:
        return self._ts[-1] if self._ts else 0

    @property
    def head_hash(self) -> bytes:
        with self._lock:
            return self._link(len(self._bytes))

    def _link(self, seq: int) -> bytes:
        """Return the link after ``seq``, extending the chain up to it (lock held)."""
        links = self._links
        if seq >= len(links):
            key = self._key
            link = links[-1]
            tss = self._ts
            data = self._bytes
            for s in range(len(links), seq + 1):
                link = _blake2b(link + _pack_seq_ts(s, tss[s - 1]) + data[s - 1], digest_size=LINK_SIZE,
                                key=key).digest()
                links.append(link)
        return links[seq]

    @property
    def durable_seq(self) -> int:
        # Nothing in memory is durable, but every record is as durable as this log gets.
        return len(self._bytes)

    @property
    def durability(self) -> str:
        return DURABILITY_MODES[2]

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def keyed(self) -> bool:
        """True when the hash chain uses a secret key."""
        return bool(self._key)

    # -- writing ----------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            msg = "the in-memory log is closed"
            raise LogClosedError(msg)

    def append(self, kind: str, data: Mapping[str, Any], *, expected_seq: int | None = None,
               ts: int | None = None) -> Record:
        event_bytes, decoded = encode_event(kind, data)
        return self._append_one(kind, event_bytes, decoded, expected_seq, ts)

    def append_encoded(self, kind: str, event_bytes: bytes, data: Any, *, expected_seq: int | None = None,
                       ts: int | None = None) -> Record:
        """Append one event the caller has already encoded (TRUSTED input: a fast path).

        ``event_bytes`` must be exactly what :func:`eventlog._events.encode_event` returns
        for ``(kind, data)`` (same bytes, so the same hash chain as :meth:`append`); it is
        stored without being validated or decoded, except for the size limit, and
        ``data`` is put in the returned record as is. A JobState that holds ``_lock``
        may instead call :meth:`_append_event_locked` (no record built).

        Raises:
            RecordTooLargeError: ``event_bytes`` is over ``codec.MAX_RECORD_BYTES``.
        """
        if len(event_bytes) > codec.MAX_RECORD_BYTES:
            refuse_too_large(event_bytes)
        return self._append_one(kind, event_bytes, data, expected_seq, ts)

    def _append_one(self, kind: str, event_bytes: bytes, decoded: Any, expected_seq: int | None,
                    ts: int | None) -> Record:
        with self._lock:
            if self._closed:
                self._check_open()
            tss = self._ts
            seq = len(tss) + 1
            if expected_seq is not None and expected_seq != seq - 1:
                raise ConcurrencyError(expected_seq, seq - 1, "<memory>")
            last = tss[-1] if tss else 0
            if ts is None:
                ts = _time_ns()
                if ts < last:
                    ts = last
            else:
                ts = _checked_ts(last, ts)
            self._bytes.append(event_bytes)
            tss.append(ts)
            if self._followers:
                self._cond.notify_all()
        return _new_record(Record, (seq, ts, kind, decoded))  # Record(...) minus its Python __new__

    def _append_event_locked(self, event_bytes: bytes) -> tuple[int, int]:
        """Append already-encoded, already-validated event bytes; return ``(seq, ts)``.

        The hot path of a JobState that owns this log: the caller holds ``self._lock``
        and guarantees ``event_bytes`` is exactly what :func:`encode_event` would return
        (same bytes, same hash chain); no copy is decoded here.
        """
        if self._closed:
            self._check_open()
        tss = self._ts
        seq = len(tss) + 1
        ts = _time_ns()
        if tss and ts < tss[-1]:
            ts = tss[-1]
        self._bytes.append(event_bytes)
        tss.append(ts)
        if self._followers:
            self._cond.notify_all()
        return seq, ts

    def append_batch(self, events: Sequence[tuple[str, Mapping[str, Any]]], *,
                     expected_seq: int | None = None, ts: int | None = None) -> list[Record]:
        events, encoded = encode_batch(events)  # a generator is read once, as a list
        with self._cond:
            self._check_open()
            first = len(self._bytes) + 1
            if expected_seq is not None and expected_seq != first - 1:
                raise ConcurrencyError(expected_seq, first - 1, "<memory>")
            ts = _checked_ts(self._ts[-1] if self._ts else 0, ts)
            for event_bytes, _ in encoded:
                self._bytes.append(event_bytes)
                self._ts.append(ts)
            if self._followers:
                self._cond.notify_all()
        return [Record(first + i, ts, kind, dec) for i, ((kind, _), (_, dec)) in enumerate(zip(events, encoded, strict=True))]

    def append_batch_encoded(self, events: Sequence[tuple[str, bytes, Any]], *,
                             expected_seq: int | None = None, ts: int | None = None) -> list[Record]:
        """Append ``(kind, event_bytes, data)`` triples as one atomic batch (TRUSTED input).

        The batch form of :meth:`append_encoded`: each ``event_bytes`` must be exactly
        what :func:`eventlog._events.encode_event` returns for ``(kind, data)``, and
        ``data`` is put in the records as is. Only the size limit is checked. Same
        atomicity, expected-seq and timestamp behaviour as :meth:`append_batch`.

        Raises:
            ValueError: ``events`` is empty.
            RecordTooLargeError: an ``event_bytes`` is over ``codec.MAX_RECORD_BYTES``.
        """
        events = encoded_batch(events)
        with self._cond:
            self._check_open()
            tss = self._ts
            first = len(tss) + 1
            if expected_seq is not None and expected_seq != first - 1:
                raise ConcurrencyError(expected_seq, first - 1, "<memory>")
            ts = _checked_ts(tss[-1] if tss else 0, ts)
            self._bytes.extend([e for _, e, _ in events])
            tss.extend([ts] * len(events))
            if self._followers:
                self._cond.notify_all()
        new = _new_record
        return [new(Record, (first + i, ts, kind, dec)) for i, (kind, _, dec) in enumerate(events)]

    def sync(self) -> int:
        return self.durable_seq

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- reading ----------------------------------------------------------------
    def _record(self, seq: int) -> Record:
        first = self._first_reads
        if first:
            # dict.pop is atomic: two concurrent readers never share one decoded copy.
            value = first.pop(seq, None)
            if value is not None:
                return _new_record(Record, (seq, self._ts[seq - 1], value[0], value[1]))
        event_bytes = self._bytes[seq - 1]
        # decode_event's checks, inlined for the common case (this runs once per record
        # of a replay); anything unusual goes through decode_event for the exact error.
        try:
            value = _unpackb(event_bytes, raw=False, strict_map_key=True, timestamp=3, ext_hook=_refuse_ext)
        except Exception:
            value = None
        if (type(value) is not list or len(value) != 2 or type(value[0]) is not str or type(value[1]) is not dict
                or (len(event_bytes) > _EVENT_DEPTH
                    and len(event_bytes.translate(None, _NOT_CONTAINER)) > _EVENT_DEPTH)):
            value = decode_event(event_bytes, seq=seq)
        return _new_record(Record, (seq, self._ts[seq - 1], value[0], value[1]))

    def read(self, start: int = 1, stop: int | None = None) -> Iterator[Record]:
        start = max(start, 1)
        end = len(self._bytes) if stop is None else min(stop, len(self._bytes))
        record = self._record
        for seq in range(start, end + 1):
            yield record(seq)

    def read_raw(self, start: int = 1, stop: int | None = None) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(seq, ts, event_bytes)`` without decoding (for copying and hashing)."""
        start = max(start, 1)
        end = len(self._bytes) if stop is None else min(stop, len(self._bytes))
        for seq in range(start, end + 1):
            yield seq, self._ts[seq - 1], self._bytes[seq - 1]

    def seq_at_time(self, ts: int) -> int:
        return bisect.bisect_right(self._ts, ts)

    def follow(self, start: int = 1, *, timeout: float | None = None,
               poll_interval: float = 0.05) -> Iterator[Record]:
        seq = max(start, 1)
        while True:
            with self._cond:
                deadline = None if timeout is None else time.monotonic() + timeout
                while seq > len(self._bytes) and not self._closed:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return
                    self._followers += 1
                    try:
                        self._cond.wait(remaining)
                    finally:
                        self._followers -= 1
                if seq > len(self._bytes):
                    return  # closed and drained
                end = len(self._bytes)
            for s in range(seq, end + 1):
                yield self._record(s)
            seq = end + 1

    def link_at(self, seq: int) -> bytes:
        if not 0 <= seq <= len(self._bytes):
            msg = f"seq {seq} is not in the log (head is {len(self._bytes)})"
            raise KeyError(msg)
        with self._lock:
            return self._link(seq)

    # -- snapshots ----------------------------------------------------------------
    def save_snapshot(self, state: Any, *, schema_version: int, seq: int | None = None) -> Snapshot:
        check_schema_version(schema_version)
        body = codec.encode(state, path="state", max_depth=SNAPSHOT_MAX_DEPTH, max_bytes=SNAPSHOT_MAX_BYTES)
        with self._lock:
            self._check_open()
            seq = len(self._bytes) if seq is None else seq
            if not 0 <= seq <= len(self._bytes):
                msg = f"cannot snapshot seq {seq}: the log's head is {len(self._bytes)}"
                raise ValueError(msg)
            ts = self._ts[seq - 1] if seq else 0
            link = self._link(seq)
            self._snapshots[seq] = (ts, link, schema_version, body)
        return Snapshot(seq, ts, link, schema_version, codec.decode(body, max_depth=SNAPSHOT_MAX_DEPTH), f"memory:{seq}")

    def _store_snapshot(self, state: Any, *, schema_version: int, seq: int) -> None:
        """:meth:`save_snapshot` without building the returned Snapshot (an owner's policy).

        The hash-chain link is filled in when the snapshot is read, so an automatic
        snapshot does not force the lazy chain to catch up on the append path.
        """
        body = codec.encode(state, path="state", max_depth=SNAPSHOT_MAX_DEPTH, max_bytes=SNAPSHOT_MAX_BYTES)
        with self._lock:
            self._check_open()
            if not 0 <= seq <= len(self._bytes):
                msg = f"cannot snapshot seq {seq}: the log's head is {len(self._bytes)}"
                raise ValueError(msg)
            self._snapshots[seq] = (self._ts[seq - 1] if seq else 0, None, schema_version, body)

    def _snapshot_items(self, reverse: bool) -> list[tuple[int, tuple[int, bytes, int, bytes]]]:
        with self._lock:
            items = sorted(self._snapshots.items(), reverse=reverse)
            return [(seq, (ts, link if link is not None else self._link(seq), v, body))
                    for seq, (ts, link, v, body) in items]

    def latest_snapshot(self, *, max_seq: int | None = None,
                        schema_version: int | None = None) -> Snapshot | None:
        items = self._snapshot_items(reverse=True)
        for seq, (ts, link, version, body) in items:
            if max_seq is not None and seq > max_seq:
                continue
            if schema_version is not None and version != schema_version:
                continue
            return Snapshot(seq, ts, link, version, codec.decode(body, max_depth=SNAPSHOT_MAX_DEPTH), f"memory:{seq}")
        return None

    def snapshots(self) -> list[Snapshot]:
        items = self._snapshot_items(reverse=False)
        return [Snapshot(seq, ts, link, v, codec.decode(body, max_depth=SNAPSHOT_MAX_DEPTH), f"memory:{seq}")
                for seq, (ts, link, v, body) in items]

    def require_snapshot(self, max_seq: int | None = None) -> Snapshot:
        """Like :meth:`latest_snapshot` but raise :class:`SnapshotError` when there is none."""
        snap = self.latest_snapshot(max_seq=max_seq)
        if snap is None:
            msg = "no snapshot in the in-memory log"
            raise SnapshotError(msg)
        return snap
