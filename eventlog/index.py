"""Sparse per-segment index: derived data that makes open and lookups fast.

One entry ``(first_seq, ts, offset)`` per ~4 KiB of frames, plus the position and
chain link of the segment's last frame, so open only has to scan the bytes after
``covered_end`` and never re-reads or re-hashes sealed segments (Kafka's
``.index``/``.timeindex``). The file is checked (two CRCs, then a sanity check of its
first and last frames against the segment) before it is trusted, and rebuilt when it
fails: it holds nothing that cannot be recomputed from the segment.

CRCs do not stop someone who recomputes them (issue 13, hole 7: index timestamps moved
and CRCs fixed made ``seq_at_time`` answer wrongly, silently). So:

* format 2 carries a **tag**, keyed BLAKE2b-128 with the log's chain key, in a keyed
  log: without the key an index cannot be made that a keyed writer or reader accepts;
* every entry a lookup starts from is **cross-checked** against the frame it points at
  (its seq and ts must be that frame's) by the file log before the answer is used; a
  mismatch makes the log ignore the index, say so, and rebuild it from the segment.
  This is what protects unkeyed logs and readers without the key;
* ``eventlog.verify`` checks every entry of every index against the frames it scans.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import os
import struct
import sys
import zlib
from array import array
from typing import NamedTuple

from . import _fs
from .bounded import RegularFile

__all__ = ["ENTRY_SIZE", "INDEX_INTERVAL", "MAX_INDEX_BYTES", "Refused", "SegmentIndex", "index_name"]

#: Bytes of frames between two index entries.
INDEX_INTERVAL = 4 * 1024

_MAGIC = b"EVIX"
#: The format written; version 1 (no tag) is still read, except by a keyed log.
_VERSION = 2
_FLAG_KEYED = 1
_HEAD = struct.Struct("<4sHHQQQq16sQQI")  # 76 bytes common to every version
_TAG_SIZE = 16
#: Header bytes by version: v1 = common + u32 header_crc; v2 adds the tag before it.
_HEAD_SIZES = {1: _HEAD.size + 4, 2: _HEAD.size + _TAG_SIZE + 4}
_U32 = struct.Struct("<I")
_BIG = sys.byteorder == "big"
_TAG_PERSON = b"eventlog-index-2"
#: Bytes per entry: u64 first_seq, i64 ts, u64 offset.
ENTRY_SIZE = 24
#: Largest index file read: a 4 KiB interval over a segment far larger than any written.
MAX_INDEX_BYTES = 64 * 2**20


class Refused(NamedTuple):
    """Why an index file is not used.

    ``untrusted`` is True when its checksums are fine but it fails authentication
    (a tag or keyed flag that does not match): not something a crash leaves behind.
    """

    reason: str
    untrusted: bool = False


def _tag(key: bytes, head: bytes, entries: bytes) -> bytes:
    h = hashlib.blake2b(head, digest_size=_TAG_SIZE, key=key, person=_TAG_PERSON)
    h.update(entries)
    return h.digest()


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

    # -- persistence ------------------------------------------------------------
    def to_bytes(self, key: bytes = b"") -> bytes:
        """Serialise (little-endian, see FORMAT.md), tagged with ``key`` (the chain key; empty: untagged)."""
        n = len(self.seqs)
        inter = array("q", bytes(8 * 3 * n))
        inter[0::3] = self.seqs
        inter[1::3] = self.tss
        inter[2::3] = self.offs
        if _BIG:
            inter.byteswap()
        entries = inter.tobytes()
        head = _HEAD.pack(_MAGIC, _VERSION, _FLAG_KEYED if key else 0, self.base_seq, self.covered_end,
                          self.last_seq, self.last_ts, self.last_link, self.last_frame_off, n, zlib.crc32(entries))
        head += _tag(key, head, entries) if key else bytes(_TAG_SIZE)
        return head + _U32.pack(zlib.crc32(head)) + entries

    @classmethod
    def check_bytes(cls, data: bytes, base_seq: int, *, keyed: bool,
                    key: bytes | None) -> SegmentIndex | Refused:
        """Parse and check an index file's bytes; return the index or the reason it is refused.

        ``keyed``: the log's chain is keyed. ``key``: its key, or ``None`` when the reader
        has none; the tag is then not checked (nor is it for an unkeyed log), and the
        entries are only as good as the cross-checks the log makes before using them.
        """
        if len(data) < 8 or data[:4] != _MAGIC:
            return Refused("not an index file (bad magic)")
        version = struct.unpack_from("<H", data, 4)[0]
        size = _HEAD_SIZES.get(version)
        if size is None:
            return Refused(f"unsupported index format version {version}")
        if len(data) < size:
            return Refused(f"index file is {len(data)} bytes, shorter than its {size}-byte header")
        (_magic, _version, flags, b, covered, last_seq, last_ts, last_link, last_off, n,
         ecrc) = _HEAD.unpack_from(data, 0)
        (hcrc,) = _U32.unpack_from(data, size - 4)
        if hcrc != zlib.crc32(data[: size - 4]):
            return Refused("index header checksum mismatch")
        entries = data[size:]
        if b != base_seq:
            return Refused(f"index is for the segment at seq {b}, not {base_seq}")
        if len(entries) != ENTRY_SIZE * n or zlib.crc32(entries) != ecrc:
            return Refused("index entries do not match their count or checksum")
        if bool(flags & _FLAG_KEYED) != keyed and version >= 2:
            return Refused("index keyed flag does not match the log", untrusted=True)
        if keyed and key:
            if version < 2:
                return Refused("format 1 index has no authentication tag, so a keyed log does not trust it",
                               untrusted=True)
            want = _tag(key, bytes(data[: _HEAD.size]), entries)
            if not hmac.compare_digest(want, bytes(data[_HEAD.size : _HEAD.size + _TAG_SIZE])):
                return Refused("index authentication tag mismatch (forged or altered, or written with another key)",
                               untrusted=True)
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
    def from_bytes(cls, data: bytes, base_seq: int, *, keyed: bool = False,
                   key: bytes | None = None) -> SegmentIndex | None:
        """:meth:`check_bytes`, with ``None`` for a refused file (then it is rebuilt)."""
        idx = cls.check_bytes(data, base_seq, keyed=keyed, key=key)
        return idx if isinstance(idx, SegmentIndex) else None

    @classmethod
    def read(cls, path: str, base_seq: int, *, keyed: bool, key: bytes | None) -> SegmentIndex | Refused | None:
        """Read and check an index file; ``None`` if it is missing, else the index or why it is refused.

        A regular file of at most :data:`MAX_INDEX_BYTES` only (see :mod:`eventlog.bounded`).
        """
        try:
            with RegularFile(path) as f:
                if f.size > MAX_INDEX_BYTES:
                    return Refused(f"index file of {f.size} bytes is larger than any index ({MAX_INDEX_BYTES})")
                data = f.read(f.size)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            return Refused(f"cannot read: {err}")
        return cls.check_bytes(data, base_seq, keyed=keyed, key=key)

    def save(self, path: str, key: bytes = b"") -> None:
        """Write the index atomically (temp + rename), tagged with ``key``.

        Not fsynced on purpose: the index is derived data. If a crash loses or tears
        it, the CRCs or the sanity check reject it and open rebuilds it by scanning.
        """
        tmp = path + ".tmp"
        fd = _fs.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _fs.write_all(fd, self.to_bytes(key))
        finally:
            _fs.close(fd)
        _fs.replace(tmp, path)
