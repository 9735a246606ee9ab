"""Backend fixtures for the event-log tests.

``make_log`` is parametrised over the backends ("memory", "file" and "postgres"), so every
test that takes it runs against :class:`eventlog.InMemoryEventLog`, the file log returned
by :func:`eventlog.open_log`, and a PostgreSQL log (skipped, with the reason shown, when
``EVENTLOG_PG_URL`` is not set). It returns a factory: each call gives a
new, empty log (for the file backend, a fresh directory under ``tmp_path``). Every log
made is closed at teardown.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog.base import EventLog

BACKENDS = ("memory", "file", "postgres")
PG_SKIP_REASON = (
    "set EVENTLOG_PG_URL=postgresql://... to run the PostgreSQL tests; .ci/run starts a throw-away server"
)


def open_file_log(path: str | os.PathLike[str], **kwargs: Any) -> EventLog:
    """Open a file log through the public API.

    Looked up at call time, so a missing ``open_log`` fails the test that needs it
    (with an ``AttributeError``) instead of breaking collection of the whole directory.
    """
    return eventlog.open_log(os.fspath(path), **kwargs)  # type: ignore[attr-defined]


class LogFactory:
    """Makes fresh logs of one backend and closes them all at teardown.

    Attributes:
        backend: ``"memory"`` or ``"file"``.
        root: the directory under which file logs are created.
    """

    def __init__(self, backend: str, root: Path) -> None:
        self.backend = backend
        self.root = root
        self._made: list[EventLog] = []
        self._count = 0
        self.paths: dict[int, str] = {}

    @property
    def is_file(self) -> bool:
        """True for the file backend."""
        return self.backend == "file"

    def __call__(self, *, key: bytes | None = None, durability: str = "batch",
                 segment_bytes: int | None = None, **kwargs: Any) -> EventLog:
        """Return a new empty log; file-only options are ignored by the memory backend."""
        if self.backend == "memory":
            log: EventLog = eventlog.InMemoryEventLog(key=key)
        elif self.backend == "postgres":
            url = os.environ.get("EVENTLOG_PG_URL")
            if not url:
                pytest.skip(PG_SKIP_REASON)
            from eventlog.postgres import open_pg_log

            self._count += 1
            job = f"contract-{uuid.uuid4().hex[:12]}-{self._count}"
            # durability/segment_bytes are file-log options: a PostgreSQL commit is durable.
            log = open_pg_log(url, job, key=key, **{k: v for k, v in kwargs.items() if k in ("create", "readonly")})
        else:
            self._count += 1
            path = self.root / f"log{self._count}"
            opts: dict[str, Any] = {"durability": durability, "key": key, **kwargs}
            if segment_bytes is not None:
                opts["segment_bytes"] = segment_bytes
            log = open_file_log(path, **opts)
            self.paths[id(log)] = str(path)
        self._made.append(log)
        return log

    def path_of(self, log: EventLog) -> str:
        """The directory of a file log made by this factory."""
        return self.paths[id(log)]

    def reopen(self, log: EventLog, **kwargs: Any) -> EventLog:
        """Close a file log and open its directory again (file backend only)."""
        assert self.is_file, "only a file log can be reopened"
        path = self.path_of(log)
        log.close()
        again = open_file_log(path, **kwargs)
        self.paths[id(again)] = path
        self._made.append(again)
        return again

    def close_all(self) -> None:
        """Close every log made (errors at teardown are not the test's subject)."""
        for log in reversed(self._made):
            with contextlib.suppress(Exception):
                log.close()


@pytest.fixture(params=BACKENDS)
def make_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogFactory]:
    """A factory of fresh logs, once per backend ("memory", "file", "postgres")."""
    factory = LogFactory(request.param, tmp_path)
    yield factory
    factory.close_all()


def _tree_digest(root: str | os.PathLike[str]) -> dict[str, tuple[int, int, str]]:
    """Map every file under ``root`` to ``(size, mtime_ns, blake2b hex)``.

    Used to prove that a failed call left a log directory byte-for-byte unchanged.
    """
    out: dict[str, tuple[int, int, str]] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            st = os.stat(full)
            with open(full, "rb") as fh:
                digest = hashlib.blake2b(fh.read(), digest_size=16).hexdigest()
            out[os.path.relpath(full, root)] = (st.st_size, st.st_mtime_ns, digest)
    return out


@pytest.fixture
def tree_digest() -> Any:
    """The function that maps every file under a directory to (size, mtime_ns, hash)."""
    return _tree_digest
