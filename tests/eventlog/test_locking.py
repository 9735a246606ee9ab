"""T6: one writer per log, enforced by an OS lock; readers never interfere.

* A second writer (in another process, or a second ``open_log`` in the same process)
  gets :class:`~eventlog.LogLockedError` naming the log's path and the holder's pid,
  at once: the open must not wait for the holder (bbolt's ``Timeout=0`` hangs forever).
* After the holder is SIGKILLed, the kernel has dropped its lock: a new writer opens.
* A read-only reader alongside a writer process appending 500 records never raises,
  always sees a contiguous prefix, and never repairs (modifies) anything; a read-only
  open of a log with a torn tail reads the complete prefix and changes no byte.
* Processes racing to create the same new log: one writer at a time, the log intact.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog import LogLockedError

HOLDER = textwrap.dedent(
    r'''
    import sys, time
    import eventlog

    path, n, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    log = eventlog.open_log(path, segment_bytes=4096)
    print("OPEN", flush=True)
    for i in range(1, n + 1):
        rec = log.append("e", {"i": i, "pad": "r" * (i % 64)})
        print("ACK", rec.seq, flush=True)
        if pause and i % 10 == 0:
            time.sleep(pause)
    print("HOLDING", flush=True)
    sys.stdin.readline()  # hold the lock until the parent says so (or kills us)
    log.close()
    print("CLOSED", flush=True)
    '''
)


def _spawn_holder(tmp_path: Path, path: str, n: int = 5, pause: float = 0.0) -> subprocess.Popen[str]:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    return subprocess.Popen([sys.executable, str(script), path, str(n), str(pause)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _reap(proc: subprocess.Popen[str]) -> None:
    """Kill (if still running) and wait for a holder, and close its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            try:
                pipe.close()
            except BrokenPipeError:
                pass


def _wait_for(proc: subprocess.Popen[str], word: str) -> list[str]:
    lines = []
    while True:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line, f"holder exited before {word!r}: {lines}"
        lines.append(line.strip())
        if line.startswith(word):
            return lines


def _open_in_thread(path: str, **kw: Any) -> tuple[Any, BaseException | None, float, bool]:
    """Try ``open_log`` in a thread; return (log, error, seconds, finished)."""
    box: dict[str, Any] = {}

    def target() -> None:
        t0 = time.monotonic()
        try:
            box["log"] = eventlog.open_log(path, **kw)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["err"] = exc
        box["dt"] = time.monotonic() - t0

    t = threading.Thread(target=target, daemon=True)
    t.start()
    # A generous bound: this proves the open does not wait for the holder (which holds
    # the lock until told to stop), not how fast it is.
    t.join(10)
    return box.get("log"), box.get("err"), box.get("dt", -1.0), not t.is_alive()


def test_second_writer_in_another_process_is_refused_at_once(tmp_path: Path) -> None:
    """While another process holds the log, open_log raises LogLockedError naming path and pid, without waiting."""
    path = str(tmp_path / "log")
    holder = _spawn_holder(tmp_path, path)
    try:
        _wait_for(holder, "HOLDING")
        log, err, _dt, finished = _open_in_thread(path)
        assert finished, "open_log blocked while another process held the lock"
        assert log is None, "a second writer was allowed"
        assert isinstance(err, LogLockedError), repr(err)
        assert err.pid == holder.pid
        assert os.path.realpath(err.path) == os.path.realpath(path)
        assert str(holder.pid) in str(err) and path in str(err)
        # A reader is welcome meanwhile, and sees the holder's records.
        reader = eventlog.open_log(path, readonly=True)
        try:
            assert reader.head_seq == 5
        finally:
            reader.close()
        holder.stdin.write("\n")  # type: ignore[union-attr]
        holder.stdin.flush()  # type: ignore[union-attr]
        _wait_for(holder, "CLOSED")
    finally:
        _reap(holder)
    again = eventlog.open_log(path)  # released on close
    try:
        assert again.append("e", {}).seq == 6
    finally:
        again.close()


def test_writer_in_another_process_is_refused_while_we_hold(tmp_path: Path) -> None:
    """The other direction: our open log makes a writer in another process fail with our pid."""
    path = str(tmp_path / "log")
    log = eventlog.open_log(path)
    try:
        log.append("e", {})
        code = (
            "import sys, eventlog\n"
            "try:\n"
            "    eventlog.open_log(sys.argv[1])\n"
            "except eventlog.LogLockedError as e:\n"
            "    print('LOCKED', e.pid)\n"
        )
        out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=60)
        assert out.stdout.split() == ["LOCKED", str(os.getpid())], out.stdout + out.stderr
    finally:
        log.close()


def test_second_open_in_same_process_is_refused(tmp_path: Path) -> None:
    """Two writers in one process conflict too; the error names our own pid; close releases."""
    path = str(tmp_path / "log")
    first = eventlog.open_log(path)
    try:
        _log, err, _dt, finished = _open_in_thread(path)
        assert finished, "a second open in the same process blocked"
        assert isinstance(err, LogLockedError), repr(err)
        assert err.pid == os.getpid()
        assert path in str(err)
        with pytest.raises(LogLockedError):
            eventlog.open_log(path)
        first.append("e", {"x": 1})
    finally:
        first.close()
    second = eventlog.open_log(path)
    try:
        assert second.head_seq == 1
    finally:
        second.close()


def test_lock_released_when_holder_is_killed(tmp_path: Path) -> None:
    """After SIGKILL of the holder, a new writer opens and finds every acked record."""
    path = str(tmp_path / "log")
    holder = _spawn_holder(tmp_path, path, n=40)
    try:
        lines = _wait_for(holder, "HOLDING")
        acked = [int(x.split()[1]) for x in lines if x.startswith("ACK")]
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    finally:
        _reap(holder)
    log = eventlog.open_log(path)
    try:
        assert [r.seq for r in log.read()] == acked == list(range(1, 41))
        assert log.append("e", {}).seq == 41
    finally:
        log.close()


def test_readonly_reader_alongside_writer_sees_prefixes_and_repairs_nothing(tmp_path: Path) -> None:
    """A read-only reader next to a writer appending 500 records never fails and only ever sees prefixes."""
    path = str(tmp_path / "log")
    total = 500
    holder = _spawn_holder(tmp_path, path, n=total, pause=0.004)
    seen_heads: list[int] = []
    followed: list[int] = []
    errors: list[BaseException] = []
    try:
        _wait_for(holder, "OPEN")
        follower_log = eventlog.open_log(path, readonly=True)

        def follow() -> None:
            try:
                for rec in follower_log.follow(1, timeout=20, poll_interval=0.002):
                    followed.append(rec.seq)
                    assert rec.data["i"] == rec.seq
                    if rec.seq >= total:
                        break
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        t = threading.Thread(target=follow, daemon=True)
        t.start()
        while holder.poll() is None:
            # A fresh read-only open each time: the live tail must look like EOF.
            reader = eventlog.open_log(path, readonly=True)
            try:
                recs = list(reader.read())
                assert [r.seq for r in recs] == list(range(1, len(recs) + 1))
                assert all(r.data == {"i": r.seq, "pad": "r" * (r.seq % 64)} for r in recs)
                assert reader.head_seq >= len(recs)
                seen_heads.append(len(recs))
            finally:
                reader.close()
            if seen_heads[-1] >= total:
                break
        t.join(30)
        follower_log.close()
        holder.stdin.write("\n")  # type: ignore[union-attr]
        holder.stdin.flush()  # type: ignore[union-attr]
        _wait_for(holder, "CLOSED")
    finally:
        _reap(holder)
    assert not errors, errors
    assert followed == list(range(1, total + 1)), "the read-only follower skipped or repeated a seq"
    assert seen_heads == sorted(seen_heads), "a later reader saw fewer records than an earlier one"
    assert len(set(seen_heads)) > 2, f"the reader never saw the log grow: {seen_heads[:10]}"
    assert glob.glob(os.path.join(path, "**", "*.torn-*"), recursive=True) == [], "a reader repaired a live tail"
    report = eventlog.verify(path)  # type: ignore[attr-defined]
    assert report.ok and report.head_seq == total, str(report)


def test_readonly_never_modifies_a_torn_log(tmp_path: Path, tree_digest: Any) -> None:
    """A read-only open of a log with a torn tail reads the complete prefix and changes no byte."""
    path = str(tmp_path / "log")
    log = eventlog.open_log(path)
    recs = [log.append("e", {"i": i, "pad": "t" * 50}) for i in range(60)]
    log.close()
    (seg,) = glob.glob(os.path.join(path, "*.seg"))
    size = os.path.getsize(seg)
    # The real next frame, written by a writer on a copy of the log ...
    subprocess.run(["cp", "-a", path, path + "-copy"], check=True)
    other = eventlog.open_log(path + "-copy")
    other.append("e", {"i": 60, "pad": "t" * 50})
    other.close()
    with open(os.path.join(path + "-copy", os.path.basename(seg)), "rb") as fh:
        frame = fh.read()[size:]
    assert len(frame) > 60
    # ... lands only partly on the original: a complete header, a cut payload (a torn tail).
    with open(seg, "ab") as fh:
        fh.write(frame[: len(frame) - 20])
    before = tree_digest(path)
    reader = eventlog.open_log(path, readonly=True)
    try:
        assert reader.readonly
        assert list(reader.read()) == recs
        with pytest.raises(eventlog.EventLogError):
            reader.append("e", {})
        with pytest.raises(eventlog.EventLogError):
            reader.save_snapshot({}, schema_version=1)
    finally:
        reader.close()
    assert tree_digest(path) == before, "a read-only open modified the log directory"


def test_readonly_open_of_missing_log_creates_nothing(tmp_path: Path) -> None:
    """A reader pointed at a path with no log gets an error and leaves no directory behind."""
    missing = tmp_path / "nothing-here"
    with pytest.raises((FileNotFoundError, eventlog.EventLogError)):
        eventlog.open_log(str(missing), readonly=True)
    assert not missing.exists()


RACER = textwrap.dedent(
    r'''
    import sys, time
    import eventlog

    path, go = sys.argv[1], float(sys.argv[2])
    while time.time() < go:  # start together
        time.sleep(0.0005)
    try:
        log = eventlog.open_log(path)
    except eventlog.LogLockedError:
        print("LOCKED", flush=True)
        sys.exit(0)
    except Exception as exc:
        print("ERR", type(exc).__name__, exc, flush=True)
        sys.exit(0)
    for i in range(50):
        log.append("r", {"i": i})
    time.sleep(0.2)
    log.close()
    print("WIN", flush=True)
    '''
)


def test_writers_racing_to_create_a_log(tmp_path: Path) -> None:
    """Processes opening a new log at the same instant: one writer at a time, the others get LogLockedError."""
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    path = str(tmp_path / "log")
    go = time.time() + 1.0  # past the interpreters' start-up
    procs = [subprocess.Popen([sys.executable, str(script), path, str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(out.strip())
    assert set(results) <= {"WIN", "LOCKED"}, results
    wins = results.count("WIN")
    assert wins >= 1
    report = eventlog.verify(path)
    assert report.ok and report.head_seq == 50 * wins, str(report)
