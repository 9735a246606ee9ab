"""Atomic, durable replacement of a whole file (snapshots, bundles)."""

from __future__ import annotations

import os

from . import _fs
from .errors import LogWriteError

__all__ = ["write_atomically"]


def write_atomically(path: str, data: bytes, *, tmp: str, what: str) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, whole.

    Temp file ``tmp`` in the same directory, fsync (the data is on disk before the name
    points at it), rename (atomic for concurrent readers), fsync the directory (the
    rename itself survives a power loss). On any error the temp file is removed and the
    previous file, if any, is untouched.

    Raises:
        LogWriteError: an I/O error, keeping its errno; ``what`` names the file's role.
    """
    try:
        fd = _fs.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _fs.write_all(fd, data)
            _fs.fsync(fd)
        finally:
            _fs.close(fd)
        _fs.replace(tmp, path)
        _fs.fsync_dir(os.path.dirname(path) or ".")
    except OSError as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, LogWriteError):
            raise
        raise LogWriteError(err, f"writing {what} {path}") from err
