"""Segment files: names, positional reads, and the frame scanner.

The scanner reads big chunks with ``os.pread`` (never a buffered file) and checks
every frame with :func:`eventlog._frame.check_frame`; it stops at the first bad
position and reports why, leaving the decision (torn tail, corruption) to the caller.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Iterator
from itertools import chain
from typing import Any

from ._frame import (
    _FRAME_FULL,
    _PADS,
    FRAME_HEADER_SIZE,
    MAX_EVENT_BYTES,
    BadFrame,
    FrameHeader,
    check_frame,
    max_payload,
    split_events,
)
from .prefix_filter import PrefixFilter

__all__ = ["CHUNK", "FrameScanner", "cut_at_a_sector", "frame_end", "parse_seg_name", "pread_all", "seg_name"]

#: Bytes read per ``pread`` when scanning.
CHUNK = 1 << 20

# Matched whole (fullmatch), ASCII digits only: "$" would accept a name ending in a
# newline, and "\d" other scripts' digits (issue 13, hole 8).
_SEG_RE = re.compile(r"([0-9]{20})\.seg")
_U32 = struct.Struct("<I")
_unpack_frame = _FRAME_FULL.unpack_from
# A frame header without its link: the scanner needs only the last good frame's link,
# read from the buffer when the buffer is replaced or the scan ends (a bytes object per
# frame, made and dropped, costs a twentieth of a frame's time).
_unpack_no_link = struct.Struct("<IIQq16xI4x").unpack_from
# The CRC-32 of any bytes followed by their own CRC-32 (little-endian) is this constant:
# checking the 48 header bytes against it is checking the stored header CRC, in one call
# and without unpacking the stored value.
_CRC_RESIDUE = 0x2144DF1C
_LINK_AT = 24  # offset of the link in a frame header
_NO_LAST = 1 << 64  # above every seq: a frame scan reads to the end


def seg_name(base_seq: int) -> str:
    """File name of the segment whose first seq is ``base_seq``."""
    return f"{base_seq:020d}.seg"


def parse_seg_name(name: str) -> int | None:
    """Base seq encoded in a segment file name, or ``None`` if it is not one."""
    m = _SEG_RE.fullmatch(name)
    return int(m.group(1)) if m else None


def pread_all(fd: int, n: int, off: int) -> bytes:
    """Read up to ``n`` bytes at ``off`` (fewer only at end of file)."""
    data = os.pread(fd, n, off)
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = os.pread(fd, n - got, off + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def frame_end(off: int, payload_len: int) -> int:
    """Offset just after the frame at ``off`` whose payload is ``payload_len`` bytes (pad included)."""
    return off + ((FRAME_HEADER_SIZE + payload_len + 7) & ~7)


class FrameScanner:
    """The one frame reader: iterate over the good frames of one segment between two offsets.

    Every reader of segment files uses it (open-time recovery, reads, lookups by seq or
    time, ``verify``). Yields ``(offset, seq, count, ts, link, payload)`` per frame.
    After iteration, ``pos`` is the end of the last good frame, ``expected_seq``/
    ``prev_ts``/``link`` describe the state there, and ``bad`` (with ``bad_off``) says
    why scanning stopped early, or is ``None`` if it reached ``end``.

    Reads are big ``pread`` chunks. A frame that is plainly good (one event, the expected
    seq, both CRCs, zero pad) is accepted with inline checks; anything else goes through
    :func:`~eventlog._frame.check_frame` for the exact verdict and reason. Every length is
    bounded before anything is sliced, so a hostile ``len`` allocates nothing.
    """

    def __init__(self, fd: int, start: int, end: int, expected_seq: int, prev_ts: int,
                 link: bytes = b"", chunk: int = CHUNK) -> None:
        self.fd = fd
        self.pos = start
        self.end = end
        self.expected_seq = expected_seq
        self.prev_ts = prev_ts
        self.link = link
        self.chunk = chunk
        self.bad: BadFrame | None = None
        self.bad_off = -1
        #: The first 8 bytes (length and count) at ``bad_off`` as this scan read them:
        #: zeros mean no frame was stored there yet (reserved space, or one being copied).
        self.bad_head = b""
        self.last_frame_off = 0

    def __iter__(self) -> Iterator[tuple[int, int, int, int, bytes, bytes]]:
        return self._scan(0, 0, 0, frozenset())

    def events(self, first: int, last: int,
               select: PrefixFilter | None = None) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(seq, ts, event_bytes)`` for the events ``first..last`` of the scanned frames.

        The events of :meth:`batches`, one at a time.
        """
        return chain.from_iterable(self.batches(first, last, select))

    def batches(self, first: int, last: int,
                select: PrefixFilter | None = None) -> Iterator[list[tuple[int, int, bytes]]]:
        """Yield the events ``first..last`` of the scanned frames as lists of ``(seq, ts, event_bytes)``.

        The same scan as iterating over frames, with a batch frame split into its events;
        it stops after ``last``. ``bad`` and the other attributes are set as after a frame
        scan. One list per chunk read (the events before a bad frame come first): a reader
        of many events iterates over plain lists, with no generator resumed per event
        (``itertools.chain.from_iterable`` flattens them in C), which is a fifth of a
        replay's time. With ``select``, the events it does not pass are left out; their
        frames are checked like every other.
        """
        if last < 1:
            return iter(())
        if select is None:
            return self._scan(first, last, 0, frozenset())
        return self._scan(first, last, select.width, select.skip)

    def _scan(self, first: int, last: int, width: int, skip: frozenset[bytes]) -> Iterator[Any]:
        """Frames (``last == 0``), or lists of the events ``first..last`` (see :meth:`batches`).

        ``width``/``skip`` are a :class:`~eventlog.prefix_filter.PrefixFilter`'s, tested
        inline on each event's bytes (no call for an event left out).
        """
        fd, end, chunk = self.fd, self.end, self.chunk
        pos = self.pos
        buf_off = pos
        buf = pread_all(fd, min(end - pos, chunk), pos) if pos < end else b""
        buf_end = buf_off + len(buf)
        if buf_end < end:
            end = buf_end if len(buf) < min(self.end - pos, chunk) else end  # file shorter than thought
        crc32 = zlib.crc32
        unpack = _unpack_no_link
        pads = _PADS
        residue = _CRC_RESIDUE
        limit = MAX_EVENT_BYTES + 4
        hsize = FRAME_HEADER_SIZE
        stop = last if last else _NO_LAST
        expected, prev_ts, link = self.expected_seq, self.prev_ts, self.link
        # Offsets are relative to the buffer (``buf_off``) inside the loop: the last good
        # frame's (negative once its buffer is replaced), the next frame's, and the last
        # at which a whole header fits before ``end``.
        last_rel = self.last_frame_off - buf_off
        rel = 0
        blen = len(buf)
        rend = end - buf_off
        fast_end = min(rend, blen - hsize + 1)
        out: list[tuple[int, int, bytes]] = []
        push = out.append
        try:
            while expected <= stop:
                if rel < fast_end:
                    length, count, seq, ts, bcrc = unpack(buf, rel)
                    body = rel + hsize
                    tail = body + length
                    total = (hsize + 7 + length) & ~7
                    good = (count == 1 and seq == expected and ts >= prev_ts and length <= limit
                            and rel + total <= blen and crc32(buf[rel:body]) == residue
                            and crc32(payload := buf[body:tail]) == bcrc and buf.startswith(pads[-length & 7], tail))
                elif rel >= rend:
                    break
                else:
                    good = False
                if not good:
                    res = check_frame(buf, rel, blen, expected, prev_ts)
                    if type(res) is BadFrame:
                        if buf_end < end and res.kind in ("short", "past_end"):
                            want = hsize
                            if res.kind == "past_end":
                                want = (hsize + _U32.unpack_from(buf, rel)[0] + 7) & ~7
                            if last_rel >= 0:  # the last good frame is in the buffer replaced
                                link = buf[last_rel + _LINK_AT : last_rel + _LINK_AT + 16]
                            if out:  # the events of this buffer, before it is replaced
                                yield out
                                out = []
                                push = out.append
                            pos = buf_off + rel
                            buf = pread_all(fd, min(end - pos, max(want, chunk)), pos)
                            buf_off = pos
                            last_rel -= rel
                            rel = 0
                            blen = len(buf)
                            buf_end = pos + blen
                            if buf_end < end and len(buf) < min(end - pos, max(want, chunk)):
                                end = buf_end  # the file is shorter than expected: stop there
                            rend = end - buf_off
                            fast_end = min(rend, blen - hsize + 1)
                            continue
                        self.bad = res
                        self.bad_off = buf_off + rel
                        self.bad_head = bytes(buf[rel : rel + 8])
                        break
                    hdr: FrameHeader = res  # type: ignore[assignment]
                    length, count, seq, ts = hdr.length, hdr.count, hdr.seq, hdr.ts
                    total = hdr.total
                    body = rel + hsize
                    payload = buf[body : body + length]
                # The frame is accepted: the state moves past it before anything is yielded
                # (a consumer may stop at the yield; ``finally`` stores this state).
                last_rel = rel
                expected = seq + count
                prev_ts = ts
                rel += total
                if not last:
                    yield buf_off + last_rel, seq, count, ts, buf[last_rel + _LINK_AT : last_rel + _LINK_AT + 16], payload
                elif count == 1:
                    # PrefixFilter.passes, inlined.
                    if seq >= first and (not skip or payload[:width] not in skip):
                        push((seq, ts, payload))
                else:
                    # check_frame verified the length table of a batch frame.
                    for k, event_bytes in enumerate(split_events(payload, count) or ()):
                        if seq + k > last:
                            break
                        if seq + k >= first and (not skip or event_bytes[:width] not in skip):
                            push((seq + k, ts, event_bytes))
            pos = buf_off + rel
            if self.bad is None and pos < self.end and expected <= stop:
                # The file ended before ``end``: report it like any short read.
                self.bad = BadFrame("short", f"file ends at byte {pos}, expected data up to {self.end}")
                self.bad_off = pos
            if out:
                yield out
        finally:
            # The state after the last frame read, also when the consumer stopped early
            # (a reader that reached its last seq): kept in locals until then, as the
            # attribute stores would cost a tenth of a frame's time.
            if last_rel >= 0:
                link = buf[last_rel + _LINK_AT : last_rel + _LINK_AT + 16]
            self.pos, self.last_frame_off = buf_off + rel, buf_off + last_rel
            self.expected_seq, self.prev_ts, self.link = expected, prev_ts, link


def cut_at_a_sector(rest: bytes, base_off: int, expected_seq: int) -> bool:
    """True if the frame at ``rest[0]`` stops at a sector boundary, zeros from there to the end.

    The shape a power cut leaves when only some sectors of a frame copied into reserved
    space reached the disk (pages are written back in any order; a drive writes a
    512-byte sector entirely or not at all): the frame's bytes stop, and from a sector
    boundary inside the frame to the end of the file every byte is zero. "Inside the
    frame" means inside its 48-byte header, or, when the header landed whole (good CRC,
    the expected seq, a possible length), inside its payload. A damaged frame (a flipped
    bit, a payload that merely ends in zero bytes) has no zero sector inside it, so it is
    not mistaken for a torn one. ``base_off`` is the file offset of ``rest[0]``.
    """
    data_end = len(rest.rstrip(b"\0"))
    if data_end == 0:
        return False
    extent = FRAME_HEADER_SIZE
    if len(rest) >= FRAME_HEADER_SIZE and zlib.crc32(rest[:44]) == struct.unpack_from("<I", rest, 44)[0]:
        length, count, seq = struct.unpack_from("<IIQ", rest, 0)
        if seq == expected_seq and count >= 1 and length <= max_payload(count):
            extent = FRAME_HEADER_SIZE + length
    boundary = -(-(base_off + data_end) // 512) * 512
    return data_end < extent and boundary < base_off + extent
