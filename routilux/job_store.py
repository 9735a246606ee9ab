"""JobStore: many durable jobs under one directory, one log directory per job.

Layout::

    <directory>/
        <job_id>/          the job's event log (an eventlog log directory)
        <job_id>/ ...

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
from typing import NamedTuple

import eventlog

from .job_state import JobState

__all__ = ["JobStore", "JobSummary"]

# Job ids become directory names: keep them to a portable, unambiguous alphabet.
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


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
    """Durable jobs kept under ``directory`` (created if missing).

    Args:
        directory: where the jobs live.
        durability: default durability of the jobs it creates and opens.
        key: secret key of the jobs' hash chains (the same for every job of the store).
    """

    def __init__(self, directory: str | os.PathLike[str], *, durability: str = "batch",
                 key: bytes | None = None) -> None:
        self.directory = os.path.abspath(os.fspath(directory))
        self.durability = durability
        self._key = key
        os.makedirs(self.directory, exist_ok=True)

    def __repr__(self) -> str:
        return f"JobStore({self.directory!r})"

    def _path(self, job_id: str) -> str:
        if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
            msg = (f"invalid job id {job_id!r}: use 1-128 letters, digits, '.', '_' or '-', "
                   "starting with a letter or digit")
            raise ValueError(msg)
        return os.path.join(self.directory, job_id)

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
                if not os.path.exists(self._path(candidate)):
                    state = self._open_new(candidate, flow_id, durability)
            return state
        if os.path.exists(self._path(job_id)):
            msg = f"job {job_id!r} already exists in {self.directory!r}"
            raise FileExistsError(msg)
        return self._open_new(job_id, flow_id, durability)

    def _open_new(self, job_id: str, flow_id: str, durability: str | None) -> JobState:
        return JobState.open(self._path(job_id), flow_id=flow_id, durability=durability or self.durability,
                             key=self._key, job_id=job_id)

    def open(self, job_id: str, *, readonly: bool = False, durability: str | None = None) -> JobState:
        """Open an existing job (reopening continues it).

        Raises:
            KeyError: no job with this id.
            eventlog.LogLockedError: another writer has it open.
        """
        path = self._path(job_id)
        if job_id not in self:
            msg = f"no job {job_id!r} in {self.directory!r}"
            raise KeyError(msg)
        return JobState.open(path, durability=durability or self.durability, key=self._key, readonly=readonly)

    def __contains__(self, job_id: object) -> bool:
        if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
            return False
        return os.path.isdir(os.path.join(self.directory, job_id))

    def job_ids(self) -> list[str]:
        """Every job id, sorted."""
        return sorted(name for name in os.listdir(self.directory)
                      if _JOB_ID.match(name) and os.path.isdir(os.path.join(self.directory, name)))

    def __iter__(self) -> Iterator[str]:
        return iter(self.job_ids())

    def __len__(self) -> int:
        return len(self.job_ids())

    def list(self) -> list[JobSummary]:
        """One :class:`JobSummary` per job, sorted by job id (read-only; no locks taken).

        A job whose log cannot be read is skipped only if it vanished meanwhile;
        damage raises (``eventlog.CorruptionError`` or ``ValueError`` naming the job).
        """
        rows = []
        for job_id in self.job_ids():
            try:
                state = JobState.open(self._path(job_id), key=self._key, readonly=True)
            except FileNotFoundError:
                continue  # deleted while listing
            except ValueError as exc:
                msg = f"job {job_id!r} in {self.directory!r} cannot be read: {exc}"
                raise ValueError(msg) from exc
            try:
                rows.append(JobSummary(job_id, state.flow_id, state.status, state.version, state.updated_at))
            finally:
                state.close()
        return rows

    def delete(self, job_id: str) -> None:
        """Delete a job's log (refused while a writer has it open).

        Raises:
            KeyError: no job with this id.
            eventlog.LogLockedError: the job is open for writing.
        """
        path = self._path(job_id)
        if job_id not in self:
            msg = f"no job {job_id!r} in {self.directory!r}"
            raise KeyError(msg)
        # Taking the writer lock proves nobody is writing; it is released just before
        # removal (a writer that sneaks in between loses its files: delete is final).
        probe = eventlog.open_log(path, key=self._key, create=False)
        probe.close()
        shutil.rmtree(path)
