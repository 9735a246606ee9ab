"""What a job is and what happened in it: ``info``, the timeline, and ``jobs``.

``info`` must stay fast on long logs (issue 5: <= 0.5 s on a million events): the
status comes from the newest snapshot plus the short tail, and the counts by kind read
each event's kind straight from its raw bytes without decoding the payload.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from eventlog import CorruptionError, EventLogError, Record
from eventlog.encoding import event_kind

from .errors import NotAJobLogError
from .replay import projection_at
from .source import Job, damaged

__all__ = ["JobInfo", "JobRow", "count_kinds", "info", "list_jobs", "record_routine", "snapshot_seqs", "timeline"]

Progress = Callable[[int], None]


class JobInfo(NamedTuple):
    """Summary of one job (``routilux-replay info``)."""

    path: str
    form: str
    job_id: str
    flow_id: str
    status: str
    first_version: int
    head_version: int
    first_ts: int
    last_ts: int
    counts: dict[str, int]
    snapshots: list[int]
    head_hash: str
    keyed: bool
    durability: str

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape."""
        from .jsonform import iso_utc_ns

        out = self._asdict()
        out["first_time"] = iso_utc_ns(self.first_ts)
        out["last_time"] = iso_utc_ns(self.last_ts)
        return out


def _count_raw(job: Job, start: int, counts: dict[str, int], progress: Progress | None) -> None:
    by_prefix: dict[bytes, int] = {}  # the kind's own bytes (a fixstr) -> count
    get = by_prefix.get
    n = 0
    try:
        for _seq, _ts, eb in job.log.read_raw(start):
            head = eb[1]
            if 0xA0 <= head <= 0xBF:
                key = eb[2 : 2 + (head & 0x1F)]
                by_prefix[key] = get(key, 0) + 1
            else:
                kind = event_kind(eb) or "?"
                counts[kind] = counts.get(kind, 0) + 1
            n += 1
            if progress is not None and not n & 0xFFFF:
                progress(start + n)
    except CorruptionError as exc:
        raise damaged(job.path, exc) from None
    for key, value in by_prefix.items():
        kind = key.decode("utf-8", "replace")
        counts[kind] = counts.get(kind, 0) + value


def count_kinds(job: Job, progress: Progress | None = None) -> dict[str, int]:
    """Count events by kind, most frequent first.

    When the newest snapshot carries per-kind counters (a ``kind_counts`` mapping in
    the snapshot state) only the events after it are read; otherwise every event is.
    Only the kind is read from each event's raw bytes: ``event_bytes`` is msgpack
    ``[kind, data]``, so byte 0 is the array header and the kind string starts at
    byte 1 (a fixstr for kinds under 32 bytes); the payload is never decoded.
    """
    start = 1
    total: dict[str, int] = {}
    snap = None
    try:
        snap = job.log.latest_snapshot()
    except EventLogError:
        snap = None  # counting from the start is slower but just as right
    if snap is not None and isinstance(snap.state, dict) and isinstance(snap.state.get("kind_counts"), dict):
        counted = snap.state["kind_counts"]
        if all(isinstance(k, str) and type(v) is int for k, v in counted.items()) \
                and sum(counted.values()) == snap.seq:
            total = dict(counted)
            start = snap.seq + 1
    raw: dict[str, int] = {}
    if start <= job.head:
        _count_raw(job, start, raw, progress)
    for kind, value in raw.items():
        total[kind] = total.get(kind, 0) + value
    return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


def snapshot_seqs(job: Job) -> list[int]:
    """The versions that have a snapshot, oldest first, without loading any state.

    Durable directories list the snapshot files by name and PostgreSQL runs one query
    (``verify`` checks their contents); in-memory logs (a saved file) list theirs.
    """
    if job.form == "directory":
        from eventlog.snapshot import list_snapshots

        return [seq for seq, _name in list_snapshots(os.path.join(job.path, "snapshots"))]
    return job.log.snapshot_seqs()


def _projection_counts(p: Any) -> dict[str, int] | None:
    """The projection's own per-kind counters, if it keeps complete ones."""
    counts = getattr(p, "kind_counts", None)
    if isinstance(counts, dict) and counts and sum(counts.values()) == p.version:
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return None


def info(job: Job, *, counts: bool = True, progress: Progress | None = None) -> JobInfo:
    """Summarise ``job``: identity, status, version and time ranges, kinds, snapshots.

    Reads the newest snapshot plus the tail after it: the event counts by kind come
    from the projection's ``kind_counts`` (kept in snapshots) when it has them, and
    from a raw scan of the kinds only for logs written before counts were kept.
    """
    p = projection_at(job, job.head, history=False)
    snaps = snapshot_seqs(job)
    if job.form == "file":
        durability = "saved job file (one file, written atomically and fsynced)"
    elif job.form == "postgres":
        durability = f"PostgreSQL database (commits durable: {job.log.durability})"
    elif job.form == "directory":
        segments = sum(1 for name in os.listdir(job.path) if name.endswith(".seg"))
        # The writer's durability mode (always/batch/none) is a property of the process
        # that wrote the log and is not recorded in it.
        durability = f"durable job directory ({segments} segment file{'s' if segments != 1 else ''})"
    else:
        durability = f"{job.form} log"
    kinds: dict[str, int] = {}
    if counts:
        kinds = _projection_counts(p) or count_kinds(job, progress)
    return JobInfo(
        path=job.path,
        form=job.form,
        job_id=job.job_id,
        flow_id=job.flow_id,
        status=p.status,
        first_version=1,
        head_version=p.version,
        first_ts=job.first_ts,
        last_ts=p.last_ts,
        counts=kinds,
        snapshots=snaps,
        head_hash=job.log.link_at(p.version).hex() if job.form == "postgres" else job.log.head_hash.hex(),
        keyed=bool(getattr(job.log, "keyed", False)),
        durability=durability,
    )


def record_routine(rec: Record) -> str | None:
    """The routine an event is about: its ``routine_id``, or its task's target routine."""
    data = rec.data
    if not isinstance(data, dict):
        return None
    rid = data.get("routine_id")
    if isinstance(rid, str):
        return rid
    task = data.get("task")
    if isinstance(task, dict):
        for key in ("routine_id", "slot_routine_id", "target_routine_id", "connection_target_routine_id"):
            value = task.get(key)
            if isinstance(value, str):
                return value
    return None


def timeline(job: Job, *, kinds: Sequence[str] = (), routine: str | None = None, start: int = 1,
             stop: int | None = None, since: _dt.datetime | None = None,
             until: _dt.datetime | None = None, limit: int | None = None) -> Iterator[Record]:
    """Yield the job's events, filtered.

    Args:
        kinds: keep only these kinds (empty: all).
        routine: keep only events about this routine (see :func:`record_routine`).
        start, stop: version range, inclusive.
        since, until: time range, inclusive, compared as users see timestamps (microseconds,
            naive = local time).
        limit: stop after this many matching events.
    """
    stop = job.head if stop is None else min(stop, job.head)
    if since is not None:
        # The first version strictly after "just before since" is the first at/after it.
        start = max(start, _first_at_or_after(job, since))
    if until is not None:
        stop = min(stop, _last_at_or_before(job, until))
    wanted = set(kinds)
    n = 0
    if start > stop:
        return
    for rec in job.read(start, stop):
        if wanted and rec.kind not in wanted:
            continue
        if routine is not None and record_routine(rec) != routine:
            continue
        yield rec
        n += 1
        if limit is not None and n >= limit:
            return


def _micros(when: _dt.datetime) -> int:
    aware = when if when.tzinfo is not None else when.astimezone()
    return (aware - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)) // _dt.timedelta(microseconds=1)


def _last_at_or_before(job: Job, when: _dt.datetime) -> int:
    return job.log.seq_at_time(_micros(when) * 1000 + 999)


def _first_at_or_after(job: Job, when: _dt.datetime) -> int:
    return job.log.seq_at_time(_micros(when) * 1000 - 1) + 1


class JobRow(NamedTuple):
    """One job of a job store (``routilux-replay jobs``)."""

    job_id: str
    flow_id: str
    status: str
    version: int
    updated: str | None
    size: int

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return self._asdict()


def _dir_size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass  # a file removed while we walk (a snapshot pruned): not an error
    return total


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, int):
        from routilux.projection import ts_to_iso

        return ts_to_iso(value)
    return str(value)


def _field(row: Any, *names: str) -> Any:
    for name in names:
        if isinstance(row, dict) and name in row:
            return row[name]
        if hasattr(row, name):
            return getattr(row, name)
    return None


def list_jobs(directory: str) -> list[JobRow]:
    """One row per job in a ``JobStore`` directory or a PostgreSQL database, without
    replaying whole logs.

    ``directory`` may be a PostgreSQL URL without a job id
    (``postgresql://user@host:5432/db``): every job log in that database is listed;
    ``size`` is then the bytes of its stored events.

    Raises:
        JobNotFoundError: the directory does not exist.
        NotAJobLogError: it is not a job store.
        StorageUnavailableError: the database cannot be reached.
    """
    from .errors import JobNotFoundError
    from .source import is_pg_location

    if is_pg_location(directory):
        from .pgstore import list_pg_jobs

        return list_pg_jobs(directory)

    if not os.path.exists(directory):
        raise JobNotFoundError(directory, f"no such job store directory: {directory!r}")
    if not os.path.isdir(directory):
        raise NotAJobLogError(directory, "a job store is a directory, this is a file", what="a job store")
    if any(name.endswith(".seg") for name in os.listdir(directory)):
        raise NotAJobLogError(directory, "it is a single job (use `routilux-replay info` on it)",
                              what="a job store")
    from routilux.job_store import JobStore

    store = JobStore(directory)
    try:
        rows: Iterable[Any] = store.list()
    except CorruptionError as exc:
        raise damaged(directory, exc) from None
    except ValueError as exc:
        from .errors import DamagedLogError

        raise DamagedLogError(directory, str(exc)) from None
    out = []
    for row in rows:
        job_id = str(_field(row, "job_id"))
        size = _dir_size(os.path.join(directory, job_id)) if os.path.isdir(os.path.join(directory, job_id)) else 0
        out.append(JobRow(
            job_id=job_id,
            flow_id=str(_field(row, "flow_id") or ""),
            status=str(_field(row, "status") or ""),
            version=int(_field(row, "version") or 0),
            updated=_as_text(_field(row, "updated_at", "last_update", "updated", "last_updated")),
            size=size,
        ))
    return out
