"""The debugger page in headless Chromium: scrubber, state, diff, blame, bisect, filters, live."""

from __future__ import annotations

import threading
import time
from typing import Any

from browser_helpers import index_tasks, page_tasks, ready, run_flow_into, ui_value

from replay_tools import blame, diff, open_job
from routilux.job_state import JobState

HISTORY = ("execution_history", "shared_log", "output_log", "pause_points")


def expected_state(path: str, version: int) -> tuple[dict[str, Any], list[int]]:
    """JobState.at(version) as the page shows it: serialize() without the history lists, plus counts."""
    state = JobState.open(path, readonly=True)
    try:
        at = state.at(version=version)
        data = at.serialize()
        counts = [len(at.execution_history), sum(1 for r in at.execution_history if r.event_name == "error"),
                  len(at.output_log), len(at.shared_log), len(at.pause_points)]
    finally:
        state.close()
    for name in (*HISTORY, "_type"):
        data.pop(name, None)
    return data, counts


def shown_state(page: Any) -> tuple[dict[str, Any], list[int] | None]:
    state = ui_value(page, "Object.fromEntries(Object.entries(ui.state).filter(([k]) => k !== '_type'))")
    return state, ui_value(page, "ui.counts")


def wait_cursor(page: Any, version: int) -> None:
    page.wait_for_function(f"window.__replay.cursor === {version} && window.__replay.stateVersion === {version}")


def test_demo_loads_at_head(page: Any, serve: Any, demo_dir: str) -> None:
    """The demo job opens at its head: identity, status, state pane equal to JobState.at(head)."""
    s = serve(demo_dir)
    ready(page, s.url)
    head = s.job.head
    wait_cursor(page, head)
    assert s.job.job_id in page.inner_text("#job-title")
    page.wait_for_function("document.getElementById('job-status').textContent === 'completed'")
    page.wait_for_function("window.__replay.counts !== null")
    state, counts = shown_state(page)
    want, want_counts = expected_state(demo_dir, head)
    assert state == want and counts == want_counts
    assert page.inner_text("#head-version").replace(",", "") == str(head)
    page.wait_for_function("document.getElementById('verify-badge').classList.contains('ok')")
    assert s.job.log.head_hash.hex()[:12] in page.inner_text("#verify-badge")
    page.wait_for_function("window.__replay.tasks && window.__replay.tasks.n === 4")


def test_scrubber_moves_and_state_matches(page: Any, serve: Any, demo_dir: str) -> None:
    """Arrow keys and the slider move the cursor; every state shown equals JobState.at(v)."""
    s = serve(demo_dir)
    ready(page, s.url + "#v=1")
    wait_cursor(page, 1)
    page.wait_for_function("window.__replay.counts !== null")
    for v in range(1, s.job.head + 1):
        if v > 1:
            page.keyboard.press("ArrowRight")
            wait_cursor(page, v)
        state, counts = shown_state(page)
        want, want_counts = expected_state(demo_dir, v)
        assert state == want, v
        assert counts == want_counts, v
    # The slider, and the fields changed by the event under the cursor are highlighted.
    page.focus("#slider")
    page.keyboard.press("Home")
    wait_cursor(page, 1)
    limit_set = [rec.seq for rec in s.job.read() if rec.kind == "shared_data_set" and rec.data["key"] == "limit"]
    page.evaluate("(v) => { const el = document.getElementById('slider'); el.value = v;"
                  " el.dispatchEvent(new Event('input')); }", limit_set[1])
    wait_cursor(page, limit_set[1])
    assert page.get_attribute('.leaf[data-path="shared_data.limit"]', "class") == "leaf changed"
    assert "2" in page.inner_text('.leaf[data-path="shared_data.limit"]')
    page.keyboard.press("Shift+ArrowRight")
    wait_cursor(page, s.job.head)
    assert "changed" not in (page.get_attribute('.leaf[data-path="shared_data.limit"]', "class") or "")


def test_diff_between_marks(page: Any, serve: Any, demo_dir: str) -> None:
    """Mark A and B, press d: the differences are those of `routilux-replay diff`, grouped."""
    s = serve(demo_dir)
    paused = next(rec.seq for rec in s.job.read() if rec.kind == "paused")
    ready(page, s.url + f"#v={paused}")
    wait_cursor(page, paused)
    page.keyboard.press("a")
    page.keyboard.press("End")
    wait_cursor(page, s.job.head)
    page.keyboard.press("b")
    page.keyboard.press("d")
    page.wait_for_function("window.__replay.lastDiff !== null")
    shown = [t.split("\n")[0] for t in page.locator("#panel .diff-item td.jump").all_inner_texts()]
    assert shown == [d.path for d in diff(s.job, paused, s.job.head)]
    titles = page.locator("#panel h3").all_inner_texts()
    assert titles[:3] == ["Status (2)", "Routine states (1)", "Shared data (2)"]
    assert f"Diff version {paused} → {s.job.head}" == page.inner_text("#panel-title")
    page.wait_for_function(f"location.hash.includes('a={paused}') && location.hash.includes('b={s.job.head}')")


def test_blame_a_field_and_jump(page: Any, serve: Any, demo_dir: str) -> None:
    """Click a field: every event that changed it; click a version: the cursor goes there."""
    s = serve(demo_dir)
    ready(page, s.url)
    page.click('.leaf[data-path="shared_data.limit"] .key')
    page.wait_for_function("window.__replay.lastBlame !== null")
    want = [e.version for e in blame(s.job, "shared_data.limit")]
    rows = page.locator("#panel tr.blame-item")
    assert [int(v) for v in rows.evaluate_all("rs => rs.map(r => r.dataset.version)")] == want
    assert "(absent) → 3" in rows.first.inner_text()
    rows.nth(2).locator(".jump").click()
    wait_cursor(page, want[2])
    page.wait_for_function(f"location.hash.includes('v={want[2]}')")


def test_bisect_with_the_cli_syntax(page: Any, serve: Any, demo_dir: str) -> None:
    """A condition jumps to the first version where it holds; a bad one says where it is wrong."""
    s = serve(demo_dir)
    ready(page, s.url)
    page.keyboard.press("i")
    page.keyboard.type("shared_data.limit == 0")
    page.keyboard.press("Enter")
    first = next(e.version for e in blame(s.job, "shared_data.limit") if e.new == 0)
    wait_cursor(page, first)
    assert f"holds: {first}" in page.inner_text("#panel")
    page.fill("#bisect-input", "shared_data.limit ==")
    page.click("#bisect-btn")
    page.wait_for_selector("#bisect-input.bad")
    assert "column 21" in page.inner_text("#panel")


def test_filters_by_kind_routine_and_text(page: Any, serve: Any, demo_dir: str) -> None:
    """The event list keeps only matching events; the filter lands in the URL."""
    s = serve(demo_dir)
    ready(page, s.url)
    page.click("#kind-summary")
    page.check('#kind-list input[value="shared_data_set"]')
    want = [rec.seq for rec in s.job.read() if rec.kind == "shared_data_set"]
    page.wait_for_function(f"document.getElementById('events-count').textContent.startsWith('{len(want)} matching')")
    seqs = page.locator("#events-rows .row:visible .c-seq").all_inner_texts()
    assert sorted(int(x) for x in seqs) == want  # rows are recycled by position: DOM order is not screen order
    page.wait_for_function("location.hash.includes('kinds=shared_data_set')")
    page.uncheck('#kind-list input[value="shared_data_set"]')
    page.select_option("#routine-filter", "price")
    # The count says "matching" already (from the kind filter): wait until the rows shown
    # are the routine's, not only for the count's text.
    page.wait_for_function(
        "(() => { const rs = [...document.querySelectorAll('#events-rows .row')]"
        ".filter(r => r.offsetParent !== null).map(r => r.querySelector('.c-routine').textContent);"
        " return rs.length > 0 && rs.every(t => t === 'price'); })()")
    routines = page.locator("#events-rows .row:visible .c-routine").all_inner_texts()
    assert routines and set(routines) == {"price"}
    page.select_option("#routine-filter", "")
    page.fill("#text-filter", "operator check")
    page.wait_for_function("document.getElementById('events-count').textContent.startsWith('2 matching')")
    rows = page.locator("#events-rows .row:visible").evaluate_all(
        "rs => rs.map(r => [Number(r.dataset.seq), r.querySelector('.c-kind').textContent])")
    assert [kind for _seq, kind in sorted(rows)] == ["pause_point_added", "paused"]


def test_first_failure_and_lanes(page: Any, serve: Any, failing_dir: str) -> None:
    """f jumps to the first recorded failure; failed tasks are red bars in their routine's lane."""
    s = serve(failing_dir)
    ready(page, s.url + "#v=1")
    page.wait_for_function("window.__replay.tasks !== null")
    page.keyboard.press("f")
    first = next(rec.seq for rec in s.job.read()
                 if rec.kind == "task_failed" or (rec.kind == "execution_recorded" and rec.data["event_name"] == "error"))
    wait_cursor(page, first)
    failed = ui_value(page, "Array.from(ui.tasks.state.slice(0, ui.tasks.n)).filter(x => x === 3).length")
    assert failed == sum(1 for rec in s.job.read() if rec.kind == "task_failed") == 3
    lanes = ui_value(page, "Array.from(ui.tasks.lane.slice(0, ui.tasks.n))")
    routines = ui_value(page, "ui.timeline.routines")
    assert {routines[x] for x in lanes} == {"source", "flaky"}
    assert ui_value(page, "ui.counts[1]") >= 1  # errors counted at the failure


def test_link_opens_at_the_same_moment(page: Any, serve: Any, demo_dir: str) -> None:
    """The URL carries cursor, marks and filter; opening it restores them."""
    s = serve(demo_dir)
    ready(page, s.url + "#v=17&a=3&b=20&routine=fetch")
    wait_cursor(page, 17)
    assert ui_value(page, "[ui.a, ui.b, ui.filter.routine]") == [3, 20, "fetch"]
    assert page.input_value("#version-input") == "17"
    page.keyboard.press("ArrowLeft")
    wait_cursor(page, 16)
    page.wait_for_function("location.hash.includes('v=16')")


def test_keyboard_help_is_listed(page: Any, serve: Any, demo_dir: str) -> None:
    """The shortcuts are on the page and in the ? overlay."""
    s = serve(demo_dir)
    ready(page, s.url)
    footer = page.inner_text("#keys")
    for key in ("step", "diff", "first failure", "filter", "bisect", "follow head"):
        assert key in footer
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("Escape")
    assert not page.is_visible("#help")


def test_follows_a_running_job(page: Any, serve: Any, tmp_path: Any) -> None:
    """While a flow writes its job, the page's head, event list and lanes grow; follow keeps the cursor at the head."""
    path = str(tmp_path / "live")
    started = threading.Event()
    writer = threading.Thread(target=run_flow_into, args=(path, 30, 0.1, started), daemon=True)
    writer.start()
    started.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # wait for the first events on disk
        try:
            with open_job(path) as job:
                if job.head >= 5:
                    break
        except Exception:
            pass
        time.sleep(0.05)
    s = serve(path)
    ready(page, s.url + "#follow=1")
    head0 = ui_value(page, "ui.head")
    page.wait_for_function("window.__replay.tasks !== null")
    tasks0 = ui_value(page, "ui.tasks.n")
    page.wait_for_function(f"window.__replay.head > {head0 + 20} && window.__replay.tasks.n > {tasks0 + 5}",
                           timeout=30000)
    writer.join(60)
    with open_job(path) as job:
        final = job.head
        tasks = len({rec.data["task_id"] for rec in job.read() if rec.kind == "task_queued"})
    assert tasks == 31  # the entry call and one task per item
    # The state pane is loaded after the cursor moves: wait for the state of the final version too.
    page.wait_for_function(f"window.__replay.head === {final} && window.__replay.cursor === {final}"
                           f" && window.__replay.stateVersion === {final}", timeout=30000)
    page.wait_for_function(f"window.__replay.tasks.n === {tasks}", timeout=30000)
    page.wait_for_function(f"window.__replay.timeline.upto === {final}", timeout=30000)
    assert page_tasks(page) == index_tasks(s.explorer.index)  # ends and states too, grown piece by piece
    want, _ = expected_state(path, final)
    page.wait_for_function(f"document.getElementById('job-status').textContent === '{want['status']}'", timeout=30000)
    state, _counts = shown_state(page)
    assert state == want
    assert page.locator(f'#events-rows .row[data-seq="{final}"]').is_visible()  # the list followed too


def test_saved_file_page(page: Any, serve: Any, demo_dir: str, tmp_path: Any) -> None:
    """A saved job file (JobState.save) is served like a directory."""
    saved = str(tmp_path / "saved.rjob")
    state = JobState.open(demo_dir, readonly=True)
    try:
        state.save(saved)
    finally:
        state.close()
    s = serve(saved, follow=False)
    ready(page, s.url + "#v=20")
    wait_cursor(page, 20)
    page.wait_for_function("window.__replay.counts !== null")
    shown, counts = shown_state(page)
    want, want_counts = expected_state(demo_dir, 20)
    assert shown == want and counts == want_counts
    assert "file" in page.inner_text("#job-title")


def test_narrow_window_stacks(browser: Any, serve: Any, demo_dir: str) -> None:
    """At 600 px the panes stack and nothing overflows sideways."""
    from browser_helpers import ARTIFACTS

    s = serve(demo_dir)
    context = browser.new_context(viewport={"width": 600, "height": 1100}, bypass_csp=True)
    pg = context.new_page()
    try:
        ready(pg, s.url)
        # Both boxes measured in one frame, once the page has laid itself out (the lanes and
        # the list keep growing while the index is read, which moves the panes).
        pg.wait_for_function(
            "(() => { const l = document.getElementById('left').getBoundingClientRect();"
            " const r = document.getElementById('right').getBoundingClientRect();"
            " return r.top >= l.bottom - 1 && document.documentElement.scrollWidth <= window.innerWidth + 1; })()",
            timeout=10_000)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / "test_narrow_window_stacks.png"), full_page=True)
    finally:
        context.close()


def test_html_file_works_offline(page: Any, demo_dir: str, tmp_path: Any) -> None:
    """`routilux-replay html`: the file opens with no server and makes no request; scrubber, diff, blame work."""
    from click.testing import CliRunner

    from replay_tools.cli import cli

    out = tmp_path / "run.html"
    result = CliRunner().invoke(cli, ["html", demo_dir, "-o", str(out)])
    assert result.exit_code == 0, result.output
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    ready(page, out.as_uri() + "#v=1")
    wait_cursor(page, 1)
    with open_job(demo_dir) as job:
        head = job.head
        paused = next(rec.seq for rec in job.read() if rec.kind == "paused")
        for v in (1, 2, paused, head):
            page.evaluate("(v) => { const el = document.getElementById('slider'); el.value = v;"
                          " el.dispatchEvent(new Event('input')); }", v)
            wait_cursor(page, v)
            state, counts = shown_state(page)
            want, want_counts = expected_state(demo_dir, v)
            assert state == want and counts == want_counts, v
        # diff from the recorded changes lists the same fields as the library (history lists by count)
        page.evaluate(f"(() => {{ window.__replay.a = {paused}; window.__replay.b = {head}; }})()")
        page.keyboard.press("d")
        page.wait_for_function("window.__replay.lastDiff !== null")
        shown = sorted(t.split("\n")[0] for t in page.locator("#panel .diff-item td.jump").all_inner_texts())
        assert shown == sorted(d.path for d in diff(job, paused, head, history=False))
        page.click('.leaf[data-path="shared_data.limit"] .key')
        page.wait_for_function("window.__replay.lastBlame !== null")
        versions = page.locator("#panel tr.blame-item").evaluate_all("rs => rs.map(r => Number(r.dataset.version))")
        assert versions == [e.version for e in blame(job, "shared_data.limit")]
    assert page.is_disabled("#bisect-input")
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    assert page.inner_text("#verify-badge").startswith("✓ verified")


def test_damaged_job_page_says_where(page: Any, serve: Any, demo_dir: str, tmp_path: Any) -> None:
    """A log damaged mid-way: the page shows what precedes the damage and a banner naming it."""
    import shutil
    from pathlib import Path

    path = tmp_path / "job"
    shutil.copytree(demo_dir, path)
    seg = next(p for p in Path(path).iterdir() if p.suffix == ".seg")
    raw = bytearray(seg.read_bytes())
    raw[raw.index(b"operator check")] ^= 0x20
    seg.write_bytes(bytes(raw))
    s = serve(str(path), verify=True)
    ready(page, s.url + "#v=3")
    page.wait_for_selector("#banner.error")
    assert "damaged" in page.inner_text("#banner")
    page.wait_for_function("document.getElementById('verify-badge').classList.contains('bad')")


def test_postgres_job_page(page: Any, serve: Any, demo_dir: str) -> None:
    """A job in PostgreSQL is browsed like any other (needs EVENTLOG_PG_URL)."""
    import os
    import uuid

    import pytest

    url = os.environ.get("EVENTLOG_PG_URL")
    if not url:
        pytest.skip("set EVENTLOG_PG_URL=postgresql://... to run the PostgreSQL tests; .ci/run starts a server")
    from replay_tools import copy_job

    location = f"{url}#ui-{uuid.uuid4().hex[:12]}"
    copy_job(demo_dir, location)
    s = serve(location)
    ready(page, s.url + "#v=24")
    wait_cursor(page, 24)
    page.wait_for_function("window.__replay.counts !== null")
    state, counts = shown_state(page)
    want, want_counts = expected_state(demo_dir, 24)
    want["job_id"] = state["job_id"]  # the copy keeps the job id; compare the rest
    assert state == want and counts == want_counts
    assert "postgres" in page.inner_text("#job-title")


def test_pick_a_job_from_a_store(page: Any, tmp_path: Any) -> None:
    """`ui STORE`: the page lists the store's jobs; a click opens one with its state."""
    from replay_tools.ui.catalog import Catalog
    from replay_tools.ui.server import UiServer
    from routilux.job_store import JobStore

    store = JobStore(str(tmp_path / "store"))
    ids = []
    for n in range(3):
        job = store.create(flow_id="batch")
        job.update_shared_data("n", n)
        ids.append(job.job_id)
        job.close()
    catalog = Catalog(str(tmp_path / "store"), verify=False, follow=False)
    srv = UiServer(catalog, "127.0.0.1", 0)
    srv.start_in_thread()
    try:
        page.goto(srv.url)
        page.wait_for_selector("#picker tr.job-row")
        shown = page.locator("#picker tr.job-row td:first-child").all_inner_texts()
        assert sorted(shown) == sorted(ids)
        page.click(f"#picker a:text('{ids[1]}')")
        page.wait_for_selector("body[data-ready='1'] #state .leaf")
        assert ui_value(page, "ui.state.shared_data.n") == 1
        assert f"job={ids[1]}" in page.url
    finally:
        srv.shutdown()
        catalog.stop()


def test_page_patches_rebuild_odd_states(page: Any, tmp_path: Any, rng: Any) -> None:
    """The page's patcher rebuilds every state of a job with awkward keys and values (seeded ops)."""
    from click.testing import CliRunner

    from replay_tools import projection_at, state_dict
    from replay_tools.cli import cli
    from replay_tools.ui.display import to_display

    path = str(tmp_path / "odd")
    job = JobState.open(path, flow_id="odd")
    keys = ["a.b", "$tag", "x y", "0", "", "é"]
    values: list[Any] = [None, True, 3, -2.5, "s", b"\x00\x01", [1, [2]], {"$k": {"z": 1}}, [], {}]
    try:
        for _ in range(80):
            op = rng.randrange(7)
            if op == 0:
                job.update_shared_data(rng.choice(keys), rng.choice(values))
            elif op == 1:
                job.update_routine_state(rng.choice(["r1", "$r"]), {rng.choice(keys): rng.choice(values)})
            elif op == 2:
                job.add_deferred_event("r1", "later", {"v": rng.choice(values)})
            elif op == 3:
                job.deferred_events = []
            elif op == 4:
                job.pending_tasks = [{"n": rng.randrange(3)}] * rng.randrange(3)
            elif op == 5:
                job.record_execution("r1", rng.choice(["tick", "error"]), {"v": rng.choice(values)})
            else:
                data = job.serialize()
                data["shared_data"] = {"restored": rng.randrange(9)}
                job.deserialize(data)
    finally:
        job.close()
    out = tmp_path / "odd.html"
    assert CliRunner().invoke(cli, ["html", path, "-o", str(out)]).exit_code == 0
    ready(page, out.as_uri() + "#v=1")
    with open_job(path) as opened:
        for v in range(1, opened.head + 1):
            if v > 1:
                page.keyboard.press("ArrowRight")
            wait_cursor(page, v)
            want = to_display(state_dict(projection_at(opened, v, history=False), history=False))
            assert ui_value(page, "ui.state") == want, v
