"""kill -9 of a process mutating a durable JobState loses nothing that was acknowledged.

A child process opens (or reopens) a durable job and mutates it in a loop, printing
``ACK <version> <head_hash>`` after every mutation call returns. The parent SIGKILLs it
at a random moment (seeded by the ``rng`` fixture), reopens the job and checks it is
exactly the state after the last acknowledged call, or the one after it (the call that
was in flight). Several kills in a row continue the same job.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from routilux.job_state import JobState

CHILD = textwrap.dedent(
    """
    import sys
    from routilux.job_state import JobState

    path, start = sys.argv[1], int(sys.argv[2])
    js = JobState.open(path, flow_id="crash", durability="batch")
    js.snapshot_every = 37  # so some kills land while a snapshot is written
    print("OPEN", js.version, js.head_hash, flush=True)
    i = start
    while True:
        op = i % 5
        if op == 0:
            js.record_execution("r", "tick", {"i": i})
        elif op == 1:
            js.update_shared_data("i", i)
        elif op == 2:
            js.update_routine_state("r", {"status": "running", "i": i, "nested": {"l": [i, str(i)]}})
        elif op == 3:
            with js._transaction():
                js._task_queued(f"t{i}", {"i": i})
                js.record_execution("r", "emit", {"i": i, "f": i / 3})
                js.append_to_shared_log({"i": i})
        else:
            js._task_finished(f"t{i - 1}")
        print("ACK", i, js.version, js.head_hash, flush=True)
        i += 1
    """
)


def _events_of_call(i: int) -> int:
    return 3 if i % 5 == 3 else 1


def _run_and_kill(path: Path, start: int, delay: float) -> list[str]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(start)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    chunks: list[bytes] = []
    opened = threading.Event()

    def drain() -> None:
        # Read continuously: a full pipe would block the child in print(), and the
        # kill would never land inside a mutation.
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):  # type: ignore[union-attr]
            chunks.append(chunk)
            if b"\n" in chunk:
                opened.set()
        opened.set()

    reader = threading.Thread(target=drain)
    reader.start()
    opened.wait(60)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join()
    errors = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    text = b"".join(chunks).decode()
    assert text.startswith("OPEN"), text + errors
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # the last line was cut by the kill
    return [ln for ln in lines if ln.startswith(("OPEN", "ACK"))]


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path, rng: random.Random) -> None:
    """After each SIGKILL the reopened job is the last acked state, or one call later."""
    path = tmp_path / "job"
    start = 0
    kills = 5
    for _ in range(kills):
        lines = _run_and_kill(path, start, rng.uniform(0.02, 0.25))
        acks = [ln.split() for ln in lines if ln.startswith("ACK")]
        opened = lines[0].split()
        if acks:
            _, last_i, acked_version, acked_hash = acks[-1]
            last_i_int = int(last_i)
        else:  # killed before the first call returned
            _, acked_version, acked_hash = opened
            last_i_int = start - 1
        acked = int(acked_version)
        with JobState.open(path) as js:
            in_flight = _events_of_call(last_i_int + 1)
            assert js.version in (acked, acked + in_flight), (js.version, acked)
            # The hash chain pins the exact history: the acked prefix is byte-identical.
            assert js.log.link_at(acked).hex() == acked_hash
            if js.version == acked:
                assert js.head_hash == acked_hash
            # The reopened projection (snapshot + tail) equals a full replay of the log.
            assert js.serialize() == JobState.from_events(js.events()).serialize()
            next_i = last_i_int + 1 if js.version == acked else last_i_int + 2
            if any(i % 5 == 1 for i in range(next_i)):
                newest = max(i for i in range(next_i) if i % 5 == 1)
                assert js.get_shared_data("i") == newest
        start = next_i
    assert start > 0, "the child never got to mutate the job"
