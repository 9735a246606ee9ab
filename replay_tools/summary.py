"""What a job is and what happened in it: ``info``, the timeline, and ``jobs``.

``info`` must stay fast on long logs (issue 5: <= 0.5 s on a million events): the
status comes from the newest snapshot plus the short tail, and the counts by kind read
each event's kind straight from its raw bytes without decoding the payload.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from eventlog import CorruptionError, EventLogError, Record
from eventlog.encoding import event_kind

from .attribution import Attributor, task_routine
from .condition import Condition
from .errors import NotAJobLogError
from .replay import fast_tuples, projection_at
from .scan import no_gc
from .source import Job, damaged

__all__ = ["EventRow", "JobInfo", "JobRow", "Skipped", "count_kinds", "info", "list_jobs", "record_routine",
           "snapshot_seqs", "timeline"]

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
    """The routine named in an event's own payload (its ``routine_id`` or its task's).

    Only what the event says about itself; the routine shown for an event everywhere
    (:class:`EventRow`) follows :func:`~replay_tools.attribution.acting_routine`, which
    also knows which task was running.
    """
    data = rec.data
    if not isinstance(data, dict):
        return None
    rid = data.get("routine_id")
    if isinstance(rid, str):
        return rid
    return task_routine(data.get("task"))


class EventRow(NamedTuple):
    """One event of a timeline, with the routine it belongs to.

    Attributes:
        seq: its version. ts: its timestamp (ns). kind, data: the event.
        routine: the routine it belongs to (:func:`~replay_tools.attribution.acting_routine`).
    """

    seq: int
    ts: int
    kind: str
    data: Any
    routine: str | None

    @property
    def time(self) -> _dt.datetime:
        """When it happened: an aware UTC datetime (microseconds; ``ts`` has the nanoseconds)."""
        return _EPOCH + _dt.timedelta(microseconds=self.ts // 1000)


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class _EventView(Mapping[str, Any]):
    """An event as ``events --where`` sees it (``time`` is built only when asked for)."""

    __slots__ = ("_row",)
    _KEYS = ("version", "seq", "ts", "time", "kind", "routine", "data")

    def __init__(self, row: EventRow) -> None:
        self._row = row

    def __getitem__(self, key: str) -> Any:
        row = self._row
        if key in ("version", "seq"):
            return row.seq
        if key == "ts":
            return row.ts
        if key == "time":
            return _EPOCH + _dt.timedelta(microseconds=row.ts // 1000)
        if key == "kind":
            return row.kind
        if key == "routine":
            return row.routine
        if key == "data":
            return row.data
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in self._KEYS

    def __iter__(self) -> Iterator[str]:
        return iter(self._KEYS)

    def __len__(self) -> int:
        return len(self._KEYS)


def _attributed(job: Job, start: int, stop: int) -> Iterator[EventRow]:
    """Every event in ``start..stop`` with its routine, oldest first."""
    who = Attributor.at(job, start)
    for item in fast_tuples(job, start, stop):
        seq, ts, kind, data = item.seq, item.ts, item.kind, item.data
        routine = who.routine(kind, data)
        who.observe(item)
        yield EventRow(seq, ts, kind, data, routine)


#: Versions read per step when a timeline is read newest first.
REVERSE_CHUNK = 4096


def _attributed_reversed(job: Job, start: int, stop: int) -> Iterator[EventRow]:
    """Like :func:`_attributed`, newest first, reading the log in chunks from the end."""
    hi = stop
    while hi >= start:
        lo = max(start, hi - REVERSE_CHUNK + 1)
        chunk = list(_attributed(job, lo, hi))
        yield from reversed(chunk)
        hi = lo - 1


def timeline(job: Job, *, kinds: Sequence[str] = (), routine: str | None = None, start: int = 1,
             stop: int | None = None, since: _dt.datetime | str | None = None,
             until: _dt.datetime | str | None = None, where: Condition | None = None, limit: int | None = None,
             reverse: bool = False) -> Iterator[EventRow]:
    """Yield the job's events, filtered, each with the routine it belongs to.

    Args:
        kinds: keep only these kinds (empty: all).
        routine: keep only events that belong to this routine.
        start, stop: version range, inclusive.
        since, until: time range, inclusive, compared as users see timestamps (microseconds):
            datetimes (naive = local time) or text: ISO, or relative to now (``"10m"``).
        where: keep only events for which this condition (:func:`~replay_tools.condition.parse_event_condition`)
            holds.
        limit: stop after this many matching events.
        reverse: newest first (``limit`` then counts from the end).
    """
    from .timefmt import parse_time

    stop = job.head if stop is None else min(stop, job.head)
    if isinstance(since, str):
        since = parse_time(since)
    if isinstance(until, str):
        until = parse_time(until)
    if since is not None:
        # The first version strictly after "just before since" is the first at/after it.
        start = max(start, _first_at_or_after(job, since))
    if until is not None:
        stop = min(stop, _last_at_or_before(job, until))
    wanted = set(kinds)
    n = 0
    if start > stop or limit == 0:
        return
    rows = _attributed_reversed(job, start, stop) if reverse else _attributed(job, start, stop)
    with no_gc():
        for row in rows:
            if wanted and row.kind not in wanted:
                continue
            if routine is not None and row.routine != routine:
                continue
            if where is not None and not where.evaluate(_EventView(row), row.seq):
                continue
            yield row
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
    """One job of a job store (``routilux-replay jobs``).

    Attributes:
        job_id: the job's id (from its ``job_created`` event, as ``info`` shows it).
        flow_id, status, version: as ``info`` shows them.
        updated: when it last changed (ISO, UTC with ``Z``), or ``None``.
        size: bytes stored.
        path: where it is (its directory, or its PostgreSQL location).
        updated_ts: the timestamp (ns) of its last event.
    """

    job_id: str
    flow_id: str
    status: str
    version: int
    updated: str | None
    size: int
    path: str = ""
    updated_ts: int = 0

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape."""
        return self._asdict()


class Skipped(NamedTuple):
    """An entry of a job store directory that is not a readable job: ``name`` and ``reason``."""

    name: str
    reason: str


def _dir_size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass  # a file removed while we walk (a snapshot pruned): not an error
    return total


def job_row(job: Job, size: int) -> JobRow:
    """The :class:`JobRow` of an open job (newest snapshot plus the tail: no full replay)."""
    from .timefmt import format_time

    p = projection_at(job, job.head, history=False)
    return JobRow(job_id=job.job_id, flow_id=job.flow_id, status=str(p.status), version=job.head,
                  updated=format_time(p.last_ts) if p.last_ts else None, size=size, path=job.path,
                  updated_ts=p.last_ts)


def list_jobs(directory: str, *, on_skip: Callable[[Skipped], None] | None = None) -> list[JobRow]:
    """One row per job in a ``JobStore`` directory or a PostgreSQL database, without
    replaying whole logs, sorted by job id.

    An entry of the directory that is not a readable job (an empty folder, a git
    checkout, a stray file, a damaged log) is left out and passed to ``on_skip`` with
    the reason; entries whose names start with ``.`` are hidden and not reported (a
    copy or import in progress stages its work in one). ``directory`` may be a
    PostgreSQL URL without a job id (``postgresql://user@host:5432/db``): every job log
    in that database is listed; ``size`` is then the bytes of its stored events.

    Raises:
        JobNotFoundError: the directory does not exist.
        NotAJobLogError: it is not a job store (a file, or a single job's directory).
        StorageUnavailableError: the database cannot be reached.
    """
    from .errors import JobNotFoundError, ReplayError
    from .source import SEGMENT_NAME, is_pg_location, open_job

    if is_pg_location(directory):
        from .pgstore import list_pg_jobs

        return list_pg_jobs(directory)

    if not os.path.exists(directory):
        raise JobNotFoundError(directory, f"no such job store directory: {directory!r}")
    if not os.path.isdir(directory):
        raise NotAJobLogError(directory, "a job store is a directory, this is a file", what="a job store")
    names = sorted(os.listdir(directory))
    if any(SEGMENT_NAME.match(name) for name in names):
        raise NotAJobLogError(directory, "it is a single job (use `routilux-replay info` on it)",
                              what="a job store")
    out = []
    for name in names:
        if name.startswith("."):
            continue
        path = os.path.join(directory, name)
        try:
            if not os.path.isdir(path):
                raise NotAJobLogError(path, "a file, not a job directory")
            with open_job(path) as job:
                out.append(job_row(job, _dir_size(path)))
        except FileNotFoundError:
            continue  # deleted while listing
        except (ReplayError, EventLogError) as exc:
            reason = f"not a job: {exc.reason}" if isinstance(exc, NotAJobLogError) else str(exc)
            if on_skip is not None:
                on_skip(Skipped(name, reason))
    return sorted(out, key=lambda row: row.job_id)
