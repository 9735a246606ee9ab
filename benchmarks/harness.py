"""The command-line driver shared by the comparison benchmarks.

A benchmark script describes its cases and rows; ``run_benchmark`` parses the common options
(``--runs``, ``--peer-venv``, ``--no-peer``, ``--dir``, ``--json``), makes sure the peer
venv exists, runs the cases interleaved, and prints the markdown table with the machine.
Progress goes to stderr, the table to stdout, so ``> table.md`` keeps only the table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peer import (
    OURS,
    Case,
    PeerUnavailableError,
    WorkloadError,
    ensure_peer_venv,
    interpreters,
    run_interleaved,
    run_workload,
)
from report import Row, describe_machine, render_table

__all__ = ["Plan", "add_common_options", "run_benchmark"]


@dataclass(frozen=True)
class Plan:
    """What one benchmark run does, given its scratch directory.

    Attributes:
        title: the heading printed above the table.
        cases: the workloads to run, interleaved.
        rows: the table's rows.
        notes: the lines printed under the table, given what ``prepare`` returned (by case key).
        prepare: workloads run once, on our side, before the runs (e.g. writing a log).
        cleanup: workloads run once, on our side, after the runs, even after a failure
            (e.g. deleting what ``prepare`` put in a database).
    """

    title: str
    cases: Sequence[Case]
    rows: Sequence[Row]
    notes: Callable[[dict[str, dict[str, Any]]], list[str]] = lambda prepared: []
    prepare: Sequence[Case] = ()
    cleanup: Sequence[Case] = ()


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options every comparison benchmark takes."""
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs; medians are shown (default 5)")
    parser.add_argument("--peer-venv", type=Path, default=None,
                        help="venv of routilux==0.10.0 + serilux==0.3.1 to use or create "
                             "(default: ~/.cache/routilux-es-bench/...)")
    parser.add_argument("--no-peer", action="store_true", help="run ours only (no venv, no network)")
    parser.add_argument("--dir", default=None,
                        help="where to make the scratch directory (default: the system's temporary directory)")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's raw results here")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _missing_dependency() -> str | None:
    """Why our side cannot import routilux-es's run-time dependencies, or None."""
    try:
        import attr  # noqa: F401
        import msgpack  # noqa: F401
    except ImportError as error:
        return str(error)
    return None


def run_benchmark(args: argparse.Namespace, make_plan: Callable[[str], Plan]) -> int:
    """Run the plan made for a fresh scratch directory; print the table. Returns the exit status."""
    started = time.perf_counter()
    missing = _missing_dependency()
    if missing:
        print(f"error: this Python ({sys.executable}) cannot run routilux-es ({missing}); use the project's "
              f"venv (.venv/bin/python, made by `bash scripts/test`) or `pip install -e .` first", file=sys.stderr)
        return 2
    try:
        peer_python = None if args.no_peer else ensure_peer_venv(args.peer_venv, say=_say)
    except PeerUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sides = interpreters(peer_python)
    scratch = tempfile.mkdtemp(prefix="routilux-es-bench-", dir=args.dir)
    plan = make_plan(scratch)
    try:
        _say(f"{plan.title}: {args.runs} interleaved run(s), scratch {scratch}")
        prepared: dict[str, dict[str, Any]] = {}
        for case in plan.prepare:
            _say(f"  preparing: {case.function} ...")
            try:
                prepared[case.key] = run_workload(sides[OURS], case.module, case.function, case.params)
            except WorkloadError as error:
                print(f"error: preparation failed: {error}", file=sys.stderr)
                return 1
        results = run_interleaved(plan.cases, sides, args.runs, say=_say)
        elapsed = time.perf_counter() - started
        print(f"### {plan.title}\n")
        print(describe_machine(scratch, results.pythons) + "\n")
        print(render_table(plan.rows, results) + "\n")
        for note in plan.notes(prepared):
            print(f"- {note}")
        if peer_python is None:
            print("- Run with --no-peer: the original's columns are empty.")
        print(f"- {args.runs} interleaved run(s); the whole benchmark took {elapsed / 60:.1f} min "
              f"(command: `{' '.join(['python', *sys.argv])}`).")
        if args.json:
            raw = {"prepared": prepared,
                   "runs": {f"{key}/{side}": runs for (key, side), runs in results.runs.items()},
                   "errors": {f"{key}/{side}": err for (key, side), err in results.errors.items()}}
            args.json.write_text(json.dumps(raw, indent=1))
        return 1 if results.errors else 0
    finally:
        for case in plan.cleanup:
            try:
                run_workload(sides[OURS], case.module, case.function, case.params)
            except WorkloadError as error:
                print(f"warning: cleanup failed: {error}", file=sys.stderr)
        shutil.rmtree(scratch, ignore_errors=True)
