"""Bundles: one portable, self-contained file holding a whole log (plus a snapshot).

Layout in ``FORMAT.md``. Events are packed thousands to a frame (one CRC per frame,
timestamps and lengths in two tables) so a bundle of 100k events is written and
parsed in a few milliseconds. Reading trusts the checksums for the events: the chain
links stored per frame and the head link in the trailer become the rebuilt log's known
links, without re-hashing every event (``verify``, or ``read_bundle(check_chain=True)``,
re-hashes). The snapshot section is not trusted on its checksums: it must carry the tag
of the log's key (``eventlog.snapshot``) and match the head. Every part is read only
after the header announcing it was checked (``eventlog.bounded``).
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from array import array
from itertools import accumulate
from typing import Any

from . import _fs
from ._atomic import write_atomically
from .base import EventLog
from .bounded import NotRegularFileError, RegularFile, ShortFileError
from .chain import GENESIS, Chain
from .encoding import SNAPSHOT_MAX_BYTES, decode_event, decode_state, encode_state
from .errors import BundleError, CorruptionError
from .memory import InMemoryEventLog
from .record import Snapshot
from .snapshot import SnapHeader, header_size, parse_snapshot, tag_problem

__all__ = ["read_bundle", "write_bundle"]

_MAGIC = b"EVBUNDLE"
_END_MAGIC = b"EVBEND\0\0"
_SNAP_MAGIC = b"EVSNAP\0\0"
_VERSION = 1
_F_KEYED = 1
_F_SNAPSHOT = 2
_HEAD = struct.Struct("<8sHHIQI")  # 28 bytes + u32 crc
_HEAD_SIZE = _HEAD.size + 4
_FRAME = struct.Struct("<IIQ16sI")  # 36 bytes + u32 header crc
_FRAME_SIZE = _FRAME.size + 4
_TRAILER = struct.Struct("<8sQ16sI")  # 36 bytes + u32 crc
_TRAILER_SIZE = _TRAILER.size + 4
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
#: Events per bundle frame (bounded also by bytes, below).
_FRAME_EVENTS = 4096
_FRAME_BYTES = 1 << 20
_BIG = sys.byteorder == "big"
#: Fewest bytes an event takes in a bundle frame (its ts and its length): bounds ``n_events``.
_MIN_EVENT_BYTES = 12


def _le(arr: array[int]) -> bytes:
    if _BIG:
        arr = array(arr.typecode, arr)
        arr.byteswap()
    return arr.tobytes()


def _chunks(raw: list[tuple[int, int, bytes]]) -> list[list[tuple[int, int, bytes]]]:
    """Split records into frames of at most _FRAME_EVENTS events and about _FRAME_BYTES bytes."""
    out = []
    for i in range(0, len(raw), _FRAME_EVENTS):
        chunk = raw[i : i + _FRAME_EVENTS]
        if sum(len(r[2]) for r in chunk) <= _FRAME_BYTES:
            out.append(chunk)
            continue
        cur: list[tuple[int, int, bytes]] = []
        size = 0
        for r in chunk:  # large events: close a frame whenever it reaches the byte bound
            cur.append(r)
            size += len(r[2])
            if size >= _FRAME_BYTES:
                out.append(cur)
                cur, size = [], 0
        if cur:
            out.append(cur)
    return out


def _frame(first: int, tss: array[int], lens: array[int], events: list[bytes], link: bytes) -> bytes:
    payload = b"".join((_le(tss), _le(lens), *events))
    n = len(payload)
    head = _FRAME.pack(n, len(events), first, link, zlib.crc32(payload))
    return b"".join((head, _U32.pack(zlib.crc32(head)), payload, bytes(-n & 7)))


def write_bundle(path: str | os.PathLike[str], log: EventLog, *, state: Any = None,
                 schema_version: int = 0) -> None:
    """Write every record of ``log`` (and ``state`` as a snapshot at its head) to one file.

    The file is written atomically: a temp file in the same directory, fsync, rename,
    directory fsync. The parent directory is created if missing.

    Raises:
        EventEncodingError: ``state`` cannot be encoded (nothing is written).
        LogWriteError: an I/O error (keeps the errno); an existing file is untouched.
    """
    path = os.path.abspath(os.fspath(path))
    keyed = bool(getattr(log, "keyed", False))
    head = log.head_seq
    body = None
    if state is not None:
        body = encode_state(state)
    parts: list[bytes] = []
    raw = list(log.read_raw(1, head))
    n = raw[-1][0] if raw else 0
    last_ts = raw[-1][1] if raw else 0
    for chunk in _chunks(raw):
        events = [r[2] for r in chunk]
        tss = array("q", [r[1] for r in chunk])
        lens = array("I", map(len, events))
        parts.append(_frame(chunk[0][0], tss, lens, events, log.link_at(chunk[-1][0])))
    head_link = log.link_at(n) if n else GENESIS
    flags = (_F_KEYED if keyed else 0) | (_F_SNAPSHOT if body is not None else 0)
    header = _HEAD.pack(_MAGIC, _VERSION, flags, 0, n, 0)
    parts.insert(0, header + _U32.pack(zlib.crc32(header)))
    if body is not None:
        snap = log.seal_snapshot(body, seq=n, ts=last_ts, link=head_link, schema_version=schema_version)
        parts.append(_SNAP_MAGIC + snap + bytes(-len(snap) & 7))
    trailer = _TRAILER.pack(_END_MAGIC, n, head_link, 0)
    parts.append(trailer + _U32.pack(zlib.crc32(trailer)))
    _atomic_write(path, b"".join(parts))


def _atomic_write(path: str, data: bytes) -> None:
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
        _fs.fsync_dir(os.path.dirname(parent))
    write_atomically(path, data, tmp=f"{path}.{os.getpid()}.tmp", what="bundle")


def _bad(path: str, offset: int | None, reason: str) -> BundleError:
    where = f" at byte {offset}" if offset is not None else ""
    return BundleError(f"{path}{where}: {reason}")


def read_bundle(path: str | os.PathLike[str], *, key: bytes | None = None, check_events: bool = False,
                check_chain: bool = False) -> tuple[InMemoryEventLog, Snapshot | None]:
    """Read a bundle written by :func:`write_bundle`; return ``(log, snapshot or None)``.

    Every frame's CRC and the seq order are checked here, and the stored links become
    the log's known chain links. Events are decoded when read (a bundle of 100k events
    opens in milliseconds). ``check_events=True`` also decodes every event now, so an
    undecodable one is a ``BundleError`` at once rather than a ``RecordDecodeError`` when
    it is read; ``check_chain=True`` recomputes the whole hash chain (with the key) and
    compares it with every stored link.

    The snapshot section is used only if its tag authenticates it (with the key, for a
    keyed bundle) and it matches the log's head; a forged one is a ``BundleError``.

    The file is read part by part, each part's size checked against its checked header
    and against the file's size at open before it is read (:mod:`eventlog.bounded`): a
    device, a FIFO, a huge sparse file or a file that grows meanwhile costs at most what
    the headers announce.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        BundleError: not a bundle (or not a regular file), truncated, a checksum, tag or
            chain mismatch, or a keyed bundle read without its key (``BundleError`` is also
            a ``ValueError``).
    """
    path = os.fspath(path)
    try:
        f = RegularFile(path)
    except NotRegularFileError as err:
        raise _bad(path, None, f"not an event log bundle: {err}") from None
    with f:
        try:
            return _read(f, path, key, check_events, check_chain)
        except ShortFileError as err:
            raise _bad(path, f.pos, f"truncated or changed while being read ({err})") from None


def _read(f: RegularFile, path: str, key: bytes | None, check_events: bool,
          check_chain: bool) -> tuple[InMemoryEventLog, Snapshot | None]:
    """:func:`read_bundle` on an opened file."""
    size = f.size
    if size < _HEAD_SIZE:
        raise _bad(path, 0, "not an event log bundle (bad magic)")
    head = f.read(_HEAD_SIZE, "the header")
    if head[:8] != _MAGIC:
        raise _bad(path, 0, "not an event log bundle (bad magic)")
    magic, version, flags, _r, n_events, _r2 = _HEAD.unpack_from(head, 0)
    if _U32.unpack_from(head, _HEAD.size)[0] != zlib.crc32(head[: _HEAD.size]):
        raise _bad(path, 0, "bundle header checksum mismatch")
    if version != _VERSION:
        raise _bad(path, 8, f"unsupported bundle format version {version}")
    if n_events * _MIN_EVENT_BYTES > size:
        raise _bad(path, 16, f"the header announces {n_events} events, more than a file of {size} bytes holds")
    keyed = bool(flags & _F_KEYED)
    if keyed and not key:
        raise _bad(path, None, "the bundle's hash chain is keyed: give key=... to read it")
    if not keyed and key:
        raise _bad(path, None, "a key was given but the bundle's hash chain is not keyed "
                   "(it may have been rewritten by someone without the key)")
    expected = 1
    last_first = 1
    all_ts: list[int] = []
    events: list[bytes] = []
    links: dict[int, bytes] = {}
    while expected <= n_events:
        pos = f.pos
        if f.remaining < _FRAME_SIZE:
            raise _bad(path, pos, f"truncated: {n_events} events announced, only {expected - 1} present")
        fhead = f.read(_FRAME_SIZE, "a frame header")
        length, count, first, link, body_crc = _FRAME.unpack_from(fhead, 0)
        if _U32.unpack_from(fhead, _FRAME.size)[0] != zlib.crc32(fhead[: _FRAME.size]):
            raise _bad(path, pos, "frame header checksum mismatch")
        if first != expected or count < 1 or first + count - 1 > n_events:
            raise _bad(path, pos, f"frame has seqs {first}..{first + count - 1}, expected to start at {expected}")
        total = (_FRAME_SIZE + length + 7) & ~7
        if length < 12 * count or total - _FRAME_SIZE > f.remaining:
            raise _bad(path, pos, "truncated or impossible frame length")
        padded = f.read(total - _FRAME_SIZE, "a frame")
        payload = padded[:length] if len(padded) != length else padded
        if zlib.crc32(payload) != body_crc:
            raise _bad(path, pos, "frame checksum mismatch")
        tss = array("q")
        tss.frombytes(payload[: 8 * count])
        lens = array("I")
        lens.frombytes(payload[8 * count : 12 * count])
        if _BIG:
            tss.byteswap()
            lens.byteswap()
        if sum(lens) != length - 12 * count:
            raise _bad(path, pos, "frame length table does not add up")
        bounds = list(accumulate(lens, initial=12 * count))
        all_ts.extend(tss)
        events.extend([payload[a:b] for a, b in zip(bounds, bounds[1:], strict=False)])
        links[first + count - 1] = link
        last_first = first
        expected = first + count
    snap_part = None
    if flags & _F_SNAPSHOT:
        snap_part = _read_snapshot_section(f, path)
    pos = f.pos
    if f.remaining != _TRAILER_SIZE:
        raise _bad(path, pos, "truncated bundle or trailing garbage (trailer not where expected)")
    trailer = f.read(_TRAILER_SIZE, "the trailer")
    tmagic, t_n, head_link, _r3 = _TRAILER.unpack_from(trailer, 0)
    if (tmagic != _END_MAGIC or _U32.unpack_from(trailer, _TRAILER.size)[0]
            != zlib.crc32(trailer[: _TRAILER.size]) or t_n != n_events):
        raise _bad(path, pos, "bundle trailer damaged")
    if n_events:
        links[n_events] = head_link
    elif head_link != GENESIS:
        raise _bad(path, pos, "empty bundle with a non-empty chain head")
    try:
        log = InMemoryEventLog.restore(all_ts, events, key=key if keyed else None, links=links, where=path)
    except CorruptionError as err:
        raise _bad(path, None, f"{err.reason} at seq {err.seq}") from None
    if check_chain:
        _check_chain(path, all_ts, events, links, 1, n_events, Chain(key or b"") if keyed else Chain())
    elif keyed and n_events:
        # A wrong key would otherwise go unnoticed until verify: re-hash the last frame
        # (at most _FRAME_EVENTS events) from the link stored before it.
        _check_chain(path, all_ts, events, links, last_first, n_events, Chain(key or b""))
    if check_events:
        for seq, event_bytes in enumerate(events, start=1):
            try:
                decode_event(event_bytes, where=path, seq=seq)
            except CorruptionError as err:
                raise _bad(path, None, f"{err.reason} at seq {seq}") from None
    snapshot = None
    if snap_part is not None:
        sh, body = snap_part
        if sh.seq != n_events or sh.link != log.head_hash or sh.ts != log.head_ts:
            raise _bad(path, None, "the snapshot does not match the bundle's log head")
        problem = tag_problem(sh, body, key if keyed else None, keyed)
        if problem is not None:
            raise _bad(path, None, f"snapshot section: {problem}")
        try:
            state = decode_state(body, where=path)
        except CorruptionError as err:
            raise _bad(path, None, f"snapshot state: {err.reason}") from None
        snapshot = log.save_snapshot(state, schema_version=sh.schema_version)
    return log, snapshot


def _read_snapshot_section(f: RegularFile, path: str) -> tuple[SnapHeader, bytes]:
    """Read and check (header, sizes, CRCs) the snapshot section at ``f.pos``; the tag is checked later."""
    pos = f.pos
    if f.remaining < 8 + 8 + _TRAILER_SIZE:
        raise _bad(path, pos, "snapshot section missing or damaged")
    prefix = f.read(16, "the snapshot section")
    if prefix[:8] != _SNAP_MAGIC:
        raise _bad(path, pos, "snapshot section missing or damaged")
    hsize = header_size(prefix[8:])
    if isinstance(hsize, str):
        raise _bad(path, pos + 8, hsize)
    if f.remaining < hsize - 8 + _TRAILER_SIZE:
        raise _bad(path, pos, "truncated snapshot section")
    head = prefix[8:] + f.read(hsize - 8, "the snapshot header")
    blen = _U64.unpack_from(head, 48)[0]
    padded = (hsize + blen + 7) & ~7
    if blen > SNAPSHOT_MAX_BYTES or padded - hsize > f.remaining - _TRAILER_SIZE:
        raise _bad(path, pos, "truncated snapshot section")
    rest = f.read(padded - hsize, "the snapshot body")
    parsed = parse_snapshot(head + rest[:blen])
    if isinstance(parsed, str):
        raise _bad(path, pos + 8, parsed)
    return parsed


def _check_chain(path: str, tss: list[int], events: list[bytes], links: dict[int, bytes], first: int, last: int,
                 chain: Chain) -> None:
    """Recompute the chain over events ``first..last`` and compare it with each stored link."""
    link = links[first - 1] if first > 1 else GENESIS
    checked = sorted(s for s in links if first <= s <= last)
    for seq in checked:  # from one stored link to the next, in one run each
        link = chain.run(link, first, tss[first - 1 : seq], events[first - 1 : seq])
        if links[seq] != link:
            raise _bad(path, None, f"hash chain mismatch (wrong key, or the history was altered) at seq {seq}")
        first = seq + 1
