"""Incremental scans: fold only the events that can change the fields a question reads.

``bisect`` and ``blame`` ask about a few fields (``status``, ``shared_data.limit``); on
a long log most events cannot change them. A scan here

1. maps the fields to the event kinds that can change them (:class:`EventFilter`;
   ``shared_data.limit`` -> ``shared_data_set`` with key ``limit``, plus ``deserialized``);
2. skips whole stretches between two snapshots whose per-kind event counters
   (``kind_counts``, kept in every snapshot) show no event of those kinds;
3. reads the rest raw and looks at each event's kind (and key) in its bytes, decoding
   only the events that can matter;
4. folds those into a projection with the one ``routilux.projection.apply``.

The projection then holds the exact values of the fields asked about at every version
(the events left out never touch them), so a condition evaluated after each folded event
is evaluated at every version where its value can change: the first version where it
holds, and every flip, are exact.

``updated_at`` and ``version`` change with every event: a question about them reads all.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import msgpack

from eventlog import PrefixFilter
from routilux import events as ev
from routilux.events import SCHEMA_VERSION
from routilux.projection import JobProjection, LoggedEvent, apply

from .source import Job, damaged

__all__ = ["EventFilter", "ScanStats", "apply_sparse", "no_gc", "relevant_events"]

#: For each top-level state field: the event kinds that can change it (``None``: every kind).
#: Derived from the one declaration in :mod:`routilux.job_events` (each kind names the
#: fields it touches): a kind missing here would make bisect and blame silently wrong.
FIELD_KINDS: dict[str, frozenset[str] | None] = {field: ev.kinds_touching(field) for field in ev.STATE_FIELDS}
#: Kinds whose payload names the key they change: (kind, payload field, state field). In
#: an edit's payload the key may be None: an edit of the whole map (any key).
_KEYED = {k.name: (k.key, k.touches[0]) for k in ev.KINDS.values() if k.key is not None}
# The writer puts a keyed kind's key first in a map of all its fields.
_KEYED_MAP_SIZE = {k.name: len(k.fields) for k in ev.KINDS.values() if k.key is not None}
_ALWAYS = frozenset(k.name for k in ev.KINDS.values() if ev.EVERY_FIELD in k.touches)  # can change any field
_SKIP = object()  # "not a wanted kind" in a plan lookup
#: A scan with a progress callback reads this many versions between two calls.
_PROGRESS_EVERY = 1 << 16


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector during a bulk fold.

    A fold allocates many small containers and no cycles; with the collector on, replay
    runs at less than half the speed (DESIGN.md, "Performance facts").
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class EventFilter:
    """The events that can change some fields of a job's state.

    Args:
        paths: field paths (sequences of segments) whose values matter.
        extra_kinds: kinds wanted besides (e.g. to attribute events to routines).

    Attributes:
        every: every event matters (a path reads ``updated_at``/``version``, or an
            unknown field).
        kinds: the kinds that matter; for keyed kinds (``shared_data_set``,
            ``routine_state_set``) only the events whose key is in ``keys[kind]``
            (``None``: any key).
    """

    def __init__(self, paths: Iterable[Sequence[str]], extra_kinds: Iterable[str] = ()) -> None:
        self.every = False
        kinds: set[str] = set(_ALWAYS) | set(extra_kinds)
        keys: dict[str, set[str] | None] = {}
        for kind in extra_kinds:
            if kind in _KEYED:
                keys[kind] = None
        for path in paths:
            if not path:
                continue
            wanted = FIELD_KINDS.get(path[0], None)
            if wanted is None:
                self.every = True
                continue
            kinds |= wanted
            for kind in wanted:
                if kind in _KEYED and _KEYED[kind][1] == path[0]:
                    if len(path) < 2 or kind in keys and keys[kind] is None:
                        keys[kind] = None
                    else:
                        keys.setdefault(kind, set()).add(path[1])  # type: ignore[union-attr]
        self.kinds = frozenset(kinds)
        self.keys: dict[str, frozenset[str] | None] = {
            k: (None if v is None else frozenset(v)) for k, v in keys.items()}

    def wants(self, kind: str, data: Any) -> bool:
        """Whether the decoded event ``(kind, data)`` can change the fields."""
        if self.every:
            return True
        if kind not in self.kinds:
            return False
        keyset = self.keys.get(kind)
        if keyset is None:
            return True
        if not isinstance(data, dict):
            return False
        key = data.get(_KEYED[kind][0])
        if key is not None:
            return key in keyset
        return _whole_map_edit_touches(data, keyset)

    def raw_plan(self) -> dict[bytes, tuple[bytes, tuple[bytes, ...], bytes] | None]:
        """For each wanted kind, as the bytes that start an encoded ``[kind, data]``
        event: ``None`` (every such event is wanted) or ``(base, exact, whole)``: the
        prefix every event of the kind has in the writer's shape, the prefixes of the
        wanted keys' events, and the prefix of an edit of the whole map (a None key:
        decoded to see which keys it touches; see :func:`relevant_events`)."""
        plan: dict[bytes, tuple[bytes, tuple[bytes, ...], bytes] | None] = {}
        for kind in self.kinds:
            head = b"\x92" + msgpack.packb(kind)
            keyset = self.keys.get(kind)
            if keyset is None:
                plan[head] = None
            else:
                field = _KEYED[kind][0]
                # The writer packs {field: key, ...} first, in a map of all the kind's fields;
                # a None key (an edit of the whole map) is wanted whatever the keys asked.
                base = head + bytes((0x80 | _KEYED_MAP_SIZE[kind],)) + msgpack.packb(field)
                plan[head] = (base, tuple(base + msgpack.packb(key) for key in sorted(keyset)),
                              base + msgpack.packb(None))
        return plan

    def raw_select(self) -> PrefixFilter | None:
        """A filter for the log's raw read that leaves out events :func:`relevant_events`
        would pass over anyway on their kind alone (``None``: every event is wanted).

        It looks at as many leading bytes as the shortest encoded ``[kind`` of a known
        kind has, and leaves out the prefixes of the kinds not wanted that no wanted
        kind shares. Everything else, events of unknown kinds and unusual shapes
        included, passes and is decided by :func:`relevant_events` as before: the
        filter changes how fast a scan is, never what it finds.
        """
        if self.every:
            return None
        plan = self.raw_plan()
        heads = {b"\x92" + msgpack.packb(kind) for kind in ev.KINDS}
        width = min(len(head) for head in heads)
        wanted = {head[:width] for head in plan}
        return PrefixFilter(width, frozenset(head[:width] for head in heads - plan.keys()) - wanted)


def _whole_map_edit_touches(data: dict[str, Any], keys: frozenset[str]) -> bool:
    """Whether an edit of a whole map (``routilux.edit_ops``: key None) can change one of ``keys``.

    A fold that skips the other keys' events must skip such an edit of another key too
    (deleting a key it never set would not replay); clear and replace touch every key.
    """
    op, args = data.get("op"), data.get("args")
    if not isinstance(args, list) or not args:
        return True
    if op == "delitem":
        return args[0] in keys
    if op == "update" and isinstance(args[0], dict):
        return any(key in keys for key in args[0])
    if op == "setitem":
        return args[0] in keys
    return True


class ScanStats:
    """What a scan read: ``read`` events looked at, ``folded`` decoded and applied,
    ``skipped`` passed over thanks to snapshot counters."""

    __slots__ = ("folded", "read", "skipped")

    def __init__(self) -> None:
        self.read = 0
        self.folded = 0
        self.skipped = 0


def apply_sparse(p: JobProjection, item: LoggedEvent | tuple[int, int, str, Any]) -> None:
    """Fold one event into ``p`` although the events since ``p.version`` were left out.

    The events left out never touch the fields the scan asks about (see
    :class:`EventFilter`), so those fields are exact; ``p.version`` is moved to just
    before the event so that ``apply``'s order check holds. Other fields of ``p`` are
    not meaningful after a sparse fold.
    """
    p.version = item[0] - 1
    apply(p, item)


def _counted_snapshots(job: Job) -> list[tuple[int, dict[str, int]]]:
    """``(seq, kind_counts)`` of the snapshots whose counters are consistent, oldest first.

    Counters are used only if they add up to each snapshot's seq and never decrease
    from one snapshot to the next; otherwise none are used (the scan just reads more).
    """
    from eventlog import EventLogError

    try:
        snaps = [s for s in job.log.snapshots() if s.schema_version == SCHEMA_VERSION]
    except EventLogError:
        return []
    out: list[tuple[int, dict[str, int]]] = []
    prev: dict[str, int] = {}
    for snap in sorted(snaps, key=lambda s: s.seq):
        state = snap.state
        counts = state.get("kind_counts") if isinstance(state, dict) else None
        if not isinstance(counts, dict) or not all(isinstance(k, str) and type(v) is int for k, v in counts.items()):
            return []
        if sum(counts.values()) != snap.seq or any(counts.get(k, 0) < v for k, v in prev.items()):
            return []
        out.append((snap.seq, dict(counts)))
        prev = counts
    return out


def _ranges(job: Job, flt: EventFilter, start: int, stop: int, stats: ScanStats) -> list[tuple[int, int]]:
    """The version ranges (inclusive) that may hold a wanted event, within ``start..stop``."""
    if flt.every or start > stop:
        return [(start, stop)] if start <= stop else []
    out: list[tuple[int, int]] = []
    if start == 1:
        out.append((1, 1))  # job_created: always read (it can set every field)
        start = 2
    counted: list[tuple[int, dict[str, int]]] = [(0, {})] + _counted_snapshots(job)
    kinds = [k for k in flt.kinds if k != ev.JOB_CREATED]
    edge = start
    for (a, ca), (b, cb) in zip(counted, counted[1:], strict=False):
        if b < start or a >= stop:
            continue
        lo, hi = max(a + 1, start), min(b, stop)
        if lo > hi:
            continue
        if all(cb.get(k, 0) == ca.get(k, 0) for k in kinds):  # no wanted kind in a+1..b
            if edge < lo:
                out.append((edge, lo - 1))
            stats.skipped += hi - lo + 1
            edge = hi + 1
    if edge <= stop:
        out.append((edge, stop))
    merged: list[tuple[int, int]] = []
    for lo, hi in out:
        if merged and merged[-1][1] + 1 == lo:
            merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def relevant_events(job: Job, flt: EventFilter, start: int = 1, stop: int | None = None,
                    stats: ScanStats | None = None,
                    progress: Callable[[int], None] | None = None, with_data: bool = True) -> Iterator[LoggedEvent]:
    """Yield the events (with their stored bytes, so folding them encodes nothing again) in ``start..stop`` that ``flt`` wants.

    Each event's kind is read from its raw bytes (``[kind, data]`` in msgpack: byte 0
    is the array header, the kind string follows); for keyed kinds the key is compared
    as bytes too. Only an event whose bytes do not have the writer's usual shape is
    decoded to decide. Checksums are checked by the log's raw read as always.
    ``progress`` is called with the version reached every 65,536 events read.
    ``with_data=False`` is for a caller that only folds the events: an event chosen on
    its bytes alone is yielded with ``data`` None (folding decodes what it needs, and
    of a ``shared_data_set`` only the key), one decoded to decide with its data.

    The events the plan would pass over on their kind (or key) alone are left out by
    the log's raw read itself (:meth:`EventFilter.raw_select`): on a long log most
    events are, and a yield each would cost more than the test.
    """
    from .replay import decode_raw

    stop = job.head if stop is None else min(stop, job.head)
    stats = stats if stats is not None else ScanStats()
    plan = flt.raw_plan()
    select = flt.raw_select()
    every = flt.every
    wants = flt.wants
    get: Callable[[bytes, object], object] = plan.get
    skip = _SKIP
    kind_of = {b"\x92" + msgpack.packb(kind): kind for kind in flt.kinds}  # the plan's heads
    from eventlog import CorruptionError

    # The hot loop of bisect and blame (benchmarks/bench_cli.py, 1M events): locals only,
    # one dict lookup per event, bytes compared in place. The log's read leaves out
    # events, so the count of events read is worked out from seqs: ``read`` for the
    # chunks finished, ``chunk_lo..seen`` for the one being read.
    read = 0
    chunk_lo, seen = start, start - 1
    step = _PROGRESS_EVERY if progress is not None else max(stop - start + 1, 1)
    try:
        for lo, hi in _ranges(job, flt, start, stop, stats):
            for chunk_lo in range(lo, hi + 1, step):
                chunk_hi = min(chunk_lo + step - 1, hi)
                seen = chunk_lo - 1
                for seq, ts, body in job.log.read_raw(chunk_lo, chunk_hi, select):
                    seen = seq
                    if not every:
                        head = body[1]
                        if 0xA0 <= head <= 0xBF:  # a fixstr kind (every routilux kind is one)
                            found = get(body[: 2 + (head & 0x1F)], skip)
                            if found is skip:
                                continue
                            if found is not None:
                                base, exact, whole = cast("tuple[bytes, tuple[bytes, ...], bytes]", found)
                                if body.startswith(exact):  # the writer's shape, a key asked about
                                    stats.folded += 1
                                    if with_data:
                                        kind, data = decode_raw(job, seq, body)
                                        yield LoggedEvent(seq, ts, kind, data, body)
                                    else:
                                        yield LoggedEvent(seq, ts, kind_of[body[: 2 + (head & 0x1F)]], None, body)
                                    continue
                                if body.startswith(base):
                                    if not body.startswith(whole):
                                        continue  # the writer's shape, another key
                                    kind, data = decode_raw(job, seq, body)
                                    if not wants(kind, data):
                                        continue  # an edit of the whole map that leaves the keys alone
                                    stats.folded += 1
                                    yield LoggedEvent(seq, ts, kind, data, body)
                                    continue
                                kind, data = decode_raw(job, seq, body)
                                if not wants(kind, data):
                                    continue
                                stats.folded += 1
                                yield LoggedEvent(seq, ts, kind, data, body)
                                continue
                            if not with_data:  # a wanted kind (every event of it)
                                stats.folded += 1
                                yield LoggedEvent(seq, ts, kind_of[body[: 2 + (head & 0x1F)]], None, body)
                                continue
                    kind, data = decode_raw(job, seq, body)
                    if not every and not wants(kind, data):
                        continue
                    stats.folded += 1
                    yield LoggedEvent(seq, ts, kind, data, body)
                read += chunk_hi - chunk_lo + 1
                seen = chunk_lo - 1
                if progress is not None:
                    progress(chunk_hi)
    except CorruptionError as exc:
        raise damaged(job.path, exc) from None
    finally:
        stats.read += read + seen - chunk_lo + 1
