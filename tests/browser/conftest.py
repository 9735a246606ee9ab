"""Browser tests of the debugger page: headless Chromium driven by Playwright.

Chromium is Debian's (``/usr/bin/chromium``; ``.ci/run`` installs it when missing);
Playwright never downloads a browser here. The tests skip, saying why, only when no
Chromium binary exists. Each test's final page is saved as a screenshot under
``test-artifacts/browser/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from browser_helpers import ARTIFACTS, CHROMIUM_FLAGS, Served, chromium_binary, run_flow_into

from replay_tools.demo import run_flow


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no Chromium binary (install Debian's chromium package; .ci/run does)")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=binary, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page; its final state is saved as a screenshot, and page errors fail the test."""
    # bypass_csp: Playwright polls predicates with eval, which the page's policy forbids (as it should).
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(15000)
    try:
        yield pg
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
        finally:
            context.close()
    assert not errors, f"errors in the page: {errors}"


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Serve a job path; stopped at the end of the test."""
    started: list[Served] = []

    def start(path: str, **kw: Any) -> Served:
        s = Served(path, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo flow's durable job."""
    path = str(tmp_path_factory.mktemp("browser") / "demo")
    run_flow(path)
    return path


@pytest.fixture(scope="session")
def failing_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A durable job whose routine fails on odd items."""
    path = str(tmp_path_factory.mktemp("browser") / "failing")
    run_flow_into(path, 6)
    return path
