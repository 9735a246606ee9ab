"""JobStore: many durable jobs under one directory (or in one PostgreSQL database).

Layout of a directory store::

    <directory>/
        <job_id>/          the job's event log (an eventlog log directory)
        <job_id>/ ...

A PostgreSQL store (``JobStore("postgresql://user@host:port/database")``) holds one
eventlog log per job in that database's ``eventlog_logs`` table, named by the job id;
every log in the table whose name is a valid job id counts as a job of the store.

``list()`` reads each job's newest snapshot plus the short tail after it (the JobState
snapshot policy bounds that tail), never a whole log, and takes no writer lock, so it
works while the jobs are running.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple, TypeGuard

import eventlog
from eventlog.postgres import (
    LOG_TABLES,
    LOGS_TABLE,
    is_pg_location,
    parse_pg_location,
)

from .job_audit import CheckpointPolicy
from .job_state import JobState

__all__ = ["JobStore", "JobSummary"]

# Job ids become directory names: keep them to a portable, unambiguous alphabet. Always
# matched with fullmatch: "^...$" with match() accepted "job\n" ("$" matches before a final
# newline), which made a directory that lists as "job" (issue 13, hole 8).
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _valid_job_id(job_id: object) -> TypeGuard[str]:
    """True for a job id made of the portable alphabet, as a whole string."""
    return isinstance(job_id, str) and _JOB_ID.fullmatch(job_id) is not None


class JobSummary(NamedTuple):
    """One row of :meth:`JobStore.list`.

    Attributes:
        job_id: the job's id (its directory name).
        flow_id: the flow it runs.
        status: its current status.
        version: the seq of its last event.
        updated_at: when it last changed (naive local datetime).
    """

    job_id: str
    flow_id: str
    status: str
    version: int
    updated_at: _dt.datetime | None


class JobStore:
    """Durable jobs kept under ``directory`` (created if missing), or in a PostgreSQL database.

    Args:
        directory: where the jobs live: a directory, or a PostgreSQL URL
            ``postgresql://user@host:port/database`` (without a ``#<job id>``).
        durability: default durability of the jobs it creates and opens (directory
            stores; PostgreSQL commits are always durable).
        key: secret key of the jobs' hash chains (the same for every job of the store).
        checkpoints: the checkpoint policy of the jobs it creates and opens for writing
            (audit proofs; see :mod:`routilux.job_audit`). Its origin may hold
            ``{job_id}``, e.g. ``"audit.example.org/jobs/{job_id}"``.

    Attributes:
        directory: the absolute directory, or None for a PostgreSQL store.
        location: the directory, or the PostgreSQL URL.
    """

    def __init__(self, directory: str | os.PathLike[str], *, durability: str = "batch",
                 key: bytes | None = None, checkpoints: CheckpointPolicy | None = None) -> None:
        self.durability = durability
        self._key = key
        self.checkpoints = checkpoints
        self._pg: str | None = None
        if is_pg_location(directory):
            url, job = parse_pg_location(str(directory))
            if job is not None:
                msg = ("a JobStore location is a database URL without '#<job id>' "
                       "(use JobState.open(url#job) for one job)")
                raise ValueError(msg)
            self._pg = url
            self.directory: str | None = None
            self.location = url
            return
        self.directory = os.path.abspath(os.fspath(directory))
        self.location = self.directory
        os.makedirs(self.directory, exist_ok=True)

    def __repr__(self) -> str:
        if self._pg is not None:
            return f"JobStore({_pg_display(self._pg)!r})"
        return f"JobStore({self.directory!r})"

    def _path(self, job_id: str) -> str:
        """The location of a job: its directory, or ``url#job_id`` (job ids need no quoting)."""
        if not _valid_job_id(job_id):
            msg = (f"invalid job id {job_id!r}: use 1-128 letters, digits, '.', '_' or '-', "
                   "starting with a letter or digit (no spaces or control characters)")
            raise ValueError(msg)
        if self._pg is not None:
            return f"{self._pg}#{job_id}"
        return os.path.join(self.directory, job_id)  # type: ignore[arg-type]

    def _where(self) -> str:
        return _pg_display(self._pg) if self._pg is not None else repr(self.directory)

    def create(self, flow_id: str = "", job_id: str | None = None, *, durability: str | None = None) -> JobState:
        """Create a new durable job and return it (open for writing; close it when done).

        Raises:
            FileExistsError: a job with this id already exists.
            ValueError: the job id is not a valid name.
        """
        if job_id is None:
            state = None
            while state is None:
                candidate = str(uuid.uuid4())
                if candidate not in self:
                    state = self._open_new(candidate, flow_id, durability)
            return state
        if job_id in self or (self._pg is None and os.path.exists(self._path(job_id))):
            msg = f"job {job_id!r} already exists in {self._where()}"
            raise FileExistsError(msg)
        return self._open_new(job_id, flow_id, durability)

    def _open_new(self, job_id: str, flow_id: str, durability: str | None) -> JobState:
        return JobState.open(self._path(job_id), flow_id=flow_id, durability=durability or self.durability,
                             key=self._key, job_id=job_id, checkpoints=self.checkpoints)

    def open(self, job_id: str, *, readonly: bool = False, durability: str | None = None) -> JobState:
        """Open an existing job (reopening continues it).

        Raises:
            KeyError: no job with this id.
            eventlog.LogLockedError: another writer has it open.
        """
        path = self._path(job_id)
        if job_id not in self:
            msg = f"no job {job_id!r} in {self._where()}"
            raise KeyError(msg)
        return JobState.open(path, durability=durability or self.durability, key=self._key, readonly=readonly,
                             checkpoints=self.checkpoints)

    def __contains__(self, job_id: object) -> bool:
        if not _valid_job_id(job_id):
            return False
        if self._pg is not None:
            return bool(_pg_query(self._pg, f"SELECT 1 FROM {LOGS_TABLE} WHERE name = %s", (job_id,)))
        return os.path.isdir(os.path.join(self.directory, job_id))  # type: ignore[arg-type]

    def job_ids(self) -> list[str]:
        """Every job id, sorted."""
        if self._pg is not None:
            names = [row[0] for row in _pg_query(self._pg, f"SELECT name FROM {LOGS_TABLE}")]
            return sorted(name for name in names if _valid_job_id(name))
        directory = self.directory
        assert directory is not None  # a directory store
        return sorted(name for name in os.listdir(directory)
                      if _valid_job_id(name) and os.path.isdir(os.path.join(directory, name)))

    def __iter__(self) -> Iterator[str]:
        return iter(self.job_ids())

    def __len__(self) -> int:
        return len(self.job_ids())

    def list(self) -> list[JobSummary]:
        """One :class:`JobSummary` per job, sorted by job id (read-only; no locks taken).

        A job whose log cannot be read is skipped only if it vanished meanwhile;
        damage raises (``eventlog.CorruptionError`` or ``ValueError`` naming the job).
        In PostgreSQL, a log without events yet (a job being created) is skipped.
        """
        rows = []
        if self._pg is not None:
            names = [row[0] for row in _pg_query(self._pg, f"SELECT name FROM {LOGS_TABLE} WHERE head_seq > 0")]
            job_ids = sorted(name for name in names if _valid_job_id(name))
        else:
            job_ids = self.job_ids()
        for job_id in job_ids:
            try:
                state = JobState.open(self._path(job_id), key=self._key, readonly=True)
            except FileNotFoundError:
                continue  # deleted while listing
            except ValueError as exc:
                msg = f"job {job_id!r} in {self._where()} cannot be read: {exc}"
                raise ValueError(msg) from exc
            try:
                rows.append(JobSummary(job_id, state.flow_id, state.status, state.version, state.updated_at))
            finally:
                state.close()
        return rows

    def delete(self, job_id: str) -> None:
        """Delete a job's log (refused while a writer has a directory job open).

        In PostgreSQL there is no writer lock: the job's rows are deleted in one
        transaction, and a writer that still has it open fails on its next append.

        Raises:
            KeyError: no job with this id.
            eventlog.LogLockedError: the job is open for writing.
        """
        path = self._path(job_id)
        if job_id not in self:
            msg = f"no job {job_id!r} in {self._where()}"
            raise KeyError(msg)
        if self._pg is not None:
            _pg_delete(self._pg, job_id)
            return
        # Taking the writer lock proves nobody is writing; it is released just before
        # removal (a writer that sneaks in between loses its files: delete is final).
        probe = eventlog.open_log(path, key=self._key, create=False)
        probe.close()
        shutil.rmtree(path)


# -- PostgreSQL helpers ---------------------------------------------------------------------
# These read eventlog.postgres's tables directly (their layout is documented there and
# versioned); they belong in eventlog.postgres as public functions (list_logs,
# delete_log) and should move there.
def _pg_display(url: str) -> str:
    """``url`` without any password, for messages and repr."""
    head, sep, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        userinfo, host = rest.split("@", 1)
        if ":" in userinfo:
            rest = f"{userinfo.split(':', 1)[0]}:***@{host}"
    return head + sep + rest.split("?", 1)[0]


def _pg_connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError as exc:
        msg = "a PostgreSQL JobStore needs psycopg 3: pip install 'psycopg[binary]>=3.2'"
        raise ImportError(msg) from exc
    try:
        return psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        msg = f"cannot connect to the PostgreSQL job store {_pg_display(url)}: {exc}"
        raise eventlog.EventLogError(msg) from exc


def _pg_query(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``query``; no rows when the eventlog tables do not exist yet (an empty store)."""
    with _pg_connect(url) as conn:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (LOGS_TABLE,)).fetchone()
        if not exists or not exists[0]:
            return []
        return conn.execute(query, params or None).fetchall()  # type: ignore[no-any-return]


def _pg_delete(url: str, job_id: str) -> None:
    """Delete one job's log (events, snapshots, head row) in one transaction."""
    with _pg_connect(url) as conn, conn.transaction():
        # Locking the head row first makes a concurrent append wait and then find no log.
        row = conn.execute(f"SELECT log_id FROM {LOGS_TABLE} WHERE name = %s FOR UPDATE", (job_id,)).fetchone()
        if row is None:
            return
        for table in LOG_TABLES:  # every per-log table (events, snapshots, Merkle tree, ...), head row last
            conn.execute(f"DELETE FROM {table} WHERE log_id = %s", (row[0],))
