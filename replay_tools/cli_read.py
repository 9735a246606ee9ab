"""Commands that read one job: ``info``, ``events``, ``state``, ``diff``, ``tail``."""

from __future__ import annotations

from typing import Any

import click

from .cli_common import (
    Failure,
    Printer,
    handle_errors,
    key_option,
    open_for_reading,
    output_options,
    path_argument,
    progress,
)
from .errors import EXIT_USAGE, UsageError
from .rows import Column, format_value
from .source import Job, parse_time
from .timefmt import TIME_HELP

__all__ = ["diff", "event_columns", "events", "info", "state", "tail"]


# -- info ---------------------------------------------------------------------------------
@click.command()
@path_argument
@key_option
@output_options()
@handle_errors
def info(path: str, key_file: str | None, printer: Printer) -> None:
    """Summarise a job: ids, status, versions, times, event counts, snapshots, head hash.

    Warns (on stderr) when the log ends in a torn write (the unfinished last write of
    a process that crashed) or when such a tail was cut off earlier.

    \b
    Example:
      routilux-replay info ./jobs/1234
      routilux-replay info saved-job.rjob --json
      routilux-replay info 'postgresql://me@db-host:5432/flows#1234'
    """
    from .source import tail_warnings
    from .summary import info as info_

    with open_for_reading(path, key_file) as job, progress(printer, job.head, "counting events") as update:
        summary = info_(job, progress=update)
        warnings = tail_warnings(job)
    for text in warnings:
        click.echo(f"routilux-replay: warning: {text}", err=True)
    if printer.as_json:
        data = summary.to_json()
        data["first_time"] = printer.time_ns(summary.first_ts)
        data["last_time"] = printer.time_ns(summary.last_ts)
        data["warnings"] = warnings
        printer.json(data)
        return
    printer.kv([
        ("job", summary.job_id),
        ("flow", summary.flow_id),
        ("status", summary.status),
        ("versions", f"{summary.first_version}..{summary.head_version}"),
        ("time", f"{printer.time(summary.first_ts)} .. {printer.time(summary.last_ts)}"),
        ("snapshots", ", ".join(str(s) for s in summary.snapshots) or "none"),
        ("head hash", summary.head_hash + (" (keyed chain)" if summary.keyed else "")),
        ("stored as", summary.durability),
        ("path", summary.path),
    ])
    printer.line()
    writer = printer.rows([Column("kind", lambda kv: kv[0], header="KIND"),
                           Column("events", lambda kv: kv[1], kind="num")])
    writer.write_all(summary.counts.items())
    writer.close()


# -- events -------------------------------------------------------------------------------
def event_columns(printer: Printer, head: int) -> list[Column]:
    """The columns of ``events`` and ``tail`` (the same fields as their JSON lines)."""
    from routilux.events import KINDS

    return [
        Column("seq", lambda r: r.seq, text=str, header="VERSION", kind="num", width=len(str(head)), priority=100,
               aliases=("version",)),
        Column("ts", lambda r: r.ts, text=str, table=False),
        Column("time", lambda r: r.ts, text=printer.time, json=printer.time_ns, priority=20),
        # Every kind fits the kind column, also the ones that come after the look-ahead.
        Column("kind", lambda r: r.kind, text=str, width=max(len(k) for k in KINDS), priority=90),
        Column("routine", lambda r: r.routine, text=lambda v: v or "-", priority=60),
        Column("data", lambda r: r.data, kind="data", json=_jsonable),
    ]


def _jsonable(value: Any) -> Any:
    from .jsonform import to_jsonable

    return to_jsonable(value)


def _check_kinds(job: Job, kinds: tuple[str, ...]) -> None:
    """Refuse a kind no routilux job has (naming the nearest and the kinds that exist)."""
    from difflib import get_close_matches

    from routilux.events import KINDS

    for kind in kinds:
        if kind in KINDS:
            continue
        near = get_close_matches(kind, list(KINDS), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(near)}? " if near else ""
        msg = f"no event kind {kind!r} ({hint}kinds: {', '.join(KINDS)})"
        raise UsageError(msg)


@click.command()
@path_argument
@click.option("--kind", "kinds", multiple=True, help="Only events of this kind (repeatable).")
@click.option("--routine", help="Only events that belong to this routine (see `events --help`).")
@click.option("--where", "condition", metavar="CONDITION",
              help="Only events for which this condition holds, e.g. 'data.key == limit'.")
@click.option("--from", "start", metavar="VERSION", help="First version (inclusive).")
@click.option("--to", "stop", metavar="VERSION", help="Last version (inclusive).")
@click.option("--since", metavar="TIME", help=f"Only events at or after this time: {TIME_HELP}.")
@click.option("--until", metavar="TIME", help="Only events at or before this time.")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many events (the first ones).")
@click.option("--last", type=click.IntRange(min=0), help="Only the last N matching events.")
@click.option("--reverse", is_flag=True, help="Newest first.")
@key_option
@output_options(listing=True, json_form="jsonl")
@handle_errors
def events(path: str, kinds: tuple[str, ...], routine: str | None, condition: str | None, start: str | None,
           stop: str | None, since: str | None, until: str | None, limit: int | None, last: int | None,
           reverse: bool, key_file: str | None, printer: Printer) -> None:
    """Print the job's events, filtered by kind, routine, condition, versions and time.

    Rows are printed as they are read. Fields: seq (the version), ts (ns), time,
    kind, routine, data. The routine of an event is the one it names, else the one
    whose task was running (or the only open task), else the job's current routine:
    the same rule as blame's.

    --where takes a condition on the event's fields (version, ts, time, kind,
    routine, data.KEY...), in the language of `bisect --help`.

    \b
    Example:
      routilux-replay events ./jobs/1234 --kind status_set --kind paused
      routilux-replay events ./jobs/1234 --routine fetch --from 10 --to 50 --json
      routilux-replay events ./jobs/1234 --where 'data.key == limit' --since 10m
      routilux-replay events ./jobs/1234 --last 20 --fields seq,kind,routine --format csv
    """
    from .condition import parse_event_condition
    from .summary import timeline

    if last is not None and (limit is not None or reverse):
        raise Failure("--last N already means the newest N in order; give it without --limit/--reverse", EXIT_USAGE)
    where = parse_event_condition(condition) if condition else None
    with open_for_reading(path, key_file) as job:
        _check_kinds(job, kinds)
        lo = job.resolve_point(start) if start else 1
        hi = job.resolve_point(stop) if stop else job.head
        options: dict[str, Any] = {
            "kinds": kinds, "routine": routine, "start": lo, "stop": hi, "where": where,
            "since": parse_time(since) if since else None, "until": parse_time(until) if until else None,
        }
        writer = printer.rows(event_columns(printer, job.head))
        if last is not None:
            newest = list(timeline(job, limit=last, reverse=True, **options))
            writer.write_all(reversed(newest))
        else:
            writer.write_all(timeline(job, limit=limit, reverse=reverse, **options))
        writer.close()
        if writer.count == 0 and printer.fmt == "table":
            printer.line(_why_nothing(job, kinds, routine))


def _why_nothing(job: Job, kinds: tuple[str, ...], routine: str | None) -> str:
    """'no matching events', with the kinds or routines the job does have when they were asked for."""
    from .summary import count_kinds

    notes = []
    if kinds:
        present = count_kinds(job)
        missing = [k for k in kinds if k not in present]
        if missing:
            notes.append(f"this job has no {', '.join(missing)} events; its kinds: {', '.join(present)}")
    if routine is not None:
        from .summary import timeline

        seen = sorted({r.routine for r in timeline(job) if r.routine})
        if routine not in seen:
            notes.append(f"no event belongs to routine {routine!r}; routines: {', '.join(seen) or 'none'}")
    return "no matching events" + (f" ({'; '.join(notes)})" if notes else "")


# -- state --------------------------------------------------------------------------------
def _point(job: Job, at: str | None, when: str | None) -> int:
    if at is not None and when is not None:
        raise Failure("give --at VERSION or --time TIME, not both", EXIT_USAGE)
    if when is not None:
        return job.version_at(parse_time(when), when)
    if at is not None:
        return job.resolve_point(at)
    return job.head


_HISTORY_TITLES = (("deferred_events", "Deferred events"), ("pending_tasks", "Pending tasks"),
                   ("execution_history", "History"), ("output_log", "Outputs"),
                   ("shared_log", "Shared log"), ("pause_points", "Pause points"))


@click.command()
@path_argument
@click.option("--at", metavar="POINT", help="Version, 'head', 'head-N', hash prefix or time. Default: head.")
@click.option("--time", "when", metavar="TIME", help=f"The state as it was at this time: {TIME_HELP}.")
@click.option("--history", "show_history", type=click.IntRange(min=0), default=5, show_default=True,
              help="How many of the latest entries of each list to show (text output).")
@click.option("--no-history", "without_history", is_flag=True,
              help="With --json, leave out the append-only lists (faster on long logs).")
@click.option("--full", is_flag=True, hidden=True)  # the lists are always included now
@key_option
@output_options()
@handle_errors
def state(path: str, at: str | None, when: str | None, show_history: int, without_history: bool, full: bool,
          key_file: str | None, printer: Printer) -> None:
    """Print the job's state at a version or time (default: the latest).

    --json prints {"version", "ts", "time", "state"} where state has the shape of
    JobState.serialize(), with every list: execution_history, shared_log,
    output_log, pause_points (--no-history leaves those four out).

    \b
    Example:
      routilux-replay state ./jobs/1234 --at 42
      routilux-replay state ./jobs/1234 --time 2026-11-28T07:13:04Z --json
      routilux-replay state ./jobs/1234 --at head-3
    """
    from .replay import projection_at, state_dict

    del full
    with open_for_reading(path, key_file) as job:
        version = _point(job, at, when)
        history = not (without_history and printer.as_json)
        p = projection_at(job, version, history=history)
        # Personal values are shown from the job's vault; erased ones as {"$erased": ...} (issue 14).
        data = job.log.reveal(state_dict(p, history=history))
        rec_ts = p.last_ts
    if printer.as_json:
        printer.json({"version": version, "ts": rec_ts, "time": printer.time_ns(rec_ts), "state": data})
        return
    printer.kv([
        ("version", f"{version} of {job.head}"),
        ("time", printer.time(rec_ts)),
        ("job", data["job_id"]),
        ("flow", data["flow_id"]),
        ("status", data["status"]),
        ("current routine", data["current_routine_id"] or "-"),
    ])
    _state_table(printer, "Routine states", "ROUTINE", "STATE", data["routine_states"])
    _state_table(printer, "Shared data", "KEY", "VALUE", data["shared_data"])
    for name, title in _HISTORY_TITLES:
        items = data.get(name) or []
        printer.line()
        if not items:
            printer.line(f"{title}: none")
            continue
        shown = items[-show_history:] if show_history > 0 else []
        more = len(items) - len(shown)
        printer.line(printer.bold(f"{title}: {len(items)}") + (f" (last {len(shown)} shown)" if more else ""))
        room = None if printer.out.width is None else max(10, printer.out.width - 2)
        from .rows import cut

        for item in shown:
            printer.line("  " + cut(format_value(item), room))


def _state_table(printer: Printer, title: str, key: str, value: str, mapping: dict[str, Any]) -> None:
    printer.line()
    if not mapping:
        printer.line(f"{title}: none")
        return
    printer.line(printer.bold(title))
    from .rows import row_writer

    writer = row_writer(printer.out, [Column(key.lower(), lambda kv: kv[0], header=key, priority=90),
                                      Column(value.lower(), lambda kv: kv[1], header=value, kind="data")], "table")
    writer.write_all(mapping.items())
    writer.close()


# -- diff ---------------------------------------------------------------------------------
@click.command()
@path_argument
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@key_option
@output_options()
@handle_errors
def diff(path: str, a: str, b: str, key_file: str | None, printer: Printer) -> None:
    """Show field-level differences between two points A and B (versions, hashes or times).

    Grouped by status, routine states, shared data, history added, deferred events,
    outputs (and shared log, pause points, pending tasks).

    \b
    Example:
      routilux-replay diff ./jobs/1234 10 42
      routilux-replay diff ./jobs/1234 2026-11-28T07:13:04Z head --json
    """
    from .diff import GROUP_TITLES, group_differences
    from .replay import diff as diff_
    from .rows import cut

    with open_for_reading(path, key_file) as job:
        va, vb = job.resolve_point(a), job.resolve_point(b)
        diffs = diff_(job, va, vb)
    if printer.as_json:
        groups: dict[str, list[Any]] = {}
        for d in diffs:
            groups.setdefault(d.group, []).append(d.to_json())
        printer.json({"a": va, "b": vb, "groups": groups})
        return
    if not diffs:
        printer.line(f"no differences between version {va} and version {vb}")
        return
    out = printer.out
    printer.line(printer.bold(f"--- version {va}"))
    printer.line(printer.bold(f"+++ version {vb}"))
    marks = {"added": ("+", "32"), "removed": ("-", "31"), "changed": ("~", "33")}
    room = None if out.width is None else max(10, out.width - 4)
    for group, items in group_differences(diffs).items():
        printer.line()
        printer.line(out.style(f"{GROUP_TITLES.get(group, group)} ({len(items)})", "1", "4"))
        for d in items:
            mark, colour = marks[d.change]
            if d.change == "changed":
                body = f"{d.path}: {format_value(d.old)} -> {format_value(d.new)}"
            elif d.change == "added":
                body = f"{d.path}: {format_value(d.new)}"
            else:
                body = f"{d.path}: {format_value(d.old)}"
            printer.line("  " + out.style(mark, colour) + " " + cut(body, room))


# -- tail ---------------------------------------------------------------------------------
@click.command()
@path_argument
@click.option("-n", "--lines", "count", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many of the latest events to print first.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing events as the running job appends them.")
@click.option("--timeout", type=float, default=None,
              help="With --follow: stop after this many seconds without a new event.")
@key_option
@output_options(listing=True, json_form="jsonl")
@handle_errors
def tail(path: str, count: int, follow: bool, timeout: float | None, key_file: str | None,
         printer: Printer) -> None:
    """Print the latest events; with --follow, keep printing new ones as they are appended.

    Follows a durable job directory or a PostgreSQL job that another process is
    writing (read-only: no lock is taken). Stop with Ctrl-C, or with --timeout.
    Same fields and routine rule as `events`.

    \b
    Example:
      routilux-replay tail ./jobs/1234 -n 20
      routilux-replay tail ./jobs/1234 --follow --json
    """
    from eventlog import CorruptionError

    from .attribution import Attributor
    from .source import damaged
    from .summary import EventRow, timeline

    with open_for_reading(path, key_file) as job:
        if follow and job.form == "file":
            raise Failure("--follow needs a durable job directory or a PostgreSQL job "
                          "(a saved job file never grows)", EXIT_USAGE)
        if follow and printer.fmt == "json":
            raise Failure("--follow streams events: use --json (JSON Lines) or --format jsonl", EXIT_USAGE)
        if follow:
            printer.out.disable_pager()  # a stream the user watches: never paged
        writer = printer.rows(event_columns(printer, max(job.head, 10**6)))
        head = job.head
        newest = list(timeline(job, limit=count, reverse=True)) if count else []
        for row in reversed(newest):
            writer.write(row)
        if not follow:
            writer.close()
            return
        # The table decides its widths now: later rows are printed as they come.
        writer.close()
        printer.out.flush()
        who = Attributor.at(job, head + 1)
        try:
            for rec in job.log.follow(head + 1, timeout=timeout):
                item = (rec.seq, rec.ts, rec.kind, rec.data)
                routine = who.routine(rec.kind, rec.data)
                who.observe(item)
                writer.write(EventRow(rec.seq, rec.ts, rec.kind, rec.data, routine))
                writer.close()  # a table row is printed at once; JSON Lines need no closing
                printer.out.flush()
        except KeyboardInterrupt:
            return
        except CorruptionError as exc:
            raise damaged(path, exc) from None
