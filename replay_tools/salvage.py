"""Save what can be saved of a damaged job log: its intact prefix, as an export.

A damaged durable job directory (a flipped byte, a half-overwritten segment, an
altered record) cannot be opened or read past the damage, and nothing in it after the
damage can be trusted. :func:`salvage` finds the first problem with
``eventlog.verify``, builds a private copy of the log cut just before it (segments
before the damaged one are hard-linked or copied, the damaged one is copied up to the
bad frame, later segments and all snapshots are left out), opens that copy read-only
and exports its events as JSON Lines with their chain links, exactly as ``export``
does. The export is checked by ``import`` like any other, which rebuilds a job with
the intact versions and their original head hash at that version.

The report says what was kept (versions ``1..k`` and the hash at ``k``) and what was
left out (the damage, the bytes after it, later segments, snapshots). The damaged log
itself is never modified.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import IO, Any, NamedTuple

import eventlog

from .errors import JobNotFoundError, NotAJobLogError
from .source import SEGMENT_NAME

__all__ = ["SalvageReport", "salvage"]


class SalvageReport(NamedTuple):
    """What :func:`salvage` kept and left out.

    Attributes:
        path: the damaged job.
        complete: True when no damage was found (everything was exported).
        events: versions exported (``1..events``).
        head_hash: the chain link after the last exported version (hex).
        problem: the first problem found (``None`` when complete).
        left_out: what was not exported, one line each (bytes after the damage, later
            segments, snapshots).
    """

    path: str
    complete: bool
    events: int
    head_hash: str
    problem: str | None
    left_out: list[str]

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return self._asdict()


def _place(src: str, dst: str, keep: int | None) -> None:
    """Put ``src`` at ``dst``: whole (a hard link, else a copy) or its first ``keep`` bytes."""
    if keep is None:
        try:
            os.link(src, dst)
            return
        except OSError:
            shutil.copyfile(src, dst)
            return
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        remaining = keep
        while remaining > 0:
            chunk = fin.read(min(remaining, 1 << 20))
            if not chunk:
                break
            fout.write(chunk)
            remaining -= len(chunk)


def salvage(path: str, out: IO[str], *, key: bytes | None = None,
            progress: Callable[[int], None] | None = None) -> SalvageReport:
    """Export the intact prefix of the durable job directory at ``path`` to ``out`` (JSON Lines).

    Raises:
        JobNotFoundError: nothing at ``path``.
        NotAJobLogError: ``path`` is not a durable job directory, or no event before
            the damage is intact (nothing to save).
    """
    from .exporting import export_log
    from .source import open_job

    if not os.path.exists(path):
        raise JobNotFoundError(path)
    if not os.path.isdir(path):
        raise NotAJobLogError(path, "salvage reads a durable job directory (a saved job file is checked as a "
                                    "whole, and PostgreSQL checks every row: copy those instead)")
    segments = sorted(name for name in os.listdir(path) if SEGMENT_NAME.match(name))
    if not segments:
        raise NotAJobLogError(path, "the directory holds no event log segments (*.seg files)")
    report = eventlog.verify(path, key=key)
    log_problems = [p for p in report.problems if p.kind not in ("snapshot", "chain_unchecked")]
    first = log_problems[0] if log_problems else None
    left_out: list[str] = []
    snapshot_dir = os.path.join(path, "snapshots")
    if first is not None and os.path.isdir(snapshot_dir):
        count = sum(1 for name in os.listdir(snapshot_dir) if name.endswith(".snap"))
        if count:
            left_out.append(f"{count} snapshot file(s): derived from the events, rebuilt by import")
    with tempfile.TemporaryDirectory(prefix="routilux-salvage-") as tmp:
        copy = os.path.join(tmp, "job")
        os.mkdir(copy)
        damaged_name = os.path.basename(first.file) if first is not None else None
        cut = False
        for name in segments:
            src = os.path.join(path, name)
            if cut:
                left_out.append(f"{name}: a later segment ({os.path.getsize(src)} bytes), after the damage")
                continue
            if name == damaged_name:
                offset = first.offset if first is not None else None
                size = os.path.getsize(src)
                keep = offset if offset is not None else 0
                _place(src, os.path.join(copy, name), keep)
                left_out.append(f"{name}: {size - keep} bytes from byte {keep} on (the damage and what follows)")
                cut = True
                continue
            _place(src, os.path.join(copy, name), None)
        try:
            with open_job(copy, key=key) as job:
                if job.head == 0:
                    raise NotAJobLogError(path, "no event before the damage is intact")
                count = export_log(job.log, out, key=key, progress=progress)
                head_hash = job.log.head_hash.hex()
        except NotAJobLogError as exc:
            with contextlib.suppress(Exception):
                out.flush()
            raise NotAJobLogError(path, f"nothing to salvage: {exc.reason}") from None
    problem = str(first) if first is not None else None
    if first is not None and first.file and damaged_name is None:
        problem = f"{problem} (no segment named)"
    return SalvageReport(path, first is None, count, head_hash, problem, left_out)
