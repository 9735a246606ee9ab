"""The incremental scan's shortcuts change how fast it is, never what it yields.

``relevant_events`` lets the log's raw read leave out events by their leading bytes
(``EventFilter.raw_select``), can skip decoding (``with_data=False``, for bisect), and
reads in chunks when it reports progress. On random jobs and field paths each variant
must yield the events of the plain scan, and count the same events read.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import replay_tools.scan as scan_module
from replay_tools.paths import parse_path
from replay_tools.scan import EventFilter, ScanStats, relevant_events
from replay_tools.source import Job
from routilux.job_state import JobState

KEYS = ["limit", "mode", "a.b"]
ops = st.one_of(
    st.tuples(st.just("status"), st.sampled_from(["running", "paused", "pending"])),
    st.tuples(st.just("shared"), st.sampled_from(KEYS), st.one_of(st.integers(0, 3), st.none())),
    st.tuples(st.just("routine"), st.sampled_from(["fetch", "parse"]), st.integers(0, 2)),
    st.tuples(st.just("record"), st.sampled_from(["fetch", "parse"])),
    st.tuples(st.just("log"), st.integers(0, 3)),
    st.tuples(st.just("edit"), st.sampled_from(KEYS)),
)
paths = st.sampled_from(["status", "shared_data.limit", 'shared_data."a.b"', "shared_data", "routine_states.fetch",
                         "routine_states.fetch.n", "shared_log", "updated_at", "execution_history"])


def build(program: list[tuple[Any, ...]]) -> Job:
    """Run ``program`` on a fresh in-memory JobState (snapshots every 4 events)."""
    job = JobState("scan")
    job.snapshot_every = 4
    for op in program:
        if op[0] == "status":
            job.status = op[1]
        elif op[0] == "shared":
            job.update_shared_data(op[1], op[2])
        elif op[0] == "routine":
            job.update_routine_state(op[1], {"status": "running", "n": op[2]})
        elif op[0] == "record":
            job.record_execution(op[1], "out", {"x": 1})
        elif op[0] == "log":
            job.append_to_shared_log({"n": op[1]})
        elif op[0] == "edit" and op[1] in job.shared_data:
            job.shared_data.pop(op[1])  # an edit of the whole map (key None in its event)
    return Job("<memory>", "memory", job.log, None)


def scan(job: Job, flt: EventFilter, lo: int, hi: int, **kwargs: Any) -> tuple[list[Any], int]:
    stats = ScanStats()
    events = list(relevant_events(job, flt, lo, hi, stats, **kwargs))
    return events, stats.read


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=st.lists(ops, min_size=1, max_size=30), wanted=st.lists(paths, min_size=1, max_size=2),
       data=st.data())
def test_shortcuts_yield_what_the_plain_scan_yields(monkeypatch: pytest.MonkeyPatch, program: list[Any],
                                                     wanted: list[str], data: st.DataObject) -> None:
    job = build(program)
    lo = data.draw(st.integers(1, job.head))
    hi = data.draw(st.integers(lo, job.head))
    flt = EventFilter([parse_path(p) for p in wanted])
    fast, fast_read = scan(job, flt, lo, hi)
    with monkeypatch.context() as m:
        m.setattr(EventFilter, "raw_select", lambda self: None)
        plain, plain_read = scan(job, flt, lo, hi)
    assert fast == plain and fast_read == plain_read
    # Without data: the same events (seq, ts, kind, bytes); data None or what decoding gives.
    bare, bare_read = scan(job, flt, lo, hi, with_data=False)
    assert [(e.seq, e.ts, e.kind, e.event_bytes) for e in bare] == [(e.seq, e.ts, e.kind, e.event_bytes) for e in plain]
    assert all(b.data is None or b.data == p.data for b, p in zip(bare, plain, strict=True))
    assert bare_read == plain_read
    # With progress, read in chunks of 2 versions: the same events, the same count.
    seen: list[int] = []
    with monkeypatch.context() as m:
        m.setattr(scan_module, "_PROGRESS_EVERY", 2)
        chunked, chunked_read = scan(job, flt, lo, hi, progress=seen.append)
    assert chunked == plain and chunked_read == plain_read
    assert seen == sorted(seen) and all(lo <= v <= hi for v in seen)


def test_a_scan_stopped_early_counts_the_events_up_to_where_it_stopped() -> None:
    job = build([("shared", "limit", n) for n in range(10)])
    flt = EventFilter([parse_path("shared_data.limit")])
    stats = ScanStats()
    events = relevant_events(job, flt, 1, job.head, stats)
    for event in events:
        if event.seq >= 5:
            break
    events.close()
    assert stats.read == 5
