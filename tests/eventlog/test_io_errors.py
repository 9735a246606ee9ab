"""T9: disk full and I/O errors (SQLite's I/O-error loop).

(a) A writer subprocess under ``RLIMIT_FSIZE`` appends until the kernel refuses: a short
    write then ``EFBIG``. The error must keep its errno, the files must be back to their
    size before the failed append, and a reopen reads every acknowledged record.
(b) Fault injection through :mod:`eventlog._fs`: the N-th file-system operation (open,
    write, fsync, fdatasync, ftruncate, replace, unlink, fallocate, map_file, map_write)
    fails with ENOSPC or EIO, for N = 1, 2, ... until the workload runs without reaching
    N, in fail-once and fail-forever modes. A failing ``write`` first lands half its bytes
    (a short write), and a failing ``map_write`` (the frame copy into the mapped segment)
    half of its copy, so "nothing of a failed append remains" is really tested. After each run, without faults:
    every acknowledged record is there and byte-identical, at most the one record whose
    fsync failed is extra, snapshots are consistent, the next append gets ``head + 1``.
    An fsync or ftruncate failure leaves the writer *failed* (fsyncgate): the next append
    raises ``LogFailedError``.
(c) Faults during recovery of a log with a torn tail: open fails with a clear error
    (errno kept) or succeeds, and the log is intact either way.
"""

from __future__ import annotations

import errno
import glob
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog import LogFailedError, _fs
from eventlog.encoding import encode_event

FAULT_OPS = ("open", "write", "fsync", "fdatasync", "ftruncate", "replace", "unlink",
             "fallocate", "map_file", "map_write")
SYNC_OPS = {"fsync", "fdatasync", "ftruncate"}
APPENDS = 20
SEGMENT_BYTES = 4096  # the smallest allowed; 20 appends of ~230-byte frames roll once
MAX_N = 2000  # a safety cap: the loop ends long before this unless the workload never completes


def _torn_files(path: str) -> list[str]:
    return glob.glob(os.path.join(path, "**", "*.torn-*"), recursive=True)


def _quiet_open(path: str, **kw: Any) -> eventlog.EventLog:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torn-tail repair warns by design
        return eventlog.open_log(path, **kw)


class Faults:
    """Fails the N-th counted ``_fs`` operation (and, in fail-forever mode, every later one)."""

    def __init__(self, n: int, *, forever: bool, err: int) -> None:
        self.n = n
        self.forever = forever
        self.err = err
        self.count = 0
        self.fired: list[str] = []
        self.enabled = True
        self._lock = threading.Lock()
        self.real = {name: getattr(_fs, name) for name in FAULT_OPS}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in FAULT_OPS:
            monkeypatch.setattr(_fs, name, self._wrap(name))

    def _wrap(self, name: str) -> Any:
        real = self.real[name]

        def shim(*args: Any, **kw: Any) -> Any:
            with self._lock:
                if not self.enabled:
                    fire = False
                else:
                    self.count += 1
                    fire = self.count == self.n or (self.forever and self.count > self.n)
                    if fire:
                        self.fired.append(name)
            if fire:
                if name == "write":
                    fd, buf = args[0], bytes(args[1])
                    if len(buf) > 1:
                        # a short write lands first, as when the disk fills mid-write
                        self.real["write"](fd, buf[: len(buf) // 2])
                elif name == "map_write":
                    fd, mapping, offset, buf = args
                    self.real["map_write"](fd, mapping, offset, bytes(buf)[: len(buf) // 2])
                raise OSError(self.err, f"injected {os.strerror(self.err)} in {name}")
            if name in ("fsync", "fdatasync"):
                return None  # the data is not at stake here, and real fsyncs would make the loop slow
            return real(*args, **kw)

        return shim


def _data(i: int) -> dict:
    return {"i": i, "pad": "q" * (160 + i % 17)}


def run_workload(path: str, faults: Faults) -> dict[str, Any]:
    """Open, append 20 events (snapshot after 10), close; record every outcome."""
    out: dict[str, Any] = {"open_error": None, "attempts": [], "snapshot_error": None}
    try:
        log = eventlog.open_log(path, durability="always", segment_bytes=SEGMENT_BYTES)
    except Exception as exc:
        out["open_error"] = (exc, list(faults.fired))
        return out
    try:
        for i in range(APPENDS):
            before = len(faults.fired)
            try:
                rec = log.append("e", _data(i))
                out["attempts"].append((i, rec, None, faults.fired[before:], before))
            except Exception as exc:
                out["attempts"].append((i, None, exc, faults.fired[before:], before))
            if i == 10:
                fired_before = len(faults.fired)
                try:
                    log.save_snapshot({"n": log.head_seq}, schema_version=1)
                except Exception as exc:
                    out["snapshot_error"] = (exc, faults.fired[fired_before:], fired_before)
    finally:
        try:
            log.close()
        except Exception as exc:
            out["close_error"] = exc
    return out


def check_run(path: str, faults: Faults, out: dict[str, Any], where: str) -> None:
    """Check the outcomes of one faulty run, then reopen without faults and check the log."""
    err = faults.err
    if out["open_error"] is not None:
        exc, fired = out["open_error"]
        assert fired, f"{where}: open failed with no injected fault: {exc!r}"
        assert isinstance(exc, OSError) and exc.errno == err, f"{where}: open error lost the errno: {exc!r}"
    failed_since = None  # the append whose fsync/ftruncate failed: later appends must be refused
    for i, _rec, exc, fired, fired_before in out["attempts"]:
        if exc is None:
            assert failed_since is None, (
                f"{where}: append {i} succeeded after an fsync/ftruncate failure in append {failed_since}"
            )
        elif isinstance(exc, LogFailedError):
            assert fired_before, f"{where}: append {i} raised LogFailedError before any fault: {exc}"
        else:
            assert fired, f"{where}: append {i} raised {exc!r} with no injected fault"
            assert isinstance(exc, OSError) and exc.errno == err, (
                f"{where}: append {i} raised {type(exc).__name__} without errno {err}: {exc!r}"
            )
            assert str(exc), f"{where}: empty error message"
        if exc is not None and SYNC_OPS & set(fired) and failed_since is None:
            failed_since = i
    if out["snapshot_error"] is not None:
        exc, fired, fired_before = out["snapshot_error"]
        if isinstance(exc, LogFailedError):
            assert fired_before, f"{where}: snapshot raised LogFailedError before any fault: {exc}"
        else:
            assert fired, f"{where}: snapshot failed without an injected fault: {exc!r}"
            assert isinstance(exc, OSError) and exc.errno == err, f"{where}: snapshot error lost the errno: {exc!r}"

    # Reopen without faults: the log must hold exactly what was acknowledged (plus at most
    # the one record whose fsync failed, complete).
    faults.enabled = False
    acked = {rec.seq: encode_event("e", _data(i)) for i, rec, _exc, _f, _b in out["attempts"] if rec is not None}
    failed_bytes = {encode_event("e", _data(i)) for i, rec, _exc, _f, _b in out["attempts"] if rec is None}
    torn_before = set(_torn_files(path))
    log = _quiet_open(path, durability="always", segment_bytes=SEGMENT_BYTES)
    try:
        raw = list(log.read_raw())
        seqs = [s for s, _, _ in raw]
        assert seqs == list(range(1, len(raw) + 1)), f"{where}: seqs not contiguous: {seqs}"
        for seq, b in acked.items():
            assert seq <= len(raw), f"{where}: acked seq {seq} lost (head {len(raw)})"
            assert bytes(raw[seq - 1][2]) == b, f"{where}: acked seq {seq} changed"
        extras = [bytes(b) for s, _, b in raw if s not in acked]
        top = max(acked, default=0)
        assert all(s > top for s, _, _ in raw if s not in acked), f"{where}: an un-acked record sits between acked ones"
        assert len(extras) <= 1, f"{where}: {len(extras)} un-acked records survived"
        assert all(b in failed_bytes for b in extras), f"{where}: a record nobody appended"
        for snap in log.snapshots():
            assert snap.state == {"n": snap.seq}, f"{where}: snapshot {snap} is inconsistent"
        assert log.append("next", {}).seq == len(raw) + 1
    finally:
        log.close()
    if not faults.forever and faults.fired == ["write"]:
        # One failed write, then a successful truncate-back: no torn bytes may remain.
        assert set(_torn_files(path)) == torn_before, f"{where}: a failed write was not truncated back"


@pytest.mark.parametrize("forever", [False, True], ids=["fail-once", "fail-forever"])
@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])
def test_fault_at_every_operation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int, forever: bool) -> None:
    """Failing the N-th file-system operation, for every N, never loses an acked record or leaves junk."""
    n = 0
    hit: set[str] = set()
    while True:
        n += 1
        assert n < MAX_N, "the workload never completed"
        path = str(tmp_path / f"log{n}")
        faults = Faults(n, forever=forever, err=err)
        with monkeypatch.context() as m:
            faults.install(m)
            out = run_workload(path, faults)
            check_run(path, faults, out, f"fault at op {n} ({os.strerror(err)}, {'forever' if forever else 'once'})")
        if faults.fired:
            hit.add(faults.fired[0])
        if not faults.fired:
            break  # the workload has fewer than n operations: every point was tried
    assert n > APPENDS, f"only {n} operations were counted: the shim is not on the write path"
    # Every kind of operation on the append path was made to fail at least once.
    missed = {"open", "write", "fdatasync", "ftruncate", "replace", "fallocate", "map_file", "map_write"} - hit
    assert not missed, f"no fault was injected into {sorted(missed)}"


def test_sync_failure_fails_the_writer_until_reopen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After an fsync error, appends raise LogFailedError; a reopen recovers the log."""
    path = str(tmp_path / "log")
    log = eventlog.open_log(path, durability="always")
    try:
        ok = log.append("e", _data(0))
        with monkeypatch.context() as m:
            def bad_sync(fd: int) -> None:
                raise OSError(errno.EIO, "injected EIO in fsync")
            m.setattr(_fs, "fsync", bad_sync)
            m.setattr(_fs, "fdatasync", bad_sync)
            with pytest.raises(OSError) as info:
                log.append("e", _data(1))
            assert info.value.errno == errno.EIO
        # the fault is gone, but the kernel may have dropped the pages: no retrying
        with pytest.raises(LogFailedError):
            log.append("e", _data(2))
        with pytest.raises(LogFailedError):
            log.append_batch([("e", _data(3))])
    finally:
        try:
            log.close()
        except (OSError, eventlog.EventLogError):
            pass
    again = _quiet_open(path)
    try:
        assert again.get(1) == ok
        assert again.head_seq in (1, 2)
        assert again.append("e", _data(4)).seq == again.head_seq
    finally:
        again.close()


# -- (a) RLIMIT_FSIZE -----------------------------------------------------------------

FSIZE_CHILD = textwrap.dedent(
    r'''
    import os, resource, sys
    import eventlog

    path = sys.argv[1]

    def sizes():
        out = {}
        for d, _, files in os.walk(path):
            for f in files:
                out[os.path.relpath(os.path.join(d, f), path)] = os.path.getsize(os.path.join(d, f))
        return out

    log = eventlog.open_log(path, durability="always", segment_bytes=1 << 20)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
    log.save_snapshot({"small": True}, schema_version=1)
    i = 0
    while True:
        before = sizes()
        try:
            rec = log.append("e", {"i": i, "pad": "z" * 300})
        except Exception as exc:
            print("ERR", type(exc).__name__, getattr(exc, "errno", None), isinstance(exc, OSError), flush=True)
            print("SIZES", sizes() == before, flush=True)
            try:
                log.append("e", {"i": i, "pad": "z" * 300})
                print("RETRY ok", flush=True)
            except Exception as exc2:
                print("RETRY", type(exc2).__name__, getattr(exc2, "errno", None), flush=True)
            try:
                log.save_snapshot({"big": "b" * 30000}, schema_version=1)
                print("SNAP ok", flush=True)
            except Exception as exc3:
                print("SNAP", type(exc3).__name__, getattr(exc3, "errno", None), flush=True)
            print("LATEST", log.latest_snapshot().state, flush=True)
            break
        print("ACK", rec.seq, i, flush=True)
        i += 1
    log.close()
    print("CLOSED", flush=True)
    '''
)


def test_rlimit_fsize_disk_full(tmp_path: Path) -> None:
    """A real short write + EFBIG: errno kept, files truncated back, writer usable, old snapshot kept, acked records readable."""
    script = tmp_path / "child.py"
    script.write_text(FSIZE_CHILD)
    path = str(tmp_path / "log")
    proc = subprocess.run([sys.executable, str(script), path], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    acks = [tuple(map(int, x.split()[1:])) for x in lines if x.startswith("ACK ")]
    assert len(acks) > 10, proc.stdout
    assert f"ERR LogWriteError {errno.EFBIG} True" in lines, proc.stdout
    assert "SIZES True" in lines, "the failed append left bytes behind (not truncated back)"
    assert f"RETRY LogWriteError {errno.EFBIG}" in lines, "a write error (not fsync) must not fail the writer"
    assert f"SNAP LogWriteError {errno.EFBIG}" in lines, "a snapshot too big for the disk must fail with EFBIG"
    assert "LATEST {'small': True}" in lines, "a failed snapshot replaced the good one"
    assert "CLOSED" in lines
    assert glob.glob(os.path.join(path, "**", "*.tmp"), recursive=True) == [], "a failed write left a temp file"
    torn_before = set(_torn_files(path))
    log = _quiet_open(path)
    try:
        recs = list(log.read())
        assert [(r.seq, r.data["i"]) for r in recs] == list(acks)
        assert set(_torn_files(path)) == torn_before, "reopen found a torn tail: the failed append was not truncated"
        assert log.append("e", {"i": -1}).seq == len(acks) + 1
    finally:
        log.close()


# -- (c) faults during recovery --------------------------------------------------------

@pytest.mark.parametrize("forever", [False, True], ids=["fail-once", "fail-forever"])
def test_fault_during_recovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forever: bool) -> None:
    """An I/O error while repairing a torn tail gives a clear error; the log is intact afterwards."""
    base = str(tmp_path / "base")
    log = eventlog.open_log(base, durability="always")
    expected = [encode_event("e", _data(i)) for i in range(10)]
    for i in range(10):
        log.append("e", _data(i))
    log.close()
    seg = sorted(glob.glob(os.path.join(base, "*.seg")))[-1]
    with open(seg, "ab") as fh:
        fh.write(b"\0" * 333)  # an all-zero tail: certainly torn, recovery truncates it
    n = 0
    while True:
        n += 1
        assert n < MAX_N
        path = str(tmp_path / f"r{n}")
        subprocess.run(["cp", "-a", base, path], check=True)
        faults = Faults(n, forever=forever, err=errno.EIO)
        with monkeypatch.context() as m:
            faults.install(m)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    rec_log = eventlog.open_log(path, durability="always")
                try:
                    rec_log.close()
                except (OSError, eventlog.EventLogError):
                    pass
            except Exception as exc:
                assert faults.fired, f"op {n}: open failed without a fault: {exc!r}"
                assert isinstance(exc, OSError) and exc.errno == errno.EIO, f"op {n}: unclear error {exc!r}"
        faults.enabled = False
        again = _quiet_open(path, durability="always")
        try:
            assert [bytes(b) for _, _, b in again.read_raw()] == expected, f"op {n}: records changed"
            assert again.append("e", {}).seq == 11
        finally:
            again.close()
        if not faults.fired:
            break
    assert n > 3, "recovery made fewer than 3 file-system operations: was the tail repaired at all?"


def test_background_flush_failure_fails_the_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In "batch" mode an fsync error in the background flusher is not swallowed: sync() and appends fail."""
    path = str(tmp_path / "log")
    log = eventlog.open_log(path, durability="batch")
    try:
        first = log.append("e", _data(0))
        assert log.sync() == 1
        with monkeypatch.context() as m:
            def bad_sync(fd: int) -> None:
                raise OSError(errno.EIO, "injected EIO in fsync")
            m.setattr(_fs, "fsync", bad_sync)
            m.setattr(_fs, "fdatasync", bad_sync)
            log.append("e", _data(1))  # reaches the kernel; the flush fails later
            with pytest.raises((OSError, LogFailedError)) as info:
                log.sync()
            if isinstance(info.value, OSError):
                assert info.value.errno == errno.EIO
            assert log.durable_seq == 1, "durable_seq advanced past a failed fsync"
        with pytest.raises(LogFailedError):
            log.append("e", _data(2))
        with pytest.raises((OSError, LogFailedError)):
            log.sync()
    finally:
        try:
            log.close()
        except (OSError, eventlog.EventLogError):
            pass
    again = _quiet_open(path)
    try:
        assert again.get(1) == first
        assert again.head_seq in (1, 2)
    finally:
        again.close()
