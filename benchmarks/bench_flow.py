"""Flows: routilux-es against the original routilux 0.10.0, interleaved, nested event data.

    python benchmarks/bench_flow.py                   # 5 runs, 1,000-routine chain, 10,000-event fan-out
    python benchmarks/bench_flow.py --runs 3
    python benchmarks/bench_flow.py --quick --runs 1  # small sizes, a sanity run
    python benchmarks/bench_flow.py --no-peer         # ours only (no venv, no network)

Scenarios (``flow_workloads.py``, 0.10 public API only), each under the ``sequential`` and
the ``concurrent`` (4 workers) execution strategy: a chain of routines relaying one event,
and one routine emitting many events to a sink; every event carries issue 11's nested data.
Each runs in a fresh process (which executes it ``--repeat`` times, each on a freshly built
flow, and reports the median), ours in memory and the original in memory, interleaved; ours
also with a durable job (``JobState.open(dir, durability="batch")``, which the original
cannot do: compared with its in-memory figure, and with ours in memory). Two timings from
``execute``: until the last handler ran, and until ``JobState.wait_for_completion``
returned (the original polls, so this includes its ~0.25 s floor).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Plan, add_common_options, run_benchmark  # noqa: E402
from peer import OURS, PEER, Case  # noqa: E402
from report import Ref, Row, Target  # noqa: E402

ORIGINAL = "0.10"


def make_plan(args: argparse.Namespace, scratch: str) -> Plan:
    """The cases and rows for these sizes and this scratch directory."""
    chain_len = args.chain or (100 if args.quick else 1000)
    fan_events = args.fanout or (1000 if args.quick else 10_000)
    cases: list[Case] = []
    rows: list[Row] = []
    for topology, size_key, size, title in (
            ("chain", "length", chain_len, f"{chain_len:,}-routine chain"),
            ("fanout", "events", fan_events, f"{fan_events:,}-event fan-out")):
        for strategy in ("sequential", "concurrent"):
            mem, durable = f"{topology}-{strategy}", f"{topology}-{strategy}-durable"
            params = {size_key: size, "strategy": strategy, "repeat": args.repeat}
            cases.append(Case(mem, "flow_workloads", topology, params))
            cases.append(Case(durable, "flow_workloads", topology,
                              {**params, "durable_dir": os.path.join(scratch, durable)}, (OURS,)))
            name = f"{title}, {strategy}"
            rows += [
                Row(f"{name}: until the last handler ran", "nested", "ms",
                    Ref(mem, OURS, "done_ms"), Ref(mem, PEER, "done_ms", ORIGINAL)),
                Row(f'{name}, durable `"batch"` (ours only; vs {ORIGINAL} in memory)', "nested", "ms",
                    Ref(durable, OURS, "done_ms"), Ref(mem, PEER, "done_ms", f"{ORIGINAL} in memory")),
                Row(f'{name}, durable `"batch"` vs ours in memory', "nested", "ms",
                    Ref(durable, OURS, "done_ms"), Ref(mem, OURS, "done_ms", "ours in memory"),
                    Target("<=", 1.3, "issue 4")),
                Row(f"{name}: until `wait_for_completion` returned", "nested", "ms",
                    Ref(mem, OURS, "wait_ms"), Ref(mem, PEER, "wait_ms", ORIGINAL)),
            ]
    cases.append(Case("idle-wait", "flow_workloads", "idle_wait", {"repeat": 21}))
    rows.append(Row("`wait_for_completion` on a job whose work is done", "nested", "ms",
                    Ref("idle-wait", OURS, "ms"), Ref("idle-wait", PEER, "ms", ORIGINAL),
                    Target("<=", 5, "issue 4", on_value=True)))

    def notes(prepared: dict[str, dict[str, object]]) -> list[str]:
        return [
            "Event data: issue 11's nested shape (`{\"result\": ..., \"count\": ..., \"items\": [...], "
            "\"meta\": {...}}`), passed with every emit; the concurrent strategy uses 4 workers.",
            "Ratio: ours / the figure it is compared with, of the medians (lower is better).",
            "The original has no durable log: durable rows compare with its in-memory figure, and with ours "
            "in memory (issue 4's target).",
        ]

    return Plan("Flows: routilux-es vs routilux 0.10.0", cases, rows, notes)


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--quick", action="store_true", help="small sizes (a sanity run, not for figures)")
    parser.add_argument("--chain", type=int, help="routines in the chain (default 1,000)")
    parser.add_argument("--fanout", type=int, help="events in the fan-out (default 10,000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="executions per process, fresh flow each; the process reports their median (default 3)")
    args = parser.parse_args(argv)
    return run_benchmark(args, lambda scratch: make_plan(args, scratch))


if __name__ == "__main__":
    raise SystemExit(main())
