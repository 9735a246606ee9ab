"""Helpers of the browser tests: Chromium discovery, an in-process server, test flows."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from replay_tools import open_job
from replay_tools.ui.explorer import Explorer
from replay_tools.ui.server import UiServer
from routilux import ErrorHandler, ErrorStrategy, Flow, JobState, Routine

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_binary() -> str | None:
    """Debian's Chromium, or ``$CHROMIUM``."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


class Served:
    """A job served by an in-process UiServer."""

    def __init__(self, path: str, *, follow: bool = True, verify: bool = True, start: bool = True) -> None:
        self.job = open_job(path)
        self.explorer = Explorer(self.job)
        if start:  # else the test drives the index itself
            self.explorer.start(follow=follow, verify=verify)
        self.server = UiServer(self.explorer, "127.0.0.1", 0)
        self.server.start_in_thread()
        self.url = self.server.url

    def close(self) -> None:
        self.server.shutdown()
        self.explorer.stop()
        self.job.close()


class Flaky(Routine):
    """Fails on odd items (the routine's STOP handler marks it failed)."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("in", self.on)

    def on(self, i: int = 0, **_: Any) -> None:
        if i % 2:
            msg = f"item {i} is odd"
            raise ValueError(msg)
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data("last_good", i)


class Source(Routine):
    """Emits ``n`` items, ``delay`` seconds apart."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("item", ["i"])

    def go(self, n: int = 4, delay: float = 0.0, **_: Any) -> None:
        for i in range(n):
            self.emit("item", i=i)
            if delay:
                time.sleep(delay)


def failing_flow() -> Flow:
    """source -> flaky (STOP on error)."""
    flow = Flow("flaky-batch", execution_strategy="sequential")
    flow.add_routine(Source(), "source")
    flaky = Flaky()
    flaky.set_error_handler(ErrorHandler(strategy=ErrorStrategy.STOP))
    flow.add_routine(flaky, "flaky")
    flow.connect("source", "item", "flaky", "in")
    return flow


def run_flow_into(path: str, n: int, delay: float = 0.0, started: threading.Event | None = None) -> None:
    """Run :func:`failing_flow` into a durable job at ``path``."""
    flow = failing_flow()
    job = JobState.open(path, flow_id=flow.flow_id)
    try:
        if started is not None:
            started.set()
        flow.execute("source", {"n": n, "delay": delay}, job_state=job)
        JobState.wait_for_completion(flow, job, timeout=120)
    finally:
        flow.shutdown(wait=True, timeout=5)
        job.close()


def ready(page: Any, url: str) -> None:
    """Open ``url`` and wait until the page has shown its first state."""
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")


def ui_value(page: Any, expr: str) -> Any:
    """Evaluate an expression on ``window.__replay`` (the page's state)."""
    return page.evaluate(f"(() => {{ const ui = window.__replay; return {expr}; }})()")


def list_rows(page: Any) -> dict[int, list[str]]:
    """Every row of the page's event list, {version: [time, kind, routine, data]}, scrolling through it."""
    rows: dict[int, list[str]] = {}
    import re

    count = re.match(r"[\d,]+", page.inner_text("#events-count"))
    total = int(count.group(0).replace(",", "")) if count else 0
    page.evaluate("document.getElementById('events').scrollTop = 0")
    for _ in range(10_000):
        # The list renders its rows for a scroll position on the next frames: read them after two.
        page.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
        page.wait_for_function("document.querySelectorAll('#events-rows .row.placeholder').length === 0")
        shown = page.locator("#events-rows .row").evaluate_all(
            "rs => rs.filter(r => r.style.display !== 'none' && r.dataset.seq).map(r => "
            "[Number(r.dataset.seq), ...[...r.children].slice(1).map(c => c.textContent)])")
        rows.update((r[0], r[1:]) for r in shown)
        if len(rows) >= total:
            return rows
        moved = page.evaluate("(() => { const b = document.getElementById('events'); const before = b.scrollTop;"
                              " b.scrollTop += b.clientHeight - 44; return b.scrollTop !== before; })()")
        if not moved:
            return rows
    return rows


def page_tasks(page: Any) -> dict[int, tuple[int, int]]:
    """The page's task table: {task row: (state, ended version)}."""
    rows = page.evaluate("(() => { const t = window.__replay.tasks; const out = [];"
                         " for (let i = 0; i < t.n; i++) out.push([t.row[i], t.state[i], t.eseq[i]]); return out; })()")
    return {r: (state, ended) for r, state, ended in rows}


def index_tasks(index: Any) -> dict[int, tuple[int, int]]:
    """The index's task table in the same form."""
    return {t.row: (t.state, t.ended) for t in index.tasks_since(0)}
