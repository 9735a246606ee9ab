"""The on-disk log: a directory of segment files, sparse indexes and snapshots.

Layout and recovery rules are in ``FORMAT.md``. Every call that changes a file goes
through :mod:`eventlog._fs` (looked up at call time) so tests can inject faults and
simulate power loss.

Concurrency: one writer process (``LOCK``), any number of read-only processes.
Inside the writer, ``_lock`` serialises appends; ``_sync_lock`` is held around every
fsync of the active segment and around swapping that segment (roll, close), so a
background fsync never touches a closed fd. In ``"always"`` mode one waiting appender
leads each fsync (``_durable_cond``) after gathering the others' appends (``_gather``,
a condition on ``_lock``).
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import mmap
import os
import struct
import threading
import time
import warnings
import weakref
import zlib
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

from . import _fs
from . import lock as _lock
from ._atomic import write_atomically
from ._frame import (
    _FRAME_PREFIX,
    _PADS,
    FLAG_KEYED,
    FORMAT_VERSION,
    FRAME_HEADER_SIZE,
    SEG_HEADER_SIZE,
    BadFrame,
    check_frame,
    key_check,
    pack_seg_header,
    split_events,
    unpack_seg_header,
)
from .base import DURABILITY_MODES, EventLog, check_event_sizes, check_schema_version, next_ts
from .bounded import NotRegularFileError, all_zero, open_regular
from .chain import GENESIS, Chain
from .encoding import MAX_RECORD_BYTES, decode_event, decode_state, encode_state
from .errors import (
    ConcurrencyError,
    CorruptionError,
    EventLogError,
    LogClosedError,
    LogFailedError,
    LogReadOnlyError,
    LogWriteError,
    NodeStoreError,
    RecordDecodeError,
    UnsupportedFormatError,
    WrongKeyError,
)
from .index import INDEX_INTERVAL, SegmentIndex, index_name
from .merkle import leaf_hash
from .merkle_log import catch_up, event_leaves
from .merkle_store import FileNodeStore, MemoryNodeStore, OverlayNodeStore, PreparedCommit
from .merkle_tree import MerkleTree
from .personal import SealedValue
from .prefix_filter import PrefixFilter
from .record import Record, Snapshot, new_record
from .segment import CHUNK, FrameScanner, cut_at_a_sector, frame_end, parse_seg_name, pread_all, seg_name
from .snapshot import (
    SNAP_DIR,
    list_snapshots,
    pack_snapshot,
    read_snapshot_file,
    snap_name,
    tag_problem,
    write_snapshot,
)
from .vault import VAULT_DIR, FileVault, VaultEntry

__all__ = ["KEEP_SNAPSHOTS", "SNAPSHOT_GAP", "FileEventLog", "open_log", "snapshots_to_prune"]

_crc32 = zlib.crc32
#: Stores a frame header's bytes 8..47 (seq, ts, link, body CRC, header CRC) in place.
_pack_header_tail_into = struct.Struct("<Qq16sII").pack_into
_pack_prefix = _FRAME_PREFIX.pack
_pack_u32 = struct.Struct("<I").pack
#: ``merkle.LEAF_PREFIX + merkle.event_leaf(seq, ts, b"")`` written out for the append path:
#: the leaf's hash input is built in one pack and one concatenation, and queued on the tree
#: without a call (``benchmarks/bench_merkle.py``); ``tests/eventlog/test_merkle_backends.py``
#: pins the two together.
_pack_leaf_head = struct.Struct("<BQq").pack
_pack_seq_ts = struct.Struct("<Qq").pack
_time_ns = time.time_ns
#: Length-table packers of multi-event frames (see _frame.join_events), by event count.
_TABLES = tuple(struct.Struct(f"<{n}I") for n in range(17))

log = logging.getLogger("eventlog")

#: Newest snapshots always kept on disk; at least 2 so one bad file still leaves a fallback.
#: (Read when a log is opened without ``keep_snapshots=``.)
KEEP_SNAPSHOTS = 3
#: Default ``snapshot_gap``: older snapshots are thinned, never so far that two kept
#: neighbours are more than this many seqs apart, so rebuilding the state at any seq
#: (``JobState.at``) replays at most this many events after loading a snapshot.
SNAPSHOT_GAP = 20_000
#: How long the "batch" flusher lets appends accumulate before one fdatasync.
BATCH_FLUSH_DELAY = 0.002
#: The active segment grows ahead of the writer in steps of reserved zeros: the first
#: step, the largest, and their alignment (a page, so every map covers whole pages).
PREALLOC_MIN = 64 * 1024
PREALLOC_MAX = 4 * 1024 * 1024
PREALLOC_ALIGN = 4096
#: Bytes of the active segment mapped at a time (see FileEventLog._make_room). Each new
#: window costs an mmap and an munmap (a TLB flush): at 64 KiB (~290 nested events) a
#: page's first stores cost 3.5-4.2 us, at 512 KiB 2.7-3.4 us, and appends ran ~0.2 us
#: faster in two of three sittings (``benchmarks/bench_append_floor.py --windows``; not
#: resolvable at load > 4). Larger windows gained nothing more measurable and leave more
#: written pages mapped for the flusher's fdatasync to write-protect.
MAP_WINDOW = 512 * 1024
#: The Merkle tree's node store, a subdirectory of the log (eventlog/MERKLE.md).
MERKLE_DIR = "merkle"
#: Signed checkpoints kept with the log: ``cp-<size:020d>.txt``, one per size.
CHECKPOINT_DIR = "checkpoints"
#: The tree's node store is committed (fsync + HEAD) at least this often while events
#: arrive, in seconds and in events: after a crash, open re-feeds at most about this
#: much of the log into the tree.
TREE_COMMIT_SECONDS = 1.0
TREE_COMMIT_EVENTS = 1 << 16
#: Leaves the append path queues before it hashes them (in one batch, inline).
_TREE_BATCH = 1024
_map_write = _fs.map_write


class _Seg:
    """What the log knows about one segment file."""

    __slots__ = ("base", "name", "path", "prev_ts", "prev_link", "index", "end", "fd")

    def __init__(self, base: int, name: str, path: str, prev_ts: int, prev_link: bytes) -> None:
        self.base = base
        self.name = name
        self.path = path
        self.prev_ts = prev_ts
        self.prev_link = prev_link
        self.index: SegmentIndex | None = None
        self.end = SEG_HEADER_SIZE  # end of the last good frame
        self.fd = -1  # read fd, opened lazily


def open_log(path: str | os.PathLike[str], *, readonly: bool = False, durability: str = "batch",
             key: bytes | None = None, segment_bytes: int = 64 * 2**20, strict: bool = False,
             repair_tail: bool = False, create: bool = True, keep_snapshots: int | None = None,
             snapshot_gap: int | None = SNAPSHOT_GAP, merkle: bool = True) -> FileEventLog:
    """Open (and recover) the log directory at ``path``, creating it if needed.

    Args:
        readonly: never modify any file, take no lock, treat a torn tail as end of log.
        durability: ``"always"``, ``"batch"`` (default) or ``"none"``; see :data:`DURABILITY_MODES`.
        key: secret key of a keyed hash chain (must match the one the log was created with).
        segment_bytes: roll to a new segment file before one grows past this size.
        strict: treat any tail anomaly, even a certainly torn write, as corruption.
        repair_tail: truncate an ambiguous damaged tail (a backup is kept).
        create: create the log if it does not exist (otherwise ``FileNotFoundError``).
        keep_snapshots: snapshot retention: the newest this many snapshots are always kept
            (default :data:`KEEP_SNAPSHOTS`, at least 1).
        snapshot_gap: snapshot retention: older snapshots are deleted only while every
            two kept neighbours (and seq 0 and the oldest kept one) stay at most this
            many seqs apart, so a state at any seq is a snapshot plus at most
            ``snapshot_gap`` events of replay (default :data:`SNAPSHOT_GAP`). ``0`` keeps
            every snapshot; ``None`` keeps only the newest ``keep_snapshots``.
        merkle: keep the Merkle tree of audit proofs up to date at every append (the
            default). ``False`` skips that work; the next writer that keeps it catches
            up with the events appended meanwhile.

    Raises:
        LogLockedError: another writer holds the log.
        CorruptionError: damage that cannot be repaired automatically (names file, offset, seq).
        UnsupportedFormatError: a file of a newer format version.
        WrongKeyError: the key does not match the log's.
    """
    return FileEventLog(os.fspath(path), readonly=readonly, durability=durability, key=key,
                        segment_bytes=segment_bytes, strict=strict, repair_tail=repair_tail,
                        create=create, keep_snapshots=keep_snapshots, snapshot_gap=snapshot_gap,
                        merkle=merkle)


class FileEventLog(EventLog):
    """An append-only log stored in a directory; see :func:`open_log`."""

    def __init__(self, path: str, *, readonly: bool = False, durability: str = "batch",
                 key: bytes | None = None, segment_bytes: int = 64 * 2**20, strict: bool = False,
                 repair_tail: bool = False, create: bool = True, keep_snapshots: int | None = None,
                 snapshot_gap: int | None = SNAPSHOT_GAP, merkle: bool = True) -> None:
        if durability not in DURABILITY_MODES:
            msg = f"durability must be one of {DURABILITY_MODES}, got {durability!r}"
            raise ValueError(msg)
        self._key = bytes(key or b"")
        if len(self._key) > 64:
            msg = "hash-chain key must be at most 64 bytes"
            raise ValueError(msg)
        if segment_bytes < 4096:
            msg = f"segment_bytes must be at least 4096, got {segment_bytes}"
            raise ValueError(msg)
        if keep_snapshots is None:
            keep_snapshots = KEEP_SNAPSHOTS
        if type(keep_snapshots) is not int or keep_snapshots < 1:
            msg = f"keep_snapshots must be an int >= 1, got {keep_snapshots!r}"
            raise ValueError(msg)
        if snapshot_gap is not None and (type(snapshot_gap) is not int or snapshot_gap < 0):
            msg = f"snapshot_gap must be an int >= 0 or None, got {snapshot_gap!r}"
            raise ValueError(msg)
        self._keep_snapshots = keep_snapshots
        self._snapshot_gap = snapshot_gap
        self._path = os.path.abspath(path)
        self._chain = Chain(self._key)
        self._readonly = readonly
        self._durability = durability
        self._always = durability == "always"
        self._batch = durability == "batch"
        self._last_frame_off = 0
        self._active: _Seg | None = None  # the segment appends go to (writer only)
        self._idx_next = 0  # offset from which the next sparse-index entry is due
        self._segment_bytes = segment_bytes
        self._strict = strict
        self._repair_tail = repair_tail
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._followers = 0
        self._sync_lock = threading.Lock()
        self._durable_cond = threading.Condition(threading.Lock())
        self._syncing = False
        # Group commit ("always"): before its fsync, a leader waits (on _gather, with
        # _lock) for as many unsynced appends as the previous fsync covered, bounded
        # by about two fsyncs' time, so concurrent appenders share one fsync
        # instead of alternating one big and one tiny batch.
        self._gather = threading.Condition(self._lock)
        self._gathering = False
        self._group_size = 1
        self._group_wait = 0.0
        self._closed = False
        self._failed: BaseException | None = None
        self._segs: list[_Seg] = []
        self._keyed_on_disk = bool(self._key)
        self._head_seq = 0
        self._head_ts = 0
        self._head_link = GENESIS
        self._durable_seq = 0
        self._wfd = -1
        self._size = 0  # end of the last frame in the active segment (where the next one goes)
        self._alloc = 0  # size of the active segment file: _size plus zeros reserved ahead
        self._map: mmap.mmap | None = None  # a window of the active segment, mapped shared
        self._map_base = 0  # file offsets the window covers: [_map_base, _map_end)
        self._map_end = 0
        self._writer_lock: _lock.WriterLock | None = None
        self._dirty = False
        # True when the next append has someone to tell: the "batch" flusher (nothing
        # unsynced yet), a follower, or a gathering group-commit leader. One flag for the
        # hot path to test; every write to it happens under _lock.
        self._signal = self._batch
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._dir_fd_lock = threading.Lock()
        self._warned_keyless = False  # see _unauthenticated
        # The Merkle tree (eventlog/MERKLE.md): the writer feeds it under _lock at every
        # append and commits its node store after the log's own fsync covers it
        # (_commit_tree, serialised by _tree_commit_lock). None when not kept.
        self._merkle: MerkleTree | None = None
        self._merkle_wanted = merkle
        self._merkle_error: str | None = None
        self._tree_commit_lock = threading.Lock()
        self._tree_committed = 0
        self._tree_commit_at = 0.0
        self._reader_tree: MerkleTree | None = None
        self._reader_tree_lock = threading.Lock()  # not _lock: feeding the reader's tree reads the log
        # The personal values' vault (eventlog/vault.py): the writer's, opened with the
        # log; a reader's, opened when first asked. _erase_lock: one erasure at a time.
        self._vault: FileVault | None = None
        self._vault_mark: tuple[int, int] | None = None  # where the append in progress put its values
        self._erase_lock = threading.Lock()

        if not os.path.isdir(self._path):
            if readonly or not create:
                msg = f"no event log at {self._path!r}"
                raise FileNotFoundError(msg)
            parent = os.path.dirname(self._path)
            os.makedirs(self._path, exist_ok=True)
            # A new directory entry is only durable once its parent is fsynced.
            _fs.fsync_dir(parent)
        if not readonly:
            self._writer_lock = _lock.acquire(self._path)
        try:
            self._recover()
            if not readonly:
                self._start_writer()
                if merkle:
                    self._open_tree()
                self._vault = FileVault(os.path.join(self._path, VAULT_DIR))
                self._finish_erasure()
        except BaseException:
            self._release_all()
            raise

    # -- public state -------------------------------------------------------------
    @property
    def path(self) -> str:
        """The log directory (absolute)."""
        return self._path

    @property
    def location(self) -> str:
        return self._path

    @property
    def readonly(self) -> bool:
        """True when opened with ``readonly=True``."""
        return self._readonly

    @property
    def keyed(self) -> bool:
        """True when the log's hash chain is keyed."""
        return self._keyed_on_disk

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def durability(self) -> str:
        return self._durability

    @property
    def head_seq(self) -> int:
        if self._readonly and not self._closed:
            self.refresh()
        return self._head_seq

    @property
    def head_ts(self) -> int:
        return self._head_ts

    @property
    def head_hash(self) -> bytes:
        return self._head_link

    @property
    def durable_seq(self) -> int:
        if self._readonly:
            return self._head_seq
        return self._durable_seq

    def __repr__(self) -> str:
        mode = "readonly" if self._readonly else self._durability
        return f"<FileEventLog {self._path!r} head={self._head_seq} {mode}{' closed' if self._closed else ''}>"

    # -- recovery -------------------------------------------------------------------
    def _corrupt(self, seg: str, offset: int | None, seq: int | None, reason: str,
                 repairable: bool = False) -> CorruptionError:
        return CorruptionError(os.path.join(self._path, seg), offset, seq, reason, repairable=repairable)

    def _segment_names(self) -> list[tuple[int, str]]:
        out = []
        for name in os.listdir(self._path):
            base = parse_seg_name(name)
            if base is not None:
                out.append((base, name))
        out.sort()
        return out

    def _recover(self) -> None:
        """Open every segment, check the chain of anchors, and recover the tail."""
        names = self._segment_names()
        if not self._readonly:
            self._remove_tmp_files()
        if not names:
            if not self._readonly:
                self._create_segment(1, 0, GENESIS)
                self._segs[-1].index = SegmentIndex(1, SEG_HEADER_SIZE, 0, GENESIS)
            return
        if names[0][0] != 1:
            raise self._corrupt(names[0][1], 0, 1, f"the first segment starts at seq {names[0][0]}, not 1: "
                                "earlier segments are missing")
        prev_seq, prev_ts, prev_link = 0, 0, GENESIS
        for i, (base, name) in enumerate(names):
            last = i == len(names) - 1
            seg = _Seg(base, name, os.path.join(self._path, name), prev_ts, prev_link)
            if base != prev_seq + 1:
                raise self._corrupt(name, 0, prev_seq + 1,
                                    f"segment starts at seq {base} but the previous one ends at seq {prev_seq}: "
                                    "a segment is missing or truncated")
            fd = self._open_segment(seg)
            seg.fd = fd
            self._segs.append(seg)
            size = os.fstat(fd).st_size
            head = pread_all(fd, SEG_HEADER_SIZE, 0)
            hdr = unpack_seg_header(head)
            if isinstance(hdr, str):
                if last and (size < SEG_HEADER_SIZE or all_zero(fd, 0, size)):
                    # A torn segment creation (only possible if the rename raced a crash
                    # without the data): the segment holds nothing yet.
                    self._torn_segment_header(seg, size, prev_ts, prev_link)
                    prev_seq = seg.index.last_seq  # type: ignore[union-attr]
                    break
                raise self._corrupt(name, 0, base, hdr)
            if hdr.version != FORMAT_VERSION:
                msg = (f"{seg.path}: segment format version {hdr.version} is not supported "
                       f"(this library reads version {FORMAT_VERSION}); upgrade eventlog")
                raise UnsupportedFormatError(msg)
            self._check_key(seg, hdr.flags, hdr.key_check)
            if hdr.base_seq != base:
                raise self._corrupt(name, 8, base, f"segment header says base seq {hdr.base_seq}, "
                                    f"its file name says {base}")
            if hdr.prev_ts != prev_ts or hdr.prev_link != prev_link:
                raise self._corrupt(name, 16, base, "segment header anchor (previous ts and chain link) does "
                                    "not match the end of the previous segment")
            if last:
                self._recover_last(seg, size)
            else:
                self._load_sealed(seg, size)
            idx = seg.index
            assert idx is not None
            prev_seq, prev_ts, prev_link = idx.last_seq, idx.last_ts, idx.last_link
        self._head_seq, self._head_ts, self._head_link = prev_seq, prev_ts, prev_link
        self._durable_seq = prev_seq

    def _open_segment(self, seg: _Seg) -> int:
        """A read fd of ``seg``; a FIFO, device or directory named like a segment is corruption.

        (Opened non-blocking: a FIFO would otherwise block the open until someone wrote to it.)
        """
        try:
            return open_regular(seg.path, os.O_RDONLY, _fs.open)
        except NotRegularFileError as err:
            raise self._corrupt(seg.name, 0, seg.base, str(err)) from None

    def _check_key(self, seg: _Seg, flags: int, kc: bytes) -> None:
        keyed = bool(flags & FLAG_KEYED)
        self._keyed_on_disk = keyed
        if keyed and not self._key:
            if self._readonly:
                return  # reading needs no key; link_at() inside a batch will ask for it
            msg = f"event log {self._path!r} has a keyed hash chain: open it with key=..."
            raise WrongKeyError(msg)
        if not keyed and self._key:
            msg = f"event log {self._path!r} has an unkeyed hash chain, but a key was given"
            raise WrongKeyError(msg)
        if keyed and kc != key_check(self._key):
            msg = f"the key does not match the one event log {self._path!r} was written with"
            raise WrongKeyError(msg)

    def _index_problem(self, seg: _Seg, idx: SegmentIndex, size: int) -> str | None:
        """Sanity-check an index file against the segment (Kafka ``sanityCheck``); None if it passes.

        Its first entry must be the segment's first frame (``seq_at_time`` picks a segment
        by that entry's ts) and its tail fields the last frame it covers. The other
        entries are cross-checked when a lookup starts from them (``_events``, ``_locate``,
        ``seq_at_time``; :meth:`_entry_holds`).
        """
        if idx.covered_end > size or idx.covered_end < SEG_HEADER_SIZE:
            return f"it covers {idx.covered_end} bytes of a {size}-byte segment"
        if idx.last_seq == seg.base - 1:
            if (idx.covered_end == SEG_HEADER_SIZE and idx.last_link == seg.prev_link
                    and idx.last_ts == seg.prev_ts and len(idx.seqs) == 0):
                return None
            return "it says the segment is empty, but its fields say otherwise"
        off = idx.last_frame_off
        if off < SEG_HEADER_SIZE or off % 8 or off >= idx.covered_end or not len(idx.seqs):
            return "its last frame offset is impossible"
        if idx.seqs[0] != seg.base or idx.offs[0] != SEG_HEADER_SIZE:
            return "its first entry is not the segment's first frame"
        first = _frame_header_at(seg.fd, SEG_HEADER_SIZE)
        if first is None or first[2] != seg.base or first[3] != idx.tss[0]:
            return "its first entry does not match the segment's first frame"
        last = _frame_header_at(seg.fd, off)
        if last is None:
            return "no frame header at its last frame offset"
        length, count, seq, ts, link = last
        total = (FRAME_HEADER_SIZE + length + 7) & ~7
        if not (seq + count - 1 == idx.last_seq and link == idx.last_link and ts == idx.last_ts
                and off + total == idx.covered_end):
            return "its last frame does not match the segment"
        return None

    def _load_index(self, seg: _Seg, size: int) -> SegmentIndex | None:
        """The segment's index file if it passes every check, else None (then it is rebuilt).

        A refused file is reported: as a warning when its checksums are fine but it fails
        authentication, otherwise through ``logging`` (a crash can leave a torn or stale
        index: it is not fsynced).
        """
        path = self._index_path(seg)
        got = SegmentIndex.read(path, seg.base, keyed=self._keyed_on_disk, key=self._key or None)
        if got is None:
            return None
        if isinstance(got, SegmentIndex):
            problem = self._index_problem(seg, got, size)
            if problem is None:
                return got
            # A stale index can outlive the frames it covers after a power loss (it is
            # not fsynced): not suspicious in itself.
            log.warning("eventlog: ignoring index %s (%s); rebuilding it from %s", path, problem, seg.name)
            return None
        if got.untrusted:
            warnings.warn(f"eventlog: ignoring index {path}: {got.reason}; rebuilding it from {seg.name}",
                          RuntimeWarning, stacklevel=5)
        else:
            log.warning("eventlog: ignoring index %s (%s); rebuilding it from %s", path, got.reason, seg.name)
        return None

    def _scan_into(self, seg: _Seg, idx: SegmentIndex, end: int) -> FrameScanner:
        """Scan frames from ``idx.covered_end`` to ``end``, noting each in ``idx``."""
        sc = FrameScanner(seg.fd, idx.covered_end, end, idx.last_seq + 1, idx.last_ts, idx.last_link)
        note = idx.note
        for off, seq, count, ts, link, payload in sc:
            note(off, seq, seq + count - 1, ts, link, frame_end(off, len(payload)))
        return sc

    def _load_sealed(self, seg: _Seg, size: int) -> None:
        """A non-last segment must be complete; it is never truncated."""
        idx = self._load_index(seg, size)
        if idx is None:
            idx = SegmentIndex(seg.base, SEG_HEADER_SIZE, seg.prev_ts, seg.prev_link)
        stale = idx.covered_end < size
        if stale:
            # No index, or one saved before the segment was sealed: scan the rest.
            sc = self._scan_into(seg, idx, size)
            if sc.bad is not None:
                raise self._corrupt(seg.name, sc.bad_off, sc.expected_seq,
                                    f"{sc.bad.reason} (in a sealed segment: not a torn tail)")
            if not self._readonly:
                self._save_index(seg, idx)
        if idx.last_seq < seg.base:
            raise self._corrupt(seg.name, SEG_HEADER_SIZE, seg.base, "sealed segment holds no records")
        seg.index = idx
        seg.end = idx.covered_end

    def _recover_last(self, seg: _Seg, size: int) -> None:
        idx = self._load_index(seg, size)
        scanned_from = SEG_HEADER_SIZE
        if idx is None:
            idx = SegmentIndex(seg.base, SEG_HEADER_SIZE, seg.prev_ts, seg.prev_link)
        else:
            scanned_from = idx.covered_end
        sc = self._scan_into(seg, idx, size)
        seg.index = idx
        seg.end = idx.covered_end
        if sc.bad is not None:
            self._handle_tail(seg, sc, size)
        if not self._readonly and size - scanned_from > 4 * INDEX_INTERVAL:
            self._save_index(seg, idx)

    def _handle_tail(self, seg: _Seg, sc: FrameScanner, size: int) -> None:
        """Apply RELIABILITY.md section 5 rule 4 at the first bad position of the last segment."""
        x = sc.bad_off
        bad = sc.bad
        assert bad is not None
        if self._readonly and bad.kind not in ("short", "past_end") and not any(sc.bad_head):
            # No length stored at x when the scan read it: the writer's reserved space or
            # a frame it is still copying. A reader stops here as at the end of the log
            # (judging by the scan's own bytes: a fresh read could race the writer).
            return
        expected = sc.expected_seq
        if all_zero(seg.fd, x, size):
            # Zeros only: space the writer reserved ahead of itself (or a grown file whose
            # data never landed). Nothing to save or cut; a writer reuses it. (Checked
            # without reading holes: a huge sparse tail costs nothing.)
            return
        if size - x > self._tail_limit():
            # Far more than a torn frame plus reserved space: not a crash's leftover, and
            # not read into memory to find out more.
            raise self._corrupt(seg.name, x, expected, f"{size - x} bytes follow the last good frame: too many "
                                "to be a torn write (a damaged or foreign file)")
        rest = pread_all(seg.fd, size - x, x)
        repairable = True
        if bad.kind == "short":
            torn, why = True, f"torn write: {len(rest)} bytes at the end that are not a complete frame"
        elif bad.kind == "past_end":
            torn, why = True, f"torn write: {bad.reason}"
        elif _later_frame(rest, x, expected):
            torn, repairable = False, False
            why = f"{bad.reason}; valid frames follow, so this is damage in the middle of the log, not a torn tail"
        elif not any(rest[:8]):
            # Length and count are stored last (FileEventLog._append): zeros there mean
            # the frame was never completed; whatever follows is the unfinished copy.
            torn, why = True, "torn write: a frame whose length was never stored (the writer stopped while copying it)"
        elif cut_at_a_sector(rest, x, expected):
            torn, why = True, f"torn write: {bad.reason}; the frame stops at a sector boundary, zeros after it"
        else:
            torn = False
            why = (f"ambiguous tail: {len(rest)} bytes at offset {x} ({bad.reason}); "
                   "open with repair_tail=True to truncate them (a backup is kept)")
        if torn and self._strict:
            raise self._corrupt(seg.name, x, expected, f"{why} (strict mode refuses to truncate)",
                                repairable=True)
        if not torn and not (repairable and self._repair_tail):
            raise self._corrupt(seg.name, x, expected, why, repairable=repairable)
        if self._readonly:
            if not torn:
                raise self._corrupt(seg.name, x, expected, f"{why} (read-only: cannot repair)",
                                    repairable=repairable)
            return  # readers stop at the torn tail as if at end of file
        self._truncate_tail(seg, x, rest, why)

    def _tail_limit(self) -> int:
        """Most bytes after the last good frame that recovery reads to judge them (bounded reads)."""
        return max(256 * 2**20, 2 * self._segment_bytes)

    def _truncate_tail(self, seg: _Seg, x: int, rest: bytes, why: str) -> None:
        """Back up ``rest`` to ``<seg>.torn-<x>``, then cut the segment at ``x``."""
        backup = f"{seg.path}.torn-{x}"
        try:
            bfd = _fs.open(backup, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _fs.write_all(bfd, rest)
                # The backup must be durable before the bytes it saves are cut away.
                _fs.fsync(bfd)
            finally:
                _fs.close(bfd)
            wfd = _fs.open(seg.path, os.O_WRONLY)
            try:
                _fs.ftruncate(wfd, x)
                # Make the truncation durable: a crash must not bring the torn bytes back
                # after a new record was appended behind them.
                _fs.fsync(wfd)
            finally:
                _fs.close(wfd)
            _fs.fsync_dir(self._path)
        except OSError as err:
            raise LogWriteError(err, f"truncating the torn tail of {seg.path} at byte {x}") from err
        log.warning("eventlog: %s: truncated %d bytes at byte %d (%s); backup in %s",
                    seg.path, len(rest), x, why, backup)

    def _torn_segment_header(self, seg: _Seg, size: int, prev_ts: int, prev_link: bytes) -> None:
        """The last segment is shorter than (or only zeros in) its header: it holds nothing."""
        if self._strict:
            raise self._corrupt(seg.name, 0, seg.base, "torn segment header (strict mode refuses to repair)",
                                repairable=True)
        seg.index = SegmentIndex(seg.base, SEG_HEADER_SIZE, prev_ts, prev_link)
        seg.end = SEG_HEADER_SIZE
        if self._readonly:
            seg.end = -1  # nothing readable
            return
        if size > self._tail_limit():
            raise self._corrupt(seg.name, 0, seg.base, f"a {size}-byte segment without a header: too big to be "
                                "a torn segment creation (a damaged or foreign file)")
        rest = pread_all(seg.fd, size, 0)
        _fs.close(seg.fd)
        seg.fd = -1
        self._segs.pop()
        if size:
            self._truncate_tail(seg, 0, rest, "torn segment header")
        self._create_segment(seg.base, prev_ts, prev_link)
        self._segs[-1].index = seg.index

    def _remove_tmp_files(self) -> None:
        for d in (self._path, os.path.join(self._path, SNAP_DIR)):
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for name in names:
                if name.endswith(".tmp"):
                    try:
                        _fs.unlink(os.path.join(d, name))
                    except OSError:
                        pass

    def _create_segment(self, base: int, prev_ts: int, prev_link: bytes) -> _Seg:
        """Create a segment durably: temp file, header, fsync, rename, directory fsync."""
        name = seg_name(base)
        path = os.path.join(self._path, name)
        tmp = path + ".tmp"
        try:
            fd = _fs.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _fs.write_all(fd, pack_seg_header(base, prev_ts, prev_link, self._key))
                _fs.fsync(fd)
            finally:
                _fs.close(fd)
            _fs.replace(tmp, path)
            # Until the directory is fsynced the new name may vanish in a power loss,
            # taking every record acknowledged into it along.
            _fs.fsync_dir(self._path)
        except OSError as err:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise LogWriteError(err, f"creating segment {path}") from err
        seg = _Seg(base, name, path, prev_ts, prev_link)
        seg.fd = _fs.open(path, os.O_RDONLY)
        self._segs.append(seg)
        return seg

    def _index_path(self, seg: _Seg) -> str:
        return os.path.join(self._path, index_name(seg.base))

    def _save_index(self, seg: _Seg, idx: SegmentIndex) -> None:
        try:
            # Tagged with the chain key: nobody without it can write an index a keyed log uses.
            idx.save(self._index_path(seg), self._key)
        except OSError as err:
            # Derived data: a missing index only makes the next open scan more.
            log.warning("eventlog: could not write index for %s: %s", seg.path, err)

    def _start_writer(self) -> None:
        seg = self._segs[-1]
        assert seg.index is not None
        # Read-write (not O_APPEND): frames are stored through a shared map of the file.
        self._wfd = _fs.open(seg.path, os.O_RDWR)
        self._size = seg.end
        # A crashed writer may have left reserved zeros past the last frame: they are
        # reused, not cut (recovery proved they hold nothing).
        self._alloc = os.fstat(self._wfd).st_size
        self._last_frame_off = seg.index.last_frame_off
        self._active = seg
        self._idx_next = seg.index._next_off
        # Whatever a crashed predecessor left in the page cache becomes durable now, so
        # durable_seq is honest from the start.
        try:
            _fs.fsync(self._wfd)
        except OSError as err:
            raise LogWriteError(err, f"fsync of {seg.path} on open") from err
        if self._durability == "batch":
            self._flusher = threading.Thread(target=FileEventLog._flush_loop,
                                             args=(weakref.ref(self), self._wake),
                                             name=f"eventlog-flush {self._path}", daemon=True)
            self._flusher.start()

    # -- writing --------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self._closed:
            msg = f"event log {self._path!r} is closed"
            raise LogClosedError(msg)
        if self._readonly:
            msg = f"event log {self._path!r} is open read-only"
            raise LogReadOnlyError(msg)
        if self._failed is not None:
            msg = (f"event log {self._path!r} refuses writes after an earlier I/O failure "
                   f"({self._failed}); close and reopen it to recover")
            raise LogFailedError(msg)

    def _fail(self, err: BaseException) -> None:
        if self._failed is None:
            self._failed = err

    def append_encoded(self, event_bytes: bytes, *, expected_seq: int | None = None,
                       ts: int | None = None, personal: Sequence[SealedValue] | None = None) -> tuple[int, int]:
        if len(event_bytes) > MAX_RECORD_BYTES:
            check_event_sizes([event_bytes])
        return self._append(event_bytes, None, expected_seq, ts, personal)

    def append_batch_encoded(self, events: Sequence[bytes], *, expected_seq: int | None = None,
                             ts: int | None = None, personal: Sequence[SealedValue] | None = None
                             ) -> tuple[int, int]:
        events = list(events)
        check_event_sizes(events)
        return self._append(b"", events, expected_seq, ts, personal)

    def _append(self, event_bytes: bytes, batch: list[bytes] | None, expected_seq: int | None,
                ts: int | None, personal: Sequence[SealedValue] | None = None) -> tuple[int, int]:
        """Chain, frame and store one event, or a ``batch`` of them as one frame; return ``(first seq, ts)``.

        The frame is copied into the shared map of the active segment: page-cache memory
        of the file, so it survives ``kill -9`` once copied (the "batch" promise), as a
        ``write(2)`` would, without a syscall. The copy goes in two steps: everything but
        the first 8 bytes (length and count), then those 8 bytes in one aligned store (the
        pad is not stored: space past the last frame is already zeros). A
        frame position reads as zeros there until its frame is complete, so a writer
        killed mid-copy leaves a frame that plainly never started, not a damaged one (see
        FORMAT.md, "Reserved space"). The head moves only after the copy, so readers and
        ``sync()`` never see a seq whose bytes are not there. The frame header is packed
        here rather than by ``_frame.pack_frame`` because it is stored in place, in two
        steps; the format tests check both against ``verify`` and the in-memory log.

        Raises the writer's error (closed, read-only, failed), ConcurrencyError for a stale
        ``expected_seq``, ValueError for an explicit ``ts`` earlier than the head's, or
        LogWriteError when space cannot be reserved (nothing is stored then).
        """
        lock = self._lock
        lock.acquire()  # rather than "with": half the cost, on a path taken per event
        stored = False
        try:
            if self._failed is not None or self._closed or self._readonly:
                self._check_writable()
            first = self._head_seq + 1
            if expected_seq is not None and expected_seq != first - 1:
                raise ConcurrencyError(expected_seq, first - 1, self._path)
            if ts is None:
                ts = _time_ns()
                if ts < self._head_ts:
                    ts = self._head_ts  # timestamps never go backwards, even if the clock does
            else:
                ts = next_ts(self._head_ts, ts)
            if personal:
                # The values first: an event stored (acknowledged) always has them. If the
                # frame is not stored after all, the finally below takes them back.
                self._put_personal(personal)
            if batch is None:
                link = self._chain.next(self._head_link, first, ts, event_bytes)
                count = 1
                payload = event_bytes
            else:
                link = self._chain.extend(self._head_link, first, ts, batch)
                count = len(batch)
                if count == 1:
                    payload = batch[0]
                else:
                    table = _TABLES[count] if count < len(_TABLES) else struct.Struct(f"<{count}I")
                    payload = table.pack(*map(len, batch)) + b"".join(batch)
            last = first + count - 1
            n = len(payload)
            body_crc = _crc32(payload)
            prefix = _pack_prefix(n, count, first, ts, link, body_crc)
            header_crc = _crc32(prefix)
            total = (FRAME_HEADER_SIZE + 7 + n) & ~7

            off = self._size
            end = off + total
            if end > self._map_end:  # past the mapped window, which never passes segment_bytes
                if end > self._segment_bytes and off > SEG_HEADER_SIZE:
                    self._roll()
                    off = self._size
                    end = off + total
                self._make_room(off, end, first)
            if _fs.map_write is _map_write:
                # The payload, the header after its first 8 bytes, then those 8 bytes (the
                # commit: see above). The pad needs no store: everything past the last
                # frame is zeros (reserved by fallocate, or proved zero by recovery).
                mm = self._map
                assert mm is not None  # _make_room mapped the window
                rel = off - self._map_base
                mm[rel + FRAME_HEADER_SIZE : rel + FRAME_HEADER_SIZE + n] = payload
                _pack_header_tail_into(mm, rel + 8, first, ts, link, body_crc, header_crc)
                mm[rel : rel + 8] = prefix[:8]
            else:  # replaced by a test's fault or power-loss shim: the whole frame, pad included
                self._shimmed_map_write(b"".join((prefix, _pack_u32(header_crc), payload, _PADS[-n & 7])),
                                        off, first)
            self._size = end
            if off >= self._idx_next:
                self._index_entry(off, first, ts)
            self._last_frame_off = off
            self._head_seq = last
            self._head_ts = ts
            self._head_link = link
            stored = True
            tree = self._merkle
            if tree is not None:
                # After the frame is stored and the head moved: a failing tree never
                # fails an append (it is derived data; see _drop_tree).
                queue = tree.queue
                if batch is None:
                    queue.append(_pack_leaf_head(0, first, ts) + event_bytes)
                else:
                    queue.extend([_pack_leaf_head(0, seq, ts) + e
                                  for seq, e in zip(range(first, last + 1), batch, strict=True)])
                if len(queue) >= _TREE_BATCH:
                    try:
                        tree.hash_queue()
                    except EventLogError as err:
                        self._drop_tree(err)
            if self._signal:
                self._signal_append()
        finally:
            if personal:
                self._settle_personal(personal, stored)
            lock.release()
        if self._always:
            self._wait_durable(last)
            if self._merkle is not None and last - self._tree_committed >= TREE_COMMIT_EVENTS:
                self._commit_tree()
        return first, ts

    def _signal_append(self) -> None:
        """Tell whoever waits that records were appended (caller holds ``_lock``)."""
        if self._batch and not self._dirty:
            self._dirty = True
            self._wake.set()
        if self._followers:
            self._cond.notify_all()
        if self._gathering:
            self._gather.notify()
        # The flusher is told once per round; followers and a gathering leader, while there.
        self._signal = bool(self._followers) or self._gathering

    def _shimmed_map_write(self, frame: bytes, off: int, seq: int) -> None:
        """The two-step copy of :meth:`_append` through a replaced ``_fs.map_write``."""
        mm = self._map
        assert mm is not None
        rel = off - self._map_base
        try:
            _fs.map_write(self._wfd, mm, rel + 8, frame[8:])
            _fs.map_write(self._wfd, mm, rel, frame[:8])
        except OSError as err:
            # A real memory copy cannot fail; an injected failure may have landed part
            # of the frame. Zero it again so nothing of it can surface later.
            mm[rel : rel + len(frame)] = bytes(len(frame))
            raise LogWriteError(err, f"appending seq {seq} to {self._segs[-1].path}") from err

    def _make_room(self, off: int, end: int, seq: int) -> None:
        """Reserve and map ``[off, end)`` of the active segment (caller holds ``_lock``).

        The file grows ahead of the writer in steps (doubling from 64 KiB up to 4 MiB,
        never past the segment size unless one frame is larger), reserved with
        ``fallocate`` so that no store into the map can hit a block the disk cannot
        provide (that would be SIGBUS, not an error). Failing that, only what this frame
        needs is tried. On failure nothing was written and the file is cut back to its
        old size; if even that fails the writer is failed.

        Only a window of :data:`MAP_WINDOW` bytes from the page holding ``off`` is
        mapped. Pages the writer has moved past are unmapped once it leaves the window,
        so the flusher's fdatasync finds few mappings to write-protect on them: with the
        whole file mapped, each page written back cost a TLB-flush interrupt of the
        appending thread.
        """
        if end > self._alloc:
            old = self._alloc
            need = -(-end // PREALLOC_ALIGN) * PREALLOC_ALIGN
            step = min(max(old, PREALLOC_MIN), PREALLOC_MAX)
            cap = max(need, -(-self._segment_bytes // PREALLOC_ALIGN) * PREALLOC_ALIGN)
            want = min(max(need, old + step), cap)
            try:
                try:
                    _fs.fallocate(self._wfd, old, want - old)
                except OSError:
                    if want == need:
                        raise
                    want = need  # near a disk-full or file-size limit: just this frame
                    _fs.fallocate(self._wfd, old, want - old)
            except OSError as err:
                try:
                    # fallocate may have reserved part of the range before failing; cut
                    # the file back so its size stays what the writer knows.
                    _fs.ftruncate(self._wfd, old)
                except OSError as err2:
                    self._fail(err2)
                raise LogWriteError(err, f"reserving space to append seq {seq} to "
                                         f"{self._segs[-1].path}") from err
            self._alloc = want
        self._unmap()
        base = off & ~(PREALLOC_ALIGN - 1)
        length = min(max(MAP_WINDOW, end - base), self._alloc - base)
        try:
            self._map = _fs.map_file(self._wfd, length, base)
        except (OSError, ValueError) as err:
            raise LogWriteError(err if isinstance(err, OSError) else OSError(str(err)),
                                f"mapping {self._segs[-1].path} to append seq {seq}") from err
        self._map_base = base
        # The hot path tests only ``end > _map_end``, so the window's usable end never
        # passes segment_bytes (unless this one frame does): a frame that would cross
        # it takes the slow path, which rolls the segment.
        self._map_end = min(base + length, max(self._segment_bytes, end))

    def _unmap(self) -> None:
        """Drop the map of the active segment (its stores stay in the page cache)."""
        mm = self._map
        self._map = None
        self._map_base = self._map_end = 0
        if mm is not None:
            mm.close()

    def _trim_reserve(self) -> None:
        """Cut the zeros reserved past the last frame of the active segment.

        Called before the segment is sealed or the log closed (and followed by an
        fdatasync, which makes the new size durable), so a file the writer is done with
        ends at its last frame. A crash before that leaves the zeros, which recovery
        accepts as reserved space.
        """
        self._unmap()
        if self._wfd >= 0 and self._alloc > self._size:
            _fs.ftruncate(self._wfd, self._size)
            self._alloc = self._size

    def _index_entry(self, off: int, seq: int, ts: int) -> None:
        """Add a sparse-index entry for the frame at ``off`` (due once per INDEX_INTERVAL)."""
        idx = self._active.index  # type: ignore[union-attr]
        assert idx is not None
        idx.add_entry(off, seq, ts)
        self._idx_next = idx._next_off

    def _active_index(self) -> SegmentIndex:
        """The active segment's index with its tail fields brought up to date."""
        idx = self._segs[-1].index
        assert idx is not None
        if self._head_seq > idx.last_seq:
            idx.set_tail(self._size, self._head_seq, self._head_ts, self._head_link, self._last_frame_off)
        return idx

    def _roll(self) -> None:
        """Seal the active segment (fsync, index) and start a new one."""
        old = self._segs[-1]
        with self._sync_lock:
            try:
                # A sealed segment ends at its last frame (no reserved zeros), and it
                # must be complete on disk before its successor exists: only the last
                # segment may ever have a torn tail. The fdatasync covers the size too.
                self._trim_reserve()
                _fs.fdatasync(self._wfd)
            except OSError as err:
                self._fail(err)
                raise LogWriteError(err, f"fsync of {old.path} before rolling") from err
            self._set_durable(self._head_seq)
            old.end = self._size  # sealed: readers use seg.end from now on
            self._save_index(old, self._active_index())
            try:
                _fs.close(self._wfd)
            finally:
                self._wfd = -1
            try:
                seg = self._create_segment(self._head_seq + 1, self._head_ts, self._head_link)
                seg.index = SegmentIndex(seg.base, SEG_HEADER_SIZE, self._head_ts, self._head_link)
                self._active = seg
                self._idx_next = 0
                self._wfd = _fs.open(seg.path, os.O_RDWR)
                self._alloc = SEG_HEADER_SIZE
            except OSError as err:
                self._fail(err)
                if isinstance(err, LogWriteError):
                    raise
                raise LogWriteError(err, f"opening a new segment in {self._path}") from err
            self._size = SEG_HEADER_SIZE

    def _set_durable(self, seq: int) -> None:
        with self._durable_cond:
            if seq > self._durable_seq:
                self._durable_seq = seq

    def _sync_now(self) -> int:
        """fdatasync the active segment; return the seq it covers. Fails the writer on error."""
        with self._sync_lock:
            if self._wfd < 0:
                return self._durable_seq
            # Read without _lock: a seq is published only after its frame was written.
            target = self._head_seq
            if target <= self._durable_seq:
                return self._durable_seq
            try:
                vault = self._vault
                if vault is not None:
                    # Before the segment: a value is never less durable than its event.
                    vault.sync()
                # Frames are stored through a shared map of this file: on Linux the
                # file's fdatasync writes back pages dirtied through a mapping too.
                _fs.fdatasync(self._wfd)
            except OSError as err:
                # fsyncgate: the kernel may have dropped the dirty pages; never retry.
                self._fail(err)
                raise LogWriteError(err, f"fsync of {self._segs[-1].path}") from err
            self._set_durable(target)
            return target

    def _wait_durable(self, seq: int) -> None:
        """Group commit: one waiter fsyncs for everyone who has written by then."""
        cond = self._durable_cond
        with cond:
            while self._durable_seq < seq:
                if self._failed is not None:
                    self._check_writable()
                if self._syncing:
                    cond.wait()
                    continue
                self._syncing = True
                break
            else:
                return
        try:
            if self._group_size > 1:
                self._gather_appends()
            start = time.monotonic()
            before = self._durable_seq
            covered = self._sync_now()
            # Learn from this fsync how many appends the next one should wait for, and
            # for how long at most: about two fsyncs' time (gathering 8 threads' appends
            # through the GIL takes longer than one fsync on a busy 2-core machine;
            # much longer and a second fsync would be cheaper), never over 2 ms.
            self._group_size = max(1, covered - before)
            self._group_wait = min(0.002, 2 * (time.monotonic() - start))
        finally:
            with cond:
                self._syncing = False
                cond.notify_all()

    def _gather_appends(self) -> None:
        """Leader only: wait until the previous fsync's number of appends is unsynced."""
        want = self._group_size
        deadline = time.monotonic() + self._group_wait
        with self._gather:
            self._gathering = True
            self._signal = True
            try:
                while self._head_seq - self._durable_seq < want and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._gather.wait(remaining)
            finally:
                self._gathering = False

    @staticmethod
    def _flush_loop(ref: weakref.ReferenceType[FileEventLog], wake: threading.Event) -> None:
        """The "batch" flusher: fdatasync within a few ms of the first unsynced append.

        It holds only a weak reference between rounds, so an unclosed log can still be
        garbage collected (its ``__del__`` then stops this thread).
        """
        while True:
            wake.wait()
            self = ref()
            if self is None or self._closed:
                return
            time.sleep(BATCH_FLUSH_DELAY)  # let more appends join this fsync
            wake.clear()
            with self._lock:
                # Under _lock, so an append cannot clear _signal between these two writes
                # and leave the next appends unsynced. Appends before this point are
                # covered by the fsync below (it reads the head afterwards).
                self._dirty = False
                self._signal = True
            try:
                if self._merkle is not None and self._tree_due():
                    self._commit_tree()  # its fsync of the segment is this round's
                else:
                    self._sync_now()
            except (OSError, EventLogError):
                return  # the writer is failed; appends now raise LogFailedError
            if self._closed:  # close() may have set ``wake`` just before our clear()
                return
            del self

    def sync(self) -> int:
        """Make every appended record durable (and commit the Merkle tree); return :attr:`durable_seq`."""
        if self._readonly:
            return self._head_seq
        if self._closed:
            return self._durable_seq
        if self._failed is not None:
            self._check_writable()
        if self._merkle is not None:
            self._commit_tree()
        return self._sync_now()

    # -- signed checkpoints ---------------------------------------------------------------
    def store_checkpoint(self, size: int, note: str) -> None:
        """Write ``checkpoints/cp-<size>.txt`` atomically (temp, fsync, rename, directory fsync)."""
        self._check_writable()
        folder = os.path.join(self._path, CHECKPOINT_DIR)
        if not os.path.isdir(folder):
            os.makedirs(folder, exist_ok=True)
            _fs.fsync_dir(self._path)  # the new directory survives a power loss
        path = os.path.join(folder, f"cp-{size:020d}.txt")
        write_atomically(path, note.encode("utf-8"), tmp=path + ".tmp", what="checkpoint")

    def checkpoint_notes(self) -> list[str]:
        folder = os.path.join(self._path, CHECKPOINT_DIR)
        try:
            names = sorted(n for n in os.listdir(folder) if n.startswith("cp-") and n.endswith(".txt"))
        except FileNotFoundError:
            return []
        notes = []
        for name in names:
            try:
                with open(os.path.join(folder, name), "rb") as f:
                    notes.append(f.read(1 << 16).decode("utf-8", "replace"))
            except FileNotFoundError:
                continue
        return notes

    # -- personal values (eventlog/personal.py, eventlog/vault.py) ------------------------
    def _put_personal(self, personal: Sequence[SealedValue]) -> None:
        """Store sealed values in the vault before their event (caller holds ``_lock``)."""
        vault = self._vault
        if vault is None:
            self._check_writable()
            raise AssertionError  # pragma: no cover - a writer always has its vault
        self._vault_mark = vault.mark()
        vault.put(personal)

    def _settle_personal(self, personal: Sequence[SealedValue], stored: bool) -> None:
        """After an append with personal values (``_lock`` held): if its event was not stored, take them back."""
        mark, self._vault_mark = self._vault_mark, None
        if not stored and mark is not None and self._vault is not None:
            self._vault.undo(mark, personal)

    def _reader_vault(self, fresh: bool = False) -> FileVault:
        vault = self._vault
        if vault is None or fresh:
            if vault is not None:
                vault.close()
            vault = self._vault = FileVault(os.path.join(self._path, VAULT_DIR), readonly=True)
        return vault

    def personal_entry(self, commitment: bytes) -> VaultEntry | None:
        if self._readonly:
            with self._reader_tree_lock:
                entry = self._reader_vault().get(commitment)
                if entry is None:  # written by the writer since this reader looked: look again
                    entry = self._reader_vault(fresh=True).get(commitment)
                return entry
        vault = self._vault
        return None if vault is None else vault.get(commitment)

    def personal_entries(self) -> Iterator[VaultEntry]:
        if self._readonly:
            with self._reader_tree_lock:
                return self._reader_vault(fresh=True).entries()
        vault = self._vault
        return iter(()) if vault is None else vault.entries()

    @property
    def vault_problems(self) -> list[tuple[str, int, str]]:
        """What opening the vault had to skip: ``(file name, byte offset, what)`` (for ``verify``)."""
        if self._readonly:
            with self._reader_tree_lock:
                return list(self._reader_vault(fresh=True).problems)
        return [] if self._vault is None else list(self._vault.problems)

    def erase_personal(self, event_bytes: bytes, commitments: Sequence[bytes], *,
                       expected_seq: int | None = None) -> tuple[int, int]:
        """Append the erasure event, then replace the values by tombstones (see :meth:`EventLog.erase_personal`).

        ``personal/ERASING`` (written durably first) names the event and the values, so a
        crash at any point is finished by the next writer's open (:meth:`_finish_erasure`).
        """
        self._check_writable()
        vault = self._vault
        assert vault is not None
        with self._erase_lock:
            while True:
                head = self._head_seq
                if expected_seq is not None and expected_seq != head:
                    raise ConcurrencyError(expected_seq, head, self._path)
                vault.begin_erasure(head + 1, event_bytes, commitments)
                try:
                    seq, ts = self._append(event_bytes, None, head, None)
                except ConcurrencyError:
                    vault.abort_erasure()
                    if expected_seq is not None:
                        raise
                    continue  # another thread appended first: the erasure gets the next seq
                except BaseException:
                    vault.abort_erasure()
                    raise
                break
            # The event is durable before any value goes: an erasure is never half-recorded.
            self._sync_now()
            vault.finish_erasure()
            return seq, ts

    def _finish_erasure(self) -> None:
        """At a writer's open: complete an erasure a crash interrupted (``personal/ERASING``)."""
        vault = self._vault
        pending = vault.pending_erasure() if vault is not None else None
        if vault is None or pending is None:
            return
        head = self._head_seq
        if head >= pending.seq:
            stored = next(iter(self.read_raw(pending.seq, pending.seq)))[2]
            if stored != pending.event:
                log.warning("eventlog: %s: an interrupted erasure expected its event at seq %d, but another "
                            "event is there; nothing was erased (run the erasure again)", self._path, pending.seq)
                vault.abort_erasure()
                return
        elif head == pending.seq - 1:
            # The crash came before the erasure event was stored: store it now (the
            # erasure was asked for and signed; it is carried out, not forgotten).
            self._append(pending.event, None, head, None)
            self._sync_now()
        else:
            log.warning("eventlog: %s: an interrupted erasure was for seq %d but the log ends at %d; "
                        "nothing was erased (run the erasure again)", self._path, pending.seq, head)
            vault.abort_erasure()
            return
        vault.finish_erasure()
        log.warning("eventlog: %s: finished an erasure interrupted by a crash (erasure event at seq %d)",
                    self._path, pending.seq)

    # -- the Merkle tree (eventlog/MERKLE.md, "Part 2") ---------------------------------
    def _open_tree(self) -> None:
        """Open the tree's node store and feed it what it lacks (the writer, at open).

        The store keeps only what its last commit vouches for (FileNodeStore), and
        catch_up drops a commit whose anchor is not this log's chain link at that size;
        then only the events since the last commit are read and hashed.
        """
        try:
            tree = MerkleTree(FileNodeStore(os.path.join(self._path, MERKLE_DIR)))
            report = catch_up(tree, self)
        except EventLogError as err:
            self._merkle_error = str(err)
            log.warning("eventlog: %s: the Merkle tree could not be opened (%s); proofs are unavailable "
                        "until the log is reopened", self._path, err)
            return
        if report.rebuilt:
            log.warning("eventlog: %s: the Merkle tree's store described another history; rebuilt it "
                        "from the log (%d events)", self._path, report.fed)
        self._merkle = tree
        head = tree.store.head
        self._tree_committed = head.size if head is not None else 0
        self._tree_commit_at = time.monotonic()
        if report.fed or report.cut or report.rebuilt:
            # The log was fsynced by _start_writer, so the tree may vouch for all of it now.
            self._commit_tree()

    def _drop_tree(self, err: BaseException) -> None:
        """Stop keeping a tree whose store failed (caller holds ``_lock``): the log goes on.

        The tree is derived data; reopening the log rebuilds what the store lost.
        """
        tree, self._merkle = self._merkle, None
        if tree is None:
            return
        self._merkle_error = str(err)
        log.warning("eventlog: %s: the Merkle tree's store failed (%s); proofs are unavailable until "
                    "the log is reopened", self._path, err)
        with contextlib.suppress(EventLogError, OSError):
            tree.close()

    def _tree_due(self) -> bool:
        """True when the tree's store should be committed with the next fsync."""
        return (self._head_seq - self._tree_committed >= TREE_COMMIT_EVENTS
                or time.monotonic() - self._tree_commit_at >= TREE_COMMIT_SECONDS)

    def _commit_tree(self) -> None:
        """Commit the tree's store at the head, after the log's fsync covers the head.

        Prepared under ``_lock`` (the buffered nodes go to the level files; the head's
        size, root and chain link are taken), then the segment is fsynced, then the
        store's level files and its ``HEAD`` (outside ``_lock``: appends go on). So the
        store's ``HEAD`` never vouches for an event that is not on disk, and open never
        finds a committed tree longer than the log (which it would have to rebuild).
        """
        with self._tree_commit_lock:
            prepared: PreparedCommit | None = None
            with self._lock:
                tree = self._merkle
                if tree is None or self._failed is not None:
                    return
                if tree.size != self._tree_committed or tree.store.head is None:
                    try:
                        prepared = tree.prepare_commit(self._head_link)
                    except EventLogError as err:
                        self._drop_tree(err)
                        return
            self._sync_now()
            if prepared is not None:
                try:
                    tree.finish_commit(prepared)
                except EventLogError as err:
                    with self._lock:
                        if self._merkle is tree:
                            self._drop_tree(err)
                    return
                self._tree_committed = prepared.head.size
            self._tree_commit_at = time.monotonic()

    @contextlib.contextmanager
    def _tree(self) -> Iterator[MerkleTree]:
        """The writer's tree (under ``_lock``), or a reader's, fed up to the head."""
        if self._closed:
            msg = f"event log {self._path!r} is closed"
            raise LogClosedError(msg)
        if self._readonly:
            with self._reader_tree_lock:
                yield self._reader_tree_at_head()
            return
        with self._lock:
            tree = self._merkle
            if tree is None:
                raise self._no_tree()
            yield tree

    def _no_tree(self) -> NodeStoreError:
        why = self._merkle_error or "the log was opened with merkle=False"
        msg = (f"event log {self._path!r} keeps no Merkle tree ({why}); reopen it for writing "
               "with merkle=True to build it")
        return NodeStoreError(msg)

    def _reader_tree_at_head(self) -> MerkleTree:
        """A read-only log's tree: the writer's committed store, plus the events since, in memory.

        A missing or damaged store, or one of another history, is not believed: the
        reader then builds the whole tree in memory from the log (O(n), with a warning).
        Caller holds ``_reader_tree_lock`` (never ``_lock``: feeding reads the log).
        """
        tree = self._reader_tree
        if tree is None:
            store = None
            try:
                store = FileNodeStore(os.path.join(self._path, MERKLE_DIR), readonly=True)
                tree = MerkleTree(OverlayNodeStore(store))
                catch_up(tree, self)
            except EventLogError as err:
                if store is not None:
                    store.close()
                if os.path.isdir(os.path.join(self._path, MERKLE_DIR)):
                    log.warning("eventlog: %s: not using the Merkle tree's store (%s); building the "
                                "tree in memory", self._path, err)
                tree = MerkleTree(MemoryNodeStore())
            self._reader_tree = tree
        head = self.head_seq
        if tree.size < head:
            tree.extend(event_leaves(self, tree.size + 1, head))
        return tree

    def check_merkle(self) -> bool:
        """Re-hash the stored tree (``merkle/``) against the log (see :meth:`EventLog.check_merkle`).

        The committed store is opened read-only and checked strictly: a damaged one is a
        :class:`NodeStoreError` here (where opening would quietly rebuild it). The writer
        commits its tree first, so its store covers the head; appends go on meanwhile.
        False when the log has no store (written without the tree: nothing to check).
        """
        if self._closed:
            msg = f"event log {self._path!r} is closed"
            raise LogClosedError(msg)
        directory = os.path.join(self._path, MERKLE_DIR)
        if not self._readonly:
            if self._merkle is None:
                raise self._no_tree()
            self._commit_tree()
        elif not os.path.isdir(directory):
            return False
        store = FileNodeStore(directory, readonly=True)
        try:
            tree = MerkleTree(store)
            size = tree.size
            head = self.head_seq
            if size > head:
                msg = f"the Merkle tree's store holds {size} leaves, more than the log's {head} events"
                raise NodeStoreError(msg)
            tree.check(leaf_hash(_pack_seq_ts(seq, ts) + e) for seq, ts, e in self.read_raw(1, size))
        finally:
            store.close()
        return True

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        err: BaseException | None = None
        try:
            if not self._readonly and self._failed is None:
                with self._sync_lock:
                    try:
                        self._trim_reserve()
                    except OSError as e:
                        # Harmless: the reserved zeros stay, and the next open reuses them.
                        log.warning("eventlog: could not cut the reserved space of %s: %s",
                                    self._segs[-1].path, e)
                try:
                    if self._merkle is not None:
                        self._commit_tree()
                    self._sync_now()
                except OSError as e:
                    err = e
                if self._segs and self._failed is None:
                    self._save_index(self._segs[-1], self._active_index())
        finally:
            self._wake.set()
            if self._flusher is not None:
                self._flusher.join()
            self._release_all()
        if err is not None:
            raise err

    def _release_all(self) -> None:
        for tree in (self._merkle, self._reader_tree):
            if tree is not None:
                with contextlib.suppress(EventLogError, OSError):
                    tree.close()
        self._merkle = self._reader_tree = None
        vault, self._vault = self._vault, None
        if vault is not None:
            with contextlib.suppress(EventLogError, OSError):
                vault.close()
        with self._sync_lock:
            try:
                self._unmap()
            except (OSError, ValueError, BufferError):
                pass
            if self._wfd >= 0:
                try:
                    _fs.close(self._wfd)
                except OSError:
                    pass
                self._wfd = -1
        for seg in self._segs:
            if seg.fd >= 0:
                try:
                    os.close(seg.fd)
                except OSError:
                    pass
                seg.fd = -1
        if self._writer_lock is not None:
            self._writer_lock.release()
            self._writer_lock = None
        self._closed = True

    def __del__(self) -> None:
        try:
            if not self._closed:
                self._closed = True
                self._wake.set()
                self._release_all()
        except Exception:
            pass

    # -- read-only refresh --------------------------------------------------------------
    def refresh(self) -> int:
        """Read-only mode: pick up records another process appended; return the head seq."""
        if not self._readonly or self._closed:
            return self._head_seq
        with self._lock:
            self._refresh_locked()
        return self._head_seq

    def _refresh_locked(self) -> None:
        if not self._segs:
            names = self._segment_names()
            if not names:
                return
            self._segs = []
            self._recover()
            return
        while True:
            seg = self._segs[-1]
            if seg.fd < 0:
                if seg.end == -1:
                    # Torn header seen at open: reopen from scratch once the writer fixed it.
                    self._close_read_fds()
                    self._segs = []
                    self._recover()
                    return
                seg.fd = self._open_segment(seg)
            size = os.fstat(seg.fd).st_size
            idx = seg.index
            assert idx is not None
            # While a writer is open the file runs on into reserved zeros, so "longer
            # than what we know" says nothing: peek at the next frame's length first
            # (frames are stored in order, so if it is zero nothing later exists either).
            if size > idx.covered_end and any(pread_all(seg.fd, 8, idx.covered_end)):
                sc = self._scan_into(seg, idx, size)
                seg.end = idx.covered_end
                if sc.bad is not None:
                    # A writer may be mid-write: an incomplete frame is simply not there
                    # yet; zeros where a frame's length goes are reserved space or a
                    # frame still being copied (its length is stored last).
                    if sc.bad.kind not in ("short", "past_end") and any(sc.bad_head):
                        self._handle_tail(seg, sc, size)
            self._head_seq, self._head_ts, self._head_link = idx.last_seq, idx.last_ts, idx.last_link
            nxt = seg_name(idx.last_seq + 1)
            nxt_path = os.path.join(self._path, nxt)
            if idx.last_seq < seg.base or not os.path.exists(nxt_path):
                return
            # The writer rolled: the current segment is sealed, follow into the next.
            try:
                fd = open_regular(nxt_path)
            except NotRegularFileError as err:
                raise self._corrupt(nxt, 0, idx.last_seq + 1, str(err)) from None
            hdr = unpack_seg_header(pread_all(fd, SEG_HEADER_SIZE, 0))
            if isinstance(hdr, str):
                os.close(fd)
                return  # being created (should not happen: created via rename)
            new = _Seg(idx.last_seq + 1, nxt, nxt_path, idx.last_ts, idx.last_link)
            if hdr.prev_link != idx.last_link or hdr.prev_ts != idx.last_ts:
                os.close(fd)
                raise self._corrupt(nxt, 16, new.base, "segment header anchor does not match the previous segment")
            new.fd = fd
            new.index = SegmentIndex(new.base, SEG_HEADER_SIZE, idx.last_ts, idx.last_link)
            self._segs.append(new)

    def _close_read_fds(self) -> None:
        for seg in self._segs:
            if seg.fd >= 0:
                os.close(seg.fd)
                seg.fd = -1

    # -- reading --------------------------------------------------------------------
    def _seg_end(self, seg: _Seg) -> int:
        """End of the last good frame of ``seg`` (caller holds ``_lock``).

        The writer tracks its active segment's end in ``_size`` only (one attribute
        write less per append); ``seg.end`` is brought up to date when it rolls.
        """
        return self._size if seg is self._active else seg.end

    def _view(self) -> tuple[list[_Seg], int]:
        """A consistent (segments, head) pair to read from without holding the lock."""
        if self._closed:
            msg = f"event log {self._path!r} is closed"
            raise LogClosedError(msg)
        with self._lock:
            if self._readonly:
                self._refresh_locked()
            return list(self._segs), self._head_seq

    def _seg_index(self, seg: _Seg) -> SegmentIndex:
        assert seg.index is not None
        return seg.index

    def _events(self, start: int, stop: int | None) -> Iterator[Record]:
        """Yield the decoded Records ``start..stop``."""
        for batch in self._batches(start, stop, None):
            for seq, ts, event_bytes in batch:
                try:
                    kind, data = decode_event(event_bytes, seq=seq)
                except RecordDecodeError as err:
                    raise self._decode_error(seq, err) from None
                yield new_record(Record, (seq, ts, kind, data))

    def _batches(self, start: int, stop: int | None,
                 select: PrefixFilter | None) -> Iterator[list[tuple[int, int, bytes]]]:
        """Yield the ``(seq, ts, event_bytes)`` of ``start..stop`` in lists (see :meth:`FrameScanner.batches`).

        ``select`` leaves out the events it does not pass.

        Frames come from the one frame reader (:class:`~eventlog.segment.FrameScanner`),
        started at the sparse index entry before ``start``; a bad frame is a
        :class:`CorruptionError` naming its file, offset and seq. The chain is not
        recomputed here (that is :func:`eventlog.verify`'s job).
        """
        segs, head = self._view()
        end_seq = head if stop is None else min(stop, head)
        start = max(start, 1)
        if start > end_seq or not segs:
            return
        bases = [s.base for s in segs]
        chunk = CHUNK if end_seq - start > 64 else 8 * 1024
        for seg in segs[bisect.bisect_right(bases, start) - 1 :]:
            if seg.base > end_seq:
                return
            pos, expected = self._seg_index(seg).start_for_seq(start)
            if pos < 0:
                pos, expected = SEG_HEADER_SIZE, seg.base
            with self._lock:
                seg_end = self._seg_end(seg)
            while True:
                if seg.fd < 0:
                    msg = f"event log {self._path!r} is closed"
                    raise LogClosedError(msg)
                scanner = FrameScanner(seg.fd, pos, seg_end, expected, 0, b"", chunk=chunk)
                yield from scanner.batches(start, end_seq, select)
                if pos == SEG_HEADER_SIZE or scanner.pos != pos:
                    break  # started at the segment's start, or the entry's frame was read
                # Nothing was read: the index entry the scan started from is not a frame of
                # its seq (or lies past the segment's end). The index is derived data anyone
                # can rewrite (issue 13): report it, rebuild it from the segment, and read
                # from the segment's start instead.
                why = scanner.bad.reason if scanner.bad is not None else "past the end of the segment"
                self._distrust_index(seg, f"its entry for seq {expected} at byte {pos} is not a frame of "
                                          f"that seq ({why})")
                pos, expected = SEG_HEADER_SIZE, seg.base
            if scanner.expected_seq > end_seq:
                return
            if scanner.bad is not None:
                raise self._corrupt(seg.name, scanner.bad_off, scanner.expected_seq, scanner.bad.reason)
            if scanner.expected_seq <= min(end_seq, self._seg_last(seg)):
                # The known-good range ends before the frames it should hold: the file
                # changed under us.
                raise self._corrupt(seg.name, scanner.pos, scanner.expected_seq, "frame missing before the "
                                    "known end of the segment")
            start = scanner.expected_seq

    def _entry_holds(self, seg: _Seg, off: int, seq: int, ts: int | None = None) -> bool:
        """True if a frame with a good header and this seq (and ts) starts at ``off``.

        The cross-check an index entry passes before a lookup starts from it: an index
        is derived data, and its CRCs can be recomputed by anyone (see :mod:`eventlog.index`).
        """
        if off < SEG_HEADER_SIZE or off % 8:
            return False
        hdr = _frame_header_at(seg.fd, off)
        return hdr is not None and hdr[2] == seq and (ts is None or hdr[3] == ts)

    def _distrust_index(self, seg: _Seg, reason: str) -> None:
        """Report ``seg``'s index, replace it by one rebuilt from the segment, save that (writer).

        Raises:
            CorruptionError: the segment itself is damaged before its known end.
        """
        warnings.warn(f"eventlog: ignoring index {self._index_path(seg)}: {reason}; rebuilding it from "
                      f"{seg.name}", RuntimeWarning, stacklevel=4)
        with self._lock:
            end = self._seg_end(seg)
            fresh = SegmentIndex(seg.base, SEG_HEADER_SIZE, seg.prev_ts, seg.prev_link)
            sc = self._scan_into(seg, fresh, end)
            if sc.bad is not None:
                raise self._corrupt(seg.name, sc.bad_off, sc.expected_seq, sc.bad.reason)
            seg.index = fresh
            active = seg is self._active
            if active:
                self._idx_next = fresh._next_off
        if not self._readonly and not active and not self._closed:
            self._save_index(seg, fresh)

    def _seg_last(self, seg: _Seg) -> int:
        """The last seq held by ``seg`` as far as the log knows."""
        idx = seg.index
        if seg is self._active or idx is None:
            return self._head_seq
        return idx.last_seq

    def _decode_error(self, seq: int, err: RecordDecodeError) -> RecordDecodeError:
        """The decode error of ``seq`` naming its file and frame offset (found again: rare)."""
        seg, off = self._locate(seq)[:2]
        return RecordDecodeError(seg.path, off, seq, err.reason)

    def read(self, start: int = 1, stop: int | None = None) -> Iterator[Record]:
        """Yield records ``start..stop``; checksums are verified, the chain is not (see verify)."""
        return self._events(start, stop)

    def read_raw(self, start: int = 1, stop: int | None = None,
                 select: PrefixFilter | None = None) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(seq, ts, event_bytes)`` without decoding (checksums verified).

        ``select`` is applied inside the frame scanner, so the events it leaves out cost
        no yield (their frames are read and checked all the same).
        """
        return chain.from_iterable(self._batches(start, stop, select))

    def _locate(self, seq: int) -> tuple[_Seg, int, int, int, int, bytes, bytes, bytes]:
        """Return ``(seg, off, first seq, count, ts, link, payload, prev_link)`` of the frame holding ``seq``."""
        segs, head = self._view()
        if not 1 <= seq <= head:
            msg = f"seq {seq} is not in the log (head is {head})"
            raise KeyError(msg)
        bases = [s.base for s in segs]
        seg = segs[bisect.bisect_right(bases, seq) - 1]
        idx = self._seg_index(seg)
        i = bisect.bisect_right(idx.seqs, seq) - 2  # start one entry early to learn prev_link
        if i >= 0 and not self._entry_holds(seg, idx.offs[i], idx.seqs[i]):
            self._distrust_index(seg, f"its entry for seq {idx.seqs[i]} at byte {idx.offs[i]} is not a frame "
                                      "of that seq")
            i = -1
        if i < 0:
            off, first, prev_link = SEG_HEADER_SIZE, seg.base, seg.prev_link
        else:
            off, first, prev_link = idx.offs[i], idx.seqs[i], b""
        with self._lock:
            seg_end = self._seg_end(seg)
        sc = FrameScanner(seg.fd, off, seg_end, first, 0, prev_link, chunk=16 * 1024)
        for off, fseq, count, ts, link, payload in sc:
            if fseq <= seq <= fseq + count - 1:
                return seg, off, fseq, count, ts, link, payload, prev_link
            prev_link = link
        if sc.bad is not None:
            raise self._corrupt(seg.name, sc.bad_off, sc.expected_seq, sc.bad.reason)
        msg = f"seq {seq} not found in {seg.path}"
        raise KeyError(msg)

    def link_at(self, seq: int) -> bytes:
        """Chain link after ``seq`` (fast at the head and at frame boundaries)."""
        if seq == 0:
            return GENESIS
        with self._lock:
            if seq == self._head_seq:
                return self._head_link
        _seg, _off, first, count, ts, link, payload, prev_link = self._locate(seq)
        if seq == first + count - 1:
            return link
        if self._keyed_on_disk and not self._key:
            msg = f"seq {seq} is inside a batch; computing its link needs the log's key"
            raise WrongKeyError(msg)
        events = split_events(payload, count)
        assert events is not None
        return self._chain.extend(prev_link, first, ts, events[: seq - first + 1])

    def ts_at(self, seq: int) -> int:
        """Timestamp of record ``seq`` (0 for seq 0)."""
        if seq == 0:
            return 0
        with self._lock:
            if seq == self._head_seq:
                return self._head_ts
        return self._locate(seq)[4]

    def seq_at_time(self, ts: int) -> int:
        segs, head = self._view()
        # The last segment whose first frame has ts <= T holds the answer.
        chosen = None
        for seg in reversed(segs):
            idx = self._seg_index(seg)
            if len(idx.tss) and idx.tss[0] <= ts:
                chosen = seg
                break
        if chosen is None:
            return 0
        idx = self._seg_index(chosen)
        i = bisect.bisect_right(idx.tss, ts) - 1
        with self._lock:
            seg_end = self._seg_end(chosen)
        while True:
            off, first, entry_ts = (idx.offs[i], idx.seqs[i], idx.tss[i]) if i > 0 else (SEG_HEADER_SIZE,
                                                                                     chosen.base, None)
            answer = first - 1
            # An entry from the index is believed only once the frame it points at is read
            # and has its seq and ts (the scanner checks the seq).
            proven = entry_ts is None
            sc = FrameScanner(chosen.fd, off, seg_end, first, 0, b"", chunk=16 * 1024)
            for _off, fseq, count, fts, _link, _payload in sc:
                if not proven:
                    if fts != entry_ts:
                        break
                    proven = True
                if fts > ts:
                    return min(answer, head)
                answer = fseq + count - 1
            if proven:
                break
            # The entry the scan started from is not its frame (issue 13, hole 7: a forged
            # timestamp would start the scan past the answer): report, rebuild, start over.
            self._distrust_index(chosen, f"its entry for seq {first} at byte {off} does not match that "
                                         "frame's seq and timestamp")
            idx = self._seg_index(chosen)
            i = bisect.bisect_right(idx.tss, ts) - 1
        if sc.bad is not None:
            raise self._corrupt(chosen.name, sc.bad_off, sc.expected_seq, sc.bad.reason)
        return min(answer, head)

    def follow(self, start: int = 1, *, timeout: float | None = None,
               poll_interval: float = 0.05) -> Iterator[Record]:
        seq = max(start, 1)
        while True:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                if self._closed:
                    yield from self._drain_after_close(seq)
                    return
                head = self.refresh() if self._readonly else self._head_seq
                if head >= seq:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                if self._readonly:
                    time.sleep(poll_interval if remaining is None else min(poll_interval, remaining))
                else:
                    with self._cond:
                        if self._head_seq >= seq or self._closed:
                            continue
                        self._followers += 1
                        self._signal = True
                        try:
                            self._cond.wait(remaining)
                        finally:
                            self._followers -= 1
            try:
                for rec in self.read(seq, head):
                    yield rec
                    seq = rec.seq + 1
            except (OSError, LogClosedError):
                if not self._closed:
                    raise
                # close() pulled the files from under this reader: finish from a fresh handle.

    def _drain_after_close(self, seq: int) -> Iterator[Record]:
        """After close(), yield the records from ``seq`` to the final head, then stop.

        Matches the in-memory log: a follower still gets everything appended before
        close(). The files are read through a short-lived read-only handle.
        """
        head = self._head_seq
        if seq > head:
            return
        with FileEventLog(self._path, readonly=True, key=self._key or None) as reader:
            yield from reader.read(seq, head)

    # -- snapshots --------------------------------------------------------------------
    def _seal_key(self) -> bytes:
        return self._key

    @property
    def _snap_dir(self) -> str:
        return os.path.join(self._path, SNAP_DIR)

    def save_snapshot(self, state: Any, *, schema_version: int, seq: int | None = None) -> Snapshot:
        """Store ``state`` as the projection at ``seq`` (default: the head), atomically.

        ``seq`` must be the head or an earlier seq whose chain link can be found.
        A failed write never replaces an existing good snapshot.
        """
        self._check_writable()
        check_schema_version(schema_version)
        body = encode_state(state)
        seq, ts, link, name = self._write_snapshot_body(body, schema_version, seq)
        return Snapshot(seq, ts, link, schema_version, decode_state(body, where=name), name)

    def store_snapshot(self, state: Any, *, schema_version: int, seq: int | None = None) -> None:
        """:meth:`save_snapshot` without decoding the state back for a returned Snapshot."""
        self._check_writable()
        check_schema_version(schema_version)
        self._write_snapshot_body(encode_state(state), schema_version, seq)

    def _write_snapshot_body(self, body: bytes, schema_version: int,
                             seq: int | None) -> tuple[int, int, bytes, str]:
        """Write an encoded snapshot state for ``seq`` (None: the head); return ``(seq, ts, link, name)``."""
        with self._lock:
            head, head_ts, head_link = self._head_seq, self._head_ts, self._head_link
        if seq is None or seq == head:
            seq, ts, link = head, head_ts, head_link
        else:
            if not 0 <= seq <= head:
                msg = f"cannot snapshot seq {seq}: the log's head is {head}"
                raise ValueError(msg)
            link = self.link_at(seq)
            ts = self.ts_at(seq)
        snap_dir = self._snap_dir
        if not os.path.isdir(snap_dir):
            os.makedirs(snap_dir, exist_ok=True)
            _fs.fsync_dir(self._path)
        name = snap_name(seq)
        write_snapshot(snap_dir, name, pack_snapshot(seq, ts, link, schema_version, body, self._key))
        self._prune_snapshots(keep=name)
        return seq, ts, link, name

    def _prune_snapshots(self, keep: str) -> None:
        """Apply the retention policy (never deleting the snapshot just written)."""
        listed = list_snapshots(self._snap_dir)
        doomed = snapshots_to_prune([seq for seq, _n in listed], self._keep_snapshots, self._snapshot_gap)
        for seq, name in listed:
            if seq in doomed and name != keep:
                try:
                    _fs.unlink(os.path.join(self._snap_dir, name))
                except OSError:
                    pass  # an extra old snapshot is harmless

    def _check_snapshot(self, name: str) -> Snapshot | str | None:
        """Load and check one snapshot file; return it, the reason it is bad, or None if gone.

        A snapshot is believed only if its tag authenticates it (keyed with the log's
        key: see :mod:`eventlog.snapshot`) and its seq, ts and chain link match the log.

        A listed file can vanish before it is read: the retention policy (of this writer's
        snapshot thread, or of the writer process when this is a reader) pruned it. That is
        not damage, so it is skipped without a warning.
        """
        path = os.path.join(self._snap_dir, name)
        parsed = read_snapshot_file(path)
        if parsed is None:
            return None
        if isinstance(parsed, str):
            return parsed
        hdr, body = parsed
        if name != snap_name(hdr.seq):
            return f"file name does not match its seq {hdr.seq}"
        problem = tag_problem(hdr, body, self._key or None, self._keyed_on_disk)
        if problem is not None:
            return problem
        head = self._head_seq
        if hdr.seq > head:
            return f"snapshot is at seq {hdr.seq}, beyond the log's head {head}"
        try:
            link = self.link_at(hdr.seq)
            ts = self.ts_at(hdr.seq)
        except (KeyError, WrongKeyError) as err:
            return f"cannot check against the log: {err}"
        if link != hdr.link:
            return f"chain link does not match the log at seq {hdr.seq} (built from a different history)"
        if ts != hdr.ts:
            return f"timestamp {hdr.ts} does not match the log's {ts} at seq {hdr.seq}"
        try:
            state = decode_state(body, where=path)
        except CorruptionError as err:
            return f"undecodable state: {err.reason}"
        return Snapshot(hdr.seq, hdr.ts, hdr.link, hdr.schema_version, state, name)

    def _unauthenticated(self) -> bool:
        """True (after one warning per handle) when snapshots cannot be authenticated here.

        A reader without the key of a keyed log cannot check any snapshot's tag: rather
        than one warning per file, it says so once and replays from the log.
        """
        if not (self._keyed_on_disk and not self._key):
            return False
        if not self._warned_keyless:
            self._warned_keyless = True
            warnings.warn(f"eventlog: {self._path}: the log's chain is keyed and it was opened without the key, "
                          "so its snapshots cannot be authenticated and are not used (states are replayed "
                          "from the log); open it with key=... to use them", RuntimeWarning, stacklevel=4)
        return True

    def _broken(self, name: str, reason: str) -> None:
        path = os.path.join(self._snap_dir, name)
        warnings.warn(f"eventlog: ignoring snapshot {path}: {reason}", RuntimeWarning, stacklevel=3)
        if self._readonly or self._closed:
            return
        try:
            # Renamed aside, not deleted: it may be useful for forensics.
            _fs.replace(path, path + ".broken")
            _fs.fsync_dir(self._snap_dir)
        except OSError:
            pass

    def latest_snapshot(self, *, max_seq: int | None = None,
                        schema_version: int | None = None) -> Snapshot | None:
        if self._closed:
            msg = f"event log {self._path!r} is closed"
            raise LogClosedError(msg)
        if self._readonly:
            self.refresh()
        if self._unauthenticated():
            return None
        for seq, name in reversed(list_snapshots(self._snap_dir)):
            if max_seq is not None and seq > max_seq:
                continue
            snap = self._check_snapshot(name)
            if snap is None:
                continue
            if isinstance(snap, str):
                self._broken(name, snap)
                continue
            if schema_version is not None and snap.schema_version != schema_version:
                continue
            return snap
        return None

    def snapshot_seqs(self) -> list[int]:
        return [seq for seq, _name in list_snapshots(self._snap_dir)]

    def snapshots(self) -> list[Snapshot]:
        out: list[Snapshot] = []
        if self._unauthenticated():
            return out
        for _seq, name in list_snapshots(self._snap_dir):
            snap = self._check_snapshot(name)
            if snap is None:
                continue
            if isinstance(snap, str):
                self._broken(name, snap)
                continue
            out.append(snap)
        return out


def snapshots_to_prune(seqs: list[int], keep_newest: int, gap: int | None) -> set[int]:
    """Return the snapshot seqs the retention policy deletes (``seqs`` sorted ascending).

    The newest ``keep_newest`` are kept. Of the older ones, a snapshot is deleted only
    if the kept snapshots around it (seq 0 standing in before the oldest) would still be
    at most ``gap`` seqs apart -- a greedy pass from the oldest, so the result keeps
    about two snapshots per ``gap`` seqs. Applied after every save, it never deletes one
    an earlier pass needed: the gaps it leaves stay <= ``gap`` (or as they were, when
    snapshots were already further apart). ``gap`` 0 keeps all; ``None`` keeps only the
    newest.
    """
    old = seqs[: max(0, len(seqs) - keep_newest)]
    if not old:
        return set()
    if gap is None:
        return set(old)
    if gap == 0:
        return set()
    doomed = set()
    last_kept = 0
    for i, seq in enumerate(old):
        nxt = seqs[i + 1]  # the next snapshot (maybe one of the newest, always kept)
        if nxt - last_kept <= gap:
            doomed.add(seq)  # its neighbours stay within the gap without it
        else:
            last_kept = seq
    return doomed


def _later_frame(rest: bytes, base_off: int, expected_seq: int) -> bool:
    """True if a frame header with a good CRC and seq >= expected sits after ``rest[0]``."""
    pos = 8 - (base_off % 8) if base_off % 8 else 8
    n = len(rest)
    while pos + FRAME_HEADER_SIZE <= n:
        res = check_frame(rest, pos, n, expected_seq, 0)
        if not (type(res) is BadFrame and res.kind in ("header", "short")):
            seq = struct.unpack_from("<Q", rest, pos + 8)[0]
            if seq >= expected_seq:
                return True
        pos += 8
    return False


def _frame_header_at(fd: int, off: int) -> tuple[int, int, int, int, bytes] | None:
    """``(len, count, seq, ts, link)`` of a frame header with a good CRC at ``off``, else None."""
    data = pread_all(fd, FRAME_HEADER_SIZE, off)
    if len(data) < FRAME_HEADER_SIZE:
        return None
    length, count, seq, ts, link, _bc, hcrc = struct.unpack_from("<IIQq16sII", data, 0)
    if zlib.crc32(data[:44]) != hcrc:
        return None
    return length, count, seq, ts, link
