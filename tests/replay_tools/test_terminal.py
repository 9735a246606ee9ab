"""routilux-replay in a real terminal (tmux), 60 and 200 columns wide, and piped.

What a user sees: no key column (version, kind, routine, time) broken across lines, no
escape codes at all with ``NO_COLOR=1``, the pager (``less -FRX``) out of the way for
output that fits one screen, ``COLUMNS`` honoured when piped, and exit code 0 when the
reader of a pipe goes away. Skipped (with that reason) where tmux is not installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from routilux.job_events import SCHEMA_VERSION

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

BIN = os.path.dirname(sys.executable)


class Terminal:
    """One tmux session of a given size on a private server, running bash."""

    def __init__(self, width: int, height: int = 60) -> None:
        self.socket = f"replay-test-{uuid.uuid4().hex[:8]}"
        self.width = width
        env = dict(os.environ)
        env.pop("TMUX", None)
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
                   "env -i HOME=/tmp TERM=xterm-256color PATH=" + shlex.quote(f"{BIN}:/usr/bin:/bin")
                   + " LANG=C.UTF-8 bash --norc --noprofile", env=env)

    def _tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30,
                              env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def run(self, command: str, timeout: float = 60) -> str:
        """Type ``command`` into the shell and return the screen once it has finished."""
        marker = f"done-{uuid.uuid4().hex[:6]}"
        # The typed line holds "done-x $?", never "done-x=": only the output matches (even
        # where the typed line wraps).
        self._tmux("send-keys", "-t", "t", "clear; " + command + f"; printf '%s=%s\\n' {marker} $?", "Enter")
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self._tmux("capture-pane", "-p", "-e", "-t", "t")
            if f"{marker}=" in screen:
                return screen
            time.sleep(0.1)
        pytest.fail(f"{command!r} did not finish: {screen!r}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)
        # tmux leaves its socket file behind: remove it (nothing else uses this name).
        base = os.environ.get("TMUX_TMPDIR") or "/tmp"
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(base, f"tmux-{os.getuid()}", self.socket))


@pytest.fixture
def terminal() -> Iterator[Any]:
    made: list[Terminal] = []

    def open_terminal(width: int) -> Terminal:
        term = Terminal(width)
        made.append(term)
        return term

    yield open_terminal
    for term in made:
        term.close()


def _rows(flow_job: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "replay_tools", "events", flow_job, "--json"], capture_output=True,
                          text=True, timeout=60, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def _table_lines(screen: str) -> list[str]:
    """The lines from the table's header to the end of the command's output."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("VERSION"))
    end = next(i for i, line in enumerate(lines) if line.startswith("done-") and i > start)
    return [line for line in lines[start:end] if line.strip()]


@pytest.mark.parametrize("width", [60, 200])
def test_events_on_a_terminal_keep_every_key_column_whole(terminal: Any, flow_job: str, width: int) -> None:
    """At 60 and 200 columns: one line per event, each row's version, kind and routine intact,
    nothing wider than the terminal, and not one escape code with NO_COLOR=1."""
    term = terminal(width)
    screen = term.run(f"NO_COLOR=1 routilux-replay events {shlex.quote(flow_job)}")
    assert "\x1b[" not in screen
    table = _table_lines(screen)
    rows = _rows(flow_job)
    assert len(table) == 1 + len(rows)  # the header and one line per event: nothing wrapped
    for line, row in zip(table[1:], rows, strict=True):
        assert len(line) <= width
        cells = line.split()
        assert cells[0] == str(row["seq"]) and row["kind"] in cells and (row["routine"] or "-") in cells
        if width == 200:
            assert row["time"][:26] in line  # the time (a key column) is shown whole
    if width == 60:
        assert "note: TIME, DATA left out to fit 60 columns" in screen
    else:
        assert any(line.endswith("…") for line in table)  # data is what got cut


def test_colour_on_a_terminal_and_none_with_no_color(terminal: Any, flow_job: str) -> None:
    """Without NO_COLOR the header is bold on a terminal; with it, no escape code anywhere."""
    term = terminal(200)
    assert "\x1b[1m" in term.run(f"routilux-replay verify {shlex.quote(flow_job)}")
    assert "\x1b[" not in term.run(f"NO_COLOR=1 routilux-replay verify {shlex.quote(flow_job)}")
    assert "\x1b[" not in term.run(f"routilux-replay verify {shlex.quote(flow_job)} --color never")


def test_piped_output_honours_columns_and_ends_quietly(terminal: Any, flow_job: str) -> None:
    """Piped: COLUMNS=60 fits 60 columns; without it rows are whole; `| head -1` exits 0 quietly."""
    term = terminal(200)
    job = shlex.quote(flow_job)
    narrow = term.run(f"COLUMNS=60 routilux-replay events {job} 2>/dev/null | cat")
    table = _table_lines(narrow)
    assert table[0].split() == ["VERSION", "KIND", "ROUTINE"] and all(len(line) <= 60 for line in table)
    whole = term.run(f"routilux-replay events {job} --from 1 --to 1 | cat")
    assert f'"flow_id": "order-batch", "schema": {SCHEMA_VERSION}}}' in whole
    assert all(not line.endswith(" ") for line in _table_lines(whole))
    piped = term.run(f"routilux-replay events {job} | head -1; echo status=${{PIPESTATUS[0]}}")
    assert "status=0" in piped and "rror" not in piped and "Traceback" not in piped


def test_long_output_is_paged_and_quitting_the_pager_is_success(flow_job: str) -> None:
    """More than a screen: less shows the first page (colours kept: -R); 'q' ends it with exit 0."""
    term = Terminal(200, height=12)
    try:
        marker = "paged-done"
        term._tmux("send-keys", "-t", "t", f"routilux-replay events {shlex.quote(flow_job)}; "
                   f"printf '%s=%s\\n' {marker} $?", "Enter")
        deadline = time.monotonic() + 30
        screen = ""
        while time.monotonic() < deadline:
            screen = term._tmux("capture-pane", "-p", "-e", "-t", "t")
            if "\x1b[1mVERSION" in screen or "VERSION" in screen:
                break
            time.sleep(0.1)
        assert f"{marker}=" not in screen  # still in the pager
        assert "job_created" in screen and "status_set" in screen and "38  " not in screen
        term._tmux("send-keys", "-t", "t", "q")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            screen = term._tmux("capture-pane", "-p", "-t", "t")
            if f"{marker}=" in screen:
                break
            time.sleep(0.1)
        assert f"{marker}=0" in screen
    finally:
        term.close()
