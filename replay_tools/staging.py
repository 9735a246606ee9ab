"""All-or-nothing writes of a whole job: build it beside the destination, then rename.

``import`` and ``copy`` write a new job into a hidden sibling of the destination
(``.<name>.staging-<random>``), check it, and only then rename it into place. A
failure at any point (a refused export, a full disk, Ctrl-C) removes the staging
copy, so the destination path is either absent (as before) or holds the whole,
checked job: never a half-written one that would block a retry or pass for a job.

The rename is atomic on one file system (the staging copy is a sibling for that
reason), and the parent directory is fsynced after it so that the new name survives a
crash. ``jobs`` does not list names starting with ``.``, so a staging copy left by a
killed process is not mistaken for a job (its name says what it is).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator

from .errors import DestinationError

__all__ = ["Staged", "fsync_dir", "staged"]


def fsync_dir(path: str) -> None:
    """Flush a directory's entries to disk (a rename is durable only after this)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Staged:
    """A staging path for ``destination``; :meth:`commit` renames it into place.

    Attributes:
        path: where to build the new job (a directory or a file, not created yet).
        destination: where it goes.
    """

    def __init__(self, destination: str) -> None:
        self.destination = os.path.abspath(destination)
        parent = os.path.dirname(self.destination)
        if not os.path.isdir(parent):
            raise DestinationError(destination, f"its parent directory {parent!r} does not exist")
        name = os.path.basename(self.destination)
        self.path = os.path.join(parent, f".{name}.staging-{uuid.uuid4().hex[:8]}")
        self.committed = False

    def commit(self) -> None:
        """Rename the staged job into place (replacing an empty directory there).

        Raises:
            DestinationError: something else appeared at the destination meanwhile.
        """
        dest = self.destination
        if os.path.isdir(dest) and not os.listdir(dest):
            os.rmdir(dest)  # an empty directory the user made for the job: take its place
        if os.path.lexists(dest):
            raise DestinationError(dest, "it appeared while the job was being written; nothing was changed")
        os.rename(self.path, dest)
        self.committed = True
        fsync_dir(os.path.dirname(dest))

    def replace(self) -> None:
        """Rename the staged *file* into place, atomically replacing a file already there."""
        os.replace(self.path, self.destination)
        self.committed = True
        fsync_dir(os.path.dirname(self.destination))

    def discard(self) -> None:
        """Remove the staged copy (nothing is left behind)."""
        if os.path.isdir(self.path) and not os.path.islink(self.path):
            shutil.rmtree(self.path, ignore_errors=True)
        elif os.path.lexists(self.path):
            with contextlib.suppress(OSError):
                os.unlink(self.path)


@contextlib.contextmanager
def staged(destination: str) -> Iterator[Staged]:
    """Yield a :class:`Staged` for ``destination``; whatever was not committed is removed."""
    stage = Staged(destination)
    try:
        yield stage
    finally:
        if not stage.committed:
            stage.discard()
