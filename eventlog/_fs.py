"""Every file-system call the file log makes, in one place.

The log calls these through the module (``_fs.write(...)``), never ``os`` directly, so
fault-injection tests (simulated power loss, ENOSPC, EIO) can replace them: see
``tests/eventlog/test_power_loss.py`` and ``test_io_errors.py``.
"""

from __future__ import annotations

import os

__all__ = [
    "close",
    "fdatasync",
    "fsync",
    "fsync_dir",
    "ftruncate",
    "open",
    "replace",
    "unlink",
    "write",
    "write_all",
]

open = os.open  # noqa: A001 - mirrors os.open on purpose
close = os.close
write = os.write
fsync = os.fsync
fdatasync = getattr(os, "fdatasync", os.fsync)
ftruncate = os.ftruncate
replace = os.replace
unlink = os.unlink


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data``, looping over short writes.

    A raw fd and this loop, not a buffered file: a ``BufferedWriter`` that fails part
    way keeps the unwritten bytes and writes them on the next flush, resurrecting a
    record whose append already raised (RELIABILITY.md §2).
    """
    view = memoryview(data)
    while view:
        n = write(fd, view)
        view = view[n:]


def fsync_dir(path: str) -> None:
    """Make a directory's entries (new files, renames) durable.

    ``fsync`` of a file does not persist its name; a crash after ``rename`` without this
    can lose the new file entirely (ALICE, OSDI'14).
    """
    fd = open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsync(fd)
    finally:
        close(fd)
