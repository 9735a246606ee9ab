"""Issue 13, hole 2: deleting ``LOCK`` under a live writer must not let a second writer in.

The operator's "clean a stale lock" (or a tmp cleaner) removes ``<log>/LOCK`` while the
first writer is appending. A second process then tries to open the log for writing: it
must be refused (``LogLockedError``) and append nothing, and every append the first
writer acknowledged, before and after the deletion, must survive.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import eventlog
from eventlog import LogLockedError

FIRST = textwrap.dedent(
    r'''
    import sys
    import eventlog

    path = sys.argv[1]
    log = eventlog.open_log(path, durability="batch")
    for i in range(1, 51):
        rec = log.append("first", {"i": i})
        print("ACK", rec.seq, flush=True)
    print("READY", flush=True)
    sys.stdin.readline()            # the parent deletes LOCK and runs the second writer
    try:
        for i in range(51, 101):
            rec = log.append("first", {"i": i})
            print("ACK", rec.seq, flush=True)
        log.close()
    except eventlog.EventLogError as exc:
        print("STOPPED", type(exc).__name__, flush=True)
    print("DONE", flush=True)
    '''
)

SECOND = textwrap.dedent(
    r'''
    import sys
    import eventlog

    try:
        log = eventlog.open_log(sys.argv[1], durability="always")
    except eventlog.LogLockedError as exc:
        print("REFUSED", exc.pid, flush=True)
        sys.exit(0)
    for i in range(100):
        log.append("second", {"i": i})
        print("ACK2", flush=True)
    log.close()
    print("OPENED", flush=True)
    '''
)


def _lines_until(proc: subprocess.Popen[str], word: str) -> list[str]:
    lines = []
    while True:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line, f"process ended before {word!r}: {lines}"
        lines.append(line.strip())
        if line.startswith(word):
            return lines


def test_deleting_lock_under_a_live_writer_keeps_it_exclusive(tmp_path: Path) -> None:
    """A second writer is refused after LOCK is deleted, and no acknowledged append is lost."""
    path = str(tmp_path / "log")
    first_py = tmp_path / "first.py"
    first_py.write_text(FIRST)
    second_py = tmp_path / "second.py"
    second_py.write_text(SECOND)
    first = subprocess.Popen([sys.executable, str(first_py), path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = _lines_until(first, "READY")
        os.unlink(os.path.join(path, "LOCK"))  # the operator "cleans a stale lock"
        second = subprocess.run([sys.executable, str(second_py), path], capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 0, second.stderr
        assert second.stdout.startswith("REFUSED"), second.stdout
        assert "ACK2" not in second.stdout
        assert f"REFUSED {first.pid}" in second.stdout or "REFUSED None" in second.stdout
        out, err = first.communicate("go\n", timeout=60)
        lines += out.splitlines()
        assert "DONE" in lines, err
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    acked = [int(line.split()[1]) for line in lines if line.startswith("ACK")]
    assert acked == list(range(1, 101))
    with eventlog.open_log(path, readonly=True) as log:
        records = list(log.read())
    assert [(r.seq, r.kind, r.data["i"]) for r in records] == [(i, "first", i) for i in range(1, 101)]
    assert eventlog.verify(path).ok


def test_lock_deleted_then_second_open_in_process_is_refused(tmp_path: Path) -> None:
    """In one process too: a second open for writing is refused with LOCK gone."""
    path = str(tmp_path / "log")
    with eventlog.open_log(path) as log:
        log.append("e", {"i": 1})
        os.unlink(os.path.join(path, "LOCK"))
        with pytest.raises(LogLockedError):
            eventlog.open_log(path)
        log.append("e", {"i": 2})
    with eventlog.open_log(path) as again:  # released on close: the next writer gets in
        assert again.head_seq == 2
