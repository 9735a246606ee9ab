"""``verify(path)``: check a log directory end to end without modifying it.

Unlike open (which trusts sealed segments and their indexes for speed), verify reads
every byte: both CRCs of every frame, seq continuity, timestamps, every event's
decoding, the hash chain recomputed from genesis (with the key if the log is keyed),
every segment header anchor, every snapshot (its tag, and its seq, ts and link against
the log) and every sparse index (its tag, and every entry against the frames scanned).
A derived file that fails is a problem even though open would only ignore it: it was
damaged or forged (issue 13). Modelled on diskcache's
``Cache.check``: a report, never a repair.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from ._frame import (
    FLAG_KEYED,
    FORMAT_VERSION,
    SEG_HEADER_SIZE,
    key_check,
    split_events,
    unpack_seg_header,
)
from .bounded import NotRegularFileError, all_zero, open_regular
from .chain import GENESIS, Chain
from .encoding import decode_event, decode_state
from .errors import CorruptionError
from .index import SegmentIndex, index_name
from .segment import FrameScanner, cut_at_a_sector, frame_end, parse_seg_name, pread_all
from .snapshot import SNAP_DIR, list_snapshots, read_snapshot_file, tag_problem

__all__ = ["Problem", "VerifyReport", "verify"]

#: Most bytes after the last good frame read to judge them (a torn frame is far smaller).
_TAIL_READ = 256 * 2**20


@attrs.frozen
class Problem:
    """One thing wrong with a log.

    Attributes:
        kind: a short tag: ``"header"``, ``"frame"``, ``"torn_tail"``, ``"decode"``,
            ``"chain"``, ``"continuity"``, ``"anchor"``, ``"key"``, ``"chain_unchecked"``,
            ``"snapshot"``, ``"index"``, ``"missing"``; from the audit checks (``eventlog.audit_check``):
            ``"merkle"``, ``"checkpoint"``, ``"personal"``, ``"erasure"``, ``"audit"``.
        file: path of the file concerned.
        offset: byte offset in that file (``None`` if not applicable).
        seq: the seq concerned (``None`` if not applicable).
        message: what is wrong, for people.
    """

    kind: str
    file: str
    offset: int | None
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = os.path.basename(self.file)
        if self.offset is not None:
            where += f" at byte {self.offset}"
        if self.seq is not None:
            where += f" (seq {self.seq})"
        return f"[{self.kind}] {where}: {self.message}"


@attrs.frozen
class VerifyReport:
    """The result of :func:`verify`.

    Attributes:
        ok: True only if no problem was found and the chain could be checked.
        head_seq: seq of the last good record.
        head_hash: hex of the chain link after it (recomputed, or as stored if unchecked).
        records: number of good records read.
        segments: number of segment files.
        snapshots_checked: number of snapshot files examined.
        problems: every problem found, in file order.
        erasures: the erasure events of personal values (``eventlog.erasure.ErasureRecord``).
    """

    ok: bool
    head_seq: int
    head_hash: str
    records: int
    segments: int
    snapshots_checked: int
    problems: list[Problem] = attrs.field(factory=list)
    #: The erasures of personal values the log records (listed, not problems): ErasureRecord s.
    erasures: list[Any] = attrs.field(factory=list)

    @property
    def first_problem(self) -> Problem | None:
        """The first problem found (the earliest in the log), or ``None``."""
        return self.problems[0] if self.problems else None

    def __str__(self) -> str:
        status = "OK" if self.ok else f"NOT OK ({len(self.problems)} problem(s))"
        lines = [
            f"log verification: {status}",
            f"  records: {self.records} in {self.segments} segment(s), head seq {self.head_seq}",
            f"  head hash: {self.head_hash}",
            f"  snapshots checked: {self.snapshots_checked}",
        ]
        lines.extend(f"  {p}" for p in self.problems)
        lines.extend(f"  erasure: {e.describe()}" for e in self.erasures)
        return "\n".join(lines)


def verify(path: str | os.PathLike[str], *, key: bytes | None = None, audit: bool = True) -> VerifyReport:
    """Check every file of the log at ``path``; never modifies anything.

    With ``audit`` (the default), once the bytes and the chain hold, the audit-proof
    files are checked too (:func:`_audit`): the Merkle tree's store, the kept
    checkpoints, the personal values' vault and the erasures (listed in the report).

    Raises:
        FileNotFoundError: ``path`` is not a directory.
    """
    root = os.path.abspath(os.fspath(path))
    if not os.path.isdir(root):
        msg = f"no event log at {root!r}"
        raise FileNotFoundError(msg)
    key_b = bytes(key or b"")
    problems: list[Problem] = []
    names = sorted((b, n) for n in os.listdir(root) if (b := parse_seg_name(n)) is not None)
    snaps = list_snapshots(os.path.join(root, SNAP_DIR))
    wanted = {seq for seq, _ in snaps}
    at: dict[int, tuple[bytes, int]] = {0: (GENESIS, 0)}  # seq -> (link, ts) for snapshot checks

    seq, ts, link = 0, 0, GENESIS
    keyed = bool(key_b)
    can_chain = True
    stopped = False
    for i, (base, name) in enumerate(names):
        file = os.path.join(root, name)
        last = i == len(names) - 1
        if stopped:
            break
        if base != seq + 1:
            problems.append(Problem("continuity", file, 0, seq + 1,
                                    f"segment starts at seq {base}, expected {seq + 1} (segment missing?)"))
            stopped = True
            break
        try:
            fd = open_regular(file)
        except NotRegularFileError as err:
            problems.append(Problem("header", file, 0, base, str(err)))
            stopped = True
            break
        try:
            size = os.fstat(fd).st_size
            hdr = unpack_seg_header(pread_all(fd, SEG_HEADER_SIZE, 0))
            if isinstance(hdr, str):
                problems.append(Problem("header", file, 0, base, hdr))
                stopped = True
                break
            if hdr.version != FORMAT_VERSION:
                problems.append(Problem("header", file, 4, base, f"unsupported format version {hdr.version}"))
                stopped = True
                break
            if i == 0:
                keyed = bool(hdr.flags & FLAG_KEYED)
                if keyed and not key_b:
                    can_chain = False
                    problems.append(Problem("chain_unchecked", file, 6, None,
                                            "the log's hash chain is keyed and no key was given: "
                                            "the chain could not be checked"))
                elif keyed and hdr.key_check != key_check(key_b):
                    can_chain = False
                    problems.append(Problem("key", file, 40, None, "the key does not match the log's key"))
                elif not keyed and key_b:
                    problems.append(Problem("key", file, 6, None,
                                            "a key was given but the log's chain is not keyed"))
                    key_b = b""
            if hdr.base_seq != base:
                problems.append(Problem("header", file, 8, base, f"header base seq {hdr.base_seq} != file name"))
            if hdr.prev_ts != ts or hdr.prev_link != link:
                problems.append(Problem("anchor", file, 16, base,
                                        "segment header anchor (previous ts and link) does not match "
                                        "the end of the previous segment"))
            sc = FrameScanner(fd, SEG_HEADER_SIZE, size, seq + 1, ts, link)
            chain = Chain(key_b if keyed else b"")
            bad_event = False
            idx_check = _IndexCheck.open(root, base, hdr.prev_ts, hdr.prev_link, keyed=keyed,
                                         key=key_b if can_chain else None)
            for off, fseq, fcount, fts, flink, payload in sc:
                if idx_check is not None:
                    idx_check.frame(off, fseq, fcount, fts, flink, frame_end(off, len(payload)))
                events = [payload] if fcount == 1 else (split_events(payload, fcount) or [])
                s = fseq
                for ev in events:
                    try:
                        decode_event(ev, where=file, offset=off, seq=s)
                    except CorruptionError as err:
                        problems.append(Problem("decode", file, off, s, err.reason))
                        bad_event = True
                        break
                    if can_chain:
                        link = chain.next(link, s, fts, ev)
                    if s in wanted:
                        at[s] = (link if can_chain else b"", fts)
                    s += 1
                if bad_event:
                    break
                if can_chain and link != flink:
                    problems.append(Problem("chain", file, off, fseq + fcount - 1,
                                            "hash chain mismatch: the stored link does not match the "
                                            "recomputed one (the history was altered, or the wrong key)"))
                    can_chain = False  # one chain problem is enough; later links are unverifiable
                if not can_chain:
                    link = flink
                    if fseq + fcount - 1 in wanted:
                        at[fseq + fcount - 1] = (b"", fts)
                seq, ts = fseq + fcount - 1, fts
            if idx_check is not None:
                problems.extend(idx_check.finish(sc.pos))
            if bad_event:
                stopped = True
                break
            if sc.bad is not None:
                zeros = all_zero(fd, sc.bad_off, size)  # without reading holes of a sparse file
                if last and (zeros or (sc.bad.kind not in ("short", "past_end") and not any(sc.bad_head))):
                    # Zeros the writer reserved ahead of itself, or a frame whose length
                    # is not stored yet (still being copied, or never finished): not part
                    # of the log, so not a problem.
                    break
                # Only a bounded tail is read to tell a torn write from damage; a longer one
                # cannot be a torn frame.
                rest = pread_all(fd, min(size - sc.bad_off, _TAIL_READ), sc.bad_off)
                torn = last and (sc.bad.kind in ("short", "past_end")
                                 or (size - sc.bad_off <= _TAIL_READ
                                     and cut_at_a_sector(rest, sc.bad_off, sc.expected_seq)))
                kind = "torn_tail" if torn else "frame"
                msg = sc.bad.reason
                if torn:
                    msg += "; a torn write at the tail (opening the log for writing truncates it)"
                problems.append(Problem(kind, file, sc.bad_off, sc.expected_seq, msg))
                stopped = True
        finally:
            os.close(fd)
    if not names:
        problems.append(Problem("missing", root, None, None, "no segment files"))

    snap_dir = os.path.join(root, SNAP_DIR)
    for snap_seq, name in snaps:
        file = os.path.join(snap_dir, name)
        parsed = read_snapshot_file(file)
        if parsed is None:
            continue  # pruned by a live writer since it was listed
        if isinstance(parsed, str):
            problems.append(Problem("snapshot", file, 0, snap_seq, parsed))
            continue
        sh, body = parsed
        if sh.seq != snap_seq:
            problems.append(Problem("snapshot", file, 8, snap_seq, f"header seq {sh.seq} != file name"))
            continue
        if names and (key_b or not keyed):  # without the key of a keyed log: chain_unchecked says so
            problem = tag_problem(sh, body, key_b or None, keyed)
            if problem is not None:
                problems.append(Problem("snapshot", file, 60, sh.seq, problem))
                continue
        if sh.seq > seq:
            problems.append(Problem("snapshot", file, 8, sh.seq, f"snapshot is beyond the log's head {seq}"))
            continue
        ref = at.get(sh.seq)
        if ref is not None:
            want_link, want_ts = ref
            if want_link and want_link != sh.link:
                problems.append(Problem("snapshot", file, 24, sh.seq,
                                        "snapshot's chain link does not match the log at its seq"))
                continue
            if want_ts != sh.ts:
                problems.append(Problem("snapshot", file, 16, sh.seq,
                                        f"snapshot ts {sh.ts} does not match the log's {want_ts}"))
                continue
        try:
            decode_state(body, where=file)
        except CorruptionError as err:
            problems.append(Problem("snapshot", file, 64, sh.seq, err.reason))

    erasures: list[Any] = []
    if audit and names and not problems:
        _audit(root, key_b or None, problems, erasures)
    ok = not problems
    return VerifyReport(ok, seq, link.hex(), seq, len(names), len(snaps), problems, erasures)


def _audit(root: str, key: bytes | None, problems: list[Problem], erasures: list[Any]) -> None:
    """The audit checks (``eventlog.audit_check``) through a read-only handle: tree, checkpoints, vault."""
    from .audit_check import check_audit
    from .errors import EventLogError
    from .filelog import FileEventLog

    try:
        with FileEventLog(root, readonly=True, key=key) as log:
            report = check_audit(log, where=root)
    except EventLogError as exc:
        problems.append(Problem("audit", root, None, None, f"the audit checks could not run: {exc}"))
        return
    problems.extend(report.problems)
    erasures.extend(report.erasures)


class _IndexCheck:
    """Checks one segment's index file against the frames verify scans (every entry, the tail)."""

    def __init__(self, file: str, idx: SegmentIndex) -> None:
        self.file = file
        self.idx = idx
        self.j = 0
        self.problems: list[Problem] = []
        self.tail_seen = idx.covered_end == SEG_HEADER_SIZE

    @classmethod
    def open(cls, root: str, base: int, prev_ts: int, prev_link: bytes, *, keyed: bool,
             key: bytes | None) -> _IndexCheck | _Refusal | None:
        """The check for the index of the segment at ``base``; ``None`` if it has no index file."""
        file = os.path.join(root, index_name(base))
        got = SegmentIndex.read(file, base, keyed=keyed, key=key)
        if got is None:
            return None
        if not isinstance(got, SegmentIndex):
            return _Refusal(Problem("index", file, 0, base, got.reason))
        check = cls(file, got)
        if got.covered_end == SEG_HEADER_SIZE and (got.last_seq != base - 1 or got.last_ts != prev_ts
                                                   or got.last_link != prev_link or len(got.seqs)):
            check._bad(None, "an empty index whose fields say otherwise")
        return check

    def _bad(self, seq: int | None, message: str) -> None:
        if not self.problems:  # the first wrong entry says it; the rest would only repeat it
            self.problems.append(Problem("index", self.file, None, seq, f"{message} (the index is derived data: "
                                         "a writer rebuilds it; a wrong one was damaged or forged)"))

    def frame(self, off: int, seq: int, count: int, ts: int, link: bytes, end: int) -> None:
        """Note a good frame at ``off`` (seqs ``seq..seq+count-1``) ending at ``end``."""
        idx = self.idx
        offs = idx.offs
        while self.j < len(offs) and offs[self.j] < off:
            self._bad(idx.seqs[self.j], f"entry {self.j} points at byte {offs[self.j]}, which is not a frame")
            self.j += 1
        if self.j < len(offs) and offs[self.j] == off:
            if idx.seqs[self.j] != seq or idx.tss[self.j] != ts:
                self._bad(seq, f"entry {self.j} says seq {idx.seqs[self.j]} at ts {idx.tss[self.j]}; the frame at "
                               f"byte {off} holds seq {seq} at ts {ts}")
            self.j += 1
        if end == idx.covered_end:
            self.tail_seen = True
            if (idx.last_frame_off, idx.last_seq, idx.last_ts, idx.last_link) != (off, seq + count - 1, ts, link):
                self._bad(seq, f"its last frame fields do not match the frame at byte {off}")

    def finish(self, scanned_end: int) -> list[Problem]:
        """The problems found, once every frame was seen (scanning ended at ``scanned_end``)."""
        idx = self.idx
        if self.j < len(idx.offs) and idx.offs[self.j] < min(idx.covered_end, scanned_end):
            self._bad(idx.seqs[self.j], f"entry {self.j} points at byte {idx.offs[self.j]}, which is not a frame")
        if not self.tail_seen and idx.covered_end <= scanned_end:
            self._bad(idx.last_seq, f"it ends at byte {idx.covered_end}, which is not the end of a frame")
        return self.problems


class _Refusal:
    """An index file refused before any frame was compared (damaged, or failed its tag)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem

    def frame(self, off: int, seq: int, count: int, ts: int, link: bytes, end: int) -> None:
        """Nothing to compare."""

    def finish(self, scanned_end: int) -> list[Problem]:
        """The refusal."""
        return [self.problem]
