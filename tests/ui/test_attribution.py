"""One attribution rule: the page names the routine `routilux-replay events` and `blame` name, for every event."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from ui_jobs import operations, random_job

from replay_tools import open_job, timeline
from replay_tools.cli import cli
from replay_tools.ui.explorer import Explorer
from replay_tools.ui.index import Filter, JobIndex
from replay_tools.ui.routines import RoutinePass


def q(**kw: Any) -> dict[str, list[str]]:
    return {k: [str(v)] for k, v in kw.items()}


def cli_routines(path: str, *args: str) -> dict[int, str | None]:
    """{version: routine} as `routilux-replay events --json` prints them."""
    result = CliRunner().invoke(cli, ["events", path, "--json", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {row["seq"]: row["routine"] for row in map(json.loads, result.output.splitlines())}


def page_routines(ex: Explorer, **flt: Any) -> dict[int, str | None]:
    """{version: routine} as the page's event list shows them (every row, in pages of 10)."""
    out: dict[int, str | None] = {}
    start = 0
    while True:
        page = ex.rows(q(**{"from": start, "count": 10}, **flt))
        assert page["routines_after"] is None
        out.update((row[0], row[4]) for row in page["rows"])
        start += 10
        if start >= page["total"]:
            return out


def test_demo_job_routines_are_the_cli_s(demo_job_dir: str) -> None:
    """Every event of the demo job: the page's routine (before and after indexing) is the CLI's."""
    want = cli_routines(demo_job_dir)
    assert [want[v] for v in (22, 23, 24)] == ["validate"] * 3  # the events issue 15 left blank
    with open_job(demo_job_dir) as job:
        ex = Explorer(job, JobIndex(job))
        assert page_routines(ex) == want  # nothing indexed yet: attributed on demand
        ex.index.scan()
        assert ex.index.attributed == job.head
        assert page_routines(ex) == want
        assert {v: ex.event(q(v=v))["routine"] for v in want} == want
        for routine in ("fetch", "validate", "price", "report"):
            assert list(page_routines(ex, routine=routine)) == list(cli_routines(demo_job_dir, "--routine", routine))
        # blame names the same routine for each change it lists
        for field in ("shared_data.limit", "status", "routine_states", "execution_history"):
            for change in ex.blame(q(path=field))["changes"]:
                assert change["routine"] == want[change["version"]], (field, change["version"])


@given(st.lists(operations, min_size=1, max_size=40), st.data())
@settings(max_examples=40)
def test_random_job_routines_are_the_cli_s(ops: list[Any], data: st.DataObject) -> None:
    """Random jobs (tasks of several routines open at once, deserialize, snapshots): index,
    on-demand rows and the routine filter agree with `routilux-replay events`."""
    with random_job(ops, snapshot_every=3) as job:
        want = {row.seq: row.routine for row in timeline(job)}
        ex = Explorer(job, JobIndex(job))
        lo = data.draw(st.integers(1, job.head), label="lo")
        hi = data.draw(st.integers(lo, job.head), label="hi")
        assert ex.routines_of(list(range(lo, hi + 1))) == {v: want[v] for v in range(lo, hi + 1)}
        ex.index.scan()
        assert {v: ex.index.routine_of(v) for v in want} == want
        for routine in {r for r in want.values() if r is not None}:
            assert list(ex.index.matching(Filter(frozenset(), routine, "")).seqs) == \
                [v for v, r in want.items() if r == routine]


def test_big_job_routines_come_from_a_second_process(demo_job_dir: str) -> None:
    """The routine pass in a child process gives the CLI's routines; a child that cannot open
    the job leaves the work to the server's thread, with the same answer."""
    want = cli_routines(demo_job_dir)
    with open_job(demo_job_dir) as job:
        for location in (demo_job_dir, demo_job_dir + "-nosuch"):
            index = JobIndex(job)
            index.scan(routines=False)
            attribution = RoutinePass(index, location, child_min=0)
            attribution.start(follow=False)
            try:
                assert index.wait_for(job.head, 10)
                with index.changed:
                    index.changed.wait_for(lambda: index.attributed >= job.head, timeout=60)  # noqa: B023
            finally:
                attribution.stop()
            assert {v: index.routine_of(v) for v in want} == want
            if location.endswith("-nosuch"):
                assert attribution.child_problem is not None and "nosuch" in attribution.child_problem
            else:
                assert attribution.child_problem is None


def test_second_process_opens_a_postgres_job(demo_job_dir: str) -> None:
    """The child reads the job's URL (password included) from its stdin, never its command line."""
    import os
    import uuid

    import pytest

    url = os.environ.get("EVENTLOG_PG_URL")
    if not url:
        pytest.skip("set EVENTLOG_PG_URL=postgresql://... to run the PostgreSQL tests; .ci/run starts a server")
    from replay_tools import copy_job

    location = f"{url}#ui2-{uuid.uuid4().hex[:12]}"
    copy_job(demo_job_dir, location)
    want = cli_routines(demo_job_dir)
    with open_job(location) as job:
        index = JobIndex(job)
        index.scan(routines=False)
        attribution = RoutinePass(index, location, child_min=0)
        attribution.start(follow=False)
        try:
            with index.changed:
                index.changed.wait_for(lambda: index.attributed >= job.head, timeout=60)
        finally:
            attribution.stop()
        assert attribution.child_problem is None
        assert {v: index.routine_of(v) for v in want} == want
