"""The single-writer lock: a non-blocking ``flock`` on ``<log>/LOCK``.

``flock`` belongs to the open file description, so a second open in the same process
conflicts too, and the kernel drops it when the holder dies (no stale locks).
``fcntl.lockf`` would be silently lost when any other fd of the file is closed
(RELIABILITY.md section 2). NFS is not supported. The pid written into the file is
only for the error message.
"""

from __future__ import annotations

import fcntl
import os

from . import _fs
from .errors import LogLockedError

__all__ = ["LOCK_NAME", "acquire", "release"]

LOCK_NAME = "LOCK"


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def acquire(log_dir: str) -> int:
    """Take the writer lock of ``log_dir`` without blocking; return the lock fd.

    Raises:
        LogLockedError: another process, or another open log in this process, holds it.
    """
    path = os.path.join(log_dir, LOCK_NAME)
    fd = _fs.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        _fs.close(fd)
        raise LogLockedError(log_dir, pid) from None
    except BaseException:
        _fs.close(fd)
        raise
    try:
        # The pid is informational, so it is neither fsynced nor checked on read.
        _fs.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
    except OSError:
        pass  # a missing pid only makes a later LogLockedError less specific
    return fd


def release(fd: int) -> None:
    """Release the lock (closing the fd drops the flock)."""
    _fs.close(fd)
