"""Byte layout of segment headers and frames (see ``FORMAT.md``); no I/O here.

A frame holds one append or one atomic batch::

    u32 len | u32 count | u64 seq | i64 ts | 16B link | u32 body_crc | u32 header_crc | payload | pad

The header has its own CRC so a flipped ``len`` is never mistaken for a torn write.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import NamedTuple

from .codec import MAX_RECORD_BYTES

__all__ = [
    "FRAME_HEADER_SIZE",
    "FORMAT_VERSION",
    "MAX_EVENT_BYTES",
    "SEG_HEADER_SIZE",
    "SEG_MAGIC",
    "BadFrame",
    "FrameHeader",
    "SegHeader",
    "check_frame",
    "join_events",
    "key_check",
    "max_payload",
    "pack_frame",
    "pack_seg_header",
    "pack_single",
    "split_events",
    "unpack_seg_header",
]

FORMAT_VERSION = 1
SEG_MAGIC = b"EVLG"
FLAG_KEYED = 1

_SEG = struct.Struct("<4sHHQq16s8sI")  # 52 bytes, then u32 header_crc
SEG_HEADER_SIZE = _SEG.size + 4  # 56
_FRAME_PREFIX = struct.Struct("<IIQq16sI")  # 44 bytes, then u32 header_crc
FRAME_HEADER_SIZE = _FRAME_PREFIX.size + 4  # 48
_FRAME_FULL = struct.Struct("<IIQq16sII")
_U32 = struct.Struct("<I")

_crc32 = zlib.crc32
_pack_prefix = _FRAME_PREFIX.pack
_pack_u32 = _U32.pack
_unpack_frame = _FRAME_FULL.unpack_from
_PADS = tuple(bytes(i) for i in range(8))


#: Largest event (msgpack ``[kind, data]``) a frame can hold: the codec bounds the kind
#: and the data at ``MAX_RECORD_BYTES`` each. Used to refuse a hostile ``len`` early.
MAX_EVENT_BYTES = 2 * MAX_RECORD_BYTES + 64


def max_payload(count: int) -> int:
    """Largest ``len`` a valid frame of ``count`` events can have (bounds a hostile length)."""
    return count * (MAX_EVENT_BYTES + 4)


def key_check(key: bytes) -> bytes:
    """8 bytes that let open() tell a wrong key from the right one (zeros when unkeyed)."""
    if not key:
        return bytes(8)
    return hashlib.blake2b(b"eventlog key check", digest_size=8, key=key).digest()


class SegHeader(NamedTuple):
    """The decoded 56-byte header at the start of every segment file."""

    version: int
    flags: int
    base_seq: int
    prev_ts: int
    prev_link: bytes
    key_check: bytes


def pack_seg_header(base_seq: int, prev_ts: int, prev_link: bytes, key: bytes) -> bytes:
    """Return the 56 header bytes of a new segment."""
    flags = FLAG_KEYED if key else 0
    body = _SEG.pack(SEG_MAGIC, FORMAT_VERSION, flags, base_seq, prev_ts, prev_link, key_check(key), 0)
    return body + _pack_u32(_crc32(body))


def unpack_seg_header(data: bytes) -> SegHeader | str:
    """Decode a segment header, or return a string saying what is wrong with it."""
    if len(data) < SEG_HEADER_SIZE:
        return f"segment header is {len(data)} bytes, expected {SEG_HEADER_SIZE}"
    magic, version, flags, base_seq, prev_ts, prev_link, kc, _res = _SEG.unpack_from(data, 0)
    (crc,) = _U32.unpack_from(data, _SEG.size)
    actual = _crc32(data[: _SEG.size])
    if crc != actual:
        return f"segment header checksum mismatch: expected 0x{crc:08X}, got 0x{actual:08X}"
    if magic != SEG_MAGIC:
        return f"not a segment file (magic {magic!r}, expected {SEG_MAGIC!r})"
    return SegHeader(version, flags, base_seq, prev_ts, prev_link, kc)


class FrameHeader(NamedTuple):
    """A frame header whose CRC has been checked."""

    length: int
    count: int  # type: ignore[assignment]  # a field named like tuple.count, on purpose
    seq: int
    ts: int
    link: bytes
    body_crc: int

    @property
    def total(self) -> int:
        """Bytes the whole frame occupies, pad included."""
        return (FRAME_HEADER_SIZE + self.length + 7) & ~7

    @property
    def last_seq(self) -> int:
        """Seq of the frame's last event."""
        return self.seq + self.count - 1


def pack_single(event_bytes: bytes, seq: int, ts: int, link: bytes) -> bytes:
    """Return the bytes of a one-event frame (the hot path: one struct pack, two CRCs)."""
    n = len(event_bytes)
    prefix = _pack_prefix(n, 1, seq, ts, link, _crc32(event_bytes))
    return b"".join((prefix, _pack_u32(_crc32(prefix)), event_bytes, _PADS[-n & 7]))


def join_events(events: list[bytes]) -> bytes:
    """Return the payload of a multi-event frame: a u32 length table then the events."""
    count = len(events)
    if count == 1:
        return events[0]
    table = struct.pack(f"<{count}I", *map(len, events))
    return table + b"".join(events)


def pack_frame(events: list[bytes], seq: int, ts: int, link: bytes) -> bytes:
    """Return the bytes of a frame holding ``events`` (one batch)."""
    if len(events) == 1:
        return pack_single(events[0], seq, ts, link)
    payload = join_events(events)
    n = len(payload)
    prefix = _pack_prefix(n, len(events), seq, ts, link, _crc32(payload))
    return b"".join((prefix, _pack_u32(_crc32(prefix)), payload, _PADS[-n & 7]))


def split_events(payload: bytes, count: int) -> list[bytes] | None:
    """Split a frame payload into event bytes; ``None`` if the length table is inconsistent."""
    if count == 1:
        return [payload]
    table = 4 * count
    if len(payload) < table:
        return None
    lens = struct.unpack_from(f"<{count}I", payload, 0)
    if sum(lens) != len(payload) - table:
        return None
    out = []
    pos = table
    for n in lens:
        out.append(payload[pos : pos + n])
        pos += n
    return out


class BadFrame(NamedTuple):
    """Why the bytes at an offset are not a good frame.

    ``kind`` is one of ``"short"`` (fewer than a header's bytes left), ``"header"``
    (header checksum fails), ``"past_end"`` (good header, frame runs past the end of
    the data: a torn write) or ``"bad"`` (good header, but something else is wrong).
    """

    kind: str
    reason: str


def check_frame(buf: bytes | memoryview, pos: int, end: int, expected_seq: int,
                prev_ts: int) -> FrameHeader | BadFrame:
    """Check the frame at ``buf[pos:]`` (data valid up to ``end``) and return its header.

    Every length is checked against ``end`` before anything is sliced, so a hostile
    ``len`` allocates nothing.
    """
    if end - pos < FRAME_HEADER_SIZE:
        return BadFrame("short", f"{end - pos} bytes left, fewer than a {FRAME_HEADER_SIZE}-byte frame header")
    length, count, seq, ts, link, body_crc, header_crc = _unpack_frame(buf, pos)
    actual = _crc32(buf[pos : pos + 44])
    if actual != header_crc:
        return BadFrame("header", f"frame header checksum mismatch: expected 0x{header_crc:08X}, got 0x{actual:08X}")
    if seq != expected_seq:
        return BadFrame("bad", f"frame has seq {seq}, expected {expected_seq}")
    if count < 1 or length > max_payload(count):
        return BadFrame("bad", f"frame header is impossible (count {count}, len {length})")
    if ts < prev_ts:
        return BadFrame("bad", f"frame timestamp {ts} is earlier than the previous {prev_ts}")
    total = (FRAME_HEADER_SIZE + length + 7) & ~7
    if total > end - pos:
        return BadFrame("past_end", f"frame of {total} bytes runs past the end ({end - pos} bytes left)")
    body_start = pos + FRAME_HEADER_SIZE
    actual = _crc32(buf[body_start : body_start + length])
    if actual != body_crc:
        return BadFrame("bad", f"frame body checksum mismatch: expected 0x{body_crc:08X}, got 0x{actual:08X}")
    pad = buf[body_start + length : pos + total]
    if pad and any(pad):
        return BadFrame("bad", "frame padding is not zero")
    if count > 1:
        table = 4 * count
        if length < table or sum(struct.unpack_from(f"<{count}I", buf, body_start)) != length - table:
            return BadFrame("bad", f"frame length table of {count} events does not add up to len {length}")
    return FrameHeader(length, count, seq, ts, link, body_crc)
