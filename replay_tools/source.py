"""Open a job's log from a location: a saved job file, a durable job directory, or a
PostgreSQL URL naming one job (``postgresql://user@host:port/db#<job_id>``).

Everything that reads a job goes through :func:`open_job`, which turns every way a path
can be wrong into one of three errors with a clear message: the path does not exist
(:class:`~replay_tools.errors.JobNotFoundError`), it is not a job log
(:class:`~replay_tools.errors.NotAJobLogError`), or the log is damaged
(:class:`~replay_tools.errors.DamagedLogError`, naming the file and byte offset).
A directory is opened read-only: no lock is taken and no file is modified, so the
tools can read a job that a running process is still writing. A PostgreSQL job is
opened read-only too (nothing is created); an unreachable server is a
:class:`~replay_tools.errors.StorageUnavailableError`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
from collections.abc import Iterator
from typing import Any

import eventlog
from eventlog import CorruptionError, EventLog, EventLogError, UnsupportedFormatError
from eventlog.postgres import is_pg_location, parse_pg_location

from .errors import (
    BadPointError,
    DamagedLogError,
    JobNotFoundError,
    KeyMismatchError,
    NotAJobLogError,
    StorageUnavailableError,
)

__all__ = ["BUNDLE_MAGIC", "MIN_HASH_PREFIX", "SEGMENT_NAME", "Job", "damaged", "expect_head_matches", "is_pg_location", "open_job",
           "open_pg_job_log", "parse_hash_prefix", "parse_time", "read_key_file", "tail_warnings"]

#: The first bytes of a saved job file (an eventlog bundle; see eventlog/FORMAT.md).
BUNDLE_MAGIC = b"EVBUNDLE"
#: The name of a segment file of a durable job directory (eventlog/FORMAT.md).
SEGMENT_NAME = re.compile(r"^\d{20}\.seg$")
#: The fewest hex digits accepted as a hash prefix (as git's short hashes).
MIN_HASH_PREFIX = 7
LINK_BYTES = 16
_UTC = _dt.timezone.utc
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)


def read_key_file(path: str | None) -> bytes | None:
    """Read a hash-chain key from a file (trailing newline stripped), or ``None``."""
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            key = fh.read()
    except FileNotFoundError:
        raise JobNotFoundError(path, f"no such key file: {path!r}") from None
    key = key.rstrip(b"\r\n")
    if not key or len(key) > 64:
        msg = f"key file {path!r} must hold 1 to 64 bytes, found {len(key)}"
        raise ValueError(msg)
    return key


def damaged(path: str, exc: BaseException) -> DamagedLogError:
    """Turn an eventlog corruption error into a :class:`DamagedLogError`."""
    if isinstance(exc, CorruptionError):
        return DamagedLogError(path, exc.reason, file=exc.segment, offset=exc.offset, seq=exc.seq)
    return DamagedLogError(path, str(exc))


class Job:
    """A job's log opened for reading, with its identity.

    Attributes:
        path: the path it was opened from (for PostgreSQL: the URL, password hidden).
        form: ``"directory"`` (a durable job), ``"file"`` (a saved job file) or
            ``"postgres"`` (a job in a PostgreSQL database).
        log: the :class:`eventlog.EventLog` (read-only use).
        key: the hash-chain key, if one was given.
        job_id: from the ``job_created`` event.
        flow_id: from the ``job_created`` event.
    """

    def __init__(self, path: str, form: str, log: EventLog, key: bytes | None) -> None:
        self.path = path
        self.form = form
        self.log = log
        self.key = key
        try:
            first = next(iter(log.read(1, 1)), None)
        except CorruptionError as exc:
            raise damaged(path, exc) from None
        if first is None:
            raise NotAJobLogError(path, "the event log is empty (a job log starts with a job_created event)")
        if first.kind != "job_created":
            raise NotAJobLogError(path, f"its first event is {first.kind!r}, not job_created")
        self.job_id: str = str(first.data.get("job_id", ""))
        self.flow_id: str = str(first.data.get("flow_id", ""))
        self.first_ts: int = first.ts

    def job_state(self) -> Any:
        """A read-only ``JobState`` over this log at its head (built once, then reused)."""
        state = getattr(self, "_job_state", None)
        if state is None:
            from routilux.job_state import JobState

            state = JobState.from_events(self.log)
            self._job_state = state
        return state

    @property
    def head(self) -> int:
        """The newest version (seq of the last event)."""
        return self.log.head_seq

    def close(self) -> None:
        """Release the log's files."""
        self.log.close()

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- points in the history -------------------------------------------------------
    def check_version(self, version: int, text: str | None = None) -> int:
        """Return ``version`` if the log holds it, else raise :class:`BadPointError`."""
        head = self.head
        if not 1 <= version <= head:
            label = text if text is not None else str(version)
            where = "before the job was created" if version < 1 else "past the head"
            raise BadPointError(label, f"version {version} is {where}; this job has versions 1..{head}")
        return version

    def version_at(self, when: _dt.datetime, text: str | None = None) -> int:
        """The newest version whose user-visible timestamp is ``<= when``.

        Timestamps users see are microsecond datetimes (``ts // 1000``), so an event is
        included when its microsecond is ``<= when``: passing a record's own timestamp
        includes that record. A naive ``when`` is local time, like the JobState's.
        """
        label = text if text is not None else when.isoformat()
        aware = when if when.tzinfo is not None else when.astimezone()
        micros = (aware - _EPOCH) // _dt.timedelta(microseconds=1)
        version = self.log.seq_at_time(micros * 1000 + 999)
        if version < 1:
            from .timefmt import format_time

            raise BadPointError(label, f"it is before the job's first event ({format_time(self.first_ts)})")
        return version

    def resolve_point(self, text: str) -> int:
        """Parse a point given on the command line into a version.

        Accepts a version number (``42``), ``head``, ``head-N``, a prefix of at least
        :data:`MIN_HASH_PREFIX` hex digits of a version's chain link (as ``export``
        shows them; the head hash is the last one), an ISO time
        (``2026-11-28T07:13:04.123456Z``; naive = local time) or a time relative to now
        (``10m``, ``2h ago``).

        Raises:
            BadPointError: it does not parse, lies outside the log, or a hash prefix
                matches no version or several.
        """
        raw = text.strip()
        low = raw.lower()
        if re.fullmatch(r"\d+", raw):
            return self.check_version(int(raw), text)
        if low == "head":
            return self.check_version(self.head, text)
        m = re.fullmatch(r"head\s*[-~]\s*(\d+)", low)
        if m:
            return self.check_version(self.head - int(m.group(1)), text)
        if len(low) >= MIN_HASH_PREFIX and re.fullmatch(r"[0-9a-f]+", low) and re.search(r"[a-f]", low):
            return self.version_of_hash(low, text)  # (shorter: "1d" is a day ago, not a hash)
        return self.version_at(parse_time(text), text)

    def version_of_hash(self, prefix: str, text: str | None = None) -> int:
        """The version whose chain link (hex) starts with ``prefix``.

        Raises:
            BadPointError: the prefix is too short, matches no version, or several
                (ambiguous: the message lists them).
        """
        from eventlog.chain import GENESIS, next_link

        label = text if text is not None else prefix
        prefix = prefix.lower()
        if len(prefix) < MIN_HASH_PREFIX:
            raise BadPointError(label, f"a hash prefix needs at least {MIN_HASH_PREFIX} hex digits")
        if self.log.head_hash.hex().startswith(prefix) and len(prefix) >= 2 * LINK_BYTES:
            return self.head
        if getattr(self.log, "keyed", False) and not self.key:
            raise BadPointError(label, "the job has a keyed hash chain: give its key (--key-file) to find a hash")
        matches: list[int] = []
        link = GENESIS
        key = self.key or b""
        try:
            for seq, ts, body in self.log.read_raw(1):
                link = next_link(link, seq, ts, body, key)
                if link.hex().startswith(prefix):
                    matches.append(seq)
                    if len(matches) > 5:
                        break
        except CorruptionError as exc:
            raise damaged(self.path, exc) from None
        if not matches:
            raise BadPointError(label, "no version of this job has a chain link starting with it")
        if len(matches) > 1:
            shown = ", ".join(str(v) for v in matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise BadPointError(label, f"ambiguous hash prefix: versions {shown} match (give more digits)")
        return matches[0]

    # -- reading ----------------------------------------------------------------------
    def read(self, start: int = 1, stop: int | None = None) -> Iterator[Any]:
        """Yield records ``start..stop``, turning damage into :class:`DamagedLogError`."""
        try:
            yield from self.log.read(start, stop)
        except CorruptionError as exc:
            raise damaged(self.path, exc) from None


def parse_time(text: str) -> _dt.datetime:
    """Parse a time given by a user: ISO (naive = local), or relative (``10m``, ``2h ago``).

    See :mod:`replay_tools.timefmt`.

    Raises:
        BadPointError: not a time in any accepted form.
    """
    from .timefmt import parse_time as _parse

    return _parse(text)


def tail_warnings(job: Job) -> list[str]:
    """Warnings about the end of a durable job's log that a read-only open passes over.

    A reader stops quietly at a torn tail (the unfinished last write of a process that
    crashed); the next writer cuts it off and keeps a ``*.torn-<offset>`` backup. Both
    are worth telling a user who asks what a job is: the log is readable, and its last
    write was lost. Opening once more in strict mode reveals a torn tail (nothing is
    modified); backups are found by name.
    """
    if job.form != "directory":
        return []
    out = []
    for name in sorted(os.listdir(job.path)):
        if ".seg.torn-" in name:
            size = os.path.getsize(os.path.join(job.path, name))
            out.append(f"a torn tail of {size} bytes was cut off this log after a crash (backup kept in {name})")
    try:
        strict = eventlog.open_log(job.path, readonly=True, strict=True, key=job.key, create=False)
    except CorruptionError as exc:
        reason = exc.reason.replace(" (strict mode refuses to truncate)", "")
        reason = reason[len("torn write: "):] if reason.startswith("torn write: ") else reason
        where = os.path.basename(exc.segment) + (f" at byte {exc.offset}" if exc.offset is not None else "")
        seq = f"version {exc.seq}" if exc.seq is not None else "the next version"
        out.append(f"the log ends in a torn write ({reason}, in {where}): {seq} was never completed and is "
                   "ignored; a writer cuts it off when it reopens the job")
    except (EventLogError, OSError):
        pass  # anything worse was reported when the log was opened
    else:
        strict.close()
    return out


def parse_hash_prefix(text: str, *, what: str = "--expect-head") -> str:
    """A hash (or a prefix of at least :data:`MIN_HASH_PREFIX` hex digits), lower-cased.

    Raises:
        UsageError: not hex, or too short to mean anything.
    """
    from .errors import UsageError

    want = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]+", want):
        msg = f"{what} {text!r}: a hash is hex digits (as verify and info print it)"
        raise UsageError(msg)
    if len(want) < MIN_HASH_PREFIX:
        msg = f"{what} {text!r}: give at least {MIN_HASH_PREFIX} hex digits of the hash"
        raise UsageError(msg)
    if len(want) > 2 * LINK_BYTES:
        msg = f"{what} {text!r}: longer than a hash ({2 * LINK_BYTES} hex digits)"
        raise UsageError(msg)
    return want


def expect_head_matches(expected: str, head_hash: str) -> bool:
    """Whether a head hash written down (whole, or a prefix of at least
    :data:`MIN_HASH_PREFIX` hex digits) is ``head_hash``.

    Raises:
        UsageError: ``expected`` is not hex, or too short to mean anything.
    """
    return head_hash.lower().startswith(parse_hash_prefix(expected))


def _open_directory(path: str, key: bytes | None) -> EventLog:
    from routilux.job_state import store_job_dirs

    names = os.listdir(path)
    if not any(SEGMENT_NAME.match(n) for n in names):
        subjobs = store_job_dirs(path)  # the library's check (JobState.open refuses a store too)
        if subjobs:
            count = f"{len(subjobs)} job" + ("s" if len(subjobs) != 1 else "")
            raise NotAJobLogError(path, f"it looks like a job store holding {count} "
                                        f"(list them with `routilux-replay jobs {path}`, "
                                        f"then give {os.path.join(path, subjobs[0])})")
        raise NotAJobLogError(path, "the directory holds no event log segments (*.seg files)")
    return eventlog.open_log(path, readonly=True, key=key, create=False)


def _open_file(path: str, key: bytes | None) -> EventLog:
    with open(path, "rb") as fh:
        magic = fh.read(len(BUNDLE_MAGIC))
    if magic != BUNDLE_MAGIC:
        hint = ""
        if magic[:1] in (b"{", b"["):
            hint = " (it looks like JSON: an export is turned back into a job with `routilux-replay import`)"
        raise NotAJobLogError(path, f"it is not a saved job file (no {BUNDLE_MAGIC.decode()} header){hint}")
    log, _snapshot = eventlog.read_bundle(path, key=key)
    return log


def _pg_failure(location: str, exc: BaseException) -> StorageUnavailableError:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return StorageUnavailableError(location, reason)


def open_pg_job_log(location: str, *, key: bytes | None = None, create: bool = False,
                    readonly: bool = True) -> EventLog:
    """Open the PostgreSQL log named by ``location`` (``postgresql://...#<job_id>``).

    Errors come out as this package's: a missing job id or server-side schema problem
    is :class:`NotAJobLogError`, a missing job :class:`JobNotFoundError`, a wrong key
    :class:`KeyMismatchError`, an unreachable server :class:`StorageUnavailableError`.
    """
    from eventlog.postgres import LogNotFoundError, PostgresError, open_pg_log

    url, job_id = parse_pg_location(location)
    shown = _redacted(url) + (f"#{job_id}" if job_id else "")
    if not job_id:
        raise NotAJobLogError(shown, "a PostgreSQL URL without #<job id> names a whole database of jobs "
                                     f"(list them with `routilux-replay jobs {_redacted(url)}`, then add #<job id>)")
    try:
        return open_pg_log(location, key=key, create=create, readonly=readonly)
    except LogNotFoundError as exc:
        raise JobNotFoundError(shown, f"no job {job_id!r} in the PostgreSQL database {_redacted(url)} ({exc})") from None
    except PostgresError as exc:
        raise _pg_failure(shown, exc) from None
    except ImportError as exc:
        raise StorageUnavailableError(shown, str(exc)) from None
    except UnsupportedFormatError as exc:
        raise NotAJobLogError(shown, str(exc)) from None
    except CorruptionError as exc:
        raise damaged(shown, exc) from None
    except EventLogError as exc:
        if type(exc).__name__ == "WrongKeyError":
            raise KeyMismatchError(shown, str(exc)) from None
        raise DamagedLogError(shown, str(exc)) from None


def _redacted(url: str) -> str:
    """``url`` with any password hidden (for messages)."""
    from eventlog.postgres import redact_url

    return redact_url(url)


def _classify(path: str, exc: EventLogError) -> DamagedLogError:
    if isinstance(exc, CorruptionError):
        return damaged(path, exc)
    # A bundle that fails its checks (BundleError) or another unreadable log.
    return DamagedLogError(path, str(exc))


def open_job(path: str | os.PathLike[str], *, key: bytes | None = None) -> Job:
    """Open the job at ``path`` for reading.

    Args:
        path: a saved job file (``JobState.save``), a durable job directory
            (``JobState.open``), or a PostgreSQL URL with the job id as its fragment
            (``postgresql://user@host:5432/db#<job_id>``).
        key: the hash-chain key, for keyed logs.

    Raises:
        JobNotFoundError: nothing exists at ``path``.
        NotAJobLogError: ``path`` is not a job log (names what was found instead).
        DamagedLogError: the log is damaged (names the file and byte offset).
        StorageUnavailableError: the PostgreSQL server cannot be reached.
    """
    path = os.fspath(path)
    if is_pg_location(path):
        log = open_pg_job_log(path, key=key)
        try:
            return Job(log.location, "postgres", log, key)
        except BaseException:
            with contextlib.suppress(Exception):
                log.close()
            raise
    if not os.path.exists(path):
        raise JobNotFoundError(path)
    form = "directory" if os.path.isdir(path) else "file"
    try:
        log = _open_directory(path, key) if form == "directory" else _open_file(path, key)
    except (NotAJobLogError, JobNotFoundError):
        raise
    except UnsupportedFormatError as exc:
        raise NotAJobLogError(path, str(exc)) from None
    except EventLogError as exc:
        if type(exc).__name__ != "WrongKeyError":
            raise _classify(path, exc) from None
        raise KeyMismatchError(path, str(exc)) from None
    except IsADirectoryError:
        raise NotAJobLogError(path, "expected a file") from None
    try:
        return Job(path, form, log, key)
    except BaseException:
        with contextlib.suppress(Exception):
            log.close()
        raise
