"""Benchmark routilux-replay on a large durable job (issue 5 targets, 2-core machine).

Builds (once, cached in --dir) a durable job of N events written through JobState
(default 1,000,000; snapshots every 4096 events, the JobState default), then measures,
as medians of --runs runs, each from a fresh ``open_job`` (as the command would):

* ``info``                       target <= 0.5 s
* ``state --at V`` (random V)     target <= 0.5 s
* ``bisect --where ...``          target <= 2 s
* ``verify`` (every check)        target >= 300k events/s

Also reported: the same commands as subprocesses of the real CLI (Python start-up and
imports included), as medians of 3 runs: that is what a user waits for.

``verify`` on a long directory uses three processes on purpose: ``eventlog.verify``
(checksums, chain) in one, the first half of the replay here, and the second half in a
child that starts from a snapshot near the middle (the parent checks that snapshot
against its own fold, so the two halves make one full replay).

    python benchmarks/bench_replay.py                 # 1M events
    python benchmarks/bench_replay.py --events 20000  # a quick sanity run
    python benchmarks/bench_replay.py --keep-all-snapshots

Time travel to an early version is only fast if a snapshot near it still exists: the
file log keeps its newest few snapshots and thins older ones so that no two kept ones
are more than ``eventlog.filelog.SNAPSHOT_GAP`` events apart. ``--keep-all-snapshots``
builds the job with no pruning at all, to compare.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from replay_tools import bisect, info, open_job, parse_condition, projection_at, state_dict, verify_job
from routilux.job_state import JobState


def build_job(path: str, events: int) -> None:
    """Write a job of ``events`` events: a realistic mix of JobState mutations."""
    job = JobState.open(path, flow_id="bench", durability="batch")
    try:
        job.status = "running"
        i = 0
        routines = [f"r{n}" for n in range(8)]
        while job.version < events:
            rid = routines[i % len(routines)]
            step = i % 5
            if step == 0:
                job.record_execution(rid, "out", {"i": i, "payload": "x" * 40})
            elif step == 1:
                job.update_shared_data("counter", i)
            elif step == 2:
                job.update_routine_state(rid, {"status": "running", "i": i})
            elif step == 3:
                job.append_to_shared_log({"i": i, "msg": "tick"})
            else:
                job.send_output(rid, "progress", {"i": i})
            i += 1
    finally:
        job.close()


def median_time(func: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median wall time of ``runs`` calls, and the last result."""
    times = []
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def cli_time(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "replay_tools", *args], check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the job (default 1M)")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median reported)")
    parser.add_argument("--dir", default=None, help="where to keep the job (reused if it has N events)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--keep-all-snapshots", action="store_true",
                        help="build the job without pruning old snapshots (see above)")
    args = parser.parse_args()

    suffix = "-allsnaps" if args.keep_all_snapshots else ""
    base = args.dir or os.path.join(tempfile.gettempdir(), f"bench-replay-{args.events}{suffix}")
    path = os.path.join(base, "job")
    reuse = False
    if os.path.isdir(path):
        try:
            with open_job(path) as job:
                reuse = job.head >= args.events
        except Exception:
            reuse = False
    if not reuse:
        shutil.rmtree(base, ignore_errors=True)
        os.makedirs(base)
        t0 = time.perf_counter()
        if args.keep_all_snapshots:
            import eventlog.filelog

            eventlog.filelog.KEEP_SNAPSHOTS = 10**9  # type: ignore[attr-defined]
        build_job(path, args.events)
        print(f"built a {args.events:,}-event durable job in {time.perf_counter() - t0:.1f} s: {path}")
    rng = random.Random(args.seed)
    with open_job(path) as job:
        head = job.head
        snaps = len(job.log.snapshots())
    print(f"job: {head:,} events, {snaps} snapshots kept on disk")

    def run_info() -> Any:
        with open_job(path) as job:
            return info(job)

    def run_state() -> Any:
        version = rng.randint(1, head)
        with open_job(path) as job:
            return state_dict(projection_at(job, version), history=False)

    def run_state_early() -> Any:
        version = rng.randint(1, max(1, head // 10))  # far below the newest snapshots
        with open_job(path) as job:
            return state_dict(projection_at(job, version), history=False)

    # counter is set on every 5th event; pick a threshold at a random point of the job.
    threshold = rng.randint(head // 10, head - 10)
    cond = parse_condition(f"shared_data.counter >= {threshold}")

    def run_bisect() -> Any:
        with open_job(path) as job:
            return bisect(job, cond)

    def run_verify() -> Any:
        with open_job(path) as job:
            return verify_job(job)

    rows = []
    t_info, summary = median_time(run_info, args.runs)
    rows.append(("info", t_info, "<= 0.5 s", t_info <= 0.5, f"{sum(summary.counts.values()):,} events counted"))
    t_state, _ = median_time(run_state, args.runs)
    rows.append(("state --at (random version)", t_state, "<= 0.5 s", t_state <= 0.5, ""))
    t_early, _ = median_time(run_state_early, args.runs)
    rows.append(("state --at (first 10%)", t_early, "<= 0.5 s", t_early <= 0.5, ""))
    t_bisect, found = median_time(run_bisect, args.runs)
    rows.append(("bisect", t_bisect, "<= 2 s", t_bisect <= 2.0, f"version {found.version}, {found.probes} probes"))
    verify_runs = max(1, min(args.runs, 3))
    t_verify, report = median_time(run_verify, verify_runs)
    rate = head / t_verify
    rows.append(("verify", t_verify, ">= 300k events/s", rate >= 300_000,
                 f"{rate:,.0f} events/s, ok={report.ok}"))
    print(f"\nmedians of {args.runs} runs ({verify_runs} for verify), in-process, fresh open each run:")
    for name, secs, target, met, note in rows:
        print(f"  {name:<30} {secs * 1000:9.1f} ms   target {target:<17} {'met' if met else 'MISSED':<7} {note}")
    print("\nthe real CLI as a subprocess (median of 3 runs, Python start-up included):")
    for cmd in (["info", path], ["state", path, "--at", str(head // 2), "--json"],
                ["state", path, "--at", str(max(1, head // 20)), "--json"],
                ["bisect", path, "--where", cond.text], ["verify", path]):
        secs = statistics.median(cli_time(cmd) for _ in range(3))
        extra = f"  ({head / secs:,.0f} events/s)" if cmd[0] == "verify" else ""
        print(f"  routilux-replay {' '.join(cmd[:1] + cmd[2:]):<45} {secs * 1000:9.1f} ms{extra}")


if __name__ == "__main__":
    main()
