"""The vault: where a log keeps its personal values (and their salts), apart from its events.

An event holds only the commitment of a personal value (:mod:`eventlog.personal`); the
vault maps that commitment to the salt and the value's bytes, or, once erased, to the
seq of the erasure event. Erasing deletes the salt and the value and keeps that
tombstone: the events, the hash chain and the Merkle tree do not change.

Two vaults: :class:`MemoryVault` (the in-memory log) and :class:`FileVault` (a file log's
``personal/`` directory). PostgreSQL keeps its vault in a table (:mod:`eventlog.postgres`).

File layout (``<log>/personal/``)::

    vault-000001.pv      entries, appended; a new file is started past VAULT_FILE_BYTES
    ERASING              an erasure in progress (see FileVault.begin_erasure)

    file  := magic "EVVAULT1" entry*
    entry := u32 length | u32 crc32(body) | body          (little-endian)
    body  := u8 tag | commitment[32] | payload
             tag 1 (value):  payload = salt[32] value-bytes
             tag 2 (erased): payload = u64 erasure seq

Erasing rewrites every vault file that holds one of the values: the same entries with
those values replaced by tombstones, written to a temporary file, fsynced, renamed over
the old one, directory fsynced. Nothing else in the log directory changes, and no other
file ever held the value (see ``eventlog/MERKLE.md``, "Erasure"). What a filesystem may
keep of a deleted file's blocks is beyond any file's reach: the commitment stays safe
from guessing because the salt went with the value.
"""

from __future__ import annotations

import abc
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence

import attrs
import msgpack

from . import _fs
from ._atomic import write_atomically
from .errors import LogWriteError
from .personal import COMMITMENT_SIZE, SALT_SIZE, SealedValue

__all__ = ["ERASING", "VAULT_DIR", "FileVault", "MemoryVault", "PendingErasure", "Vault", "VaultEntry"]

_log = logging.getLogger("eventlog")

VAULT_DIR = "personal"
ERASING = "ERASING"
#: A vault file is closed and a new one started once it is this large (erasure rewrites one file).
VAULT_FILE_BYTES = 4 << 20
_MAGIC = b"EVVAULT1"
_ENTRY = struct.Struct("<II")
_SEQ = struct.Struct("<Q")
_TAG_VALUE = 1
_TAG_ERASED = 2


@attrs.frozen
class VaultEntry:
    """What a vault holds for one commitment.

    Attributes:
        commitment: the 32 bytes an event stores.
        sealed: the salt and value, or ``None`` once erased.
        erased_seq: the seq of the erasure event, or ``None``.
    """

    commitment: bytes
    sealed: SealedValue | None
    erased_seq: int | None = None


@attrs.frozen
class PendingErasure:
    """An erasure whose event may or may not be in the log yet (found at open after a crash).

    Attributes:
        seq: the seq its erasure event was to get.
        event: the erasure event's bytes (signed).
        commitments: the values it erases.
    """

    seq: int
    event: bytes
    commitments: tuple[bytes, ...]


class Vault(abc.ABC):
    """The personal values of one log, by commitment."""

    @abc.abstractmethod
    def put(self, entries: Sequence[SealedValue]) -> None:
        """Store sealed values (before the event that holds their commitments is stored)."""

    @abc.abstractmethod
    def get(self, commitment: bytes) -> VaultEntry | None:
        """The entry of ``commitment``, or ``None``."""

    @abc.abstractmethod
    def entries(self) -> Iterator[VaultEntry]:
        """Every entry (for ``verify``)."""

    def sync(self) -> None:  # noqa: B027 - nothing to sync in memory
        """Make every stored entry durable."""

    def close(self) -> None:  # noqa: B027 - nothing to release in memory
        """Release resources."""

    @abc.abstractmethod
    def begin_erasure(self, seq: int, event: bytes, commitments: Sequence[bytes]) -> None:
        """Record, durably, that an erasure with this event (to be appended at ``seq``) is starting."""

    @abc.abstractmethod
    def finish_erasure(self) -> None:
        """Replace the values of the pending erasure by tombstones, then forget it."""

    @abc.abstractmethod
    def abort_erasure(self) -> None:
        """Forget the pending erasure (its event was not appended)."""

    @abc.abstractmethod
    def pending_erasure(self) -> PendingErasure | None:
        """The erasure begun and not finished (after a crash), or ``None``."""


class MemoryVault(Vault):
    """A vault in a dict (the in-memory log). Not thread-safe: its log's lock guards it."""

    def __init__(self) -> None:
        """Start empty."""
        self._entries: dict[bytes, VaultEntry] = {}
        self._pending: PendingErasure | None = None

    def put(self, entries: Sequence[SealedValue]) -> None:
        """Store sealed values."""
        for sealed in entries:
            self._entries[sealed.commitment] = VaultEntry(sealed.commitment, sealed)

    def get(self, commitment: bytes) -> VaultEntry | None:
        """The entry, or ``None``."""
        return self._entries.get(commitment)

    def entries(self) -> Iterator[VaultEntry]:
        """Every entry."""
        return iter(list(self._entries.values()))

    def begin_erasure(self, seq: int, event: bytes, commitments: Sequence[bytes]) -> None:
        """Note the erasure."""
        self._pending = PendingErasure(seq, event, tuple(commitments))

    def finish_erasure(self) -> None:
        """Drop the values, keep tombstones."""
        pending, self._pending = self._pending, None
        if pending is not None:
            for c in pending.commitments:
                if c in self._entries:
                    self._entries[c] = VaultEntry(c, None, pending.seq)

    def abort_erasure(self) -> None:
        """Forget the pending erasure."""
        self._pending = None

    def pending_erasure(self) -> PendingErasure | None:
        """Never any after a crash: memory does not survive one."""
        return self._pending


def _entry_bytes(tag: int, commitment: bytes, payload: bytes) -> bytes:
    body = bytes((tag,)) + commitment + payload
    return _ENTRY.pack(len(body), zlib.crc32(body)) + body


def _file_name(number: int) -> str:
    return f"vault-{number:06d}.pv"


def _file_number(name: str) -> int | None:
    if name.startswith("vault-") and name.endswith(".pv"):
        digits = name[len("vault-") : -len(".pv")]
        if digits.isdigit() and _file_name(int(digits)) == name:
            return int(digits)
    return None


@attrs.frozen
class _Scanned:
    entries: list[tuple[int, int, VaultEntry]]  # (offset, length, entry)
    good_end: int
    problem: str | None
    torn: bool


def _scan(data: bytes) -> _Scanned:
    """Parse a vault file: its entries, where the last good one ends, and what stopped the scan."""
    if data[: len(_MAGIC)] != _MAGIC:
        if not any(data):
            return _Scanned([], 0, "the file holds only zeros (never written)", True)
        return _Scanned([], 0, "not a vault file (wrong magic)", False)
    out: list[tuple[int, int, VaultEntry]] = []
    pos = len(_MAGIC)
    n = len(data)
    while pos < n:
        if pos + _ENTRY.size > n:
            return _Scanned(out, pos, f"a torn entry at byte {pos} (the file ends inside its header)", True)
        length, crc = _ENTRY.unpack_from(data, pos)
        if length == 0 and not any(data[pos:]):
            return _Scanned(out, pos, f"zeros from byte {pos} (a write that never landed)", True)
        end = pos + _ENTRY.size + length
        if end > n:
            return _Scanned(out, pos, f"a torn entry at byte {pos} (the file ends inside it)", True)
        body = data[pos + _ENTRY.size : end]
        if zlib.crc32(body) != crc:
            return _Scanned(out, pos, f"the entry at byte {pos} fails its checksum", end == n)
        tag = body[0]
        commitment = body[1 : 1 + COMMITMENT_SIZE]
        payload = body[1 + COMMITMENT_SIZE :]
        if tag == _TAG_VALUE and len(payload) >= SALT_SIZE and len(commitment) == COMMITMENT_SIZE:
            entry = VaultEntry(commitment, SealedValue(commitment, payload[:SALT_SIZE], payload[SALT_SIZE:]))
        elif tag == _TAG_ERASED and len(payload) == _SEQ.size and len(commitment) == COMMITMENT_SIZE:
            entry = VaultEntry(commitment, None, _SEQ.unpack(payload)[0])
        else:
            return _Scanned(out, pos, f"the entry at byte {pos} is malformed", False)
        out.append((pos, end - pos, entry))
        pos = end
    return _Scanned(out, pos, None, False)


class FileVault(Vault):
    """A log directory's vault (layout in the module docstring).

    The writer appends entries to the newest file with ``write(2)`` (so they survive
    ``kill -9`` before the event that refers to them is stored); :meth:`sync` fsyncs it.
    Opening cuts a torn last entry (a crash mid-write: its event cannot have been stored
    durably before it) and never appends after a damaged one (a new file is started);
    what it had to skip is in :attr:`problems`. Read-only opening changes nothing.
    """

    def __init__(self, directory: str, *, readonly: bool = False) -> None:
        """Open the vault in ``directory`` (created on the first write unless read-only)."""
        self._dir = directory
        self._readonly = readonly
        self._index: dict[bytes, tuple[int, VaultEntry]] = {}  # commitment -> (file number, entry)
        self._files: list[int] = []
        self._fd = -1
        self._size = 0
        self._dirty = False
        self.problems: list[tuple[str, int, str]] = []  # (file name, offset, what)
        self._pending: PendingErasure | None = None
        self._failed = False
        # Guards the append fd: the log's flusher syncs it while appenders write and roll.
        self._lock = threading.RLock()
        self._load()

    # -- opening ---------------------------------------------------------------------------
    def _path(self, name: str) -> str:
        return os.path.join(self._dir, name)

    def _load(self) -> None:
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            return
        numbers = sorted(n for n in map(_file_number, names) if n is not None)
        for i, number in enumerate(numbers):
            name = _file_name(number)
            with open(self._path(name), "rb") as f:
                data = f.read()
            scanned = _scan(data)
            for _off, _len, entry in scanned.entries:
                self._index[entry.commitment] = (number, entry)
            if scanned.problem is not None:
                last = i == len(numbers) - 1
                if last and scanned.torn and not self._readonly:
                    # A crash cut the last write short: nothing after it, nothing durable in it.
                    if not scanned.good_end:
                        self._remove(name)  # not even its header landed
                        continue
                    self._cut(name, scanned.good_end)
                else:
                    self.problems.append((name, scanned.good_end, scanned.problem))
                    _log.warning("eventlog: vault %s: %s", self._path(name), scanned.problem)
            self._files.append(number)
        if ERASING in names:
            self._pending = self._read_pending()

    def _remove(self, name: str) -> None:
        try:
            _fs.unlink(self._path(name))
            _fs.fsync_dir(self._dir)
        except OSError as err:
            raise LogWriteError(err, f"removing the torn {self._path(name)}") from err

    def _cut(self, name: str, end: int) -> None:
        try:
            fd = _fs.open(self._path(name), os.O_WRONLY)
            try:
                # The cut bytes may hold part of a personal value: no backup is kept.
                _fs.ftruncate(fd, end)
                _fs.fsync(fd)
            finally:
                _fs.close(fd)
        except OSError as err:
            raise LogWriteError(err, f"cutting the torn tail of {self._path(name)}") from err

    def _read_pending(self) -> PendingErasure | None:
        try:
            with open(self._path(ERASING), "rb") as f:
                data = f.read()
            crc, body = _ENTRY.unpack_from(data)[1], data[_ENTRY.size :]
            if zlib.crc32(body) != crc:
                raise ValueError("checksum")
            seq, event, commitments = msgpack.unpackb(body)
            return PendingErasure(int(seq), bytes(event), tuple(bytes(c) for c in commitments))
        except (OSError, ValueError, TypeError, struct.error, msgpack.UnpackException) as exc:
            # Written atomically, so a damaged one was damaged after the fact: report it.
            self.problems.append((ERASING, 0, f"unreadable erasure record ({exc})"))
            return None

    # -- the interface -----------------------------------------------------------------------
    @property
    def directory(self) -> str:
        """The vault's directory."""
        return self._dir

    def put(self, entries: Sequence[SealedValue]) -> None:
        """Append sealed values to the newest file (one ``write``); see :meth:`mark` to undo it."""
        if not entries:
            return
        data = b"".join(_entry_bytes(_TAG_VALUE, s.commitment, s.salt + s.value) for s in entries)
        with self._lock:
            if self._failed:
                msg = f"an earlier write to the vault {self._dir} failed; reopen the log"
                raise LogWriteError(OSError(5, "vault failed"), msg)
            fd = self._active_fd(len(data))
            try:
                _fs.write_all(fd, data)
            except OSError as err:
                # Part of it may be in the file: nothing more goes after it until the
                # next open cuts it as a torn tail.
                self._failed = True
                raise LogWriteError(err, f"writing personal values to {self._dir}") from err
            self._size += len(data)
            self._dirty = True
            number = self._files[-1]
            for s in entries:
                self._index[s.commitment] = (number, VaultEntry(s.commitment, s))

    def mark(self) -> tuple[int, int]:
        """Where the next :meth:`put` writes: give it to :meth:`undo` if the event is not stored after all."""
        with self._lock:
            if not self._files:
                return (0, -1)
            if self._fd >= 0:
                return (self._files[-1], self._size)
            return (self._files[-1], os.path.getsize(self._path(_file_name(self._files[-1]))))

    def undo(self, mark: tuple[int, int], entries: Sequence[SealedValue]) -> None:
        """Take back a :meth:`put` whose event was not stored: no value without its event stays."""
        with self._lock:
            for s in entries:
                self._index.pop(s.commitment, None)
            if not self._files:
                return
            number, size = mark
            keep = size if number == self._files[-1] and size >= 0 else len(_MAGIC)
            try:
                _fs.ftruncate(self._fd, keep)
            except OSError:
                self._failed = True  # the next open cuts nothing it trusts; it reports the orphan
                return
            self._size = keep

    def _active_fd(self, more: int) -> int:
        if self._readonly:
            msg = f"vault {self._dir} is open read-only"
            raise LogWriteError(OSError(30, "read-only"), msg)
        damaged_last = bool(self._files) and any(p[0] == _file_name(self._files[-1]) for p in self.problems)
        if self._fd >= 0 and self._size + more <= VAULT_FILE_BYTES:
            return self._fd
        if self._fd < 0 and self._files and not damaged_last:
            path = self._path(_file_name(self._files[-1]))
            size = os.path.getsize(path)
            if size + more <= VAULT_FILE_BYTES or size <= len(_MAGIC):
                self._fd = self._open_append(path)
                self._size = size
                return self._fd
        self._new_file()
        return self._fd

    def _open_append(self, path: str) -> int:
        try:
            return _fs.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as err:
            raise LogWriteError(err, f"opening {path}") from err

    def _new_file(self) -> None:
        """Start the next vault file durably (header, fsync, rename, directory fsync)."""
        self.sync()
        self._close_fd()
        number = (self._files[-1] + 1) if self._files else 1
        path = self._path(_file_name(number))
        try:
            if not os.path.isdir(self._dir):
                os.makedirs(self._dir, exist_ok=True)
                _fs.fsync_dir(os.path.dirname(self._dir))
            write_atomically(path, _MAGIC, tmp=path + ".tmp", what="a vault file")
        except OSError as err:
            raise LogWriteError(err, f"creating {path}") from err
        self._files.append(number)
        self._fd = self._open_append(path)
        self._size = len(_MAGIC)

    def _close_fd(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            _fs.close(fd)

    def get(self, commitment: bytes) -> VaultEntry | None:
        """The entry, or ``None`` (a value whose erasure is pending reads as erased)."""
        found = self._index.get(commitment)
        pending = self._pending
        if pending is not None and commitment in pending.commitments:
            return VaultEntry(commitment, None, pending.seq)
        return None if found is None else found[1]

    def entries(self) -> Iterator[VaultEntry]:
        """Every entry."""
        return (entry for _n, entry in list(self._index.values()))

    def sync(self) -> None:
        """fsync the file written since the last sync."""
        with self._lock:
            if self._dirty and self._fd >= 0:
                try:
                    _fs.fdatasync(self._fd)
                except OSError as err:
                    self._failed = True  # fsyncgate: never retry
                    raise LogWriteError(err, f"syncing the vault {self._dir}") from err
                self._dirty = False

    def close(self) -> None:
        """Sync and close."""
        with self._lock:
            try:
                if not self._readonly and not self._failed:
                    self.sync()
            finally:
                self._close_fd()

    # -- erasure ---------------------------------------------------------------------------
    def begin_erasure(self, seq: int, event: bytes, commitments: Sequence[bytes]) -> None:
        """Write ``ERASING`` (temp, fsync, rename, directory fsync): the erasure survives a crash from here on."""
        body = msgpack.packb([seq, event, list(commitments)], use_bin_type=True)
        os.makedirs(self._dir, exist_ok=True)
        write_atomically(self._path(ERASING), _ENTRY.pack(len(body), zlib.crc32(body)) + body,
                         tmp=self._path(ERASING + ".tmp"), what="the vault's erasure record")
        self._pending = PendingErasure(seq, event, tuple(commitments))

    def finish_erasure(self) -> None:
        """Rewrite each file holding an erased value with a tombstone in its place; remove ``ERASING``.

        Each rewrite is atomic (temp, fsync, rename, directory fsync), and repeating it
        after a crash gives the same files, so a crash anywhere here is finished by the
        next open.
        """
        pending = self._pending
        if pending is None:
            return
        doomed = set(pending.commitments)
        files = sorted({number for c in doomed if (found := self._index.get(c)) is not None
                        and found[1].sealed is not None for number in (found[0],)})
        for number in files:
            self._rewrite(number, doomed, pending.seq)
        for c in doomed:
            found = self._index.get(c)
            if found is not None:
                self._index[c] = (found[0], VaultEntry(c, None, pending.seq))
        try:
            _fs.unlink(self._path(ERASING))
            _fs.fsync_dir(self._dir)
        except OSError as err:
            raise LogWriteError(err, f"removing {self._path(ERASING)}") from err
        self._pending = None

    def _rewrite(self, number: int, doomed: set[bytes], seq: int) -> None:
        with self._lock:
            self._rewrite_locked(number, doomed, seq)

    def _rewrite_locked(self, number: int, doomed: set[bytes], seq: int) -> None:
        name = _file_name(number)
        path = self._path(name)
        active = bool(self._files) and number == self._files[-1] and self._fd >= 0
        if active:
            self.sync()
            self._close_fd()
        with open(path, "rb") as f:
            data = f.read()
        scanned = _scan(data)
        parts = [_MAGIC]
        for off, length, entry in scanned.entries:
            if entry.commitment in doomed and entry.sealed is not None:
                parts.append(_entry_bytes(_TAG_ERASED, entry.commitment, _SEQ.pack(seq)))
            else:
                parts.append(data[off : off + length])
        # Bytes past a damaged entry are kept as they were: they may be evidence; but a
        # value to erase among them could not be found, so it is reported, not kept silently.
        tail = data[scanned.good_end :]
        if tail and any(c in tail for c in doomed):
            msg = f"{path} is damaged where a value to erase lies; erase it by hand (the vault entries are framed)"
            raise LogWriteError(OSError(5, "damaged vault file"), msg)
        parts.append(tail)
        write_atomically(path, b"".join(parts), tmp=path + ".tmp", what="a vault file")
        if active:
            self._fd = self._open_append(path)
            self._size = os.path.getsize(path)

    def abort_erasure(self) -> None:
        """Remove ``ERASING`` (the erasure event was not appended; nothing was erased)."""
        if self._pending is None:
            return
        try:
            _fs.unlink(self._path(ERASING))
            _fs.fsync_dir(self._dir)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise LogWriteError(err, f"removing {self._path(ERASING)}") from err
        self._pending = None

    def pending_erasure(self) -> PendingErasure | None:
        """The erasure begun before a crash, if any."""
        return self._pending

