"""``routilux-replay``: the command line over :mod:`replay_tools` (a thin click layer).

The library does the work; this module parses arguments, prints, and turns errors into
one line on stderr with an exit code scripts can rely on:

====  =========================================================================
code  meaning
====  =========================================================================
0     success (for ``verify``: everything holds)
1     a check ran and failed: ``verify`` found a problem, ``bisect`` found no
      version where the condition holds, ``--expect-head`` did not match
2     bad usage: unknown option, bad version or time, bad condition or field path
3     no such file or directory
4     the path is not a job log (or not an importable export)
5     the job log is damaged (the message names the file and byte offset)
6     the storage cannot be reached (a PostgreSQL server is down or refused us)
====  =========================================================================
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

import eventlog
from eventlog import CorruptionError, EventLogError
from routilux.errors import ReplayError as FoldError

from . import render
from .condition import parse_condition
from .errors import (
    EXIT_CHECK_FAILED,
    EXIT_DAMAGED,
    EXIT_NOT_A_JOB,
    EXIT_NOT_FOUND,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    DamagedLogError,
    DestinationError,
    ReplayError,
)
from .exporting import check_empty_destination, export_log, import_to_memory, read_export_into
from .jsonform import iso_utc_ns, record_to_json
from .paths import MISSING, parse_path
from .replay import ListSummary, projection_at, state_dict
from .replay import bisect as bisect_
from .replay import blame as blame_
from .replay import diff as diff_
from .source import Job, damaged, is_pg_location, open_job, open_pg_job_log, parse_time, read_key_file
from .summary import info as info_
from .summary import list_jobs, record_routine, timeline
from .verify import verify_job

__all__ = ["cli", "main"]

#: Snapshot interval of a job rebuilt by ``import`` (JobState's default policy).
SNAPSHOT_EVERY = 4096

F = TypeVar("F", bound=Callable[..., Any])


class _Failure(click.ClickException):
    """A one-line error with its own exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click declares it a ClassVar; per instance here

    def show(self, file: Any = None) -> None:
        click.echo(f"routilux-replay: error: {self.format_message()}", err=True)


def _translate(exc: BaseException) -> _Failure | None:
    """Map a library or storage error to a :class:`_Failure` (``None``: not ours)."""
    if isinstance(exc, ReplayError):
        return _Failure(str(exc), exc.exit_code)
    if type(exc).__name__ == "PostgresError":  # the server went away mid-command
        return _Failure(str(exc), EXIT_UNAVAILABLE)
    if isinstance(exc, CorruptionError):
        return _Failure(str(damaged(exc.segment, exc)), EXIT_DAMAGED)
    if isinstance(exc, FoldError):
        return _Failure(f"the job log cannot be replayed: {exc}", EXIT_DAMAGED)
    if isinstance(exc, EventLogError):
        return _Failure(str(exc), EXIT_DAMAGED)
    if isinstance(exc, FileNotFoundError):
        return _Failure(str(exc), EXIT_NOT_FOUND)
    if isinstance(exc, (IsADirectoryError, NotADirectoryError, PermissionError)):
        return _Failure(str(exc), EXIT_NOT_A_JOB)
    if isinstance(exc, ValueError):
        return _Failure(str(exc), EXIT_USAGE)
    return None


def _errors(func: F) -> F:
    """Run a command, turning known errors into one-line messages and exit codes."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except Exception as exc:
            failure = _translate(exc)
            if failure is None:
                raise  # a bug, not a user error: keep the traceback
            raise failure from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def _job(path: str, key_file: str | None) -> Iterator[Job]:
    job = open_job(path, key=read_key_file(key_file))
    try:
        yield job
    finally:
        job.close()


def _out() -> Any:
    return render.console(sys.stdout)


_path_arg = click.argument("path", metavar="PATH", type=click.Path())
_key_opt = click.option("--key-file", type=click.Path(), default=None,
                        help="File holding the secret key of a keyed hash chain.")
_json_opt = click.option("--json", "as_json", is_flag=True, help="Print stable JSON for scripts.")


_warned: set[str] = set()


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    text = str(message)
    if text not in _warned:  # the same damaged snapshot is met by every rebuild: say it once
        _warned.add(text)
        click.echo(f"routilux-replay: warning: {text}", err=True)


class _Group(click.Group):
    """A click group whose usage errors are one line on stderr too (exit code 2)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order a user meets them (demo first), not A-Z

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            with warnings.catch_warnings():
                # Library warnings (e.g. "ignoring a damaged snapshot") become one line on
                # stderr, like errors, instead of Python's two-line warning format.
                warnings.simplefilter("always")
                warnings.showwarning = _show_warning
                _warned.clear()
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "routilux-replay"
            click.echo(f"routilux-replay: error: {exc.format_message()} (see `{where} --help`)", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("routilux-replay: interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="routilux-es", prog_name="routilux-replay")
def cli() -> None:
    """Time-travel debugging and audit over routilux job logs.

    PATH is a saved job file (JobState.save), a durable job directory
    (JobState.open), or a job in PostgreSQL: postgresql://user@host:port/db#JOB_ID.
    Points in a job's history are versions (1..head, 'head',
    'head-N') or ISO times (local time unless they end in Z or +HH:MM).

    Exit codes: 0 ok; 1 a check failed (verify, bisect found nothing);
    2 bad usage, version, time or condition; 3 no such file; 4 not a job log;
    5 damaged log; 6 the database cannot be reached.

    \b
    Example:
      routilux-replay demo                  # run an example job and explore it
      routilux-replay info ./jobs/1234      # what is this job?
    """


# -- demo ---------------------------------------------------------------------------------
@cli.command()
@click.argument("directory", metavar="[DIR]", required=False, type=click.Path())
@click.option("--quiet", is_flag=True, help="Only run the flow; print the job's path.")
@_errors
def demo(directory: str | None, quiet: bool) -> None:
    """Run an example durable flow, then show what this tool can do with its log.

    The flow has several routines, one failure handled by a RETRY strategy, a pause
    and a resume, shared data and outputs. Its log is written to DIR (default: a new
    directory under the system temp dir), and every later step prints the command
    that reproduces it, so you can go on exploring.

    \b
    Example:
      routilux-replay demo ./demo-job
      routilux-replay state ./demo-job --at 5
    """
    from .demo import run_demo

    run_demo(directory, out=_out(), quiet=quiet)


# -- jobs ---------------------------------------------------------------------------------
@cli.command()
@click.argument("directory", metavar="DIR", type=click.Path())
@_json_opt
@_errors
def jobs(directory: str, as_json: bool) -> None:
    """List the jobs of a JobStore directory: id, flow, status, version, last update, size.

    DIR may also be a PostgreSQL URL without a job id: every job in that database.

    \b
    Example:
      routilux-replay jobs ./jobs
      routilux-replay jobs postgresql://me@db-host:5432/flows
      routilux-replay jobs ./jobs --json | jq '.[] | select(.status == "failed")'
    """
    rows = list_jobs(directory)
    if as_json:
        render.dump_json([r.to_json() for r in rows])
        return
    con = _out()
    if not rows:
        con.print(f"no jobs in {directory}")
        return
    render.print_table(con, ["JOB", "FLOW", "STATUS", "VERSION", "UPDATED", "SIZE"],
                       [(r.job_id, r.flow_id, r.status, str(r.version), r.updated or "-", _size(r.size))
                        for r in rows], right=["VERSION", "SIZE"])


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


# -- info ---------------------------------------------------------------------------------
@cli.command()
@_path_arg
@_key_opt
@_json_opt
@_errors
def info(path: str, key_file: str | None, as_json: bool) -> None:
    """Summarise a job: ids, status, versions, times, event counts, snapshots, head hash.

    \b
    Example:
      routilux-replay info ./jobs/1234
      routilux-replay info saved-job.rjob --json
      routilux-replay info 'postgresql://me@db-host:5432/flows#1234'
    """
    with _job(path, key_file) as job, render.progress(job.head, "counting events") as update:
        summary = info_(job, progress=update)
    if as_json:
        render.dump_json(summary.to_json())
        return
    con = _out()
    render.print_kv(con, [
        ("job", summary.job_id),
        ("flow", summary.flow_id),
        ("status", summary.status),
        ("versions", f"{summary.first_version}..{summary.head_version}"),
        ("time", f"{render.time_label(summary.first_ts)} .. {render.time_label(summary.last_ts)}"),
        ("snapshots", ", ".join(str(s) for s in summary.snapshots) or "none"),
        ("head hash", summary.head_hash + (" (keyed chain)" if summary.keyed else "")),
        ("stored as", summary.durability),
        ("path", summary.path),
    ])
    con.print()
    render.print_table(con, ["KIND", "EVENTS"], [(k, str(v)) for k, v in summary.counts.items()],
                       right=["EVENTS"])


# -- events ---------------------------------------------------------------------------------
def _event_row(rec: Any) -> tuple[str, ...]:
    return (str(rec.seq), render.time_label(rec.ts), rec.kind, record_routine(rec) or "-",
            render.format_value(rec.data, 100))


@cli.command()
@_path_arg
@click.option("--kind", "kinds", multiple=True, help="Only events of this kind (repeatable).")
@click.option("--routine", help="Only events about this routine id.")
@click.option("--from", "start", metavar="VERSION", help="First version (inclusive).")
@click.option("--to", "stop", metavar="VERSION", help="Last version (inclusive).")
@click.option("--since", metavar="ISO-TIME", help="Only events at or after this time.")
@click.option("--until", metavar="ISO-TIME", help="Only events at or before this time.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@_key_opt
@_json_opt
@_errors
def events(path: str, kinds: tuple[str, ...], routine: str | None, start: str | None, stop: str | None,
           since: str | None, until: str | None, limit: int | None, key_file: str | None,
           as_json: bool) -> None:
    """Print the job's timeline, filtered by kind, routine, version range and time range.

    With --json, prints JSON Lines: one event per line with the fields
    seq, ts (ns), time (ISO, UTC), kind, data.

    \b
    Example:
      routilux-replay events ./jobs/1234 --kind status_set --kind paused
      routilux-replay events ./jobs/1234 --routine fetch --from 10 --to 50 --json
    """
    with _job(path, key_file) as job:
        lo = job.resolve_point(start) if start else 1
        hi = job.resolve_point(stop) if stop else job.head
        records = timeline(job, kinds=kinds, routine=routine, start=lo, stop=hi,
                           since=parse_time(since) if since else None,
                           until=parse_time(until) if until else None, limit=limit)
        if as_json:
            stream = sys.stdout
            for rec in records:
                stream.write(render.json_line(record_to_json(rec)) + "\n")
            return
        rows = [_event_row(rec) for rec in records]
        con = _out()
        if not rows:
            con.print("no matching events")
            return
        render.print_table(con, ["VERSION", "TIME", "KIND", "ROUTINE", "DATA"], rows, right=["VERSION"])


# -- state --------------------------------------------------------------------------------
def _point(job: Job, at: str | None, when: str | None) -> int:
    if at is not None and when is not None:
        msg = "give --at VERSION or --time ISO-TIME, not both"
        raise _Failure(msg, EXIT_USAGE)
    if when is not None:
        return job.version_at(parse_time(when), when)
    if at is not None:
        return job.resolve_point(at)
    return job.head


@cli.command()
@_path_arg
@click.option("--at", metavar="VERSION", help="Version (or 'head', 'head-N', an ISO time). Default: head.")
@click.option("--time", "when", metavar="ISO-TIME", help="The state as it was at this time.")
@click.option("--history", "show_history", type=int, default=5, show_default=True,
              help="How many of the latest history entries to show per list (text output).")
@click.option("--full", is_flag=True, help="With --json, include the complete history lists.")
@_key_opt
@_json_opt
@_errors
def state(path: str, at: str | None, when: str | None, show_history: int, full: bool,
          key_file: str | None, as_json: bool) -> None:
    """Print the job's state at a version or time (default: the latest).

    --json prints {"version", "ts", "time", "state"} where state has the shape of
    JobState.serialize(); the append-only history lists (execution_history,
    shared_log, output_log, pause_points) are included only with --full, since
    they need the whole log.

    \b
    Example:
      routilux-replay state ./jobs/1234 --at 42
      routilux-replay state ./jobs/1234 --time 2026-11-28T07:13:04 --json
    """
    with _job(path, key_file) as job:
        version = _point(job, at, when)
        history = full or not as_json
        p = projection_at(job, version, history=history)
        data = state_dict(p, history=history)
        rec_ts = p.last_ts
        if as_json:
            render.dump_json({"version": version, "ts": rec_ts, "time": iso_utc_ns(rec_ts), "state": data})
            return
        con = _out()
        render.print_kv(con, [
            ("version", f"{version} of {job.head}"),
            ("time", render.time_label(rec_ts)),
            ("job", data["job_id"]),
            ("flow", data["flow_id"]),
            ("status", data["status"]),
            ("current routine", data["current_routine_id"] or "-"),
        ])
        states = data["routine_states"]
        con.print()
        if states:
            render.print_table(con, ["ROUTINE", "STATE"], [(rid, render.format_value(st, 160))
                                                           for rid, st in states.items()],
                               title="Routine states")
        else:
            con.print("Routine states: none")
        shared = data["shared_data"]
        con.print()
        if shared:
            render.print_table(con, ["KEY", "VALUE"], [(k, render.format_value(v, 160)) for k, v in shared.items()],
                               title="Shared data")
        else:
            con.print("Shared data: none")
        for name, title in (("deferred_events", "Deferred events"), ("pending_tasks", "Pending tasks"),
                            ("execution_history", "History"), ("output_log", "Outputs"),
                            ("shared_log", "Shared log"), ("pause_points", "Pause points")):
            items = data.get(name) or []
            con.print()
            if not items:
                con.print(f"{title}: none")
                continue
            shown = items[-show_history:] if show_history > 0 else []
            more = len(items) - len(shown)
            con.print(f"{title}: {len(items)}" + (f" (last {len(shown)} shown)" if more else ""))
            for item in shown:
                con.print("  " + render.format_value(item, 160))


# -- diff ---------------------------------------------------------------------------------
@cli.command()
@_path_arg
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@_key_opt
@_json_opt
@_errors
def diff(path: str, a: str, b: str, key_file: str | None, as_json: bool) -> None:
    """Show field-level differences between two points A and B (versions or ISO times).

    Grouped by status, routine states, shared data, history added, deferred events,
    outputs (and shared log, pause points, pending tasks).

    \b
    Example:
      routilux-replay diff ./jobs/1234 10 42
      routilux-replay diff ./jobs/1234 2026-11-28T07:13:04 head --json
    """
    with _job(path, key_file) as job:
        va, vb = job.resolve_point(a), job.resolve_point(b)
        diffs = diff_(job, va, vb)
    if as_json:
        groups: dict[str, list[Any]] = {}
        for d in diffs:
            groups.setdefault(d.group, []).append(d.to_json())
        render.dump_json({"a": va, "b": vb, "groups": groups})
        return
    render.print_diff(_out(), diffs, f"version {va}", f"version {vb}")


# -- bisect -------------------------------------------------------------------------------
@cli.command()
@_path_arg
@click.option("--where", "condition", required=True, metavar="CONDITION",
              help="A condition on the state, e.g. 'shared_data.limit == 0'.")
@click.option("--exhaustive", is_flag=True,
              help="Test every version (exact first match even if the condition flips back).")
@_key_opt
@_json_opt
@_errors
def bisect(path: str, condition: str, exhaustive: bool, key_file: str | None, as_json: bool) -> None:
    """Find the first version at which a condition on the state becomes true.

    Binary search over versions using snapshots: O(log n) state rebuilds. It assumes
    the condition stays true once it holds (like git bisect); use --exhaustive if it
    can flip back. Exit code 1 when the condition never holds.

    \b
    Conditions: field paths with ==, !=, <, <=, >, >=, in, not in, exists, missing,
    len(path), combined with and / or / not and parentheses. No Python is evaluated.

    \b
    Example:
      routilux-replay bisect ./jobs/1234 --where 'shared_data.limit == 0'
      routilux-replay bisect ./jobs/1234 --where 'routine_states.fetch.status in failed,error'
      routilux-replay bisect ./jobs/1234 --where 'status == paused'
    """
    cond = parse_condition(condition)
    with _job(path, key_file) as job, render.progress(job.head if exhaustive else None, "bisecting") as update:
        result = bisect_(job, cond, exhaustive=exhaustive, progress=update)
    if as_json:
        render.dump_json({
            "condition": condition,
            "version": result.version,
            "ts": result.ts,
            "time": iso_utc_ns(result.ts) if result.ts is not None else None,
            "kind": result.kind,
            "data": result.data,
            "probes": result.probes,
            "exhaustive": result.exhaustive,
        })
    else:
        con = _out()
        if result.version is None:
            con.print(f"the condition {condition!r} does not hold at the head ({result.probes} states tested)")
        else:
            con.print(f"first version where {condition!r} holds: {result.version}")
            render.print_kv(con, [
                ("time", render.time_label(result.ts or 0)),
                ("event", result.kind or "-"),
                ("data", render.format_value(result.data, 300)),
                ("states tested", str(result.probes)),
            ])
    if result.version is None:
        sys.exit(EXIT_CHECK_FAILED)


# -- blame --------------------------------------------------------------------------------
def _blame_value(value: Any) -> Any:
    if value is MISSING:
        return None
    if isinstance(value, ListSummary):
        return {"length": value.length, "first": value.first, "last": value.last}
    return value


@cli.command()
@_path_arg
@click.argument("field", metavar="FIELD")
@_key_opt
@_json_opt
@_errors
def blame(path: str, field: str, key_file: str | None, as_json: bool) -> None:
    """List every event that changed FIELD, with version, time, routine, old and new value.

    FIELD is a path into the state, e.g. status, shared_data.limit,
    routine_states.fetch.status, routine_states.fetch (quote keys with dots:
    shared_data."a.b").

    \b
    Example:
      routilux-replay blame ./jobs/1234 shared_data.limit
      routilux-replay blame ./jobs/1234 routine_states.fetch.status --json
    """
    parsed = parse_path(field)
    with _job(path, key_file) as job, render.progress(job.head, "scanning") as update:
        entries = blame_(job, parsed, progress=update)
    if as_json:
        render.dump_json({"field": str(parsed), "changes": [
            {"version": e.version, "ts": e.ts, "time": iso_utc_ns(e.ts), "kind": e.kind,
             "routine_id": e.routine_id, "old": _blame_value(e.old), "new": _blame_value(e.new),
             "old_exists": e.old is not MISSING, "new_exists": e.new is not MISSING}
            for e in entries]})
        return
    con = _out()
    if not entries:
        con.print(f"no event changed {parsed}")
        return
    render.print_table(con, ["VERSION", "TIME", "KIND", "ROUTINE", "OLD", "NEW"], [
        (str(e.version), render.time_label(e.ts), e.kind, e.routine_id or "-",
         "(absent)" if e.old is MISSING else render.format_value(_blame_value(e.old), 60),
         "(absent)" if e.new is MISSING else render.format_value(_blame_value(e.new), 60))
        for e in entries], right=["VERSION"])


# -- verify -------------------------------------------------------------------------------
@cli.command()
@_path_arg
@_key_opt
@click.option("--expect-head", metavar="HASH", help="Fail unless the head hash equals this one.")
@click.option("--full-replay", is_flag=True,
              help="Check determinism with a second replay from the first event (default: from the newest snapshot).")
@_json_opt
@_errors
def verify(path: str, key_file: str | None, expect_head: str | None, full_replay: bool, as_json: bool) -> None:
    """Check a job: checksums, seq continuity, hash chain, snapshots, replay determinism.

    Prints the head hash. Exit code 0 only when everything holds; otherwise 1, and
    the first problem names the bad version, or file and byte offset. A log too
    damaged to open at all exits with 5.

    \b
    Example:
      routilux-replay verify ./jobs/1234
      routilux-replay verify saved.rjob --key-file key.bin --expect-head 3f2a...
    """
    try:
        job = open_job(path, key=read_key_file(key_file))
    except DamagedLogError as exc:
        # Too damaged to open: still a verify result (exit 5), in JSON when asked.
        if as_json:
            render.dump_json({"ok": False, "head_seq": None, "head_hash": None, "records": None,
                              "snapshots_checked": 0, "checks": {"storage": False},
                              "problems": [{"kind": "storage", "file": exc.file, "offset": exc.offset,
                                            "seq": exc.seq, "message": exc.reason}]})
            sys.exit(EXIT_DAMAGED)
        raise
    with job, render.progress(job.head, "verifying") as update:
        result = verify_job(job, expect_head=expect_head, full_determinism=full_replay, progress=update)
    if as_json:
        render.dump_json(result.to_json())
    else:
        con = _out()
        status = "OK" if result.ok else "FAILED"
        render.print_kv(con, [
            ("result", status),
            ("events", str(result.records)),
            ("head hash", result.head_hash),
            ("snapshots", f"{result.snapshots_checked} checked"),
        ] + [(f"check {name}", "-" if held is None else ("ok" if held else "FAILED"))
             for name, held in result.checks.items()])
        for problem in result.problems:
            click.echo(f"routilux-replay: problem: {problem}", err=True)
    if not result.ok:
        sys.exit(EXIT_CHECK_FAILED)


# -- export / import ----------------------------------------------------------------------
@cli.command()
@_path_arg
@click.option("--format", "fmt", type=click.Choice(["jsonl", "json"]), default="jsonl", show_default=True,
              help="jsonl: one event per line; json: one document with a header.")
@click.option("-o", "--output", type=click.Path(), help="Write here instead of stdout.")
@_key_opt
@_errors
def export(path: str, fmt: str, output: str | None, key_file: str | None) -> None:
    """Export the job's full trail for other tools.

    Each event: seq, ts (integer ns), time (ISO 8601 UTC), kind, data, link (the
    hash-chain link after the event; the last one is the head hash). Bytes and
    datetimes are tagged ({"$bytes": base64}, {"$datetime": iso}) so that
    `routilux-replay import` rebuilds the identical log.

    \b
    Example:
      routilux-replay export ./jobs/1234 > trail.jsonl
      routilux-replay export saved.rjob --format json -o trail.json
    """
    with _job(path, key_file) as job:
        meta = {"job_id": job.job_id, "flow_id": job.flow_id}
        if output is None:
            export_log(job.log, sys.stdout, fmt=fmt, key=job.key, meta=meta)
            return
        tmp = output + ".tmp"
        with render.progress(job.head, "exporting") as update, open(tmp, "w", encoding="utf-8") as fh:
            export_log(job.log, fh, fmt=fmt, key=job.key, meta=meta, progress=update)
            fh.flush()
            os.fsync(fh.fileno())
        # Rename only a complete export into place, so a reader never sees half of one.
        os.replace(tmp, output)


@cli.command("import")
@click.argument("source", metavar="EXPORT", type=click.Path())
@click.argument("dest", metavar="DEST", type=click.Path())
@click.option("--file", "as_file", is_flag=True,
              help="Write a saved job file (like JobState.save) instead of a durable job directory.")
@_key_opt
@_json_opt
@_errors
def import_(source: str, dest: str, as_file: bool, key_file: str | None, as_json: bool) -> None:
    """Rebuild a job from an export (jsonl or json) made by `routilux-replay export`.

    Every event keeps its timestamp, so the rebuilt job has the same head hash and
    passes verify. Exported chain links are checked as events are read: a tampered
    export is refused. DEST must not exist yet (or be an empty directory); it may be
    a PostgreSQL job (postgresql://...#JOB_ID) that holds no events yet.

    \b
    Example:
      routilux-replay import trail.jsonl ./restored-job
      routilux-replay import trail.jsonl 'postgresql://me@db-host/flows#job-42'
      routilux-replay import trail.json restored.rjob --file
    """
    key = read_key_file(key_file)
    if not os.path.exists(source):
        raise _Failure(f"no such export file: {source!r}", EXIT_NOT_FOUND)
    from routilux.events import SCHEMA_VERSION
    from routilux.projection import JobProjection, apply, fold, snapshot_state

    check_empty_destination(dest)
    if as_file:
        log, result = import_to_memory(source, key=key)
        # A saved job file carries a snapshot at its head, like JobState.save writes.
        state = snapshot_state(fold(log.read()))
        eventlog.write_bundle(dest, log, state=state, schema_version=SCHEMA_VERSION)  # type: ignore[attr-defined]
    else:
        if is_pg_location(dest):
            log_dir = open_pg_job_log(dest, key=key, create=True, readonly=False)
            held = log_dir.head_seq
            if held:
                where = log_dir.location
                log_dir.close()
                raise DestinationError(where, f"it already holds {held} events; import into a new job id")
        else:
            log_dir = eventlog.open_log(dest, durability="batch", key=key)
        projection = JobProjection()

        def snapshot_now_and_then(rec: Any) -> None:
            # Snapshots as JobState takes them, so time travel on the imported job is as
            # fast as on the original.
            apply(projection, rec)
            if rec.seq % SNAPSHOT_EVERY == 0:
                log_dir.save_snapshot(snapshot_state(projection), schema_version=SCHEMA_VERSION)

        try:
            result = read_export_into(source, log_dir, after_append=snapshot_now_and_then)
            log_dir.sync()
        finally:
            log_dir.close()
    if as_json:
        render.dump_json({"path": dest, "events": result.events, "head_hash": result.head_hash,
                          "links_checked": result.links_checked})
        return
    render.print_kv(_out(), [("imported", f"{result.events} events into {dest}"),
                             ("head hash", result.head_hash),
                             ("links checked", str(result.links_checked))])


# -- copy ---------------------------------------------------------------------------------
@cli.command()
@click.argument("source", metavar="SRC")
@click.argument("dest", metavar="DST")
@click.option("--file", "as_file", is_flag=True,
              help="Write a saved job file (like JobState.save) instead of a durable job directory.")
@click.option("--force", is_flag=True,
              help="Replace a destination directory or file that holds a different job.")
@_key_opt
@_json_opt
@_errors
def copy(source: str, dest: str, as_file: bool, force: bool, key_file: str | None, as_json: bool) -> None:
    """Copy a job to another storage: directory, saved job file or PostgreSQL.

    Every event keeps its timestamp, so the copy has the same head hash (checked,
    and printed); the source's snapshots are copied too. A PostgreSQL DST without
    #JOB_ID uses the source's job id.

    If DST already holds the start of the same history (an interrupted copy, or a
    job that has grown since), only the missing events are copied. A DST holding a
    different job is refused; --force replaces a directory or file (never a
    PostgreSQL job).

    \b
    Example:
      routilux-replay copy ./jobs/1234 'postgresql://me@db-host:5432/flows'
      routilux-replay copy 'postgresql://me@db-host:5432/flows#1234' ./restored-1234
      routilux-replay copy ./jobs/1234 job-1234.rjob --file
    """
    from .copying import copy_job

    with _job(source, key_file) as job, render.progress(job.head, "copying") as update:
        result = copy_job(job, dest, as_file=as_file, force=force, progress=update)
    if as_json:
        render.dump_json(result.to_json())
        return
    done = (f"{result.copied} events copied" if not result.resumed_from
            else f"{result.copied} events copied after the {result.resumed_from} already there")
    render.print_kv(_out(), [
        ("copied", f"{result.source} -> {result.destination}"),
        ("events", f"{result.events} ({done})"),
        ("snapshots", str(result.snapshots)),
        ("head hash", f"{result.head_hash} (same as the source)"),
    ])


# -- tail ---------------------------------------------------------------------------------
@cli.command()
@_path_arg
@click.option("-n", "--lines", "count", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many of the latest events to print first.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing events as the running job appends them.")
@click.option("--timeout", type=float, default=None,
              help="With --follow: stop after this many seconds without a new event.")
@_key_opt
@_json_opt
@_errors
def tail(path: str, count: int, follow: bool, timeout: float | None, key_file: str | None,
         as_json: bool) -> None:
    """Print the latest events; with --follow, keep printing new ones as they are appended.

    Follows a durable job directory that another process is writing (read-only: no
    lock is taken). Stop with Ctrl-C, or with --timeout.

    \b
    Example:
      routilux-replay tail ./jobs/1234 -n 20
      routilux-replay tail ./jobs/1234 --follow --json
    """
    stream = sys.stdout
    con = _out()

    def emit(rec: Any) -> None:
        if as_json:
            stream.write(render.json_line(record_to_json(rec)) + "\n")
        else:
            seq, when, kind, routine, data = _event_row(rec)
            con.print(f"{seq:>7}  {when}  {kind:<20} {routine:<12} {data}", highlight=False, markup=False)
        stream.flush()

    with _job(path, key_file) as job:
        if follow and job.form == "file":
            raise _Failure("--follow needs a durable job directory or a PostgreSQL job "
                           "(a saved job file never grows)", EXIT_USAGE)
        start = max(1, job.head - count + 1)
        for rec in job.read(start, job.head) if count else ():
            emit(rec)
        if not follow:
            return
        try:
            for rec in job.log.follow(job.head + 1, timeout=timeout):
                emit(rec)
        except KeyboardInterrupt:
            return
        except CorruptionError as exc:
            raise damaged(path, exc) from None


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``routilux-replay``)."""
    cli.main(args=argv, prog_name="routilux-replay")

from .ui.commands import register_commands; register_commands(cli)  # noqa: E402, E702, I001 - the ui and html commands
