"""Sparse per-segment index: derived data that makes open and lookups fast.

One entry ``(first_seq, ts, offset)`` per ~4 KiB of frames, plus the position and
chain link of the segment's last frame, so open only has to scan the bytes after
``covered_end`` and never re-reads or re-hashes sealed segments (Kafka's
``.index``/``.timeindex``). The file is checked (two CRCs, then a sanity check of the
last frame against the segment) before it is trusted, and rebuilt when it fails: it
holds nothing that cannot be recomputed from the segment.
"""

from __future__ import annotations

import bisect
import os
import struct
import sys
import zlib
from array import array

from . import _fs

__all__ = ["INDEX_INTERVAL", "SegmentIndex", "index_name"]

#: Bytes of frames between two index entries.
INDEX_INTERVAL = 4 * 1024

_MAGIC = b"EVIX"
_VERSION = 1
_HEAD = struct.Struct("<4sHHQQQq16sQQI")  # 76 bytes, then u32 header_crc
_HEAD_SIZE = _HEAD.size + 4
_U32 = struct.Struct("<I")
_BIG = sys.byteorder == "big"


def index_name(base_seq: int) -> str:
    """File name of the index of the segment starting at ``base_seq``."""
    return f"{base_seq:020d}.idx"


class SegmentIndex:
    """Sparse index of one segment; see ``FORMAT.md`` for the file layout."""

    __slots__ = ("base_seq", "covered_end", "last_seq", "last_ts", "last_link", "last_frame_off",
                 "seqs", "tss", "offs", "_next_off")

    def __init__(self, base_seq: int, start_off: int, prev_ts: int, prev_link: bytes) -> None:
        self.base_seq = base_seq
        self.covered_end = start_off
        self.last_seq = base_seq - 1
        self.last_ts = prev_ts
        self.last_link = prev_link
        self.last_frame_off = 0
        self.seqs = array("q")
        self.tss = array("q")
        self.offs = array("q")
        self._next_off = 0

    def note(self, off: int, seq: int, last_seq: int, ts: int, link: bytes, end: int) -> None:
        """Record a frame at ``off`` (seqs ``seq..last_seq``) ending at ``end``."""
        if off >= self._next_off:
            self.seqs.append(seq)
            self.tss.append(ts)
            self.offs.append(off)
            self._next_off = off + INDEX_INTERVAL
        self.covered_end = end
        self.last_seq = last_seq
        self.last_ts = ts
        self.last_link = link
        self.last_frame_off = off

    def add_entry(self, off: int, seq: int, ts: int) -> None:
        """Hot-path twin of :meth:`note`: add an entry if ``off`` is past the interval.

        The writer calls this per append and sets the tail fields once, with
        :meth:`set_tail`, before the index is saved.
        """
        if off >= self._next_off:
            self.seqs.append(seq)
            self.tss.append(ts)
            self.offs.append(off)
            self._next_off = off + INDEX_INTERVAL

    def set_tail(self, covered_end: int, last_seq: int, last_ts: int, last_link: bytes,
                 last_frame_off: int) -> None:
        """Set where the indexed frames end (see :meth:`add_entry`)."""
        self.covered_end = covered_end
        self.last_seq = last_seq
        self.last_ts = last_ts
        self.last_link = last_link
        self.last_frame_off = last_frame_off

    def start_for_seq(self, seq: int) -> tuple[int, int]:
        """Return ``(offset, first_seq)`` of the indexed frame at or before ``seq``."""
        i = bisect.bisect_right(self.seqs, seq) - 1
        if i < 0:
            return -1, self.base_seq
        return self.offs[i], self.seqs[i]

    def start_for_ts(self, ts: int) -> tuple[int, int]:
        """Return ``(offset, first_seq)`` of the last indexed frame with ts <= ``ts``
        strictly before any frame with a larger ts (``-1`` offset: the segment start)."""
        i = bisect.bisect_right(self.tss, ts) - 1
        if i < 0:
            return -1, self.base_seq
        return self.offs[i], self.seqs[i]

    # -- persistence ------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Serialise (little-endian, see FORMAT.md)."""
        n = len(self.seqs)
        inter = array("q", bytes(8 * 3 * n))
        inter[0::3] = self.seqs
        inter[1::3] = self.tss
        inter[2::3] = self.offs
        if _BIG:
            inter.byteswap()
        entries = inter.tobytes()
        head = _HEAD.pack(_MAGIC, _VERSION, 0, self.base_seq, self.covered_end, self.last_seq,
                          self.last_ts, self.last_link, self.last_frame_off, n, zlib.crc32(entries))
        return head + _U32.pack(zlib.crc32(head)) + entries

    @classmethod
    def from_bytes(cls, data: bytes, base_seq: int) -> SegmentIndex | None:
        """Parse an index file; ``None`` if it fails any check (then it is rebuilt)."""
        if len(data) < _HEAD_SIZE:
            return None
        (magic, version, _r, b, covered, last_seq, last_ts, last_link, last_off, n,
         ecrc) = _HEAD.unpack_from(data, 0)
        (hcrc,) = _U32.unpack_from(data, _HEAD.size)
        if hcrc != zlib.crc32(data[: _HEAD.size]) or magic != _MAGIC or version != _VERSION:
            return None
        entries = data[_HEAD_SIZE:]
        if b != base_seq or len(entries) != 24 * n or zlib.crc32(entries) != ecrc:
            return None
        inter = array("q")
        inter.frombytes(entries)
        if _BIG:
            inter.byteswap()
        idx = cls(base_seq, covered, last_ts, last_link)
        idx.last_seq = last_seq
        idx.last_frame_off = last_off
        idx.seqs = inter[0::3]
        idx.tss = inter[1::3]
        idx.offs = inter[2::3]
        idx._next_off = idx.offs[-1] + INDEX_INTERVAL if n else 0
        return idx

    @classmethod
    def load(cls, path: str, base_seq: int) -> SegmentIndex | None:
        """Read an index file; ``None`` if it is missing or fails a check."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        return cls.from_bytes(data, base_seq)

    def save(self, path: str) -> None:
        """Write the index atomically (temp + rename).

        Not fsynced on purpose: the index is derived data. If a crash loses or tears
        it, the CRCs or the sanity check reject it and open rebuilds it by scanning.
        """
        tmp = path + ".tmp"
        fd = _fs.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _fs.write_all(fd, self.to_bytes())
        finally:
            _fs.close(fd)
        _fs.replace(tmp, path)
