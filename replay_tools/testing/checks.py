"""Every way of rebuilding a job gives the same state, at every version.

:func:`assert_rebuilds_agree` takes a durable job that a flow has just written and
checks, for each version ``v`` from 1 to the head, that these states are equal (values,
types and key order):

1. **full replay**: ``JobState.from_events(events[:v])`` (the oracle);
2. **snapshot + tail**: ``job.at(version=v)`` on the live job (snapshots taken every few
   events, so most versions start from one);
3. **save/load**: ``JobState.load(saved, version=v)`` and ``JobState.load(saved).at(v)``;
4. **JSONL round trip**: the job exported as JSON Lines and imported into a new log;
5. **durable reopen**: the job closed and opened again from its directory;

and at the head also the **live** object itself. Head hashes must agree as well. The
cost grows with the square of the job's length (a full replay per version): keep test
flows to a few hundred events.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from routilux import JobState

from ..divergence.compare import field_changes
from ..divergence.report import value_text
from ..exporting import export_log, import_to_memory
from .errors import ReplayDivergence
from .seed import current_seed

__all__ = ["assert_rebuilds_agree"]


def _fail(what: str, version: int, expected: Any, actual: Any, kind: str) -> ReplayDivergence:
    lines = [f"event at that version: {kind}", "fields that differ (full replay -> the other):"]
    for change in field_changes(expected, actual)[:20]:
        lines.append(f"  {change.path}: {value_text(change.expected, 200)} -> {value_text(change.actual, 200)}")
    return ReplayDivergence(what, version, lines, seed=current_seed())


def assert_rebuilds_agree(job: JobState, workdir: str) -> JobState:
    """Check that every rebuild of ``job`` agrees with a full replay, at every version.

    Args:
        job: a live durable job (``JobState.open(path)``); it is closed and reopened.
        workdir: a directory for the saved file and the export.

    Returns:
        The reopened job (read-only), for further checks.

    Raises:
        ReplayDivergence: the first version where some rebuild differs (names the
            rebuild, the version, the event there and the fields that differ).
    """
    live_state, live_hash = job.serialize(), job.head_hash
    events = job.events()
    head = job.version
    saved = os.path.join(workdir, "saved.rjob")
    job.save(saved)
    export = os.path.join(workdir, "export.jsonl")
    with open(export, "w", encoding="utf-8") as fh:
        export_log(job.log, fh)
    imported_log, imported = import_to_memory(export)
    loaded = JobState.load(saved)
    from_export = JobState.from_events(imported_log)
    if loaded.head_hash != live_hash or imported.head_hash != live_hash:
        raise ReplayDivergence("the head hash after save/load or a JSONL round trip differs from the live job's",
                               head, [f"live: {live_hash}", f"save/load: {loaded.head_hash}",
                                      f"JSONL round trip: {imported.head_hash}"], seed=current_seed())
    open_rebuilds: list[tuple[str, Callable[[int], JobState]]] = [
        ("snapshot + tail (live job)", lambda v: job.at(version=v)),
        ("save/load", lambda v: JobState.load(saved, version=v)),
        ("save/load then at()", lambda v: loaded.at(version=v)),
        ("JSONL round trip", lambda v: from_export.at(version=v)),
    ]
    oracles = [JobState.from_events(events[:v]).serialize() for v in range(1, head + 1)]
    _compare_all(open_rebuilds, oracles, events)
    for name, state in (("the live job", live_state), ("save/load", loaded.serialize())):
        if field_changes(oracles[-1], state):
            raise _fail(f"{name} differs from the full replay at the head", head, oracles[-1], state, events[-1].kind)
    location = job.log.location
    job.close()
    reopened = JobState.open(location, readonly=True)
    try:
        if reopened.head_hash != live_hash:
            raise ReplayDivergence("the head hash after a durable reopen differs from the live job's", head,
                                   [f"live: {live_hash}", f"reopened: {reopened.head_hash}"], seed=current_seed())
        _compare_all([("durable reopen", lambda v: reopened.at(version=v))], oracles, events)
        if field_changes(oracles[-1], reopened.serialize()):
            raise _fail("durable reopen differs from the full replay at the head", head, oracles[-1],
                        reopened.serialize(), events[-1].kind)
    except BaseException:
        reopened.close()
        raise
    return reopened


def _compare_all(rebuilds: list[tuple[str, Callable[[int], JobState]]], oracles: list[dict[str, Any]],
                 events: list[Any]) -> None:
    for v, oracle in enumerate(oracles, start=1):
        for name, rebuild in rebuilds:
            state = rebuild(v).serialize()
            if field_changes(oracle, state):
                raise _fail(f"{name} differs from the full replay", v, oracle, state, events[v - 1].kind)
