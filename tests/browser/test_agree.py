"""The page agrees with the CLI: routines, times, filters; and it is usable before the index is done."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from browser_helpers import ARTIFACTS, index_tasks, list_rows, page_tasks, ready, ui_value
from click.testing import CliRunner

from replay_tools import open_job
from replay_tools.cli import cli
from replay_tools.timefmt import format_time
from replay_tools.ui.textsearch import event_matches, fold
from routilux.job_state import JobState


def cli_events(path: str, *args: str) -> dict[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["events", path, "--json", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {row["seq"]: row for row in map(json.loads, result.output.splitlines())}


def busy_job(path: str, rng: random.Random, n: int = 160) -> None:
    """A job with several routines' tasks open at once (rule 4 of the attribution: the last actor)."""
    job = JobState.open(path, flow_id="busy")
    job.snapshot_every = 16
    routines = ["fetch", "price", "report"]
    open_tasks: list[str] = []
    try:
        job.status = "running"
        for i in range(n):
            op = rng.randrange(6)
            if op == 0 or not open_tasks:
                tid = f"t{i}"
                job._task_queued(tid, {"routine_id": rng.choice(routines), "slot": "in", "data": {"i": i}})
                open_tasks.append(tid)
            elif op == 1:
                job._task_started(rng.choice(open_tasks))
            elif op == 2:
                job._task_finished(open_tasks.pop(rng.randrange(len(open_tasks))))
            elif op == 3:
                job.record_execution(rng.choice(routines), "tick", {"i": i})
            elif op == 4:
                job.current_routine_id = rng.choice([*routines, None])
            else:
                job.update_shared_data(rng.choice(["limit", "done", "Item"]), rng.choice([i, f"item-{i}", None]))
        job.status = "completed"
    finally:
        job.close()


@pytest.fixture
def tall(browser: Any, request: pytest.FixtureRequest) -> Any:
    """A page with room for many rows (and a screenshot at the end)."""
    context = browser.new_context(viewport={"width": 1500, "height": 1400}, bypass_csp=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(15000)
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    context.close()
    assert not errors, errors


@pytest.mark.parametrize("which", ["demo", "busy"])
def test_every_event_names_the_cli_s_routine(tall: Any, serve: Any, demo_dir: str, tmp_path: Path, rng: Any,
                                             which: str) -> None:
    """For every event of the demo job and of a random busy job, the page's routine is the one
    `routilux-replay events` prints; the routine filter keeps what `events --routine` keeps."""
    path = demo_dir
    if which == "busy":
        path = str(tmp_path / "busy")
        busy_job(path, rng)
    want = cli_events(path)
    s = serve(path)
    ready(tall, s.url + "#v=1")
    tall.wait_for_function("window.__replay.indexDone")
    shown = list_rows(tall)
    assert {v: r[2] for v, r in shown.items()} == {v: row["routine"] or "" for v, row in want.items()}
    if which == "demo":
        assert [shown[v][2] for v in (22, 23, 24)] == ["validate"] * 3
    for routine in sorted({row["routine"] for row in want.values() if row["routine"]}):
        tall.select_option("#routine-filter", routine)
        expected = cli_events(path, "--routine", routine)
        tall.wait_for_function(f"document.getElementById('events-count').textContent.startsWith("
                               f"'{len(expected):,} matching')")
        # Two routines may match as many events: the count alone does not say the rows are
        # this filter's yet, so wait (bounded) until the rows are what the CLI keeps.
        deadline = time.monotonic() + 10
        while sorted(list_rows(tall)) != sorted(expected) and time.monotonic() < deadline:
            tall.wait_for_timeout(50)
        assert sorted(list_rows(tall)) == sorted(expected)


def test_times_are_the_cli_s_in_utc_or_local(browser: Any, serve: Any, demo_dir: str, tmp_path: Path) -> None:
    """Times read like the CLI's (UTC, Z); the toggle shows the browser's zone with its offset, kept in the URL."""
    zone = "Asia/Kolkata"  # +05:30 all year: a half-hour offset
    context = browser.new_context(viewport={"width": 1500, "height": 1400}, bypass_csp=True, timezone_id=zone)
    pg = context.new_page()
    try:
        want = cli_events(demo_dir)
        s = serve(demo_dir)
        ready(pg, s.url + "#v=17")
        pg.wait_for_function("window.__replay.indexDone")
        rows = list_rows(pg)
        assert {v: r[0] for v, r in rows.items()} == {v: row["time"][11:26] + "Z" for v, row in want.items()}
        assert pg.inner_text(".events-header .c-time") == "time (UTC)"
        with open_job(demo_dir) as job:
            ts17 = job.log.get(17).ts
        utc = format_time(ts17)
        assert utc in pg.inner_text("#cursor-info") and utc in pg.inner_text("#state-title")
        state = CliRunner().invoke(cli, ["state", demo_dir, "--at", "17"]).output
        assert f"time:            {utc}\n" in state  # the CLI's own line
        pg.click("#tz-btn")
        micros = dt.datetime.fromtimestamp(ts17 // 1000 / 1e6, ZoneInfo(zone))
        local = micros.isoformat(timespec="microseconds")
        assert local.endswith("+05:30")
        pg.wait_for_function(f"document.getElementById('cursor-info').textContent.includes('{local}')")
        assert local in pg.inner_text("#state-title")
        assert pg.inner_text(".events-header .c-time") == "time (local)"
        assert rows_time(pg, 17) == local[11:]
        pg.wait_for_function("location.hash.includes('tz=local')")
        pg.reload()
        pg.wait_for_selector("body[data-ready='1']")
        pg.wait_for_function(f"document.getElementById('cursor-info').textContent.includes('{local}')")
        # blame lists its times in the same convention
        pg.click('.leaf[data-path="shared_data.limit"] .key')
        pg.wait_for_function("window.__replay.lastBlame !== null")
        first = pg.locator("#panel tr.blame-item td").nth(1)
        assert first.inner_text().endswith("+05:30") and first.get_attribute("title").endswith("+05:30")
    finally:
        context.close()


def rows_time(page: Any, version: int) -> str:
    return page.locator(f'#events-rows .row[data-seq="{version}"] .c-time').inner_text()  # type: ignore[no-any-return]


def test_html_file_shows_utc_times(page: Any, demo_dir: str, tmp_path: Path) -> None:
    """The saved page writes the same times (UTC, Z) as the CLI."""
    out = tmp_path / "run.html"
    assert CliRunner().invoke(cli, ["html", demo_dir, "-o", str(out)]).exit_code == 0
    want = cli_events(demo_dir)
    ready(page, out.as_uri() + "#v=5")
    assert rows_time(page, 5) == want[5]["time"][11:26] + "Z"
    assert want[5]["time"][:26] + "Z" in page.inner_text("#cursor-info")


def test_timeline_and_filters_fill_in_while_the_index_reads(page: Any, serve: Any, failing_dir: str) -> None:
    """Before the index is done the page works: the lanes grow as it reads, a filter says 'so far',
    rows whose routines are not known yet say so and fill in once they are."""
    import replay_tools.ui.explorer as explorer_module

    s = serve(failing_dir, start=False)
    ix = s.explorer.index
    with open_job(failing_dir) as job:
        records = list(job.read())
    half = len(records) // 2
    queued_first_half = sum(1 for r in records[:half] if r.kind == "task_queued")
    queued = sum(1 for r in records if r.kind == "task_queued")
    ready(page, s.url + "#v=1")
    assert ui_value(page, "ui.tasks ? ui.tasks.n : 0") == 0
    page.fill("#text-filter", "item")
    page.wait_for_function("document.getElementById('events-count').textContent.includes('so far')")
    ix.scan(stop=half, routines=False)
    page.wait_for_function(f"window.__replay.tasks && window.__replay.tasks.n === {queued_first_half}")
    assert "so far" in page.inner_text("#events-count")
    # routines not attributed yet: rows far apart are not attributed on demand (forced here)
    old_span = explorer_module.ON_DEMAND_SPAN
    explorer_module.ON_DEMAND_SPAN = 0
    try:
        ix.scan(routines=False)
        page.wait_for_function(f"window.__replay.tasks.n === {queued} && window.__replay.timeline.upto === {len(records)}")
        assert page_tasks(page) == index_tasks(ix)  # every task's end and state, not only its start
        want = [r.seq for r in records if event_matches(fold("item"), r.kind, r.data)]
        page.wait_for_function(f"document.getElementById('events-count').textContent === '{len(want)} matching events'")
        page.wait_for_function("[...document.querySelectorAll('#events-rows .row .c-routine')].some(c => c.textContent === '…')")
        ix.scan()  # the routines now
        page.wait_for_function("window.__replay.indexDone")
        page.wait_for_function("![...document.querySelectorAll('#events-rows .row .c-routine')].some(c => c.textContent === '…')")
    finally:
        explorer_module.ON_DEMAND_SPAN = old_span
    shown = {int(r[0]) for r in page.locator("#events-rows .row:visible").evaluate_all(
        "rs => rs.map(r => [r.dataset.seq])")}
    assert shown == set(want)
    routines = cli_events(failing_dir)
    for seq, routine in page.locator("#events-rows .row:visible").evaluate_all(
            "rs => rs.map(r => [Number(r.dataset.seq), r.querySelector('.c-routine').textContent])"):
        assert routine == (routines[seq]["routine"] or "")


@pytest.mark.parametrize("text", ["item", "ITEM 3", "flaky", "last_good", "2", "task_f", "zzz"])
def test_text_filter_is_the_same_in_the_page_and_the_file(page: Any, serve: Any, failing_dir: str, tmp_path: Path,
                                                          text: str) -> None:
    """A text keeps the same events served and in a saved file: those whose kind or data atoms hold it."""
    with open_job(failing_dir) as job:
        want = [r.seq for r in job.read() if event_matches(fold(text), r.kind, r.data)]
    out = tmp_path / "f.html"
    assert CliRunner().invoke(cli, ["html", failing_dir, "-o", str(out)]).exit_code == 0
    s = serve(failing_dir)
    for url in (s.url, out.as_uri()):
        ready(page, url + "#text=" + re.sub(" ", "%20", text))
        page.wait_for_function("window.__replay.indexDone || !window.__replay.meta.live")
        page.wait_for_function(f"document.getElementById('events-count').textContent === "
                               f"'{len(want)} matching event{'' if len(want) == 1 else 's'}'")
        assert sorted(list_rows(page)) == want, url


def test_saved_page_bisect_answers_its_conditions(page: Any, demo_dir: str, tmp_path: Path) -> None:
    """`html --bisect COND`: the file answers that condition (first version, every flip); any other
    says what to run instead."""
    out = tmp_path / "b.html"
    result = CliRunner().invoke(cli, ["html", demo_dir, "-o", str(out), "--bisect", "shared_data.limit == 0",
                                      "--bisect", "status == paused"])
    assert result.exit_code == 0, result.output
    ready(page, out.as_uri())
    assert not page.is_disabled("#bisect-input")
    page.fill("#bisect-input", "status  ==  paused")
    page.click("#bisect-btn")
    page.wait_for_function("window.__replay.lastBisect && window.__replay.lastBisect.version === 17")
    flips = page.locator("#panel tr.bisect-flip").all_inner_texts()
    assert [f.split("\t")[:2] for f in flips] == [["17", "becomes true"], ["18", "becomes false"]]
    page.fill("#bisect-input", "status == completed")
    page.click("#bisect-btn")
    page.wait_for_selector("#bisect-input.bad")
    assert "routilux-replay bisect JOB --where 'status == completed' --all" in page.inner_text("#panel")
    bad = CliRunner().invoke(cli, ["html", demo_dir, "-o", str(tmp_path / "c.html"), "--bisect", "status =="])
    assert bad.exit_code != 0 and "--bisect" in bad.output and not (tmp_path / "c.html").exists()


def test_lanes_miss_no_change_while_the_index_grows(page: Any, serve: Any, failing_dir: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The index grows while the page asks for the lanes (here: during each timeline answer, after
    a pause that lets the tasks answer go first): every task still ends up with its end and state."""
    import time

    from replay_tools.ui import server as server_module

    s = serve(failing_dir, start=False)
    ix = s.explorer.index
    ix.scan(stop=8)
    original = server_module._JSON_ROUTES["timeline"]

    def growing(explorer: Any, params: Any) -> Any:
        time.sleep(0.1)
        ix.scan(stop=ix.head + 3)  # a few more events, read while the page waits
        return original(explorer, params)

    monkeypatch.setitem(server_module._JSON_ROUTES, "timeline", growing)
    ready(page, s.url + "#v=1")
    page.wait_for_function(f"window.__replay.timeline && window.__replay.timeline.upto === {s.job.head}", timeout=30000)
    assert ix.head == s.job.head
    page.wait_for_timeout(300)
    assert page_tasks(page) == index_tasks(ix)
