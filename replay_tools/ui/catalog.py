"""A job store to pick from: ``routilux-replay ui`` on a JobStore directory or a database.

:class:`Catalog` lists the store's jobs (:func:`replay_tools.list_jobs`, without
replaying whole logs) and opens one :class:`~replay_tools.ui.explorer.Explorer` per job
the page asks for, on first use. A job id is only ever looked up among the ids the
store lists, so no request can name a path outside the store.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..source import is_pg_location, open_job
from ..summary import list_jobs
from .errors import BadRequestError
from .explorer import Explorer, Params

__all__ = ["Catalog"]


class Catalog:
    """The jobs of one store, each browsed by its own explorer.

    Args:
        location: a JobStore directory, or a PostgreSQL URL without a job id.
        key: the hash-chain key of the store's jobs, if keyed.
        follow: follow jobs that are still being written.
        verify: verify each job in the background when it is opened.

    Raises:
        JobNotFoundError, NotAJobLogError, StorageUnavailableError: as :func:`list_jobs`.
    """

    def __init__(self, location: str, *, key: bytes | None = None, follow: bool = True, verify: bool = True) -> None:
        self.location = location
        self.key = key
        self.follow = follow
        self.verify = verify
        self._ids = {row.job_id for row in list_jobs(location)}
        self._explorers: dict[str, Explorer] = {}
        self._lock = threading.Lock()

    def jobs(self, params: Params | None = None) -> dict[str, Any]:
        """The store's jobs: id, flow, status, version, last update, size."""
        rows = list_jobs(self.location)
        with self._lock:
            self._ids = {row.job_id for row in rows}
        return {"store": self.location if not is_pg_location(self.location) else _hide_password(self.location),
                "jobs": [row.to_json() for row in rows]}

    def _where(self, job_id: str) -> str:
        if is_pg_location(self.location):
            return f"{self.location.split('#', 1)[0]}#{job_id}"
        return os.path.join(self.location, job_id)

    def explorer(self, job_id: str | None) -> Explorer:
        """The explorer of ``job_id`` (opened and started on first use).

        Raises:
            BadRequestError: no job id, or one the store does not list.
        """
        if not job_id:
            raise BadRequestError("job", "this server shows a job store: pick a job (/api/jobs lists them)")
        with self._lock:
            found = self._explorers.get(job_id)
            if found is not None:
                return found
            if job_id not in self._ids:
                self._ids = {row.job_id for row in list_jobs(self.location)}
                if job_id not in self._ids:
                    raise BadRequestError("job", f"the store has no job {job_id[:80]!r}")
            where = self._where(job_id)
            job = open_job(where, key=self.key)
            explorer = Explorer(job, location=where)
            explorer.start(follow=self.follow and job.form != "file", verify=self.verify)
            self._explorers[job_id] = explorer
            return explorer

    def explorers(self) -> list[Explorer]:
        """The explorers opened so far."""
        with self._lock:
            return list(self._explorers.values())

    def stop(self) -> None:
        """Stop every explorer and close its job."""
        for explorer in self.explorers():
            explorer.stop()
            explorer.job.close()


def _hide_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
