"""Snapshot records: ``snapshots/snap-<seq:020d>.snap`` files and bundle sections (``FORMAT.md``).

A snapshot is written as a temp file, fsynced, renamed and the directory fsynced, so
a crash leaves either the old set of snapshots or the new one, never a half file
under a real name.

A snapshot is what a reader builds state from without replaying the log, so it must
not be believed on its checksums alone: anyone can recompute a CRC. Format 2 adds a
**tag**, BLAKE2b-128 keyed with the log's chain key over the seq, ts, chain link,
schema version and body (:func:`snapshot_tag`). In a keyed log nobody without the key
can make a snapshot that passes, so a keyed log cannot be made to show a forged state
(issue 13, hole 1: a body rewritten with its CRCs recomputed used to become the state
that ``JobState.open`` and ``load`` returned). In an unkeyed log the tag is a plain
digest: it catches accidents and a careless forgery, not someone who recomputes it
(as with the unkeyed chain itself); ``routilux-replay verify`` compares every
snapshot with a replay of the log.

Format 1 files (no tag) are still read: an unkeyed log accepts them on the same checks
as before, a keyed log refuses them (they cannot be authenticated) and replays instead.

Checking a snapshot against the log (link and ts at its seq) is the log's job; this
module checks the record itself.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import struct
import zlib
from typing import NamedTuple

from ._atomic import write_atomically
from .bounded import RegularFile
from .encoding import SNAPSHOT_MAX_BYTES

__all__ = [
    "SNAP_DIR",
    "SNAP_HEADER_SIZE",
    "SNAP_VERSION",
    "SnapHeader",
    "header_size",
    "list_snapshots",
    "pack_snapshot",
    "parse_snapshot",
    "read_snapshot_file",
    "snap_name",
    "snapshot_tag",
    "tag_problem",
    "write_snapshot",
]

SNAP_DIR = "snapshots"
SNAP_MAGIC = b"EVSN"
#: The format written; :data:`_HEADER_SIZES` lists the ones read.
SNAP_VERSION = 2
FLAG_KEYED = 1
_HEAD = struct.Struct("<4sHHQq16sqQI")  # 60 bytes common to every version
TAG_SIZE = 16
#: Header bytes by format version: v1 = common + u32 header_crc; v2 adds the tag before it.
_HEADER_SIZES = {1: _HEAD.size + 4, 2: _HEAD.size + TAG_SIZE + 4}
SNAP_HEADER_SIZE = _HEADER_SIZES[SNAP_VERSION]  # 80
_MIN_HEADER = min(_HEADER_SIZES.values())
_U32 = struct.Struct("<I")
_TAG_FIELDS = struct.Struct("<Qq16sqQ")
#: BLAKE2b personalisation: a snapshot tag can never collide with a chain link or
#: another use of the same key.
_TAG_PERSON = b"eventlog-snap-v2"
# Full-string match, ASCII digits only: "snap-<20 digits>.snap\n" or other scripts'
# digits are not snapshot names (issue 13, hole 8: ``$`` matches before a newline).
_NAME_RE = re.compile(r"snap-([0-9]{20})\.snap")


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
        m = _NAME_RE.fullmatch(name)
        if m:
            out.append((int(m.group(1)), name))
    out.sort()
    return out


class SnapHeader(NamedTuple):
    """The checked header of a snapshot record.

    ``tag`` is empty for a format 1 record (which has none).
    """

    version: int
    flags: int
    seq: int
    ts: int
    link: bytes
    schema_version: int
    body_len: int
    tag: bytes

    @property
    def keyed(self) -> bool:
        """True when the record says it was written by a log with a keyed chain."""
        return bool(self.flags & FLAG_KEYED)


def snapshot_tag(key: bytes, seq: int, ts: int, link: bytes, schema_version: int, body: bytes) -> bytes:
    """The 16-byte tag that authenticates a snapshot (keyed BLAKE2b-128; see the module docstring).

    The one definition of the tag: the file and bundle formats store it whole, the
    PostgreSQL backend its first 8 bytes.
    """
    h = hashlib.blake2b(digest_size=TAG_SIZE, key=key, person=_TAG_PERSON)
    h.update(_TAG_FIELDS.pack(seq, ts, link, schema_version, len(body)))
    h.update(body)
    return h.digest()


def pack_snapshot(seq: int, ts: int, link: bytes, schema_version: int, body: bytes, key: bytes = b"") -> bytes:
    """Return the bytes of a snapshot record (header + body), tagged with ``key``.

    ``key`` is the log's chain key (empty for an unkeyed log); the keyed flag follows it.
    """
    head = _HEAD.pack(SNAP_MAGIC, SNAP_VERSION, FLAG_KEYED if key else 0, seq, ts, link, schema_version,
                      len(body), zlib.crc32(body))
    head += snapshot_tag(key, seq, ts, link, schema_version, body)
    return head + _U32.pack(zlib.crc32(head)) + body


def header_size(prefix: bytes) -> int | str:
    """The header size of the record starting with ``prefix`` (>= 8 bytes), or why it is not one."""
    if len(prefix) < 8 or prefix[:4] != SNAP_MAGIC:
        return f"not a snapshot (magic {bytes(prefix[:4])!r})"
    version = struct.unpack_from("<H", prefix, 4)[0]
    size = _HEADER_SIZES.get(version)
    if size is None:
        return f"unsupported snapshot format version {version} (this library reads {sorted(_HEADER_SIZES)})"
    return size


def _parse_header(data: bytes) -> tuple[SnapHeader, int] | str:
    """Check a header (magic, version, CRC); return it and its size, or a reason."""
    size = header_size(data)
    if isinstance(size, str):
        return size
    if len(data) < size:
        return f"snapshot record is {len(data)} bytes, shorter than its {size}-byte header"
    _magic, version, flags, seq, ts, link, schema, body_len, _body_crc = _HEAD.unpack_from(data, 0)
    (hcrc,) = _U32.unpack_from(data, size - 4)
    actual = zlib.crc32(data[: size - 4])
    if hcrc != actual:
        return f"snapshot header checksum mismatch: expected 0x{hcrc:08X}, got 0x{actual:08X}"
    tag = bytes(data[_HEAD.size : _HEAD.size + TAG_SIZE]) if version >= 2 else b""
    return SnapHeader(version, flags, seq, ts, link, schema, body_len, tag), size


def parse_snapshot(data: bytes) -> tuple[SnapHeader, bytes] | str:
    """Check a snapshot record's bytes (header, sizes, CRCs); return ``(header, body)`` or a reason.

    The tag is not checked here (that needs the key): see :func:`tag_problem`.
    """
    parsed = _parse_header(data)
    if isinstance(parsed, str):
        return parsed
    hdr, size = parsed
    if hdr.body_len != len(data) - size:
        return f"snapshot body is {len(data) - size} bytes, header says {hdr.body_len}"
    body = data[size:]
    return _check_body(hdr, data, body)


def _check_body(hdr: SnapHeader, head: bytes, body: bytes) -> tuple[SnapHeader, bytes] | str:
    body_crc = _HEAD.unpack_from(head, 0)[8]
    actual = zlib.crc32(body)
    if actual != body_crc:
        return f"snapshot body checksum mismatch: expected 0x{body_crc:08X}, got 0x{actual:08X}"
    return hdr, body


def read_snapshot_file(path: str) -> tuple[SnapHeader, bytes] | str | None:
    """Read and check a snapshot file, header first; ``None`` if it does not exist.

    Reads nothing past what its checked header announces (a regular file only, body at
    most :data:`~eventlog.encoding.SNAPSHOT_MAX_BYTES`, exactly the rest of the file):
    see :mod:`eventlog.bounded`. The tag is checked by :func:`tag_problem`.
    """
    try:
        f = RegularFile(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        return f"cannot read: {err}"
    with f:
        try:
            prefix = f.read(min(f.size, _MIN_HEADER), "the header")
            size = header_size(prefix)
            if isinstance(size, str):
                return size
            head = prefix + f.read(min(f.remaining, size - len(prefix)), "the header")
            parsed = _parse_header(head)
            if isinstance(parsed, str):
                return parsed
            hdr, _size = parsed
            if hdr.body_len != f.remaining:
                return f"snapshot body is {f.remaining} bytes, header says {hdr.body_len}"
            if hdr.body_len > SNAPSHOT_MAX_BYTES:
                return f"snapshot body of {hdr.body_len} bytes is over the limit of {SNAPSHOT_MAX_BYTES}"
            body = f.read(hdr.body_len, "the body")
        except (OSError, ValueError) as err:
            return f"cannot read: {err}"
    return _check_body(hdr, head, body)


def tag_problem(hdr: SnapHeader, body: bytes, key: bytes | None, keyed: bool) -> str | None:
    """Why the record's tag does not authenticate it for a log (``keyed``, ``key``), or ``None``.

    ``key`` is ``None`` when the reader has no key for a keyed log: nothing it reads can
    then be authenticated, so a keyed log's snapshot is refused (the state is replayed).
    """
    if hdr.keyed != keyed:
        return "keyed flag does not match the log"
    if hdr.version == 1:
        if keyed:
            return ("format 1 snapshot has no authentication tag, so a log with a keyed chain "
                    "does not trust it")
        return None
    if keyed and not key:
        return "the log's chain is keyed and no key was given: the snapshot cannot be authenticated"
    want = snapshot_tag(key or b"", hdr.seq, hdr.ts, hdr.link, hdr.schema_version, body)
    if not hmac.compare_digest(want, hdr.tag):
        if keyed:
            return "authentication tag mismatch (forged or altered, or written with another key)"
        return "digest mismatch (altered)"
    return None


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
