"""``python -m replay_tools.ui.routines_child``: the second process that attributes a job's routines.

Started by :class:`replay_tools.ui.routines.RoutinePass` for a big job. It reads one JSON
line from stdin (``location``, ``key`` in hex or null, ``stop``), opens the job read-only,
and writes the routines of events ``1..stop`` to stdout in chunks
(:func:`~replay_tools.ui.routines.write_chunk`), or one error message. Kept apart from
:mod:`replay_tools.ui.routines` so that running it does not import that module twice.
"""

from __future__ import annotations

import contextlib
import json
import sys

from ..errors import ReplayError
from ..source import open_job
from .routines import CHILD_CHUNK, RoutineReader, write_chunk, write_error


def main() -> None:
    """Attribute ``1..stop`` of the job named on stdin; write the routines to stdout."""
    out = sys.stdout.buffer
    try:
        request = json.loads(sys.stdin.readline())
        key = bytes.fromhex(request["key"]) if request.get("key") else None
        with open_job(request["location"], key=key) as job:
            stop = min(int(request["stop"]), job.head)
            reader = RoutineReader(job, 1)
            names: dict[str, int] = {}
            while reader.next <= stop:
                first = reader.next
                write_chunk(out, first, reader.read(min(stop, first + CHILD_CHUNK - 1)), names)
    except BrokenPipeError:
        return  # the server went away
    except (ReplayError, OSError, ValueError, KeyError) as exc:
        with contextlib.suppress(OSError):
            write_error(out, str(exc))


if __name__ == "__main__":
    main()
