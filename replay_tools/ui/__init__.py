"""A time-travel debugger in the browser: ``routilux-replay ui`` and ``routilux-replay html``.

* :class:`~replay_tools.ui.index.JobIndex`: one pass over a job's log into compact columns
  (times, kinds, routines, tasks, pauses, failures, history counts);
* :mod:`~replay_tools.ui.windows`: states for the scrubber as keyframes plus per-event
  patches, computed with the one fold (``routilux.projection.apply``);
* :class:`~replay_tools.ui.explorer.Explorer`: the page's API, a thin layer over
  :mod:`replay_tools` (state, diff, blame, bisect, verify);
* :class:`~replay_tools.ui.catalog.Catalog`: a job store's jobs, to pick one from;
* :class:`~replay_tools.ui.server.UiServer`: the local, read-only HTTP server;
* :func:`~replay_tools.ui.export.write_html`: the page and the data in one file.

The page itself is plain JavaScript in ``replay_tools/ui/static`` (no build step).
"""

from __future__ import annotations

from .catalog import Catalog
from .errors import BadRequestError, PortInUseError, UiError
from .explorer import Explorer
from .export import build_html, write_html
from .index import JobIndex
from .server import UiServer

__all__ = ["BadRequestError", "Catalog", "Explorer", "JobIndex", "PortInUseError", "UiError", "UiServer", "build_html",
           "write_html"]
