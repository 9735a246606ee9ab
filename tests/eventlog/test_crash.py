"""T1: kill -9 the writer at random points; every acknowledged append must survive.

A writer subprocess appends deterministic events and prints ``ACK seq id`` after each
``append()`` returns: that stdout is the acknowledgement oracle (RocksDB db_stress /
ALICE style), kept outside the system under test. The parent SIGKILLs it, reopens the
log (which repairs a torn tail) and checks:

* every acked record is present at its seq and byte-identical to what was appended;
* seqs are contiguous from 1, and history from earlier rounds is unchanged;
* beyond the acks there is at most the one call that was in flight, complete (a batch is
  all or nothing);
* every snapshot equals the fold of the records up to its seq; ``verify`` passes;
* the next append gets ``head + 1``.

Three kinds of kill: a timed SIGKILL at a random moment of the append loop; a whitebox
kill that lands a random prefix of the k-th ``_fs.write`` or ``_fs.map_write`` (the
frame copies into the mapped segment) and dies (a torn frame),
sometimes counting only writes of snapshots or of new files (``*.tmp``: segment rolls);
and a kill of the *recovering* process at its k-th file-system call (compound failure,
as in SQLite's crash tests). The ``"always"`` run uses a keyed hash chain, so recovery
and ``verify`` run with a key too. Counts: ``EVENTLOG_T1_KILLS`` per mode (default 25)
and ``EVENTLOG_T1_RECOVERY_KILLS`` per mode (default 3). A read-only follower in the
parent also watches writers die and recover, and must see every seq once, as stored.
"""

from __future__ import annotations

import glob
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import pytest

import eventlog
from eventlog.encoding import encode_event

KILLS = int(os.environ.get("EVENTLOG_T1_KILLS", "25"))
RECOVERY_KILLS = int(os.environ.get("EVENTLOG_T1_RECOVERY_KILLS", "3"))
SEGMENT_BYTES = 8192
SNAPSHOT_EVERY = 4  # calls between snapshots in the writer

# The writer. Its events are a pure function of their id so the parent can rebuild the
# exact bytes of any record, acked or in flight. Call plan: a call starting at id c
# appends a batch of 3 events (ids c, c+1, c+2) when c % 5 == 0, else one event.
WRITER = textwrap.dedent(
    r'''
    import os, random, signal, sys

    path, mode, start_id, style, arg, seg_bytes, snap_every, only, key = sys.argv[1:10]
    key = bytes.fromhex(key) or None
    start_id, arg, seg_bytes, snap_every = int(start_id), int(arg), int(seg_bytes), int(snap_every)

    import eventlog
    from eventlog import _fs

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def data_for(i):
        big = "P" * 12000 if i % 17 == 0 else ""  # now and then a frame larger than a segment
        return {"id": i, "pad": "p" * (i * 37 % 211) + big, "pair": [i, -i], "odd": bool(i % 2)}

    if style in ("write", "recover"):
        counter = [0]
        real = {name: getattr(_fs, name) for name in
                ("open", "close", "write", "fsync", "fdatasync", "ftruncate", "replace", "unlink",
                 "fallocate", "map_file", "map_write")}

        def wrap(name):
            fn = real[name]
            def shim(*a, **kw):
                if style == "recover" or (name in ("write", "map_write") and (
                        not only or only in os.readlink(f"/proc/self/fd/{a[0]}"))):
                    counter[0] += 1
                    if counter[0] == arg:
                        cut_rng = random.Random(arg)
                        if name == "write":
                            fd, buf = a[0], bytes(a[1])
                            # a torn write: some prefix lands, then the process dies
                            cut = cut_rng.randrange(len(buf) + 1)
                            if cut:
                                os.write(fd, buf[:cut])
                        elif name == "map_write":
                            # a torn copy into the mapped segment: some prefix of it lands
                            # (the 8-byte length store is one aligned store: all or none)
                            fd, mapping, off, buf = a[0], a[1], a[2], bytes(a[3])
                            cut = cut_rng.choice((0, 8)) if len(buf) == 8 else cut_rng.randrange(len(buf) + 1)
                            mapping[off : off + cut] = buf[:cut]
                        die()
                return fn(*a, **kw)
            return shim

        for name in real:
            setattr(_fs, name, wrap(name))

    print("IMPORTED", flush=True)
    log = eventlog.open_log(path, durability=mode, segment_bytes=seg_bytes, key=key)
    n = s = 0
    for rec in log.read():
        n += 1
        s += rec.data["id"]
    print("READY", log.head_seq, flush=True)
    i = start_id
    calls = 0
    limit = 5 if style == "recover" else 10**9
    while calls < limit:
        if i % 5 == 0:
            recs = log.append_batch([("ev", data_for(j)) for j in range(i, i + 3)])
        else:
            recs = [log.append("ev", data_for(i))]
        for r in recs:
            n += 1
            s += r.data["id"]
        print("\n".join(f"ACK {r.seq} {r.data['id']}" for r in recs), flush=True)
        i += len(recs)
        calls += 1
        if calls % snap_every == 0:
            log.save_snapshot({"n": n, "sum": s, "last": i - 1}, schema_version=1)
    log.close()
    print("DONE", flush=True)
    '''
)


def data_for(i: int) -> dict:
    """The event data the writer appends for id ``i`` (must match WRITER)."""
    big = "P" * 12000 if i % 17 == 0 else ""
    return {"id": i, "pad": "p" * (i * 37 % 211) + big, "pair": [i, -i], "odd": bool(i % 2)}


def call_ids(c: int) -> list[int]:
    """Ids appended by the writer's call that starts at id ``c`` (must match WRITER)."""
    return [c, c + 1, c + 2] if c % 5 == 0 else [c]


class Harness:
    """Runs writer rounds against one log directory and checks each reopen."""

    def __init__(self, root: Path, mode: str, key: bytes | None = None) -> None:
        self.root = root
        self.mode = mode
        self.key = key
        self.path = str(root / "log")
        self.script = root / "writer.py"
        self.script.write_text(WRITER)
        self.history: list[int] = []  # ids by seq-1: what survived every check so far
        self.rounds = 0

    def spawn(self, style: str, arg: int, only: str = "") -> subprocess.Popen[str]:
        start = self.history[-1] + 1 if self.history else 1
        cmd = [sys.executable, str(self.script), self.path, self.mode, str(start), style, str(arg),
               str(SEGMENT_BYTES), str(SNAPSHOT_EVERY), only, (self.key or b"").hex()]
        # stderr goes to a file: only stdout is read, through one buffered reader (mixing
        # readline() with communicate() would lose lines already buffered).
        self._err = open(self.root / f"stderr-{self.rounds}.txt", "w+")
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err, text=True)

    def _stderr(self) -> str:
        self._err.seek(0)
        text = self._err.read()
        self._err.close()
        return text

    def run_timed(self, delay: float) -> None:
        """Start the writer, wait until it is appending, SIGKILL it after ``delay`` s."""
        p = self.spawn("timed", 0)
        try:
            lines = []
            while True:
                line = p.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    break
                lines.append(line)
                if line.startswith("READY"):
                    break
            assert any(x.startswith("READY") for x in lines), self._died(p, lines)
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
            out = p.stdout.read()  # type: ignore[union-attr]
            p.wait(60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()  # type: ignore[union-attr]
        self.check("".join(lines) + out, self._stderr(), killed=True, rc=p.returncode)

    def run_whitebox(self, style: str, arg: int, only: str = "") -> None:
        """Run the writer with a self-kill at its ``arg``-th file-system call.

        With ``only``, just the writes to files whose path contains it are counted
        (``"snapshots"``: die while writing a snapshot; ``".tmp"``: while creating a file).
        """
        p = self.spawn(style, arg, only)
        try:
            out, _ = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.check(out, self._stderr(), killed=p.returncode == -signal.SIGKILL, rc=p.returncode)

    def _died(self, p: subprocess.Popen[str], lines: list[str]) -> str:
        p.wait(30)
        return f"writer died before READY (rc={p.returncode}): {''.join(lines)}\n{self._stderr()}"

    def check(self, out: str, err: str, *, killed: bool, rc: int | None) -> None:
        """Reopen the log and check it against the acks printed by the writer."""
        self.rounds += 1
        where = f"round {self.rounds} ({self.mode})"
        # A writer that was not killed must have exited cleanly: anything else is a crash
        # of the library (a traceback on stderr), not the kill we injected.
        assert killed or rc == 0, f"{where}: writer failed (rc={rc}):\n{err}"
        acked: dict[int, int] = {}
        ready_head = None
        for line in out.splitlines():
            m = re.fullmatch(r"ACK (\d+) (\d+)", line)
            if m:
                acked[int(m.group(1))] = int(m.group(2))
            m = re.fullmatch(r"READY (\d+)", line)
            if m:
                ready_head = int(m.group(1))
        if ready_head is not None:
            assert ready_head == len(self.history), f"{where}: writer opened at head {ready_head}"
            if acked:
                assert min(acked) == ready_head + 1, f"{where}: first append got seq {min(acked)}"

        with warnings.catch_warnings():
            # Repairing a torn tail may warn by design; that is not what this test checks.
            warnings.simplefilter("ignore")
            log = eventlog.open_log(self.path, durability=self.mode, segment_bytes=SEGMENT_BYTES, key=self.key)
            try:
                recs = list(log.read())
                raw = list(log.read_raw())
                snaps = log.snapshots()
                head = log.head_seq
            finally:
                log.close()
        got = [r.data["id"] for r in recs]
        assert [r.seq for r in recs] == list(range(1, len(recs) + 1)), f"{where}: seqs not contiguous"
        assert head == len(recs)
        assert got[: len(self.history)] == self.history, f"{where}: earlier history changed"
        for seq, ident in sorted(acked.items()):
            assert seq <= len(got), f"{where}: acked seq {seq} (id {ident}) lost; head is {len(got)}"
            assert got[seq - 1] == ident, f"{where}: seq {seq} holds id {got[seq - 1]}, acked id {ident}"
        # Every record is byte-identical to what the writer built for its id.
        for rec, (seq, _ts, b) in zip(recs, raw, strict=True):
            assert rec.seq == seq
            assert rec.kind == "ev" and rec.data == data_for(rec.data["id"])
            assert bytes(b) == encode_event("ev", data_for(rec.data["id"])), f"{where}: seq {seq} bytes differ"
        # Beyond the acks: nothing, or exactly the one call that was in flight.
        base = max(acked) if acked else len(self.history)
        extras = got[base:]
        next_id = (got[base - 1] + 1) if base else 1
        assert extras in ([], call_ids(next_id)), f"{where}: unexpected un-acked records {extras}"
        # Snapshots equal the fold of the records they cover.
        for snap in snaps:
            assert snap.seq <= head
            ids = got[: snap.seq]
            if snap.seq:
                assert snap.state == {"n": len(ids), "sum": sum(ids), "last": ids[-1]}, f"{where}: {snap}"
        report = eventlog.verify(self.path, key=self.key)
        assert report.ok, f"{where}: verify failed after recovery: {report}"
        self.history = got

    def final_append(self) -> None:
        """The next append after all the crashes gets head + 1 and survives a reopen."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            log = eventlog.open_log(self.path, durability=self.mode, segment_bytes=SEGMENT_BYTES, key=self.key)
        try:
            assert log.append("probe", {"x": 1}).seq == len(self.history) + 1
        finally:
            log.close()


def _add_zero_tail(path: str, n: int) -> None:
    """Append ``n`` zero bytes to the newest segment: an all-zero (certainly torn) tail."""
    segs = sorted(glob.glob(os.path.join(path, "*.seg")))
    with open(segs[-1], "ab") as fh:
        fh.write(b"\0" * n)


@pytest.mark.parametrize(("mode", "key"), [("batch", None), ("always", b"t1 secret")], ids=["batch", "always-keyed"])
def test_kill9_writer_never_loses_acked_records(mode: str, key: bytes | None, tmp_path: Path,
                                                rng: random.Random) -> None:
    """Random SIGKILLs of a writer (and of recovery) never lose or alter an acknowledged record."""
    h = Harness(tmp_path, mode, key)
    for k in range(KILLS):
        if k % 6 == 2:
            # whitebox: die inside a random write with a random prefix of it on disk
            h.run_whitebox("write", rng.randrange(1, 80))
        elif k % 6 == 4:
            # ... inside a snapshot write, or inside the creation of a file (segment roll)
            h.run_whitebox("write", rng.randrange(1, 4), rng.choice(["snapshots", ".tmp"]))
        else:
            h.run_timed(rng.uniform(0.03, 0.12))
    for _ in range(RECOVERY_KILLS):
        # Give recovery real work (a torn tail to back up and truncate), then kill it
        # at a random file-system call.
        _add_zero_tail(h.path, rng.randrange(1, 700))
        h.run_whitebox("recover", rng.randrange(1, 12))
    assert len(h.history) > 0, "the writer never managed to append (harness broken?)"
    h.final_append()


def test_readonly_follower_across_writer_crashes(tmp_path: Path, rng: random.Random) -> None:
    """A read-only follower in another process sees each seq once, as finally stored, while writers die and recover."""
    h = Harness(tmp_path, "batch")
    h.run_timed(0.03)  # creates the log
    reader = eventlog.open_log(h.path, readonly=True)
    followed: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            for rec in reader.follow(1, timeout=None, poll_interval=0.002):
                followed.append((rec.seq, rec.data["id"]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    try:
        for k in range(min(KILLS, 8)):
            if k % 2:
                h.run_whitebox("write", rng.randrange(1, 60))  # leaves a torn frame behind
            else:
                h.run_timed(rng.uniform(0.02, 0.06))
        deadline = time.monotonic() + 30
        while len(followed) < len(h.history) and time.monotonic() < deadline and t.is_alive():
            time.sleep(0.01)
    finally:
        reader.close()
        t.join(10)
    assert not errors, errors
    final = list(enumerate(h.history, start=1))
    assert followed == final, (
        f"the follower saw {len(followed)} records, the log has {len(final)}; "
        f"first difference at {next((i for i, (a, b) in enumerate(zip(followed, final, strict=False)) if a != b), None)}"
    )
