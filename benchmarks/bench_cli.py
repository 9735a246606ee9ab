"""Benchmark routilux-replay's text output, JSON output and bisect on big jobs (issue 17).

Builds (once, cached in --dir) durable jobs written through JobState with realistic
nested data: execution records carrying orders with lines, routine states with progress
and error lists, nested shared data, outputs, and a pause/resume and a routine failure
and recovery every few thousand events (so conditions become true and false again).
Then, as medians of --runs interleaved runs of the real command (a subprocess, Python
start-up included, reading its stdout through a pipe as a user's terminal or script would):

* on the 300k-event job, ``events`` and ``blame shared_data.counter`` in text and with
  ``--json``: time to the first row, total time, peak memory (the child's max RSS);
  targets: first row <= 0.5 s, text total <= 2x the --json total, RSS < 200 MB;
* on the 1M-event job, ``bisect --where COND`` (the default scan, exact for conditions
  that flip back) for a few conditions; target <= 2 s. The library call (no start-up)
  is shown too.

There is no peer to compare with (routilux 0.10 has no such tool): the ratios that
matter are text against JSON in the same run. The machine is shared and noisy; the load
average is printed with the results.

    python benchmarks/bench_cli.py                      # 300k and 1M events, 3 runs
    python benchmarks/bench_cli.py --small              # 30k and 100k: a quick sanity run
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

ROUTINES = [f"stage{n}" for n in range(6)]


def build_job(path: str, events: int) -> None:
    """Write a job of ``events`` events: a realistic mix of JobState mutations."""
    from routilux.job_state import JobState

    job = JobState.open(path, flow_id="orders-pipeline", durability="batch")
    try:
        job.status = "running"
        job.update_shared_data("config", {"region": "eu-west", "limits": {"daily": 5000, "burst": [10, 20, 40]}})
        i = 0
        while job.version < events:
            rid = ROUTINES[i % len(ROUTINES)]
            step = i % 8
            if step in (0, 1, 2):
                job.record_execution(rid, "processed", {
                    "order": {"id": f"O-{i:07d}", "customer": {"id": i % 977, "tier": "gold" if i % 7 else "std"},
                              "lines": [{"sku": f"SKU-{(i + k) % 311}", "qty": 1 + (i + k) % 5,
                                         "price": round(2.5 + (i + k) % 40 * 0.75, 2)} for k in range(3)]},
                    "attempt": 1 + i % 3})
            elif step == 3:
                job.update_shared_data("counter", i)
            elif step == 4:
                job.update_routine_state(rid, {"status": "running", "progress": {"done": i, "total": events},
                                               "errors": [f"E{i % 13}"] if i % 13 == 0 else []})
            elif step == 5:
                job.send_output(rid, "invoice", {"order": f"O-{i:07d}", "total": round(i % 1000 * 1.25, 2),
                                                 "currency": "EUR", "tax": {"rate": 0.2, "amount": i % 100}})
            elif step == 6:
                job.append_to_shared_log({"i": i, "msg": "batch checkpoint", "tags": ["auto", rid]})
            else:
                job.update_shared_data("last_seen", {"routine": rid, "i": i, "ok": i % 11 != 0})
            if i % 20_000 == 10_000:
                job.update_routine_state("stage3", {"status": "failed", "error": "timeout", "at": i})
            if i % 20_000 == 10_500:
                job.update_routine_state("stage3", {"status": "running", "recovered_at": i})
            if i % 50_000 == 25_000:
                job._set_paused(reason="operator check", checkpoint={"at": i})
                job._set_running()
            i += 1
    finally:
        job.close()


def ensure_job(base: str, events: int) -> str:
    """The cached job of ``events`` events under ``base`` (built on first use, in a child
    process, so that this one stays small)."""
    path = os.path.join(base, f"job-{events}")
    if not os.path.isdir(path):
        t0 = time.perf_counter()
        print(f"building a {events:,}-event job in {path} ...", flush=True)
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {here!r}); "
                        f"from bench_cli import build_job; build_job({path!r}, {events})"], check=True)
        print(f"  built in {time.perf_counter() - t0:.1f} s", flush=True)
    return path


# The command runs under this small wrapper, which reports its child's peak RSS: measured
# directly, the peak would include this (large) benchmark process's pages copied at fork.
_WRAPPER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as fh:
    fh.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
sys.exit(code)
"""


def run_cli(args: list[str], *, first_line: int) -> tuple[float, float, float, float]:
    """Run ``routilux-replay ARGS``; return (seconds to line ``first_line``, total seconds,
    max RSS MiB, CPU seconds).

    ``first_line`` is 1-based: 2 for a table (its header comes first), 1 for JSON Lines.
    """
    # PYTHONDONTWRITEBYTECODE (set on some build machines) makes every start compile each
    # module again, ~0.2 s a user with an installed package never pays: the command runs
    # as installed, with its bytecode cached (the first run writes it).
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "PAGER", "PYTHONDONTWRITEBYTECODE")}
    rss_file = tempfile.NamedTemporaryFile(prefix="bench-rss-", delete=False)
    rss_file.close()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, rss_file.name, sys.executable, "-m", "replay_tools",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0)
    assert proc.stdout is not None
    first = float("nan")
    seen = 0
    buf = b""
    with proc.stdout:
        while True:
            chunk = proc.stdout.read(1 << 16)
            if not chunk:
                break
            if seen < first_line:
                buf += chunk
                seen = buf.count(b"\n")
                if seen >= first_line:
                    first = time.perf_counter() - t0
                    buf = b""
    code = proc.wait()
    total = time.perf_counter() - t0
    with open(rss_file.name) as fh:
        rss_kib, cpu = fh.read().split()
    os.unlink(rss_file.name)
    if code not in (0, 1):
        raise RuntimeError(f"routilux-replay {' '.join(args)} exited {code}")
    return first, total, int(rss_kib) / 1024, float(cpu)


def median(values: list[float]) -> float:
    return statistics.median(values)


def bench_listings(path: str, runs: int) -> list[tuple[str, ...]]:
    """events and blame, text against --json, interleaved runs."""
    cases = {
        "events (text)": (["events", path], 2),
        "events --json": (["events", path, "--json"], 1),
        "blame shared_data.counter (text)": (["blame", path, "shared_data.counter"], 2),
        "blame shared_data.counter --json": (["blame", path, "shared_data.counter", "--format", "jsonl"], 1),
    }
    results: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, (args, line) in cases.items():
            results[name].append(run_cli(args, first_line=line))
    rows = []
    for name, samples in results.items():
        rows.append((name, f"{median([s[0] for s in samples]):.2f} s", f"{median([s[1] for s in samples]):.2f} s",
                     f"{median([s[3] for s in samples]):.2f} s", f"{max(s[2] for s in samples):.0f} MiB"))
    for kind in ("events", "blame shared_data.counter"):
        text = results[f"{kind} (text)"]
        js = results[next(n for n in cases if n.startswith(kind) and "json" in n)]
        rows.append((f"{kind}: text / json", "", f"{median([s[1] for s in text]) / median([s[1] for s in js]):.2f}x",
                     f"{median([s[3] for s in text]) / median([s[3] for s in js]):.2f}x", ""))
    return rows


CONDITIONS = [
    "status == paused",                              # flips back at every resume
    "routine_states.stage3.status == failed",        # fails and recovers every 20k events
    "shared_data.last_seen.ok == false and status == running",  # a key set every 8 events
    "shared_data.counter == 999999",                 # never: the whole log is scanned
]


def bench_bisect(path: str, runs: int) -> list[tuple[str, ...]]:
    """bisect (default scan) on the 1M job: the command and the library call."""
    from replay_tools import open_job, parse_condition
    from replay_tools.replay import bisect

    rows = []
    for cond in CONDITIONS:
        cli_times = []
        cli_cpu = []
        lib_times = []
        lib_cpu = []
        found: Any = None
        for _ in range(runs):
            _first, total, _rss, cpu = run_cli(["bisect", path, "--where", cond, "--json"], first_line=1)
            cli_times.append(total)
            cli_cpu.append(cpu)
            with open_job(path) as job:
                t0, c0 = time.perf_counter(), time.process_time()
                found = bisect(job, parse_condition(cond), allow_missing=True)
                lib_times.append(time.perf_counter() - t0)
                lib_cpu.append(time.process_time() - c0)
        rows.append((f"bisect --where '{cond}'", str(found.version), f"{found.events_read:,}",
                     f"{median(lib_times):.2f} s ({median(lib_cpu):.2f} s CPU)",
                     f"{median(cli_times):.2f} s ({median(cli_cpu):.2f} s CPU)"))
    return rows


def table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "routilux-bench-cli"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="30k and 100k events instead of 300k and 1M")
    parser.add_argument("--only", choices=["listings", "bisect"], help="run one part only")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    listing_events, bisect_events = (30_000, 100_000) if args.small else (300_000, 1_000_000)
    listing_job = ensure_job(args.dir, listing_events)
    bisect_job = ensure_job(args.dir, bisect_events)
    run_cli(["info", listing_job], first_line=1)  # warm-up: writes the bytecode an installed package has
    print(f"\nload average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores; the machine is shared: figures drift between runs)")
    if args.only in (None, "listings"):
        print(f"\n{listing_events:,}-event job, medians of {args.runs} interleaved runs "
              "(subprocess, start-up included with the bytecode cached as an installed package has it; CPU = user + system time of the command):\n")
        print(table(("command", "first row", "total", "CPU", "peak RSS"), bench_listings(listing_job, args.runs)))
    if args.only in (None, "bisect"):
        print(f"\n{bisect_events:,}-event job, medians of {args.runs} runs:\n")
        print(table(("command", "version", "events read", "library", "command"), bench_bisect(bisect_job, args.runs)))
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
