"""``verify(path)``: check a log directory end to end without modifying it.

Unlike open (which trusts sealed segments and their indexes for speed), verify reads
every byte: both CRCs of every frame, seq continuity, timestamps, every event's
decoding, the hash chain recomputed from genesis (with the key if the log is keyed),
every segment header anchor and every snapshot. Modelled on diskcache's
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
from .chain import GENESIS, Chain
from .encoding import decode_event, decode_state
from .errors import CorruptionError
from .segment import FrameScanner, cut_at_a_sector, parse_seg_name, pread_all
from .snapshot import SNAP_DIR, list_snapshots, parse_snapshot

__all__ = ["Problem", "VerifyReport", "verify"]


@attrs.frozen
class Problem:
    """One thing wrong with a log.

    Attributes:
        kind: a short tag: ``"header"``, ``"frame"``, ``"torn_tail"``, ``"decode"``,
            ``"chain"``, ``"continuity"``, ``"anchor"``, ``"key"``, ``"chain_unchecked"``,
            ``"snapshot"``, ``"missing"``; from the audit checks (``eventlog.audit_check``):
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
        fd = os.open(file, os.O_RDONLY)
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
            for off, fseq, fcount, fts, flink, payload in sc:
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
            if bad_event:
                stopped = True
                break
            if sc.bad is not None:
                rest = pread_all(fd, size - sc.bad_off, sc.bad_off)
                if last and (not any(rest) or (sc.bad.kind not in ("short", "past_end")
                                               and not any(sc.bad_head))):
                    # Zeros the writer reserved ahead of itself, or a frame whose length
                    # is not stored yet (still being copied, or never finished): not part
                    # of the log, so not a problem.
                    break
                torn = last and (sc.bad.kind in ("short", "past_end")
                                 or cut_at_a_sector(rest, sc.bad_off, sc.expected_seq))
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
        with open(file, "rb") as f:
            data = f.read()
        parsed = parse_snapshot(data)
        if isinstance(parsed, str):
            problems.append(Problem("snapshot", file, 0, snap_seq, parsed))
            continue
        sh, body = parsed
        if sh.seq != snap_seq:
            problems.append(Problem("snapshot", file, 8, snap_seq, f"header seq {sh.seq} != file name"))
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


