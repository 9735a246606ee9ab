"""Reading a file whose contents are not trusted yet: bounded, and only regular files.

Every reader of a file that may be hostile or damaged (snapshot, index, bundle) goes
through :class:`RegularFile`: it refuses anything but a regular file *before reading a
byte* (``/dev/zero`` never ends, a FIFO blocks until someone writes into it), takes the
size once at open, and reads only the lengths its caller asks for after checking the
header that announces them, never more than that size. So a file that is a device, a
pipe, a huge sparse file or one that keeps growing while it is read costs at most what
its checked header announces (issue 13, hole 5: ``JobState.load("/dev/zero")`` used to
read until memory ran out before looking at the magic bytes).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

__all__ = ["NotRegularFileError", "RegularFile", "ShortFileError", "all_zero", "open_regular"]


class NotRegularFileError(ValueError):
    """The path is a directory, device, FIFO or socket, not a regular file."""


class ShortFileError(ValueError):
    """The file holds fewer bytes than its header announced (or than were asked for)."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: str, flags: int = os.O_RDONLY, opener: Callable[[str, int], int] = os.open) -> int:
    """Open ``path`` (``flags``) and return the fd, refusing anything but a regular file.

    ``O_NONBLOCK`` is added for the open itself, so a FIFO never blocks it (harmless on a
    regular file). ``opener`` lets the file log pass its fault-injectable ``_fs.open``.

    Raises:
        NotRegularFileError: a directory, device, FIFO or socket (the fd is closed).
        OSError: it cannot be opened.
    """
    fd = opener(path, flags | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        msg = f"{path!r} is {_kind(mode)}, not a regular file"
        raise NotRegularFileError(msg)
    return fd


def all_zero(fd: int, start: int, end: int) -> bool:
    """True if bytes ``[start, end)`` of ``fd`` are all zero, without reading holes.

    A hole of a sparse file reads as zeros; ``SEEK_DATA`` skips it, so a huge sparse
    file costs no reading (nor memory: the rest is compared a chunk at a time).
    """
    pos = start
    seek_data = getattr(os, "SEEK_DATA", None)
    while pos < end:
        if seek_data is not None:
            try:
                pos = os.lseek(fd, pos, seek_data)
            except OSError:
                return True  # ENXIO: no data after pos, only a hole to the end of the file
            if pos >= end:
                return True
        chunk = os.pread(fd, min(end - pos, 1 << 20), pos)
        if not chunk:
            return True
        if any(chunk):
            return False
        pos += len(chunk)
    return True


class RegularFile:
    """A regular file opened for bounded reading (a context manager).

    Attributes:
        path: the path it was opened from.
        size: its size when it was opened; reads never go past it, so a file that grows
            meanwhile is read as it was.
        pos: the offset of the next :meth:`read`.

    Raises:
        FileNotFoundError, PermissionError, OSError: it cannot be opened.
        NotRegularFileError: it is not a regular file (nothing was read).
    """

    __slots__ = ("_fd", "path", "pos", "size")

    def __init__(self, path: str) -> None:
        self.path = path
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        fd = open_regular(path)
        try:
            self.size = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.pos = 0

    @property
    def remaining(self) -> int:
        """Bytes between :attr:`pos` and :attr:`size`."""
        return self.size - self.pos

    def read(self, n: int, what: str = "data") -> bytes:
        """Read exactly ``n`` bytes at :attr:`pos` and advance.

        Raises:
            ShortFileError: fewer than ``n`` bytes are left before :attr:`size` (checked
                before anything is read or allocated), or the file shrank meanwhile.
        """
        if n < 0 or n > self.size - self.pos:
            msg = (f"{self.path!r} is too short: {what} needs {n} bytes at byte {self.pos}, "
                   f"the file has {max(0, self.size - self.pos)} left")
            raise ShortFileError(msg)
        parts = []
        got = 0
        while got < n:
            chunk = os.pread(self._fd, min(n - got, 1 << 24), self.pos + got)
            if not chunk:
                msg = f"{self.path!r} shrank while being read (at byte {self.pos + got})"
                raise ShortFileError(msg)
            parts.append(chunk)
            got += len(chunk)
        self.pos += n
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> RegularFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
