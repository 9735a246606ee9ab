"""Benchmark the debugger page on a 1M-event durable job, measured in the browser (issue 15).

Targets: first paint <= 1 s, a cursor move shows its state <= 150 ms, scrolling the
event list never below 30 frames/s.

The job is written once (cached in ``--dir``) by a real flow: a source emitting items,
a transform that fails on some of them (errors continued past) and a store that
updates shared data and sends outputs, on four workers, into ``JobState.open`` (batch
durability, snapshots by the JobState policy). About 7.4 events per item; 136k items
make ~1M events.

Each measurement starts ``routilux-replay ui --no-browser`` as a subprocess (what a user
runs) and drives Debian's Chromium through Playwright, reading times from the page's
Performance API and ``requestAnimationFrame``:

* cold load: navigation start -> first contentful paint, -> the state pane and the
  first event rows shown, -> the first bars and the full timeline drawn, and -> every
  list filter ready (the index and the routines done); a fresh server and browser
  context per run;
* cursor move: a random version set on the slider -> its state rendered (and painted,
  the next animation frame); also single steps with the arrow key. Measured once the
  server has settled (index and verify done);
* scroll: the event list scrolled by a fixed step every animation frame for a few
  seconds (slow and fast), frames per second and the longest frame;
* first text filter: on a fresh settled page, a text typed into the filter -> the final
  count and the first matching rows shown.

``--code before=DIR`` measures another source tree (an older checkout) in the same run,
alternating with this one, so the two are compared under the same load.

There is no peer to compare with (routilux 0.10.0 has no viewer). The machine is shared
and noisy: figures are medians of several runs; rerun before trusting a small change.

    python benchmarks/bench_ui.py                  # 1M events
    python benchmarks/bench_ui.py --events 50000   # a quick run
    git worktree add /tmp/before <commit>          # then, to compare with it:
    python benchmarks/bench_ui.py --code before=/tmp/before
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from routilux import ErrorHandler, ErrorStrategy, Flow, JobState, Routine

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EVENTS_PER_ITEM = 7.38  # measured on this flow


class Source(Routine):
    """Emits ``n`` items."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", self.go)
        self.define_event("item", ["i"])

    def go(self, n: int, **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        ctx.job_state.update_shared_data("total", n)
        for i in range(n):
            self.emit("item", i=i)


class Transform(Routine):
    """Fails on some items; keeps a routine state with nested data; emits a nested value."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("in", self.on)
        self.define_event("out", ["i", "value"])

    def on(self, i: int, **_: Any) -> None:
        if i % 997 == 13:
            msg = f"bad item {i}"
            raise ValueError(msg)
        ctx = self.get_execution_context()
        assert ctx is not None
        if i % 10 == 0:
            ctx.job_state.update_routine_state("transform", {"status": "running", "last": i,
                                                             "stats": {"seen": i, "tags": ["a", "b"]}})
        self.emit("out", i=i, value={"id": f"item-{i}", "score": i * 0.5, "tags": ["x", "y"]})


class Store(Routine):
    """Updates shared data and sends an output now and then."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("in", self.on)

    def on(self, i: int, value: dict[str, Any], **_: Any) -> None:
        ctx = self.get_execution_context()
        assert ctx is not None
        if i % 5 == 0:
            ctx.job_state.update_shared_data("stored", i)
        if i % 50 == 0:
            self.send_output("batch", upto=i)


def build_job(path: str, events: int) -> None:
    """Write the benchmark job (about ``events`` events) at ``path``."""
    import logging

    logging.getLogger("routilux").setLevel(logging.CRITICAL)  # the failing items would print a traceback each
    flow = Flow("ui-bench", execution_strategy="concurrent", max_workers=4)
    flow.add_routine(Source(), "source")
    transform = Transform()
    transform.set_error_handler(ErrorHandler(strategy=ErrorStrategy.CONTINUE))
    flow.add_routine(transform, "transform")
    flow.add_routine(Store(), "store")
    flow.connect("source", "item", "transform", "in")
    flow.connect("transform", "out", "store", "in")
    job = JobState.open(path, flow_id=flow.flow_id, durability="batch")
    try:
        flow.execute("source", {"n": max(1, int(events / EVENTS_PER_ITEM))}, job_state=job)
        JobState.wait_for_completion(flow, job, timeout=3600)
    finally:
        flow.shutdown(wait=True, timeout=10)
        job.close()


@contextmanager
def ui_server(path: str, code: str | None = None) -> Iterator[str]:
    """``routilux-replay ui PATH --no-browser --port 0`` in a subprocess; yields its URL.

    ``code``: a source tree to run instead of the installed one (put first on PYTHONPATH),
    to compare two versions of the page in the same run.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if code is not None:
        env["PYTHONPATH"] = code + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # cwd: `python -m` puts the working directory first on sys.path, before PYTHONPATH.
    proc = subprocess.Popen([sys.executable, "-m", "replay_tools", "ui", path, "--no-browser", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=code)
    try:
        assert proc.stdout is not None
        url = None
        for _ in range(10):
            m = re.search(r"open (http://\S+)", proc.stdout.readline())
            if m:
                url = m.group(1)
                break
        if url is None:
            msg = "the ui server did not print its address"
            raise RuntimeError(msg)
        yield url
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# Resolves with performance.now() at the first animation frame where `cond` holds (polled
# every frame), so the time is the page's own, comparable between versions of the page.
WHEN_JS = """(cond) => new Promise((resolve) => {
  const f = new Function('ui', 'return (' + cond + ');');
  const tick = () => { let ok = false; try { ok = f(window.__replay); } catch (e) { ok = false; }
    if (ok) resolve(performance.now()); else requestAnimationFrame(tick); };
  tick();
})"""

# The page holds every task of the job and has read the log to its head (both versions).
FULL_TIMELINE = "ui.timeline && ui.timeline.upto >= ui.head && ui.tasks && ui.tasks.n > 0"
# Every list filter can be answered for the whole job (the older page: the index is done).
FILTERS_READY = "ui.scannedSeen && (ui.indexDone === undefined || ui.indexDone)"


def first_paint(browser: Any, path: str, code: str | None) -> dict[str, float]:
    """One cold load: fresh server, fresh context; until the timeline is complete and filters are ready."""
    with ui_server(path, code) as url:
        ctx = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        page = ctx.new_page()
        try:
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']", timeout=60000)
            page.wait_for_function("window.__replay.perf.firstRows !== null", timeout=60000)
            full = page.evaluate(WHEN_JS, FULL_TIMELINE)
            ready = page.evaluate(WHEN_JS, FILTERS_READY)
            times = page.evaluate("""() => {
                const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                const ui = window.__replay;
                return {fcp: fcp ? fcp.startTime : -1, state: ui.perf.firstState, rows: ui.perf.firstRows,
                        bars: ui.perf.firstTimeline === undefined ? -1 : ui.perf.firstTimeline};
            }""")
            return {**times, "full": full, "ready": ready}
        finally:
            ctx.close()


CURSOR_JS = """async (v) => {
  const ui = window.__replay;
  const slider = document.getElementById('slider');
  const t0 = performance.now();
  slider.value = v;
  slider.dispatchEvent(new Event('input'));
  await new Promise((resolve) => {
    const check = () => (ui.lastRender && ui.lastRender.version === v && ui.lastRender.at >= t0)
      ? requestAnimationFrame(resolve) : setTimeout(check, 1);
    check();
  });
  return [ui.lastRender.at - t0, performance.now() - t0];
}"""

STEP_JS = """async () => {
  const ui = window.__replay;
  const v = ui.cursor + 1;
  const t0 = performance.now();
  document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}));
  await new Promise((resolve) => {
    const check = () => (ui.lastRender && ui.lastRender.version === v && ui.lastRender.at >= t0)
      ? requestAnimationFrame(resolve) : setTimeout(check, 1);
    check();
  });
  return [ui.lastRender.at - t0, performance.now() - t0];
}"""

SCROLL_JS = """async ([stepPx, seconds]) => {
  const box = document.getElementById('events');
  box.scrollTop = 0;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const frames = [];
  const start = performance.now();
  let last = start;
  await new Promise((resolve) => {
    const tick = (now) => {
      frames.push(now - last);
      last = now;
      box.scrollTop += stepPx;
      if (now - start < seconds * 1000) requestAnimationFrame(tick); else resolve();
    };
    requestAnimationFrame(tick);
  });
  const elapsed = last - start;
  const intervals = frames.slice(1);
  const placeholders = document.querySelectorAll('#events-rows .row.placeholder').length;
  return {fps: intervals.length / (elapsed / 1000), worst: Math.max(...intervals),
          slow: intervals.filter((x) => x > 1000 / 30).length, frames: intervals.length,
          rowsPassed: box.scrollTop / 22, placeholders};
}"""

# Type a text into the filter box (the page waits 300 ms for typing to stop: included),
# then wait until the list shows the final count of matching events and its first rows.
TEXT_FILTER_JS = """async (text) => {
  const input = document.getElementById('text-filter');
  const count = document.getElementById('events-count');
  const t0 = performance.now();
  input.value = text;
  input.dispatchEvent(new Event('input'));
  await new Promise((resolve) => {
    const check = () => {
      const shown = count.textContent;
      const rows = document.querySelectorAll('#events-rows .row:not(.placeholder)').length;
      if (/^[\\d,]+ matching/.test(shown) && !shown.includes('so far') && (rows > 0 || shown.startsWith('0 ')))
        resolve(); else setTimeout(check, 5);
    };
    check();
  });
  return [performance.now() - t0, count.textContent];
}"""

#: Texts typed into the filter: a selective one, one most events hold, and a number
#: (numbers are stored in binary: every payload is decoded for it).
FILTER_TEXTS = ("bad item", "transform", "4711")


def settled_page(browser: Any, url: str) -> Any:
    """A page whose index, routines and verify are done (cursor moves and scrolling measured there)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=60000)
    page.wait_for_function(f"(() => {{ const ui = window.__replay; return ({FULL_TIMELINE}) && ({FILTERS_READY}) "
                           f"&& ui.counts !== null; }})()", timeout=300000)
    page.wait_for_function("document.getElementById('verify-badge').classList.contains('ok')", timeout=300000)
    return ctx, page


def _med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "routilux-bench-ui"))
    parser.add_argument("--runs", type=int, default=5, help="cold loads for first paint (per version)")
    parser.add_argument("--moves", type=int, default=30, help="random cursor moves and arrow steps")
    parser.add_argument("--filter-runs", type=int, default=2, help="fresh settled pages per filter text")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("EVENTLOG_TEST_SEED", "20261128")))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--cold-only", action="store_true", help="measure only the cold loads")
    parser.add_argument("--code", action="append", default=[], metavar="LABEL=DIR",
                        help="also measure the page of the source tree DIR (e.g. before=/tmp/old-checkout); "
                             "versions are measured in turn, run by run")
    args = parser.parse_args()

    path = os.path.join(args.dir, f"job-{args.events}")
    if not os.path.isdir(path):
        os.makedirs(args.dir, exist_ok=True)
        tmp = path + ".partial"
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.perf_counter()
        build_job(tmp, args.events)
        os.replace(tmp, path)
        print(f"built {path} in {time.perf_counter() - t0:.0f} s")
    from replay_tools import open_job

    with open_job(path) as job:
        head = job.head
    print(f"job: {path}, {head:,} events; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    versions: list[tuple[str, str | None]] = [(label, d) for label, _, d in (c.partition("=") for c in args.code)]
    versions.append(("this", None))

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
        loads: dict[str, list[dict[str, float]]] = {label: [] for label, _ in versions}
        for _ in range(args.runs):  # interleaved: each run loads every version once
            for label, code in versions:
                loads[label].append(first_paint(browser, path, code))
        print("\nCold loads (ms after navigation start; medians of", args.runs, "runs, versions interleaved)")
        for key, name, target in (("fcp", "first contentful paint", 1000), ("state", "state pane shown", 1000),
                                  ("rows", "first event rows shown", None), ("bars", "first timeline bars", None),
                                  ("full", "full timeline", None), ("ready", "every filter ready", None)):
            for label, _ in versions:
                xs = [x[key] for x in loads[label] if x[key] is not None and x[key] >= 0]
                runs = ", ".join(f"{x:.0f}" for x in xs) or "-"
                verdict = "" if target is None else f"   target <= {target} ms: {'ok' if _med(xs) <= target else 'MISSED'}"
                print(f"  {name:24s} {label:7s} median {_med(xs):7.0f}   (runs: {runs}){verdict}")

        if args.cold_only:
            browser.close()
            return
        rng = random.Random(args.seed)
        targets = [rng.randint(1, head) for _ in range(args.moves)]
        print("\nSettled page (index, routines and verify done)")
        for label, code in versions:
            with ui_server(path, code) as url:
                ctx, page = settled_page(browser, url)
                try:
                    jumps = [page.evaluate(CURSOR_JS, v) for v in targets]
                    page.evaluate(CURSOR_JS, 1)
                    steps = [page.evaluate(STEP_JS) for _ in range(args.moves)]
                    for name, xs in (("cursor move (random)", jumps), ("cursor step (arrow key)", steps)):
                        painted = _med([x[1] for x in xs])
                        print(f"  {name:24s} {label:7s} median {_med([x[0] for x in xs]):7.1f} ms rendered, "
                              f"{painted:6.1f} ms painted, worst {max(x[1] for x in xs):6.1f} ms   "
                              f"target <= 150 ms: {'ok' if painted <= 150 else 'MISSED'}")
                    for name, step in (("scroll 3 rows/frame", 66), ("scroll 40 rows/frame", 880)):
                        runs = [page.evaluate(SCROLL_JS, [step, 3]) for _ in range(3)]
                        fps = _med([r["fps"] for r in runs])
                        print(f"  {name:24s} {label:7s} median {fps:5.1f} frames/s, longest frame "
                              f"{max(r['worst'] for r in runs):5.1f} ms, {sum(r['slow'] for r in runs)}/"
                              f"{sum(r['frames'] for r in runs)} frames over 33 ms   "
                              f"target >= 30/s: {'ok' if fps >= 30 else 'MISSED'}")
                finally:
                    ctx.close()

        print("\nFirst text filter on a settled page (typed -> final count and rows shown; includes the "
              "page's 300 ms typing pause)")
        for text in FILTER_TEXTS:
            results: dict[str, list[float]] = {label: [] for label, _ in versions}
            shown: dict[str, str] = {}
            for _ in range(args.filter_runs):
                for label, code in versions:
                    with ui_server(path, code) as url:
                        ctx, page = settled_page(browser, url)
                        try:
                            ms, count = page.evaluate(TEXT_FILTER_JS, text)
                            results[label].append(ms)
                            shown[label] = count
                        finally:
                            ctx.close()
            for label, _ in versions:
                runs = ", ".join(f"{x:.0f}" for x in results[label])
                print(f"  {text!r:12s} {label:7s} median {_med(results[label]):7.0f} ms   (runs: {runs})   "
                      f"{shown.get(label, '')}")
        browser.close()


if __name__ == "__main__":
    main()
