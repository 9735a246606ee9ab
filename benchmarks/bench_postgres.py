"""Benchmark the PostgreSQL log against the file log, in the same run.

For each backend it measures:

* ``append x1``: one event per ``append`` call (for PostgreSQL: one transaction,
  one durable commit per event);
* ``append batch``: ``append_batch`` of ``--batch`` events per call;
* ``replay``: ``read()`` of the whole log (decoded records, checksums and chain checked);
* ``read_raw``: the same without decoding;
* ``seq_at_time``: the mean time of one time lookup.

The file log runs with ``durability="always"`` (an fsync before every append returns,
which is what a PostgreSQL commit promises) and ``"batch"`` (its default). When
``eventlog.open_log`` is missing the in-memory log is measured instead.

Usage::

    EVENTLOG_PG_URL=postgresql://postgres@127.0.0.1:55432/eventlog \\
        .venv/bin/python benchmarks/bench_postgres.py --events 100000

``--single`` bounds the one-at-a-time appends (default: min(events, 5000)), because a
durable commit per event takes around a millisecond and 100k of them would take minutes.
The machine is shared and noisy: run it once, and read the numbers as orders of magnitude.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import eventlog
from eventlog.base import EventLog


def event(i: int) -> tuple[str, dict[str, object]]:
    """A ~120-byte event, like a routine's execution record."""
    return ("routine.finished", {"routine": f"r{i % 17}", "i": i, "ok": True, "out": {"value": i * 3, "tag": "x" * 24}})


@contextmanager
def pg_log(url: str) -> Iterator[EventLog]:
    """A fresh PostgreSQL log, deleted afterwards."""
    import psycopg

    from eventlog.postgres import EVENTS_TABLE, LOGS_TABLE, SNAPSHOTS_TABLE, open_pg_log

    log = open_pg_log(url, f"bench-{uuid.uuid4().hex}")
    try:
        yield log
    finally:
        log_id = log.log_id
        log.close()
        with psycopg.connect(url, autocommit=True) as conn:
            for table in (EVENTS_TABLE, SNAPSHOTS_TABLE, LOGS_TABLE):
                conn.execute(f"DELETE FROM {table} WHERE log_id = %s", (log_id,))


@contextmanager
def file_log(durability: str) -> Iterator[EventLog]:
    """A fresh file log in a temporary directory (or an in-memory log without open_log)."""
    open_log = getattr(eventlog, "open_log", None)
    if open_log is None:
        yield eventlog.InMemoryEventLog()
        return
    tmp = tempfile.mkdtemp(prefix="bench-eventlog-")
    try:
        log = open_log(os.path.join(tmp, "log"), durability=durability)
        try:
            yield log
        finally:
            log.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(name: str, make: Callable[[], object], events: int, single: int, batch: int) -> list[tuple[str, str, int, float]]:
    """Run every measurement on fresh logs of one backend; rows of (backend, op, n, seconds)."""
    rows = []
    with make() as log:  # type: ignore[attr-defined]
        def one_by_one() -> None:
            for i in range(single):
                log.append(*event(i))
        rows.append((name, "append x1", single, timed(one_by_one)))
    with make() as log:  # type: ignore[attr-defined]
        def batches() -> None:
            for start in range(0, events, batch):
                log.append_batch([event(i) for i in range(start, min(events, start + batch))])
        rows.append((name, f"append batch of {batch}", events, timed(batches)))
        log.sync()
        rows.append((name, "replay (read)", events, timed(lambda: sum(1 for _ in log.read()))))
        rows.append((name, "read_raw", events, timed(lambda: sum(1 for _ in log.read_raw()))))
        head_ts = log.head_ts
        lookups = 200
        rows.append((name, "seq_at_time", lookups,
                     timed(lambda: [log.seq_at_time(head_ts - k) for k in range(lookups)])))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per batch/replay run (default 20000)")
    parser.add_argument("--single", type=int, default=None, help="one-at-a-time appends (default min(events, 5000))")
    parser.add_argument("--batch", type=int, default=1000, help="events per append_batch call (default 1000)")
    parser.add_argument("--url", default=os.environ.get("EVENTLOG_PG_URL"),
                        help="PostgreSQL URL (default: $EVENTLOG_PG_URL)")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give --url or set EVENTLOG_PG_URL (scripts/pg_server start DIR PORT prints one)")
    single = min(args.events, 5000) if args.single is None else args.single
    file_name = "file" if hasattr(eventlog, "open_log") else "memory (no open_log)"
    rows: list[tuple[str, str, int, float]] = []
    rows += measure("postgres", lambda: pg_log(args.url), args.events, single, args.batch)
    rows += measure(f"{file_name} always", lambda: file_log("always"), args.events, single, args.batch)
    rows += measure(f"{file_name} batch", lambda: file_log("batch"), args.events, single, args.batch)
    print(f"{'backend':<24} {'operation':<22} {'n':>8} {'seconds':>9} {'per second':>12} {'us each':>9}")
    for backend, op, n, secs in rows:
        print(f"{backend:<24} {op:<22} {n:>8} {secs:>9.3f} {n / secs:>12,.0f} {secs / n * 1e6:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
