"""The jobs of a PostgreSQL database, as ``routilux-replay jobs postgresql://...`` lists them.

A URL without a job id (``postgresql://user@host:5432/db``) stands for every job log
stored in that database by ``eventlog.postgres``. Each job is then read like any other
(newest snapshot plus the tail), so listing never replays a whole log.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from eventlog.postgres import EVENTS_TABLE, LOGS_TABLE, VERSION_TABLE, is_pg_location, parse_pg_location

from .errors import NotAJobLogError, StorageUnavailableError

__all__ = ["job_location", "list_pg_jobs", "pg_job_names"]

# Characters a job id keeps unescaped in a URL fragment (RFC 3986 fragment characters).
_FRAGMENT_SAFE = "-._~!$&'()*+,;=:@/?"


def job_location(url: str, job_id: str) -> str:
    """The one-string location of ``job_id`` in the database at ``url``."""
    base, _ = parse_pg_location(url)
    return f"{base}#{quote(job_id, safe=_FRAGMENT_SAFE)}"


def _shown(url: str) -> str:
    from eventlog.postgres import redact_url

    return redact_url(url)


def pg_job_names(url: str) -> list[tuple[str, int]]:
    """``(job_id, stored bytes)`` of every non-empty job log in the database, sorted by id.

    Raises:
        NotAJobLogError: the URL names one job (has ``#<job id>``).
        StorageUnavailableError: the server cannot be reached (or psycopg is missing).
    """
    if not is_pg_location(url):
        raise NotAJobLogError(url, "not a postgresql:// URL", what="a PostgreSQL job store")
    base, job_id = parse_pg_location(url)
    shown = _shown(base)
    if job_id:
        raise NotAJobLogError(f"{shown}#{job_id}", "it names one job (drop the #<job id> to list the database, "
                                                   "or use `routilux-replay info` on it)", what="a job store")
    try:
        import psycopg
    except ImportError as exc:
        raise StorageUnavailableError(shown, f"psycopg 3 is needed for PostgreSQL locations ({exc})") from None
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSION_TABLE,)).fetchone()
            if not row or not row[0]:
                return []  # no eventlog tables yet: a database without jobs
            # One grouped query for the sizes; the job rows themselves hold the heads.
            rows: list[Any] = conn.execute(
                f"SELECT l.name, COALESCE(SUM(octet_length(e.body)), 0) FROM {LOGS_TABLE} l "
                f"LEFT JOIN {EVENTS_TABLE} e ON e.log_id = l.log_id WHERE l.head_seq > 0 "
                "GROUP BY l.name ORDER BY l.name").fetchall()
    except psycopg.Error as exc:
        raise StorageUnavailableError(shown, " ".join(str(exc).split())) from None
    return [(str(name), int(size)) for name, size in rows]


def list_pg_jobs(url: str, *, key: bytes | None = None) -> list[Any]:
    """One :class:`~replay_tools.summary.JobRow` per job in the database at ``url``."""
    from .errors import NotAJobLogError
    from .source import open_job
    from .summary import job_row

    out = []
    for name, size in pg_job_names(url):
        try:
            job_cm = open_job(job_location(url, name), key=key)
        except NotAJobLogError:
            # The database may hold other eventlog logs (not routilux jobs): not listed.
            continue
        with job_cm as job:
            out.append(job_row(job, size))
    return out
