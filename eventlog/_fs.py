"""Every file-system call the file log makes, in one place.

The log calls these through the module (``_fs.write(...)``), never ``os`` directly, so
fault-injection tests (simulated power loss, ENOSPC, EIO) can replace them: see
``tests/eventlog/test_power_loss.py`` and ``test_io_errors.py``.
"""

from __future__ import annotations

import mmap as _mmap
import os

__all__ = [
    "close",
    "fallocate",
    "fdatasync",
    "fsync",
    "fsync_dir",
    "ftruncate",
    "map_file",
    "map_write",
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


def fallocate(fd: int, offset: int, length: int) -> None:
    """Reserve disk blocks for ``[offset, offset + length)`` and grow the file to cover it.

    The file log writes its active segment through a shared memory map, so the blocks
    must exist *before* a store touches them: a store into a hole the file system cannot
    fill (disk full) would kill the process with SIGBUS instead of raising. Reserving
    them here turns "disk full" into an ``OSError`` at a point where nothing was written.
    Where ``posix_fallocate`` is missing, zeros are written instead (same guarantee).
    """
    if _posix_fallocate is not None:
        _posix_fallocate(fd, offset, length)
        return
    zeros = bytes(min(length, 1 << 20))
    pos = offset
    end = offset + length
    while pos < end:
        pos += os.pwrite(fd, zeros[: end - pos], pos)


_posix_fallocate = getattr(os, "posix_fallocate", None)


def map_file(fd: int, length: int, offset: int = 0) -> _mmap.mmap:
    """Map ``length`` bytes of ``fd`` (opened read-write) from ``offset``, shared and writable.

    ``offset`` must be a multiple of the page size (``mmap.ALLOCATIONGRANULARITY``).

    Stores into a shared file mapping land in the kernel's page cache, the same place a
    ``write(2)`` puts its bytes: they survive the process being killed, and ``fsync``/
    ``fdatasync`` of the file writes them to disk (on Linux; see FORMAT.md).
    """
    return _mmap.mmap(fd, length, _mmap.MAP_SHARED, _mmap.PROT_READ | _mmap.PROT_WRITE, offset=offset)


def map_write(fd: int, mapping: _mmap.mmap, offset: int, data: bytes) -> None:
    """Copy ``data`` into ``mapping`` at ``offset`` (relative to the mapping's start).

    A plain memory copy, no syscall.

    ``fd`` is the mapped file: unused here, but fault-injection and power-loss shims
    need to know which file the bytes belong to. The file log inlines this exact slice
    assignment on its hot path while this function is not replaced.
    """
    mapping[offset : offset + len(data)] = data
