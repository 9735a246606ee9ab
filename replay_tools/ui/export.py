"""``routilux-replay html``: the debugger page and a job's data in one self-contained file.

The file is the same page as ``routilux-replay ui`` with its script and style inlined
and the answers of :class:`~replay_tools.ui.explorer.Explorer` embedded as JSON: the job's
identity, every event of the range (with its full payload), the state windows
(keyframes and per-event patches, computed here by the one fold), the timeline, and the
verify result at the time of writing. It loads nothing from anywhere: a
Content-Security-Policy in the file forbids every network request, and only the inline
script with the hash written next to it may run.

A long job is cut to a range of versions (the last :data:`DEFAULT_MAX_EVENTS` by default,
or ``--from``/``--to``); the page and the command both say what was left out. Diff and
blame work from the embedded patches.

Bisect takes any condition in the CLI's language, and that language is parsed and
evaluated in Python only (a second implementation in JavaScript would be a second truth
to keep in step). So a file cannot answer an arbitrary condition; it holds the answers
(first version and every flip) of the conditions named with ``--bisect`` when it was
written, and for any other condition the page says so and gives the command to run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from ..condition import parse_condition
from ..errors import BadPointError, ReplayError
from ..source import Job
from ..timefmt import format_time
from ..verify import verify_job
from .display import summary, to_display
from .errors import BadRequestError
from .explorer import Explorer, bisect_answer, pack_tasks
from .index import JobIndex
from .routines import RoutineReader
from .server import static_bytes
from .textsearch import atoms, fold

__all__ = ["DEFAULT_MAX_EVENTS", "ExportResult", "build_html", "write_html"]

#: Versions a file holds by default (a bigger range makes a file browsers open slowly).
DEFAULT_MAX_EVENTS = 20_000

Progress = Callable[[str, int, int], None]


class ExportResult(dict):  # type: ignore[type-arg]
    """What :func:`write_html` wrote: ``path``, ``lo``, ``hi``, ``head``, ``bytes``, ``left_out``."""


def _script_json(obj: Any) -> str:
    # "<" is escaped so no "</script>" (or "<!--") inside the data can end the block early.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def choose_range(head: int, lo: int | None, hi: int | None, max_events: int) -> tuple[int, int]:
    """The versions to include: ``lo..hi`` as given, else the last ``max_events`` up to ``hi``.

    Raises:
        BadPointError: a bound outside the log, or ``lo > hi``.
    """
    hi = head if hi is None else hi
    if not 1 <= hi <= head:
        raise BadPointError(str(hi), f"--to must be a version in 1..{head}")
    if lo is None:
        lo = max(1, hi - max_events + 1)
    if not 1 <= lo <= hi:
        raise BadPointError(str(lo), f"--from must be a version in 1..{hi} (the --to version)")
    if hi - lo + 1 > max_events:
        lo = hi - max_events + 1
    return lo, hi


def search_text(kind: str, data: Any) -> str:
    """What the file's text filter looks in: the kind and the payload's atoms, folded, NUL-separated.

    The same atoms as the server's filter (:mod:`replay_tools.ui.textsearch`), so a text
    matches the same events in the file and in ``routilux-replay ui`` (the page strips
    control characters from the text, so a match never spans two atoms).
    """
    return "\0".join([fold(kind), *(fold(a) for a in atoms(data))])


def bisect_answers(job: Job, conditions: list[str], hi: int) -> dict[str, Any]:
    """The bisect answers the file holds: for each condition, as ``routilux-replay ui`` gives them.

    The answers cover versions ``1..hi`` (a condition's first match may lie before the
    file's range; the page says so).

    Raises:
        BadRequestError: a condition that does not parse or type-check (names it).
    """
    out: dict[str, Any] = {}
    for text in conditions:
        try:
            out[" ".join(text.split())] = bisect_answer(job, parse_condition(text), text, hi)
        except ReplayError as exc:
            raise BadRequestError("--bisect", f"{text!r}: {exc}") from None
    return out


def build_data(job: Job, *, lo: int | None = None, hi: int | None = None,
               max_events: int = DEFAULT_MAX_EVENTS, progress: Progress | None = None,
               bisect: list[str] | None = None) -> dict[str, Any]:
    """Compute everything the page shows for versions ``lo..hi`` of ``job``.

    ``bisect``: conditions whose answers the file holds (see the module doc).

    Raises:
        DamagedLogError: the log cannot be read to its head (nothing is exported).
        BadPointError: a bad range.
        BadRequestError: a bad ``bisect`` condition.
    """
    index = JobIndex(job)
    index.scan(progress=(lambda n: progress("indexing", n, job.head)) if progress else None, routines=False)
    if index.error is not None:
        raise index.error
    explorer = Explorer(job, index)
    head = index.head
    lo, hi = choose_range(head, lo, hi, max_events)
    answers = bisect_answers(job, bisect or [], hi)  # first: a bad condition fails before the long part
    left_out = None
    if lo > 1 or hi < head:
        parts = []
        if lo > 1:
            parts.append(f"1..{lo - 1}")
        if hi < head:
            parts.append(f"{hi + 1}..{head}")
        left_out = (f"This file holds versions {lo}..{hi} of {head}; versions {' and '.join(parts)} are left out "
                    f"(choose the range with --from/--to, or browse everything with `routilux-replay ui`).")
    meta = explorer.meta()
    meta.update({"mode": "file", "range": [lo, hi], "left_out": left_out, "head": hi, "live": False,
                 "range_ms": [(index.ts[lo - 1] - job.first_ts) / 1e6, (index.ts[hi - 1] - job.first_ts) / 1e6],
                 "first_failure": next((s for s in index.failures if lo <= s <= hi), None)})
    windows = []
    for win in explorer.windows(lo, hi):
        windows.append(win)
        if progress is not None:
            progress("states", win["last"] - lo + 1, hi - lo + 1)
    t0 = job.first_ts
    routines = RoutineReader(job, lo).read(hi)  # the one attribution rule, from a snapshot before lo
    events = [[rec.seq, (rec.ts - t0) / 1e6, format_time(rec.ts), rec.kind, routines[rec.seq - lo],
               summary(rec.data), to_display(rec.data), search_text(rec.kind, rec.data)]
              for rec in job.read(lo, hi)]
    meta["routines"] += sorted({r for r in routines if r is not None} - set(meta["routines"]))
    timeline = explorer.timeline({})
    timeline["marks"] = [m for m in timeline["marks"] if lo <= m[0] <= hi]
    timeline["pauses"] = [p for p in timeline["pauses"] if p[0] <= hi and (p[1] == 0 or p[1] >= lo)]
    tasks = pack_tasks(index, 0, keep=lambda q, s, e: q <= hi and (e == 0 or e >= lo))
    result = verify_job(job)
    written = format_time(time.time_ns())
    verify = {"state": "done", **result.to_json(),
              "verified_at": f"checked by routilux-replay html when this file was written ({written}); check the "
                             f"job again with `routilux-replay verify JOB --expect-head {result.head_hash}`"}
    return {"meta": meta, "events": events, "windows": windows, "window_bases": [w["base"] for w in windows],
            "timeline": timeline, "tasks": base64.b64encode(tasks).decode("ascii"), "verify": verify,
            "bisect": answers}


def build_html(data: dict[str, Any]) -> str:
    """The page with its script, style and ``data`` inlined (see the module docstring)."""
    page = static_bytes("index.html").decode("utf-8")
    css = static_bytes("app.css").decode("utf-8")
    js = static_bytes("app.js").decode("utf-8")
    style = f"\n{css}"
    csp = (f"default-src 'none'; script-src {_csp_hash(js)}; style-src {_csp_hash(style)}; img-src data:; "
           "connect-src 'none'; base-uri 'none'; form-action 'none'")
    head = f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n<style>{style}</style>'
    body = (f'<script type="application/json" id="embedded-data">{_script_json(data)}</script>\n'
            f"<script>{js}</script>")
    link = '<link rel="stylesheet" href="/static/app.css">'
    script = '<script src="/static/app.js"></script>'
    if link not in page or script not in page:
        msg = "the page template lost its stylesheet or script tag"
        raise RuntimeError(msg)
    return page.replace(link, head).replace(script, body)


def write_html(job: Job, output: str, *, lo: int | None = None, hi: int | None = None,
               max_events: int = DEFAULT_MAX_EVENTS, progress: Progress | None = None,
               bisect: list[str] | None = None) -> ExportResult:
    """Write the self-contained page for ``job`` to ``output`` (atomically)."""
    data = build_data(job, lo=lo, hi=hi, max_events=max_events, progress=progress, bisect=bisect)
    text = build_html(data).encode("utf-8")
    tmp = output + ".tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        # Rename only a complete file into place: a reader never sees half a page.
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    lo_, hi_ = data["meta"]["range"]
    return ExportResult(path=output, lo=lo_, hi=hi_, head=data["meta"]["indexed"], bytes=len(text),
                        left_out=data["meta"]["left_out"])
