"""The single-writer lock: a non-blocking ``flock`` on the log directory itself, and on ``LOCK``.

The lock that matters is on the **directory**: a writer holds an fd of the directory it
writes into, and nobody can delete that from under it while it is in use the way a
file can be. Locking only ``<log>/LOCK`` (the first design) was lost when an operator
"cleaned a stale lock" or a tmp cleaner removed the file: the next writer created a new
``LOCK``, locked it, and the two writers overwrote each other's acknowledged appends
(issue 13, hole 2; ``tests/eventlog/test_issue_13_lock.py``).

``LOCK`` is still created and locked second: it carries the holder's pid for the error
message, and a writer of an older version (which locks only ``LOCK``) and a writer of
this one still exclude each other. Deleting it now costs nothing but that pid.

``flock`` belongs to the open file description, so a second open in the same process
conflicts too, and the kernel drops it when the holder dies (no stale locks).
``fcntl.lockf`` would be silently lost when any other fd of the file is closed
(RELIABILITY.md section 2). NFS is not supported.
"""

from __future__ import annotations

import fcntl
import os

from . import _fs
from .errors import LogLockedError

__all__ = ["LOCK_NAME", "WriterLock", "acquire", "release"]

LOCK_NAME = "LOCK"


def _read_pid(path: str) -> int | None:
    """The pid written in ``LOCK`` (informational; ``None`` if missing or unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _flock(fd: int, log_dir: str, pid_file: str) -> None:
    """``flock(fd, LOCK_EX | LOCK_NB)``; a held lock becomes :class:`LogLockedError`."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise LogLockedError(log_dir, _read_pid(pid_file)) from None


class WriterLock:
    """The two locked fds of a writer (the directory and ``LOCK``); :meth:`release` drops both."""

    __slots__ = ("_fds",)

    def __init__(self, fds: list[int]) -> None:
        self._fds = fds

    def release(self) -> None:
        """Release the locks (closing the fds drops the flocks). Idempotent."""
        fds, self._fds = self._fds, []
        for fd in fds:
            try:
                _fs.close(fd)
            except OSError:
                pass


def acquire(log_dir: str) -> WriterLock:
    """Take the writer lock of ``log_dir`` without blocking.

    Raises:
        LogLockedError: another process, or another open log in this process, holds it.
    """
    pid_file = os.path.join(log_dir, LOCK_NAME)
    fds: list[int] = []
    try:
        dir_fd = _fs.open(log_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fds.append(dir_fd)
        _flock(dir_fd, log_dir, pid_file)
        lock_fd = _fs.open(pid_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fds.append(lock_fd)
        _flock(lock_fd, log_dir, pid_file)
    except BaseException:
        WriterLock(fds).release()
        raise
    try:
        # The pid is informational, so it is neither fsynced nor checked on read.
        _fs.ftruncate(lock_fd, 0)
        os.pwrite(lock_fd, str(os.getpid()).encode("ascii"), 0)
    except OSError:
        pass  # a missing pid only makes a later LogLockedError less specific
    return WriterLock(fds)


def release(lock: WriterLock) -> None:
    """Release ``lock`` (see :meth:`WriterLock.release`)."""
    lock.release()
