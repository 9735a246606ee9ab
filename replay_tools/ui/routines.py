"""The routine of every event, for the page: the one attribution rule, run beside the first pass.

Which routine an event belongs to is decided by :mod:`replay_tools.attribution`, the
rule ``routilux-replay events``, ``events --routine`` and ``blame`` use; the page uses
it too, so they all name the same routine for every event. Applying the rule means
folding the job's task events into a projection (to know the open tasks), which costs
several times the index's first pass on a task-heavy log (about 8 s for 1M events). So
the ``ui`` server runs it as a second pass, beside the first:

* on a big job (:data:`CHILD_MIN` events or more), in a second process
  (``python -m replay_tools.ui.routines_child``), which has a core of its own and leaves the
  server's GIL to the page. It reads the job's location and key from its stdin (never
  its command line) and writes the routines back in binary chunks (:func:`write_chunk`);
* otherwise, or when the child cannot open the job, in a thread of the server;
* then, for a job that is still being written, in that thread as the index grows.

Until an event is attributed, the page asks for the routines of the rows it shows
(:class:`RoutineReader` from the nearest snapshot: a few ms), and the routine filter
covers the events attributed so far.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import threading
from array import array
from collections.abc import Sequence
from typing import IO

from ..attribution import Attributor
from ..errors import ReplayError
from ..replay import fast_tuples
from ..scan import no_gc
from ..source import Job
from .index import CHUNK, JobIndex

__all__ = ["CHILD_CHUNK", "CHILD_MIN", "RoutinePass", "RoutineReader", "read_chunk", "write_chunk", "write_error"]

#: Jobs with at least this many events are attributed in a second process.
CHILD_MIN = 50_000
#: Events per chunk the child writes (the page sees the routines grow by this much).
CHILD_CHUNK = 16 * CHUNK

_HEADER = struct.Struct("<cIII")  # tag, first version, count, length of the new names (JSON)


class RoutineReader:
    """Attributes a job's events in order, from version ``start`` on.

    The :class:`~replay_tools.attribution.Attributor` is built on first use (from the
    newest snapshot before ``start``) and kept between calls, so consecutive calls cost
    only the events they read.
    """

    def __init__(self, job: Job, start: int) -> None:
        self.job = job
        self.next = start
        self._who: Attributor | None = None

    def read(self, stop: int) -> list[str | None]:
        """The routines of events ``next..stop`` (then ``next`` is ``stop + 1``)."""
        if self._who is None:
            self._who = Attributor.at(self.job, self.next)
        who = self._who
        out: list[str | None] = []
        append = out.append
        with no_gc():
            for item in fast_tuples(self.job, self.next, stop):
                append(who.routine(item.kind, item.data))
                who.observe(item)
        self.next += len(out)
        return out


# -- the child process and its messages ---------------------------------------------------
def write_chunk(out: IO[bytes], first: int, routines: Sequence[str | None], names: dict[str, int]) -> None:
    """Write the routines of events ``first...`` as ids into ``names`` (new names are sent along)."""
    known = len(names)
    ids = array("i", [-1 if r is None else names.setdefault(r, len(names)) for r in routines])
    new = [name for name, i in sorted(names.items(), key=lambda kv: kv[1]) if i >= known]
    blob = json.dumps(new).encode("utf-8")
    if sys.byteorder != "little":
        ids.byteswap()
    out.write(_HEADER.pack(b"R", first, len(ids), len(blob)) + blob + ids.tobytes())
    out.flush()


def write_error(out: IO[bytes], message: str) -> None:
    """Write an error message (the child could not go on)."""
    blob = message.encode("utf-8", "replace")
    out.write(_HEADER.pack(b"E", 0, 0, len(blob)) + blob)
    out.flush()


def read_chunk(stream: IO[bytes], names: list[str]) -> tuple[int, list[str | None]] | str | None:
    """Read one message of the child: ``(first, routines)``, an error text, or ``None`` at the end.

    ``names`` is the child's name table, extended with the names the message adds.
    """
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    tag, first, count, size = _HEADER.unpack(header)
    blob = stream.read(size)
    if tag == b"E":
        return blob.decode("utf-8", "replace")
    names.extend(json.loads(blob))
    raw = stream.read(4 * count)
    if len(raw) < 4 * count:
        return None
    ids = array("i")
    ids.frombytes(raw)
    if sys.byteorder != "little":
        ids.byteswap()
    return first, [names[i] if i >= 0 else None for i in ids]


# -- the driver in the server -----------------------------------------------------------------
class RoutinePass:
    """Attributes every event of ``index``'s job and keeps up with it (see the module doc).

    Args:
        index: the index to fill (:meth:`JobIndex.add_routines`).
        location: where the job was opened from (the child opens it again); ``None``:
            never use a child.
        child_min: the smallest job attributed in a child process.
    """

    def __init__(self, index: JobIndex, location: str | None, *, child_min: int = CHILD_MIN) -> None:
        self.index = index
        self.location = location
        self.child_min = child_min
        #: Why the child was not used or stopped early (``None``: it was used, or not needed).
        self.child_problem: str | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    def start(self, *, follow: bool) -> None:
        """Start attributing in a background thread (which may start the child)."""
        self._thread = threading.Thread(target=self._run, args=(follow,), name="replay-ui-routines", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the child (its whole process group) and the thread."""
        child = self._child
        if child is not None and child.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(child.pid, signal.SIGTERM)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self, follow: bool) -> None:
        ix = self.index
        try:
            upto = ix.job.head
            if self.location is not None and upto >= self.child_min:
                # After the first pass: on two cores the page, the browser and that pass
                # need them first (the timeline is complete sooner; routines come after).
                with ix.changed:
                    ix.changed.wait_for(lambda: ix.scanned or ix.stopped)
                if not ix.stopped:
                    self._run_child(upto)
            reader: RoutineReader | None = None
            while not ix.stopped:
                with ix.changed:
                    ix.changed.wait_for(lambda: ix.stopped or ix.head > ix.attributed
                                        or (not follow and ix.scanned), timeout=1.0)
                    head, done = ix.head, ix.attributed
                    finished = ix.scanned and head <= done and (not follow or ix.error is not None)
                if finished or ix.stopped:
                    return
                if head <= done:
                    continue
                if reader is None or reader.next != done + 1:
                    reader = RoutineReader(ix.job, done + 1)
                ix.add_routines(done + 1, reader.read(min(head, done + CHILD_CHUNK)))
                ix.give_way()
        except ReplayError as exc:  # a damaged tail: the index reports the damage itself
            self.child_problem = self.child_problem or str(exc)

    def _run_child(self, stop: int) -> None:
        """Attribute ``1..stop`` in a child process; on any failure the thread carries on itself."""
        ix = self.index
        cmd = [sys.executable, "-m", "replay_tools.ui.routines_child"]
        key = ix.job.key
        request = json.dumps({"location": self.location, "key": key.hex() if key else None, "stop": stop})
        try:
            # Its own process group, so stop() ends it and anything it starts.
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    start_new_session=True,
                                    env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
        except OSError as exc:
            self.child_problem = f"could not start a second process: {exc}"
            return
        self._child = proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            # The location and key go through the pipe: never in a command line others can read.
            proc.stdin.write(request.encode("utf-8") + b"\n")
            proc.stdin.close()
            names: list[str] = []
            while not ix.stopped:
                message = read_chunk(proc.stdout, names)
                if message is None:
                    return
                if isinstance(message, str):
                    self.child_problem = message
                    return
                first, routines = message
                if first == ix.attributed + 1:
                    ix.add_routines(first, routines)
        except (OSError, ValueError) as exc:
            self.child_problem = f"the second process failed: {exc}"
        finally:
            self._child = None
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                proc.wait(timeout=5)
            proc.stdout.close()
