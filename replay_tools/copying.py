"""Copy a job between storages: durable directory, saved job file, PostgreSQL.

``copy_job(src, dst)`` moves a job's whole trail, event by event with each event's own
timestamp, so the copy has exactly the same records and therefore the same hash chain:
the head hash printed at the end is the source's (it is checked, not assumed). The
source's snapshots are copied too, so time travel on the copy is as fast as on the
original.

Destinations:

* a PostgreSQL URL ``postgresql://user@host:port/db#<job_id>`` (without ``#<job_id>``
  the source's job id is used);
* a directory path (default): a durable job directory, as ``JobState.open`` writes;
* a saved job file (``as_file=True``, or a path ending in ``.rjob``), as ``JobState.save``
  writes: one file, written atomically, with a snapshot at its head.

What happens when the destination exists (the rules are the same for every storage):

* missing or empty: the job is copied, all or nothing: a new directory or file is built
  in a hidden staging place beside the destination and renamed into place once its
  head hash is checked (:mod:`replay_tools.staging`); a new PostgreSQL job that fails
  half-way is deleted again. A failed copy leaves nothing behind;
* it holds a *prefix of the same history* (its head hash equals the source's hash at
  that version): the copy continues from there. So an interrupted copy is finished by
  running the same command again, and copying a job that grew copies only the new events
  (an interruption then leaves a longer prefix of the same history, which the next run
  continues: never anything else);
* it holds anything else: refused with :class:`~replay_tools.errors.DestinationError`,
  unless ``force=True``, which replaces a destination *directory or file* (the new copy
  is built beside it and renamed into place, so the old job is never half-overwritten).
  A PostgreSQL destination is never replaced: there is no way to remove a log through
  the storage interface, and silently deleting an audit trail is not a copy's job.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import eventlog
from eventlog import EventLog, InMemoryEventLog
from eventlog.chain import GENESIS, next_link
from eventlog.postgres import parse_pg_location

from .errors import CopyMismatchError, DestinationError
from .pgstore import job_location
from .source import SEGMENT_NAME, Job, is_pg_location, open_job, open_pg_job_log
from .staging import fsync_dir, staged

__all__ = ["SAVED_FILE_SUFFIX", "CopyResult", "copy_job", "destination_kind"]

Progress = Callable[[int], None]


class CopyResult(NamedTuple):
    """What :func:`copy_job` did.

    Attributes:
        source: where the job was read (passwords hidden).
        destination: where it was written (passwords hidden).
        kind: ``"directory"``, ``"file"`` or ``"postgres"`` (the destination's storage).
        events: the destination's head version (= the source's).
        copied: events appended by this call (fewer than ``events`` when it resumed).
        resumed_from: the version the destination already held (0: it was empty).
        snapshots: snapshots written to the destination.
        head_hash: the head hash of both source and copy (hex; checked equal).
    """

    source: str
    destination: str
    kind: str
    events: int
    copied: int
    resumed_from: int
    snapshots: int
    head_hash: str

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return self._asdict()


#: A destination path ending in this is written as a saved job file (as with ``--file``).
SAVED_FILE_SUFFIX = ".rjob"


def destination_kind(destination: str, *, as_file: bool = False) -> str:
    """``"postgres"``, ``"file"`` or ``"directory"``: how ``destination`` is written.

    A path ending in :data:`SAVED_FILE_SUFFIX` (``.rjob``) is a saved job file, like
    ``as_file=True``, unless a directory already exists there.
    """
    if is_pg_location(destination):
        return "postgres"
    if as_file or (destination.endswith(SAVED_FILE_SUFFIX) and not os.path.isdir(destination)):
        return "file"
    return "directory"


def _linked_raw(job: Job, start: int) -> Iterator[tuple[int, int, bytes, bytes]]:
    """``(seq, ts, event_bytes, link_after)`` from ``start`` on, the chain recomputed here.

    The link before ``start`` comes from the source log itself; every later link is
    computed from the bytes read, so the copy is compared with the source's actual
    chain, not with what the destination happens to compute.
    """
    link = GENESIS if start <= 1 else job.log.link_at(start - 1)
    key = job.key or b""
    for seq, ts, body in job.log.read_raw(start):
        link = next_link(link, seq, ts, body, key)
        yield seq, ts, body, link


def _append_all(job: Job, dst: EventLog, start: int, where: str, snapshots: dict[int, Any],
                progress: Progress | None) -> tuple[int, int]:
    """Append the source's events ``start..head`` to ``dst``; return (copied, snapshots)."""
    from eventlog.encoding import decode_event

    copied = 0
    saved = 0
    batch: list[tuple[int, str, Any]] = []
    batch_ts: int | None = None
    batch_last = 0
    batch_link = b""
    # PostgreSQL appends events with their own timestamps in one transaction; elsewhere
    # the events of one batch share one ts (the storage interface's rule), so only runs
    # of equal timestamps are batched. Either way every event keeps its own ts and the
    # chain is the same.
    append_timed = getattr(dst, "append_timed", None)
    limit = 2048 if append_timed is not None else 512

    def flush() -> None:
        nonlocal batch, batch_ts, copied, saved
        if not batch:
            return
        if append_timed is not None:
            append_timed(batch, expected_seq=batch_last - len(batch))
        else:
            dst.append_batch([(kind, data) for _, kind, data in batch],
                             expected_seq=batch_last - len(batch), ts=batch_ts)
        copied += len(batch)
        if dst.head_hash != batch_link:
            raise CopyMismatchError(where, batch_last, dst.head_hash.hex(), batch_link.hex())
        snap = snapshots.get(batch_last)
        if snap is not None:
            dst.save_snapshot(snap.state, schema_version=snap.schema_version)
            saved += 1
        batch = []
        batch_ts = None
        if progress is not None:
            progress(batch_last)

    for seq, ts, body, link in _linked_raw(job, start):
        if batch and ((ts != batch_ts and append_timed is None) or len(batch) >= limit
                      or (seq - 1) in snapshots):
            flush()
        kind, data = decode_event(body, where=job.path, seq=seq)
        batch.append((ts, kind, data))
        batch_ts = ts
        batch_last = seq
        batch_link = link
    flush()
    return copied, saved


def _snapshots_after(job: Job, after: int) -> dict[int, Any]:
    """The source's valid snapshots beyond version ``after``, by seq."""
    return {snap.seq: snap for snap in job.log.snapshots() if after < snap.seq <= job.head}


def _resume_point(job: Job, dst: EventLog, where: str) -> int:
    """The version from which to continue, or raise if ``dst`` holds another history."""
    held = dst.head_seq
    if held == 0:
        return 0
    if held <= job.head and job.log.link_at(held) == dst.head_hash:
        return held
    if held > job.head:
        reason = f"it already holds {held} events, more than the source's {job.head} (another history)"
    else:
        reason = (f"it already holds {held} events of a different history (its head hash "
                  f"{dst.head_hash.hex()} is not the source's hash at version {held})")
    raise DestinationError(where, reason + "; choose a new destination"
                           + ("" if is_pg_location(where) else " or pass --force to replace it"))


def _check_keyed(job: Job) -> None:
    if getattr(job.log, "keyed", False) and job.key is None:
        raise DestinationError(job.path, "the source has a keyed hash chain: give its key (--key-file) "
                                         "so the copy can reproduce and check the chain")


def _copy_to_log(job: Job, dst: EventLog, where: str, kind: str, progress: Progress | None) -> CopyResult:
    start = _resume_point(job, dst, where)
    snaps = _snapshots_after(job, start)
    copied, saved = _append_all(job, dst, start + 1, where, snaps, progress)
    dst.sync()  # the copy is reported done only once it is durable
    head = job.log.head_hash
    if dst.head_hash != head or dst.head_seq != job.head:
        raise CopyMismatchError(where, dst.head_seq, dst.head_hash.hex(), head.hex())
    return CopyResult(job.path, where, kind, dst.head_seq, copied, start, saved, head.hex())


def _to_postgres(job: Job, destination: str, force: bool, progress: Progress | None) -> CopyResult:
    _url, job_id = parse_pg_location(destination)
    if not job_id:
        destination = job_location(destination, job.job_id)
    dst = open_pg_job_log(destination, key=job.key, create=True, readonly=False)
    del force  # never replaces a PostgreSQL log (see the module doc): a prefix is resumed, else refused
    fresh = dst.head_seq == 0
    try:
        return _copy_to_log(job, dst, dst.location, "postgres", progress)
    except BaseException:
        if fresh:
            # A job this copy created: remove it again, so a failed copy leaves nothing.
            dst.close()
            from .exporting import _delete_pg_job

            _delete_pg_job(destination)
        raise
    finally:
        if not dst.closed:
            dst.close()


def _to_directory(job: Job, destination: str, force: bool, progress: Progress | None) -> CopyResult:
    if os.path.isfile(destination):
        if not force:
            raise DestinationError(destination, "it is a file; pass --force to replace it, or copy with --file")
        return _replace(job, destination, progress, as_file=False)
    if os.path.isdir(destination) and os.listdir(destination):
        if not any(SEGMENT_NAME.match(name) for name in os.listdir(destination)):
            if not force:
                raise DestinationError(destination, "it is a non-empty directory that is not a job log; "
                                                    "choose a new destination or pass --force to replace it")
            return _replace(job, destination, progress, as_file=False)
        try:
            dst = eventlog.open_log(destination, key=job.key, create=False)
        except eventlog.LogLockedError:
            raise DestinationError(destination, "a running process is writing to this job; "
                                                "stop it or choose a new destination") from None
        except (eventlog.EventLogError, OSError) as exc:
            if not force:
                raise DestinationError(destination, f"it is a non-empty directory that is not a job log ({exc}); "
                                                    "pass --force to replace it") from None
            return _replace(job, destination, progress, as_file=False)
        try:
            try:
                return _copy_to_log(job, dst, destination, "directory", progress)
            except DestinationError:
                if not force:
                    raise
        finally:
            dst.close()
        return _replace(job, destination, progress, as_file=False)
    # A new job: built in a staging directory beside the destination and renamed into
    # place once its head hash is checked, so a failed copy leaves nothing behind.
    with staged(destination) as stage:
        dst = eventlog.open_log(stage.path, key=job.key, durability="batch")
        try:
            result = _copy_to_log(job, dst, destination, "directory", progress)
        finally:
            dst.close()
        stage.commit()
    return result


def _replace(job: Job, destination: str, progress: Progress | None, *, as_file: bool) -> CopyResult:
    """Build the copy beside ``destination``, then swap it in (``--force``)."""
    parent = os.path.dirname(os.path.abspath(destination))
    tmp = os.path.join(parent, f".{os.path.basename(destination)}.copy-{uuid.uuid4().hex[:8]}")
    try:
        if as_file:
            result = _to_file(job, tmp, force=False, progress=progress)
        else:
            result = _to_directory(job, tmp, force=False, progress=progress)
        old = tmp + ".old"
        # Rename the old job aside, the new one into place, then delete the old one: at
        # every moment the destination path holds one whole job (or, briefly, nothing).
        os.replace(destination, old)
        os.replace(tmp, destination)
        _fsync_dir(parent)
        if os.path.isdir(old):
            shutil.rmtree(old, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(old)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)
    return result._replace(destination=destination)


def _fsync_dir(path: str) -> None:
    # The renames above are durable only once the directory itself is flushed.
    fsync_dir(path)


def _to_file(job: Job, destination: str, force: bool, progress: Progress | None) -> CopyResult:
    if os.path.isdir(destination):
        raise DestinationError(destination, "it is a directory; a saved job file needs a file path")
    if os.path.exists(destination) and not force:
        raise DestinationError(destination, "the file already exists; pass --force to replace it")
    from routilux.events import SCHEMA_VERSION
    from routilux.projection import snapshot_state

    from .replay import projection_at

    mem = InMemoryEventLog(key=job.key)
    result = _copy_to_log(job, mem, destination, "file", progress)
    # A saved job file carries a snapshot at its head, as JobState.save writes it; it is
    # written to a temp file, fsynced and renamed, so an existing file is replaced whole.
    state = snapshot_state(projection_at(job, job.head, history=False))
    eventlog.write_bundle(destination, mem, state=state, schema_version=SCHEMA_VERSION)
    return result._replace(snapshots=1)


def copy_job(source: str | os.PathLike[str] | Job, destination: str | os.PathLike[str], *,
             key: bytes | None = None, as_file: bool = False, force: bool = False,
             progress: Progress | None = None) -> CopyResult:
    """Copy the job at ``source`` to ``destination``; the head hash stays the same.

    Args:
        source: a job location (saved job file, durable directory, ``postgresql://...#job``)
            or an open :class:`~replay_tools.source.Job`.
        destination: a directory path, a file path (with ``as_file``), or a PostgreSQL URL
            (``#<job_id>`` optional: the source's job id by default).
        key: the hash-chain key of a keyed job (the copy keeps the same key).
        as_file: write a saved job file instead of a durable directory.
        force: replace a destination directory or file that holds another job.
        progress: called with the version copied so far, now and then.

    Raises:
        DestinationError: the destination holds a different job (see the module doc).
        CopyMismatchError: the copy's chain differs from the source's (it is left in
            place for inspection and must not be trusted).
        JobNotFoundError, NotAJobLogError, DamagedLogError, StorageUnavailableError: as
            :func:`~replay_tools.source.open_job`, for either side.
    """
    dest = os.fspath(destination)
    if isinstance(source, Job):
        return _copy(source, dest, as_file, force, progress)
    with open_job(source, key=key) as job:
        return _copy(job, dest, as_file, force, progress)


def _copy(job: Job, dest: str, as_file: bool, force: bool, progress: Progress | None) -> CopyResult:
    _check_keyed(job)
    kind = destination_kind(dest, as_file=as_file)
    if kind == "postgres":
        if as_file:
            raise DestinationError(dest, "--file makes no sense for a PostgreSQL destination")
        return _to_postgres(job, dest, force, progress)
    if job.form in ("directory", "file") and os.path.abspath(job.path) == os.path.abspath(dest):
        raise DestinationError(dest, "it is the source itself")
    if kind == "file":
        if os.path.exists(dest) and force:
            return _replace(job, dest, progress, as_file=True)
        return _to_file(job, dest, force, progress)
    return _to_directory(job, dest, force, progress)
