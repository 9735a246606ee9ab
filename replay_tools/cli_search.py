"""Commands that search a job's history: ``bisect`` and ``blame``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .cli_common import (
    Printer,
    handle_errors,
    key_option,
    open_for_reading,
    output_options,
    path_argument,
    progress,
)
from .errors import EXIT_CHECK_FAILED
from .paths import MISSING
from .rows import Column, format_value

__all__ = ["bisect", "blame"]


def _routine_at(job: Any, version: int, kind: str, data: Any) -> str | None:
    """The routine of the event at ``version`` (the one attribution rule)."""
    from .attribution import Attributor

    return Attributor.at(job, version).routine(kind, data)


def _jsonable(value: Any) -> Any:
    from .jsonform import to_jsonable

    return to_jsonable(value)


@click.command()
@path_argument
@click.option("--where", "condition", required=True, metavar="CONDITION",
              help="A condition on the state, e.g. 'shared_data.limit == 0'.")
@click.option("--all", "every", is_flag=True,
              help="List every version where the condition becomes true or false, with times.")
@click.option("--assume-monotonic", is_flag=True,
              help="Binary search (O(log n) rebuilds): right only if the condition stays true once true.")
@click.option("--allow-missing", is_flag=True,
              help="Accept fields that no version of the job has (they are just absent).")
@click.option("--exhaustive", is_flag=True, hidden=True)  # the default scan is exhaustive now
@key_option
@output_options(listing=True)
@handle_errors
def bisect(path: str, condition: str, every: bool, assume_monotonic: bool, allow_missing: bool,
           exhaustive: bool, key_file: str | None, printer: Printer) -> None:
    """Find the first version at which a condition on the state holds.

    The answer is right for every condition, also one that becomes true and later
    false again: the job's events are scanned once, and the condition is evaluated
    at each version where one of the fields it reads can change (other events are
    not decoded; whole stretches are skipped using the snapshots' event counters).
    --all lists every version where it becomes true or false. --assume-monotonic
    binary-searches instead (like git bisect): faster on huge logs, but wrong if the
    condition can flip back. Exit code 1 when the condition holds at no version.

    \b
    Conditions: field paths with ==, !=, <, <=, >, >=, in [a, b], not in [...],
    exists, missing, len(path), combined with and / or / not and parentheses.
    Values are typed: numbers, true/false, null, text (quoted, or a bare word);
    a number compared with text is an error pointing at the value. A field that
    no version of the job has is an error naming the nearest known fields
    (--allow-missing accepts it). No Python is evaluated.

    \b
    Example:
      routilux-replay bisect ./jobs/1234 --where 'shared_data.limit == 0'
      routilux-replay bisect ./jobs/1234 --where 'routine_states.fetch.status in [failed, error]'
      routilux-replay bisect ./jobs/1234 --where 'status == paused' --all
    """
    from .condition import parse_condition
    from .replay import bisect as bisect_
    from .replay import transitions

    del exhaustive
    cond = parse_condition(condition)
    with open_for_reading(path, key_file) as job:
        if every:
            columns = [
                Column("version", lambda t: t.version, kind="num", width=len(str(job.head)), priority=100),
                Column("ts", lambda t: t.ts, table=False),
                Column("time", lambda t: t.ts, text=printer.time, json=printer.time_ns, priority=20),
                Column("holds", lambda t: t.holds, header="BECOMES", priority=95),
                Column("kind", lambda t: t.kind, priority=80),
                Column("data", lambda t: t.data, kind="data", json=_jsonable),
            ]
            envelope = (f'{{"condition": {json.dumps(condition, ensure_ascii=False)}, "transitions": ', "}")
            writer = printer.rows(columns, json_envelope=envelope)
            with progress(printer, job.head, "scanning") as update:
                writer.write_all(transitions(job, cond, allow_missing=allow_missing, progress=update))
            writer.close()
            if writer.count == 0:
                if printer.fmt == "table":
                    printer.line(f"the condition {condition!r} holds at no version of this job (1..{job.head})")
                sys.exit(EXIT_CHECK_FAILED)
            return
        with progress(printer, job.head if not assume_monotonic else None, "scanning") as update:
            result = bisect_(job, cond, assume_monotonic=assume_monotonic, allow_missing=allow_missing,
                             progress=update)
        routine = _routine_at(job, result.version, result.kind or "", result.data) if result.version else None
        head = job.head
    if printer.as_json:
        printer.json({
            "condition": condition,
            "version": result.version,
            "ts": result.ts,
            "time": printer.time_ns(result.ts),
            "kind": result.kind,
            "routine": routine,
            "data": _jsonable(result.data),
            "probes": result.probes,
            "events_read": result.events_read,
            "method": "scan" if result.exhaustive else "binary search (assumes monotonic)",
            "exhaustive": result.exhaustive,
        })
    elif result.version is None:
        if result.exhaustive:
            printer.line(f"the condition {condition!r} holds at no version of this job (1..{head}; evaluated at "
                         f"the {result.probes} version{'s' if result.probes != 1 else ''} where its fields change)")
        else:
            printer.line(f"the condition {condition!r} does not hold at the head (version {head}); with "
                         "--assume-monotonic that means never (drop the flag to scan every version)")
    else:
        printer.line(f"first version where {condition!r} holds: {printer.bold(str(result.version))}")
        how = (f"{result.probes} state{'s' if result.probes != 1 else ''} evaluated, "
               f"{result.events_read} of {head} events read" if result.exhaustive
               else f"{result.probes} states rebuilt by binary search (assumes monotonic)")
        printer.kv([
            ("time", printer.time(result.ts)),
            ("event", result.kind or "-"),
            ("routine", routine or "-"),
            ("data", format_value(result.data)),
            ("search", how),
        ])
    if result.version is None:
        sys.exit(EXIT_CHECK_FAILED)


# -- blame --------------------------------------------------------------------------------
def _blame_value(value: Any) -> Any:
    from .replay import ListSummary

    if value is MISSING:
        return None
    if isinstance(value, ListSummary):
        return {"length": value.length, "first": value.first, "last": value.last}
    return _jsonable(value)


def _blame_text(value: Any) -> str:
    return "(absent)" if value is MISSING else format_value(_blame_value(value))


@click.command()
@path_argument
@click.argument("field", metavar="FIELD")
@click.option("--from", "start", metavar="VERSION", help="First version (inclusive).")
@click.option("--to", "stop", metavar="VERSION", help="Last version (inclusive).")
@key_option
@output_options(listing=True)
@handle_errors
def blame(path: str, field: str, start: str | None, stop: str | None, key_file: str | None,
          printer: Printer) -> None:
    """List every event that changed FIELD, with version, time, routine, old and new value.

    FIELD is a path into the state, e.g. status, shared_data.limit,
    routine_states.fetch.status, routine_states.fetch (quote keys with dots:
    shared_data."a.b"). Rows are printed as they are found; only the events that
    can change FIELD are decoded. The routine is the one the event names, else the
    one whose task was running: the same rule as `events`.

    \b
    Example:
      routilux-replay blame ./jobs/1234 shared_data.limit
      routilux-replay blame ./jobs/1234 routine_states.fetch.status --json
      routilux-replay blame ./jobs/1234 status --format csv --fields version,time,old,new
    """
    from .condition import parse_field
    from .replay import iter_blame

    parsed = parse_field(field)
    with open_for_reading(path, key_file) as job:
        lo = job.resolve_point(start) if start else 1
        hi = job.resolve_point(stop) if stop else job.head
        columns = [
            Column("version", lambda e: e.version, kind="num", width=len(str(job.head)), priority=100),
            Column("ts", lambda e: e.ts, table=False),
            Column("time", lambda e: e.ts, text=printer.time, json=printer.time_ns, priority=20),
            Column("kind", lambda e: e.kind, priority=70),
            Column("routine_id", lambda e: e.routine_id, header="ROUTINE", text=lambda v: v or "-", priority=60,
                   aliases=("routine",)),
            Column("old", lambda e: e.old, text=_blame_text, json=_blame_value, kind="data"),
            Column("new", lambda e: e.new, text=_blame_text, json=_blame_value, kind="data"),
            Column("old_exists", lambda e: e.old is not MISSING, table=False),
            Column("new_exists", lambda e: e.new is not MISSING, table=False),
        ]
        envelope = (f'{{"field": {json.dumps(str(parsed), ensure_ascii=False)}, "changes": ', "}")
        writer = printer.rows(columns, json_envelope=envelope)
        writer.write_all(iter_blame(job, parsed, start=lo, stop=hi))
        writer.close()
    if writer.count == 0 and printer.fmt == "table":
        printer.line(f"no event changed {parsed} in versions {lo}..{hi}")
