"""Snapshot files: ``snapshots/snap-<seq:020d>.snap`` (layout in ``FORMAT.md``).

A snapshot is written as a temp file, fsynced, renamed and the directory fsynced, so
a crash leaves either the old set of snapshots or the new one, never a half file
under a real name. Checking a snapshot against the log (link and ts at its seq) is
the log's job; this module checks the file itself.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from typing import NamedTuple

from ._atomic import write_atomically

__all__ = [
    "SNAP_DIR",
    "SNAP_HEADER_SIZE",
    "SnapHeader",
    "list_snapshots",
    "pack_snapshot",
    "parse_snapshot",
    "snap_name",
    "write_snapshot",
]

SNAP_DIR = "snapshots"
SNAP_MAGIC = b"EVSN"
SNAP_VERSION = 1
_HEAD = struct.Struct("<4sHHQq16sqQI")  # 60 bytes, then u32 header_crc
SNAP_HEADER_SIZE = _HEAD.size + 4  # 64
_U32 = struct.Struct("<I")
_NAME_RE = re.compile(r"^snap-(\d{20})\.snap$")


def snap_name(seq: int) -> str:
    """File name of the snapshot at ``seq``."""
    return f"snap-{seq:020d}.snap"


def list_snapshots(snap_dir: str) -> list[tuple[int, str]]:
    """``(seq, file name)`` of every snapshot file by name, oldest first (no checks)."""
    try:
        names = os.listdir(snap_dir)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        m = _NAME_RE.match(name)
        if m:
            out.append((int(m.group(1)), name))
    out.sort()
    return out


class SnapHeader(NamedTuple):
    """The checked header of a snapshot file."""

    flags: int
    seq: int
    ts: int
    link: bytes
    schema_version: int
    body_len: int


def pack_snapshot(seq: int, ts: int, link: bytes, schema_version: int, body: bytes, keyed: bool) -> bytes:
    """Return the bytes of a snapshot file (header + body)."""
    head = _HEAD.pack(SNAP_MAGIC, SNAP_VERSION, 1 if keyed else 0, seq, ts, link, schema_version,
                      len(body), zlib.crc32(body))
    return head + _U32.pack(zlib.crc32(head)) + body


def parse_snapshot(data: bytes) -> tuple[SnapHeader, bytes] | str:
    """Check a snapshot file's bytes; return ``(header, body)`` or a reason it is bad."""
    if len(data) < SNAP_HEADER_SIZE:
        return f"snapshot file is {len(data)} bytes, shorter than its {SNAP_HEADER_SIZE}-byte header"
    magic, version, flags, seq, ts, link, schema, body_len, body_crc = _HEAD.unpack_from(data, 0)
    (hcrc,) = _U32.unpack_from(data, _HEAD.size)
    actual = zlib.crc32(data[: _HEAD.size])
    if hcrc != actual:
        return f"snapshot header checksum mismatch: expected 0x{hcrc:08X}, got 0x{actual:08X}"
    if magic != SNAP_MAGIC:
        return f"not a snapshot file (magic {magic!r})"
    if version != SNAP_VERSION:
        return f"unsupported snapshot format version {version}"
    if body_len != len(data) - SNAP_HEADER_SIZE:
        return f"snapshot body is {len(data) - SNAP_HEADER_SIZE} bytes, header says {body_len}"
    body = data[SNAP_HEADER_SIZE:]
    actual = zlib.crc32(body)
    if actual != body_crc:
        return f"snapshot body checksum mismatch: expected 0x{body_crc:08X}, got 0x{actual:08X}"
    return SnapHeader(flags, seq, ts, link, schema, body_len), body


def write_snapshot(snap_dir: str, name: str, data: bytes) -> None:
    """Write ``data`` to ``snap_dir/name`` atomically and durably.

    Temp file, fsync (the data is on disk before the name points at it), rename
    (atomic), fsync the directory (the rename itself survives power loss). On any
    error the temp file is removed and the previous file, if any, is untouched.

    Raises:
        LogWriteError: an I/O error (keeps the errno).
    """
    path = os.path.join(snap_dir, name)
    write_atomically(path, data, tmp=path + ".tmp", what="snapshot")
