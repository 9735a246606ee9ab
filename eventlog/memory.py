"""An in-memory log with the same interface and semantics as the file log.

It is the default store of a plain ``JobState()`` and the oracle the tests compare the
file log against. Events are kept encoded, so reads return fresh decoded copies
exactly as the file log does, and the hash chain is the same: the same events with
the same timestamps give the same head hash on every backend.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from . import codec
from ._events import decode_event, encode_event, next_ts
from .base import DURABILITY_MODES, EventLog
from .chain import GENESIS, next_link
from .errors import ConcurrencyError, LogClosedError, SnapshotError
from .record import Record, Snapshot

__all__ = ["InMemoryEventLog"]

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
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._ts: list[int] = []
        self._bytes: list[bytes] = []
        self._links: list[bytes] = [GENESIS]
        self._snapshots: dict[int, tuple[int, bytes, int, bytes]] = {}
        self._closed = False

    # -- state ------------------------------------------------------------------
    @property
    def head_seq(self) -> int:
        return len(self._bytes)

    @property
    def head_ts(self) -> int:
        return self._ts[-1] if self._ts else 0

    @property
    def head_hash(self) -> bytes:
        return self._links[-1]

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
        with self._cond:
            self._check_open()
            seq = len(self._bytes) + 1
            if expected_seq is not None and expected_seq != seq - 1:
                raise ConcurrencyError(expected_seq, seq - 1, "<memory>")
            ts = next_ts(self._ts[-1] if self._ts else 0, ts)
            self._links.append(next_link(self._links[-1], seq, ts, event_bytes, self._key))
            self._bytes.append(event_bytes)
            self._ts.append(ts)
            self._cond.notify_all()
        return Record(seq, ts, kind, decoded)

    def append_batch(self, events: Sequence[tuple[str, Mapping[str, Any]]], *,
                     expected_seq: int | None = None, ts: int | None = None) -> list[Record]:
        encoded = [encode_event(kind, data) for kind, data in events]
        if not encoded:
            msg = "append_batch needs at least one event"
            raise ValueError(msg)
        with self._cond:
            self._check_open()
            first = len(self._bytes) + 1
            if expected_seq is not None and expected_seq != first - 1:
                raise ConcurrencyError(expected_seq, first - 1, "<memory>")
            ts = next_ts(self._ts[-1] if self._ts else 0, ts)
            link = self._links[-1]
            for i, (event_bytes, _) in enumerate(encoded):
                link = next_link(link, first + i, ts, event_bytes, self._key)
                self._links.append(link)
                self._bytes.append(event_bytes)
                self._ts.append(ts)
            self._cond.notify_all()
        return [Record(first + i, ts, kind, dec) for i, ((kind, _), (_, dec)) in enumerate(zip(events, encoded))]

    def sync(self) -> int:
        return self.durable_seq

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- reading ----------------------------------------------------------------
    def _record(self, seq: int) -> Record:
        kind, data = decode_event(self._bytes[seq - 1], seq=seq)
        return Record(seq, self._ts[seq - 1], kind, data)

    def read(self, start: int = 1, stop: int | None = None) -> Iterator[Record]:
        start = max(start, 1)
        end = len(self._bytes) if stop is None else min(stop, len(self._bytes))
        for seq in range(start, end + 1):
            yield self._record(seq)

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
                    self._cond.wait(remaining)
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
        return self._links[seq]

    # -- snapshots ----------------------------------------------------------------
    def save_snapshot(self, state: Any, *, schema_version: int, seq: int | None = None) -> Snapshot:
        body = codec.encode(state, path="state", max_depth=SNAPSHOT_MAX_DEPTH, max_bytes=SNAPSHOT_MAX_BYTES)
        with self._lock:
            seq = len(self._bytes) if seq is None else seq
            if not 0 <= seq <= len(self._bytes):
                msg = f"cannot snapshot seq {seq}: the log's head is {len(self._bytes)}"
                raise ValueError(msg)
            ts = self._ts[seq - 1] if seq else 0
            link = self._links[seq]
            self._snapshots[seq] = (ts, link, schema_version, body)
        return Snapshot(seq, ts, link, schema_version, codec.decode(body, max_depth=SNAPSHOT_MAX_DEPTH), f"memory:{seq}")

    def latest_snapshot(self, *, max_seq: int | None = None,
                        schema_version: int | None = None) -> Snapshot | None:
        with self._lock:
            items = sorted(self._snapshots.items(), reverse=True)
        for seq, (ts, link, version, body) in items:
            if max_seq is not None and seq > max_seq:
                continue
            if schema_version is not None and version != schema_version:
                continue
            return Snapshot(seq, ts, link, version, codec.decode(body, max_depth=SNAPSHOT_MAX_DEPTH), f"memory:{seq}")
        return None

    def snapshots(self) -> list[Snapshot]:
        with self._lock:
            items = sorted(self._snapshots.items())
        return [Snapshot(seq, ts, link, v, codec.decode(body, max_depth=SNAPSHOT_MAX_DEPTH), f"memory:{seq}")
                for seq, (ts, link, v, body) in items]

    def require_snapshot(self, max_seq: int | None = None) -> Snapshot:
        """Like :meth:`latest_snapshot` but raise :class:`SnapshotError` when there is none."""
        snap = self.latest_snapshot(max_seq=max_seq)
        if snap is None:
            msg = "no snapshot in the in-memory log"
            raise SnapshotError(msg)
        return snap
