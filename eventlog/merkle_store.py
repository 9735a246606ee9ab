"""Node stores: where a Merkle tree keeps the perfect-subtree hashes its proofs read.

A store holds, for every level, the row of *complete* perfect nodes: at level ``L`` the
hashes of nodes ``0 .. (size >> L) - 1`` (level 0 is the leaf hashes). That is about
two hashes (64 bytes) per leaf, and it lets :mod:`eventlog.merkle_tree` answer
``root_at``, ``inclusion_proof`` and ``consistency_proof`` by reading O(log n) stored
hashes: every proof hash is one stored node, except at most one or two hashes over the
tree's ragged right edge, each folded from at most log2(n) stored nodes. Like a
transparency log's tiles, nodes are addressed by ``(level, index)`` and never change
once written, so a store only ever appends (or, after a crash, cuts its unsynced tail).

A store is **derived data**: everything in it can be recomputed from the leaves (the
log's events). It is therefore never trusted blindly: :class:`FileNodeStore` checks
itself when opened (see its docstring), and :class:`~eventlog.merkle_tree.MerkleTree`
verifies every proof it builds from stored nodes before returning it.

Two implementations: :class:`MemoryNodeStore` and :class:`FileNodeStore` (one
append-only file per level in a directory, plus a ``HEAD`` file written at each commit).
"""

from __future__ import annotations

import abc
import logging
import os
import struct
import threading
import zlib
from collections.abc import Sequence

import attrs

from . import _fs
from ._atomic import write_atomically
from .errors import LogWriteError, NodeStoreError
from .merkle import HASH_SIZE, CompactRange

__all__ = ["FileNodeStore", "MemoryNodeStore", "NodeStore", "OverlayNodeStore", "PreparedCommit", "StoreHead"]

_log = logging.getLogger("eventlog")

#: Most anchor bytes a head can carry (a hash-chain link is 16).
MAX_ANCHOR = 64


@attrs.frozen
class StoreHead:
    """What a store's last commit recorded: the tree it held then.

    Attributes:
        size: leaves committed.
        root: the Merkle root at ``size``.
        anchor: caller's bytes tying the tree to its source, for example the event log's
            hash-chain link at seq ``size`` (checked against the log on open, part 2).
    """

    size: int
    root: bytes
    anchor: bytes = b""


@attrs.frozen
class PreparedCommit:
    """The first half of a commit (see :meth:`NodeStore.prepare_commit`).

    Attributes:
        head: what :meth:`NodeStore.finish_commit` will record.
        levels: the level files to make durable first.
    """

    head: StoreHead
    levels: frozenset[int] = frozenset()


class NodeStore(abc.ABC):
    """The rows of complete perfect nodes of one Merkle tree, level by level."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Leaves stored (the length of level 0)."""

    @property
    @abc.abstractmethod
    def head(self) -> StoreHead | None:
        """What the last :meth:`commit` recorded (``None`` if none)."""

    @abc.abstractmethod
    def add(self, level: int, first: int, nodes: list[bytes]) -> None:
        """Append ``nodes`` to level ``level``; ``first`` must equal the level's current length.

        The signature of :data:`eventlog.merkle.NodeSink`, so a store can be handed straight
        to :meth:`CompactRange.extend`.
        """

    @abc.abstractmethod
    def read(self, level: int, start: int, count: int) -> bytes:
        """Return the hashes of nodes ``start .. start + count - 1`` of ``level``, concatenated.

        Raises:
            NodeStoreError: some of them are not stored.
        """

    def get(self, level: int, index: int) -> bytes:
        """Return the hash of node ``(level, index)``."""
        return self.read(level, index, 1)

    def prefetch(self, keys: Sequence[tuple[int, int]]) -> None:  # noqa: B027 - optional hook
        """Hint: the nodes ``(level, index)`` about to be read (a remote store fetches them at once)."""

    @abc.abstractmethod
    def truncate(self, size: int) -> None:
        """Forget every node over leaves at or past ``size`` (a log cut back to ``size`` events).

        The head is dropped if it recorded more leaves; :meth:`commit` records a new one.
        """

    def commit(self, root: bytes, anchor: bytes = b"") -> StoreHead:
        """Make every node durable and record ``(size, root, anchor)`` as the head."""
        return self.finish_commit(self.prepare_commit(root, anchor))

    def prepare_commit(self, root: bytes, anchor: bytes = b"") -> PreparedCommit:
        """The quick half of a commit at the current size: hand buffered nodes to the files.

        Called by the store's one writer (under its log's lock). Nodes may be added again
        as soon as it returns; :meth:`finish_commit` (the slow half: fsyncs) may then run
        in another thread, outside that lock, and records the head prepared here.
        """
        return PreparedCommit(StoreHead(self.size, bytes(root), bytes(anchor)))

    @abc.abstractmethod
    def finish_commit(self, prepared: PreparedCommit) -> StoreHead:
        """Make the prepared nodes durable, then record the prepared head (see :meth:`prepare_commit`)."""

    def close(self) -> None:  # noqa: B027 - optional hook; the memory store has nothing to release
        """Release resources. Does not commit. Idempotent."""

    def frontier(self) -> list[bytes | None]:
        """The stored nodes that make up the compact range of :attr:`size` leaves."""
        size = self.size
        return [
            self.get(level, (size >> level) - 1) if size >> level & 1 else None
            for level in range(size.bit_length())
        ]

    def _joined(self, level: int, first: int, nodes: Sequence[bytes], length: int) -> bytes:
        """Check an :meth:`add` and return its nodes joined (one join; no Python loop per node)."""
        if first != length:
            msg = f"nodes added at level {level} index {first}, but that level holds {length} nodes"
            raise NodeStoreError(msg)
        if level and (first + len(nodes)) << level > self.size:
            msg = f"level {level} would cover more leaves than level 0 holds"
            raise NodeStoreError(msg)
        data = b"".join(nodes)
        if len(data) != HASH_SIZE * len(nodes):
            msg = f"the node hashes added at level {level} are not all {HASH_SIZE} bytes"
            raise NodeStoreError(msg)
        return data


def _missing(level: int, start: int, count: int, have: int) -> NodeStoreError:
    return NodeStoreError(
        f"nodes {start}..{start + count - 1} of level {level} are not stored (the level holds {have})"
    )


class MemoryNodeStore(NodeStore):
    """A node store in memory: one ``bytearray`` per level (about 64 bytes per leaf)."""

    def __init__(self) -> None:
        """Start empty."""
        self._levels: list[bytearray] = []
        self._head: StoreHead | None = None

    @property
    def size(self) -> int:
        """Leaves stored."""
        return len(self._levels[0]) // HASH_SIZE if self._levels else 0

    @property
    def head(self) -> StoreHead | None:
        """The last commit's record."""
        return self._head

    def add(self, level: int, first: int, nodes: list[bytes]) -> None:
        """Append nodes to a level (see :meth:`NodeStore.add`)."""
        while len(self._levels) <= level:
            self._levels.append(bytearray())
        row = self._levels[level]
        row += self._joined(level, first, nodes, len(row) // HASH_SIZE)

    def read(self, level: int, start: int, count: int) -> bytes:
        """Return stored hashes (see :meth:`NodeStore.read`)."""
        row = self._levels[level] if level < len(self._levels) else b""
        have = len(row) // HASH_SIZE
        if start < 0 or count < 0 or start + count > have:
            raise _missing(level, start, count, have)
        return bytes(row[start * HASH_SIZE : (start + count) * HASH_SIZE])

    def truncate(self, size: int) -> None:
        """Cut every level back to ``size`` leaves."""
        for level, row in enumerate(self._levels):
            del row[(size >> level) * HASH_SIZE :]
        while self._levels and not self._levels[-1]:
            self._levels.pop()
        if self._head is not None and self._head.size > size:
            self._head = None

    def finish_commit(self, prepared: PreparedCommit) -> StoreHead:
        """Record the head (memory is as durable as it gets)."""
        self._head = prepared.head
        return prepared.head


# -- the file store ---------------------------------------------------------------------------
_HEAD = struct.Struct("<8sHHIQ32s")
_HEAD_MAGIC = b"EVMTHEAD"
_HEAD_VERSION = 1
_CRC = struct.Struct("<I")
HEAD_NAME = "HEAD"
#: Pending node bytes (all levels) buffered before they are written to the level files.
FLUSH_BYTES = 1 << 16
#: Threads (the committing one included) that fdatasync a commit's level files at once.
#: One commit touches every level (18 files at 200k leaves): one after the other that took
#: 4-13 ms on this project's machines (80 ms when 12 MB were unsynced), at once 1-2.5 ms,
#: since the file system then commits their metadata in one journal transaction.
SYNC_THREADS = 4


def _level_name(level: int) -> str:
    return f"level-{level:02d}.hashes"


def encode_head(head: StoreHead) -> bytes:
    """Return the bytes of a ``HEAD`` file (layout in ``eventlog/MERKLE.md``)."""
    if len(head.anchor) > MAX_ANCHOR:
        msg = f"an anchor is at most {MAX_ANCHOR} bytes, got {len(head.anchor)}"
        raise ValueError(msg)
    body = _HEAD.pack(_HEAD_MAGIC, _HEAD_VERSION, len(head.anchor), 0, head.size, head.root) + head.anchor
    return body + _CRC.pack(zlib.crc32(body))


def decode_head(data: bytes) -> StoreHead:
    """Parse a ``HEAD`` file; raise :class:`NodeStoreError` naming what is wrong."""
    if len(data) < _HEAD.size + _CRC.size:
        msg = f"HEAD is {len(data)} bytes, too short"
        raise NodeStoreError(msg)
    magic, version, anchor_len, _, size, root = _HEAD.unpack_from(data)
    if magic != _HEAD_MAGIC:
        msg = "HEAD has the wrong magic"
        raise NodeStoreError(msg)
    if version != _HEAD_VERSION:
        msg = f"HEAD has version {version}; this library reads version {_HEAD_VERSION}"
        raise NodeStoreError(msg)
    end = _HEAD.size + anchor_len
    if anchor_len > MAX_ANCHOR or len(data) != end + _CRC.size:
        msg = "HEAD has the wrong length"
        raise NodeStoreError(msg)
    if _CRC.unpack_from(data, end)[0] != zlib.crc32(data[:end]):
        msg = "HEAD fails its checksum"
        raise NodeStoreError(msg)
    return StoreHead(size, root, data[_HEAD.size : end])


class FileNodeStore(NodeStore):
    """A node store in a directory: ``level-NN.hashes`` files and a ``HEAD``.

    Level ``L``'s file holds its nodes' 32-byte hashes back to back (node ``i`` at byte
    ``32 * i``), appended and never rewritten. New nodes are buffered and written in
    batches (:data:`FLUSH_BYTES`); nothing is fsynced until :meth:`commit`, which
    fsyncs the level files it wrote to, then replaces ``HEAD`` atomically (temp file,
    fsync, rename, directory fsync) with ``(size, root, anchor)``. So a ``HEAD`` only
    ever describes nodes already on disk.

    **Opening checks the store and keeps only what it can vouch for.** The trusted part
    is what the last commit recorded: ``HEAD`` must pass its checksum, every level file
    must hold at least the nodes of ``HEAD.size`` leaves, and the root folded from the
    stored frontier nodes must equal ``HEAD.root``. Then:

    * nodes past ``HEAD.size`` (written after the last commit: a crash, or a torn write
      that left part of a hash or zeros) are cut off. They are not trusted even when
      they look whole, since nothing checked them; the caller feeds those leaves again
      from the log (:attr:`size` says where to resume);
    * if any check fails (no ``HEAD`` but some nodes, a damaged ``HEAD``, a level file
      shorter than ``HEAD`` claims, a frontier that does not fold to ``HEAD.root``),
      the whole store is emptied and rebuilt from the leaves by the caller;
    * either way :attr:`recovery` says what happened (``None`` when nothing was cut) and
      a warning goes to the ``eventlog`` logger. A read-only store cuts nothing: it uses
      the committed part, and raises :class:`NodeStoreError` if that fails its checks.

    Damage inside the committed part that these checks cannot see (a flipped bit in an
    old node) is caught when the node is used: :class:`~eventlog.merkle_tree.MerkleTree`
    verifies each proof against its trusted root before returning it, and
    ``MerkleTree.check`` re-hashes every node. One writer at a time (the log's lock).
    """

    def __init__(self, directory: str, *, readonly: bool = False) -> None:
        """Open (creating if needed, unless ``readonly``) the store in ``directory``.

        Raises:
            NodeStoreError: read-only and the committed part fails its checks, or
                ``directory`` does not exist in read-only mode.
            LogWriteError: an I/O error while creating or repairing.
        """
        self._dir = directory
        self._readonly = readonly
        self._fds: dict[int, int] = {}
        self._disk: list[int] = []  # nodes of each level in its file
        # Nodes of each level not written yet, as the joined chunks add() was given (a list
        # of chunks, not one growing bytearray: growing it cost ~0.1 us per leaf, measured),
        # and how many nodes they hold.
        self._pending: list[list[bytes]] = []
        self._queued: list[int] = []
        self._pending_bytes = 0
        self._dirty: set[int] = set()  # levels written since the last commit
        self._head: StoreHead | None = None
        self._closed = False
        self._failed = False
        self.recovery: str | None = None
        if readonly:
            if not os.path.isdir(directory):
                msg = f"no node store at {directory!r}"
                raise NodeStoreError(msg)
        else:
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as err:
                raise LogWriteError(err, f"creating the node store {directory}") from err
        self._open()

    # -- opening and recovery -------------------------------------------------------------------
    def _path(self, name: str) -> str:
        return os.path.join(self._dir, name)

    def _level_files(self) -> dict[int, int]:
        """Every level file present and its length in bytes."""
        found: dict[int, int] = {}
        for name in os.listdir(self._dir):
            if name.startswith("level-") and name.endswith(".hashes"):
                digits = name[len("level-") : -len(".hashes")]
                if digits.isdigit() and _level_name(int(digits)) == name:
                    found[int(digits)] = os.path.getsize(self._path(name))
        return found

    def _open(self) -> None:
        lengths = self._level_files()
        try:
            with open(self._path(HEAD_NAME), "rb") as f:
                raw: bytes | None = f.read(_HEAD.size + MAX_ANCHOR + _CRC.size + 1)
        except FileNotFoundError:
            raw = None
        stored = sum(lengths.values())
        try:
            if raw is None:
                if stored:
                    msg = "no HEAD, but nodes that no commit vouched for"
                    raise NodeStoreError(msg)
                head = None
            else:
                head = decode_head(raw)
                self._check_files(head, lengths)
        except NodeStoreError as exc:
            if self._readonly:
                msg = f"node store {self._dir!r} fails its checks: {exc}; rebuild it from the log"
                raise NodeStoreError(msg) from None
            self._reset(str(exc))
            return
        size = head.size if head is not None else 0
        self._disk = [size >> level for level in range(size.bit_length())]
        self._head = head
        if head is not None:
            try:
                rng = CompactRange.from_frontier(size, self.frontier())
            except (NodeStoreError, ValueError) as exc:
                rng = None
                why = str(exc)
            if rng is None or rng.root() != head.root:
                if rng is not None:
                    why = "the stored frontier does not fold to HEAD's root"
                if self._readonly:
                    msg = f"node store {self._dir!r} fails its checks: {why}; rebuild it from the log"
                    raise NodeStoreError(msg)
                self._reset(why)
                return
        extra = lengths.get(0, 0) // HASH_SIZE - size
        if not self._readonly and any(
            length != (size >> level) * HASH_SIZE for level, length in lengths.items()
        ):
            self._cut_files(size, lengths)
            self._note(f"cut the nodes written after the last commit ({max(extra, 0)} leaves past "
                       f"{size}); feed those leaves again from the log")

    def _check_files(self, head: StoreHead, lengths: dict[int, int]) -> None:
        for level in range(head.size.bit_length()):
            need = (head.size >> level) * HASH_SIZE
            if lengths.get(level, 0) < need:
                msg = (f"{_level_name(level)} holds {lengths.get(level, 0)} bytes but the last "
                       f"commit ({head.size} leaves) needs {need}")
                raise NodeStoreError(msg)

    def _cut_files(self, size: int, lengths: dict[int, int]) -> None:
        # Cutting unsynced nodes needs no fsync: if the cut is lost in a crash, the next
        # open finds the same uncommitted tail and cuts it again.
        for level, length in lengths.items():
            keep = (size >> level) * HASH_SIZE
            if length != keep:
                try:
                    os.truncate(self._path(_level_name(level)), keep)
                except OSError as err:
                    raise LogWriteError(err, f"cutting {_level_name(level)} in {self._dir}") from err

    def _reset(self, why: str) -> None:
        # HEAD goes first, durably: a crash part-way leaves no HEAD that could vouch for
        # files already cut, and the next open resets again.
        try:
            if os.path.exists(self._path(HEAD_NAME)):
                _fs.unlink(self._path(HEAD_NAME))
                _fs.fsync_dir(self._dir)
        except OSError as err:
            raise LogWriteError(err, f"removing HEAD of the node store {self._dir}") from err
        self._cut_files(0, self._level_files())
        self._head = None
        self._disk = []
        self._note(f"emptied the store ({why}); rebuild it from the log")

    def _note(self, what: str) -> None:
        self.recovery = what
        _log.warning("node store %s: %s", self._dir, what)

    # -- the interface ----------------------------------------------------------------------------
    @property
    def directory(self) -> str:
        """The store's directory."""
        return self._dir

    @property
    def size(self) -> int:
        """Leaves stored (committed, written or buffered)."""
        disk = self._disk[0] if self._disk else 0
        return disk + (self._queued[0] if self._queued else 0)

    @property
    def head(self) -> StoreHead | None:
        """The last commit's record."""
        return self._head

    def _length(self, level: int) -> int:
        disk = self._disk[level] if level < len(self._disk) else 0
        return disk + (self._queued[level] if level < len(self._queued) else 0)

    def add(self, level: int, first: int, nodes: list[bytes]) -> None:
        """Buffer nodes for a level (see :meth:`NodeStore.add`); written in batches."""
        self._check_writable()
        data = self._joined(level, first, nodes, self._length(level))
        while len(self._pending) <= level:
            self._pending.append([])
            self._queued.append(0)
        self._pending[level].append(data)
        self._queued[level] += len(nodes)
        self._pending_bytes += len(data)
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()

    def _check_writable(self) -> None:
        if self._readonly:
            msg = f"node store {self._dir!r} is open read-only"
            raise NodeStoreError(msg)
        if self._failed:
            msg = f"an earlier write to node store {self._dir!r} failed; reopen it"
            raise NodeStoreError(msg)
        if self._closed:
            msg = f"node store {self._dir!r} is closed"
            raise NodeStoreError(msg)

    def _fd(self, level: int) -> int:
        fd = self._fds.get(level)
        if fd is None:
            path = self._path(_level_name(level))
            flags = os.O_RDONLY if self._readonly else os.O_RDWR | os.O_CREAT | os.O_APPEND
            try:
                fd = _fs.open(path, flags, 0o644)
            except OSError as err:
                if self._readonly:
                    raise NodeStoreError(f"cannot open {path}: {err.strerror}") from err
                raise LogWriteError(err, f"opening {path}") from err
            self._fds[level] = fd
        return fd

    def flush(self) -> None:
        """Write the buffered nodes to the level files (no fsync: :meth:`commit` does that).

        Levels are written bottom-up. Should a write fail, what was written stays in the
        files (and is cut at the next open, being past the last commit) and the error is
        raised; the store must then be closed.
        """
        if self._pending_bytes:
            self._check_writable()
        for level, chunks in enumerate(self._pending):
            if not chunks:
                continue
            try:
                _fs.write_all(self._fd(level), b"".join(chunks))
            except OSError as err:
                # Part of the buffer may be in the file now: later nodes would land at the
                # wrong offsets, so the store refuses every write until it is reopened
                # (which cuts everything past the last commit).
                self._failed = True
                raise LogWriteError(err, f"writing {_level_name(level)} in {self._dir}") from err
            while len(self._disk) <= level:
                self._disk.append(0)
            self._disk[level] += self._queued[level]
            self._dirty.add(level)
            chunks.clear()
            self._queued[level] = 0
        self._pending_bytes = 0

    def read(self, level: int, start: int, count: int) -> bytes:
        """Return stored hashes (see :meth:`NodeStore.read`): from the file, then the buffer."""
        have = self._length(level)
        if start < 0 or count < 0 or start + count > have:
            raise _missing(level, start, count, have)
        disk = self._disk[level] if level < len(self._disk) else 0
        out = b""
        if start < disk:
            n = min(count, disk - start)
            want = n * HASH_SIZE
            out = os.pread(self._fd(level), want, start * HASH_SIZE)
            if len(out) != want:
                msg = f"{_level_name(level)} in {self._dir} is shorter than its {disk} nodes"
                raise NodeStoreError(msg)
        if start + count > disk:
            chunks = self._pending[level]
            if len(chunks) > 1:
                chunks[:] = [b"".join(chunks)]
            lo = max(start - disk, 0) * HASH_SIZE
            out += chunks[0][lo : (start + count - disk) * HASH_SIZE]
        return out

    def truncate(self, size: int) -> None:
        """Cut every level back to ``size`` leaves (buffer and files)."""
        if size >= self.size:
            return
        self._check_writable()
        self.flush()
        if self._head is not None and self._head.size > size:
            try:
                _fs.unlink(self._path(HEAD_NAME))
                _fs.fsync_dir(self._dir)
            except OSError as err:
                raise LogWriteError(err, f"removing HEAD of the node store {self._dir}") from err
            self._head = None
        self._cut_files(size, self._level_files())
        self._disk = [size >> level for level in range(size.bit_length())]

    def prepare_commit(self, root: bytes, anchor: bytes = b"") -> PreparedCommit:
        """Write the buffered nodes to the level files (no fsync) and note which need one."""
        self._check_writable()
        self.flush()
        head = StoreHead(self.size, bytes(root), bytes(anchor))
        if len(head.anchor) > MAX_ANCHOR:
            msg = f"an anchor is at most {MAX_ANCHOR} bytes, got {len(head.anchor)}"
            raise ValueError(msg)
        levels, self._dirty = frozenset(self._dirty), set()
        return PreparedCommit(head, levels)

    def finish_commit(self, prepared: PreparedCommit) -> StoreHead:
        """fsync the prepared nodes' files, then record the prepared head in ``HEAD``.

        The order is the durability argument: the nodes are on disk before the ``HEAD``
        that vouches for them, and ``HEAD`` is replaced atomically, so after a crash the
        store holds the last committed tree, whole. Nodes written since the prepare may
        be synced too; ``HEAD`` does not vouch for them (the next open cuts them).
        """
        if self._failed:
            self._check_writable()
        failed = self._sync_levels(sorted(prepared.levels))
        if failed is not None:
            self._failed = True  # fsyncgate: the unsynced pages may be gone
            level, err = failed
            raise LogWriteError(err, f"syncing {_level_name(level)} in {self._dir}") from err
        write_atomically(self._path(HEAD_NAME), encode_head(prepared.head), tmp=self._path(HEAD_NAME + ".tmp"),
                         what="the node store's HEAD")
        self._head = prepared.head
        return prepared.head

    def _sync_levels(self, levels: list[int]) -> tuple[int, OSError] | None:
        """fdatasync the files of ``levels``, up to :data:`SYNC_THREADS` at once; the first failure, if any.

        Every file is synced (or has failed) when this returns: the caller writes ``HEAD``
        only after all of them are durable. Without a thread to spare it syncs them itself.
        """
        fds = [(level, self._fds[level]) for level in levels]
        failures: list[tuple[int, OSError]] = []

        def sync(part: list[tuple[int, int]]) -> None:
            for level, fd in part:
                try:
                    _fs.fdatasync(fd)
                except OSError as err:
                    failures.append((level, err))  # list.append is atomic: no lock needed

        parts = [fds[i :: SYNC_THREADS] for i in range(min(SYNC_THREADS, len(fds)))]
        helpers: list[threading.Thread] = []
        for part in parts[1:]:
            helper = threading.Thread(target=sync, args=(part,), name="eventlog-merkle-sync", daemon=True)
            try:
                helper.start()
            except RuntimeError:  # no thread to be had: do its part here
                sync(part)
            else:
                helpers.append(helper)
        if parts:
            sync(parts[0])
        for helper in helpers:
            helper.join()
        return min(failures, key=lambda failure: failure[0]) if failures else None

    def close(self) -> None:
        """Write buffered nodes (not committed: see :meth:`commit`) and close the files."""
        if self._closed:
            return
        try:
            if not self._readonly and not self._failed:
                self.flush()
        finally:
            self._closed = True
            for fd in self._fds.values():
                _fs.close(fd)
            self._fds.clear()


class OverlayNodeStore(NodeStore):
    """Nodes added on top of a read-only store, kept in memory (a reader's view of a growing log).

    A reader opens the writer's committed store read-only and feeds the events the
    writer has appended since its last commit; those nodes live only here. Reads below
    the base store's size go to it, the rest to memory.
    """

    def __init__(self, base: NodeStore) -> None:
        """Overlay ``base`` (nothing is ever written to it)."""
        self._base = base
        self._extra = MemoryNodeStore()
        self._base_size = base.size

    @property
    def size(self) -> int:
        """Leaves stored (the base's and the overlay's)."""
        return self._base_size + self._extra_leaves()

    def _extra_leaves(self) -> int:
        return len(self._extra._levels[0]) // HASH_SIZE if self._extra._levels else 0

    @property
    def head(self) -> StoreHead | None:
        """The base store's last commit."""
        return self._base.head

    def _base_length(self, level: int) -> int:
        return self._base_size >> level

    def add(self, level: int, first: int, nodes: list[bytes]) -> None:
        """Append nodes to a level, in memory (see :meth:`NodeStore.add`)."""
        base = self._base_length(level)
        while len(self._extra._levels) <= level:
            self._extra._levels.append(bytearray())
        row = self._extra._levels[level]
        row += self._joined(level, first, nodes, base + len(row) // HASH_SIZE)

    def read(self, level: int, start: int, count: int) -> bytes:
        """Return stored hashes: the base store's, then the overlay's."""
        base = self._base_length(level)
        extra = self._extra._levels[level] if level < len(self._extra._levels) else b""
        have = base + len(extra) // HASH_SIZE
        if start < 0 or count < 0 or start + count > have:
            raise _missing(level, start, count, have)
        out = b""
        if start < base:
            out = self._base.read(level, start, min(count, base - start))
        if start + count > base:
            lo = max(start - base, 0) * HASH_SIZE
            out += bytes(extra[lo : (start + count - base) * HASH_SIZE])
        return out

    def truncate(self, size: int) -> None:
        """Cut the overlay back to ``size`` leaves (the base is read-only: never below its size)."""
        if size < self._base_size:
            msg = f"cannot cut a read-only node store of {self._base_size} leaves to {size}"
            raise NodeStoreError(msg)
        for level, row in enumerate(self._extra._levels):
            del row[max(0, (size >> level) - self._base_length(level)) * HASH_SIZE :]

    def finish_commit(self, prepared: PreparedCommit) -> StoreHead:
        """A reader never commits."""
        msg = "a read-only node store cannot be committed"
        raise NodeStoreError(msg)

    def close(self) -> None:
        """Close the base store."""
        self._base.close()
