"""Commands about where jobs live: ``demo``, ``jobs``, ``export``, ``import``, ``copy``, ``salvage``."""

from __future__ import annotations

import os
import sys

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
from .errors import EXIT_USAGE
from .rows import Column

__all__ = ["copy", "demo", "export", "import_", "jobs", "salvage"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# -- demo ---------------------------------------------------------------------------------
@click.command()
@click.argument("directory", metavar="[DIR]", required=False, type=click.Path())
@click.option("--quiet", is_flag=True, help="Only run the flow; print the job's path.")
@output_options(json_help="Only run the flow; print its path, ids, events and head hash as JSON.")
@handle_errors
def demo(directory: str | None, quiet: bool, printer: Printer) -> None:
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
    from .demo import run_demo, run_flow_into
    from .source import open_job

    if printer.as_json:
        target = run_flow_into(directory)
        with open_job(target) as job:
            printer.json({"path": target, "job_id": job.job_id, "flow_id": job.flow_id, "events": job.head,
                          "head_hash": job.log.head_hash.hex()})
        return
    run_demo(directory, printer=printer, quiet=quiet)


# -- jobs ---------------------------------------------------------------------------------
_SORT_KEYS = {
    "id": lambda r: r.job_id,
    "flow": lambda r: (r.flow_id, r.job_id),
    "status": lambda r: (r.status, r.job_id),
    "version": lambda r: (r.version, r.job_id),
    "updated": lambda r: (r.updated_ts, r.job_id),
    "size": lambda r: (r.size, r.job_id),
}


def _store_name(path: str) -> str:
    """A job's name in its store: its directory's name, or its name in the database."""
    if "://" in path:
        return path.rsplit("#", 1)[-1]
    return os.path.basename(path.rstrip(os.sep))


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@click.command()
@click.argument("directory", metavar="DIR", type=click.Path())
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["pending", "running", "paused", "completed", "failed", "cancelled"]),
              help="Only jobs with this status (repeatable).")
@click.option("--sort", "sort_by", type=click.Choice(list(_SORT_KEYS)), default="id", show_default=True,
              help="Order of the rows.")
@click.option("--reverse", is_flag=True, help="Reverse the order (e.g. --sort updated --reverse: newest first).")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many jobs.")
@output_options(listing=True)
@handle_errors
def jobs(directory: str, statuses: tuple[str, ...], sort_by: str, reverse: bool, limit: int | None,
         printer: Printer) -> None:
    """List the jobs of a JobStore directory: id, flow, status, version, last update, size.

    DIR may also be a PostgreSQL URL without a job id: every job in that database.
    An entry of DIR that is not a readable job (an empty folder, a git checkout, a
    damaged log) is skipped with a one-line warning on stderr; names starting with
    '.' are not looked at. JOB is the job id, as `info` shows it; when a job is
    stored under another name (its directory, or its name in the database), a NAME
    column shows it (and PATH in JSON is where it is).

    \b
    Example:
      routilux-replay jobs ./jobs
      routilux-replay jobs ./jobs --status failed --sort updated --reverse --limit 10
      routilux-replay jobs postgresql://me@db-host:5432/flows
      routilux-replay jobs ./jobs --json | jq '.[] | select(.status == "failed")'
    """
    from .summary import Skipped, list_jobs

    skipped: list[Skipped] = []
    rows = list_jobs(directory, on_skip=skipped.append)
    for entry in skipped:
        click.echo(f"routilux-replay: warning: skipped {entry.name!r}: {entry.reason}", err=True)
    if statuses:
        rows = [r for r in rows if r.status in statuses]
    rows.sort(key=_SORT_KEYS[sort_by], reverse=reverse)
    if limit is not None:
        rows = rows[:limit]
    renamed = any(_store_name(r.path) != r.job_id for r in rows)
    columns = [
        Column("job_id", lambda r: r.job_id, header="JOB", priority=100, aliases=("job", "id")),
        Column("flow_id", lambda r: r.flow_id, header="FLOW", priority=60, aliases=("flow",)),
        Column("status", lambda r: r.status, priority=90),
        Column("version", lambda r: r.version, kind="num", priority=50),
        Column("updated", lambda r: r.updated_ts, text=printer.time, json=printer.time_ns, priority=30),
        Column("size", lambda r: r.size, text=_size, kind="num", priority=20),
        Column("name", lambda r: _store_name(r.path), table=renamed, priority=40),
        Column("path", lambda r: r.path, table=False),
    ]
    writer = printer.rows(columns)
    writer.write_all(rows)
    writer.close()
    if not rows and printer.fmt == "table":
        what = "no jobs" if not statuses else f"no {'/'.join(statuses)} jobs"
        printer.line(f"{what} in {directory}" + (f" ({_plural(len(skipped), 'entry')} skipped)" if skipped else ""))


# -- export / import ----------------------------------------------------------------------
@click.command()
@path_argument
@click.option("--format", "fmt", type=click.Choice(["jsonl", "json"]), default="jsonl", show_default=True,
              help="jsonl: one event per line; json: one document with a header.")
@click.option("-o", "--output", type=click.Path(), help="Write here instead of stdout (complete or not at all).")
@key_option
@click.option("--json", "as_json", is_flag=True,
              help="With -o: print what was written (path, events, head hash) as JSON.")
@handle_errors
def export(path: str, fmt: str, output: str | None, key_file: str | None, as_json: bool) -> None:
    """Export the job's full trail for other tools.

    Each event: seq, ts (integer ns), time (ISO 8601 UTC), kind, data, link (the
    hash-chain link after the event; the last one is the head hash). Bytes and
    datetimes are tagged ({"$bytes": base64}, {"$datetime": iso}) so that
    `routilux-replay import` rebuilds the identical log.

    \b
    Example:
      routilux-replay export ./jobs/1234 > trail.jsonl
      routilux-replay export saved.rjob --format json -o trail.json --json
    """
    from .exporting import export_log
    from .rows import json_default
    from .staging import staged

    if as_json and output is None:
        raise Failure("--json describes an export written with -o FILE (the export itself is already JSON: "
                      "use --format json for one document)", EXIT_USAGE)
    with open_for_reading(path, key_file) as job:
        meta = {"job_id": job.job_id, "flow_id": job.flow_id}
        if output is None:
            export_log(job.log, sys.stdout, fmt=fmt, key=job.key, meta=meta)
            return
        with staged(output) as stage, progress(None, job.head, "exporting") as update:
            with open(stage.path, "w", encoding="utf-8") as fh:
                count = export_log(job.log, fh, fmt=fmt, key=job.key, meta=meta, progress=update)
                fh.flush()
                os.fsync(fh.fileno())
            if os.path.isdir(output):
                raise Failure(f"{output!r} is a directory; give a file name for the export", EXIT_USAGE)
            # Rename only a complete export into place (replacing an older one whole), so
            # a reader never sees half of one.
            stage.replace()
        head_hash = job.log.head_hash.hex()
    if as_json:
        import json

        click.echo(json.dumps({"path": output, "format": fmt, "events": count, "head_hash": head_hash},
                              indent=2, sort_keys=True, default=json_default))


@click.command("import")
@click.argument("source", metavar="EXPORT", type=click.Path())
@click.argument("dest", metavar="DEST", type=click.Path())
@click.option("--file", "as_file", is_flag=True,
              help="Write a saved job file (like JobState.save) instead of a durable job directory "
                   "(the default for a DEST ending in .rjob).")
@key_option
@output_options()
@handle_errors
def import_(source: str, dest: str, as_file: bool, key_file: str | None, printer: Printer) -> None:
    """Rebuild a job from an export (jsonl or json) made by `routilux-replay export`.

    Every event keeps its timestamp, so the rebuilt job has the same head hash and
    passes verify. Exported chain links are checked as events are read: a tampered
    export is refused (exit 4), and so is a line too long or nested too deep. DEST
    must not exist yet (or be an empty directory); it may be a PostgreSQL job
    (postgresql://...#JOB_ID) that holds no events yet. All or nothing: the job is
    built and checked in a hidden staging place beside DEST, then renamed into place;
    a refused or failed import leaves nothing behind.

    \b
    Example:
      routilux-replay import trail.jsonl ./restored-job
      routilux-replay import trail.jsonl 'postgresql://me@db-host/flows#job-42'
      routilux-replay import trail.json restored.rjob
    """
    from .exporting import import_job
    from .source import read_key_file

    key = read_key_file(key_file)
    with progress(printer, None, "importing") as update:
        result = import_job(source, dest, key=key, as_file=as_file, progress=update)
    if printer.as_json:
        printer.json({"path": dest, "events": result.events, "head_hash": result.head_hash,
                      "links_checked": result.links_checked})
        return
    printer.kv([("imported", f"{_plural(result.events, 'event')} into {dest}"),
                ("head hash", result.head_hash),
                ("links checked", str(result.links_checked))])


# -- copy ---------------------------------------------------------------------------------
@click.command()
@click.argument("source", metavar="SRC")
@click.argument("dest", metavar="DST")
@click.option("--file", "as_file", is_flag=True,
              help="Write a saved job file (like JobState.save) instead of a durable job directory "
                   "(the default for a DST ending in .rjob).")
@click.option("--force", is_flag=True,
              help="Replace a destination directory or file that holds a different job.")
@key_option
@output_options()
@handle_errors
def copy(source: str, dest: str, as_file: bool, force: bool, key_file: str | None, printer: Printer) -> None:
    """Copy a job to another storage: directory, saved job file or PostgreSQL.

    Every event keeps its timestamp, so the copy has the same head hash (checked,
    and printed); the source's snapshots are copied too. A DST ending in .rjob is a
    saved job file. A PostgreSQL DST without #JOB_ID uses the source's job id. A new
    destination is written all or nothing (built beside it, checked, renamed).

    If DST already holds the start of the same history (an interrupted copy, or a
    job that has grown since), only the missing events are copied. A DST holding a
    different job is refused; --force replaces a directory or file (never a
    PostgreSQL job).

    \b
    Example:
      routilux-replay copy ./jobs/1234 'postgresql://me@db-host:5432/flows'
      routilux-replay copy 'postgresql://me@db-host:5432/flows#1234' ./restored-1234
      routilux-replay copy ./jobs/1234 job-1234.rjob
    """
    from .copying import copy_job

    with open_for_reading(source, key_file) as job, progress(printer, job.head, "copying") as update:
        result = copy_job(job, dest, as_file=as_file, force=force, progress=update)
    if printer.as_json:
        printer.json(result.to_json())
        return
    done = (f"{result.copied} copied" if not result.resumed_from
            else f"{result.copied} copied after the {result.resumed_from} already there")
    printer.kv([
        ("copied", f"{result.source} -> {result.destination}"),
        ("events", f"{result.events} ({done})"),
        ("stored as", {"file": "saved job file", "directory": "durable job directory",
                       "postgres": "PostgreSQL job"}.get(result.kind, result.kind)),
        ("snapshots", str(result.snapshots)),
        ("head hash", f"{result.head_hash} (same as the source)"),
    ])


# -- salvage ------------------------------------------------------------------------------
@click.command()
@path_argument
@click.option("-o", "--output", type=click.Path(), help="Write the export here instead of stdout.")
@key_option
@output_options(json_help="With -o: print the report as JSON on stdout (else it goes to stderr).")
@handle_errors
def salvage(path: str, output: str | None, key_file: str | None, printer: Printer) -> None:
    """Export the intact part of a damaged durable job: the events before the damage.

    Finds the first damage (as verify does), and exports every event before it as
    JSON Lines with their chain links, like export; the report says what was left
    out (the damaged frame and everything after it, later segment files, snapshots).
    The damaged job is not modified. `routilux-replay import` turns the export into
    a job again, with the same head hash as the original had at that version.

    \b
    Example:
      routilux-replay salvage ./jobs/1234 -o rescued.jsonl
      routilux-replay import rescued.jsonl ./jobs/1234-rescued
    """
    from .salvage import salvage as salvage_
    from .source import read_key_file
    from .staging import staged

    key = read_key_file(key_file)
    if printer.as_json and output is None:
        raise Failure("--json prints the report of a salvage written with -o FILE", EXIT_USAGE)
    if output is None:
        report = salvage_(path, sys.stdout, key=key)
    else:
        with staged(output) as stage:
            with open(stage.path, "w", encoding="utf-8") as fh:
                report = salvage_(path, fh, key=key)
                fh.flush()
                os.fsync(fh.fileno())
            if os.path.isdir(output):
                raise Failure(f"{output!r} is a directory; give a file name for the export", EXIT_USAGE)
            stage.replace()
    if printer.as_json:
        printer.json(report.to_json())
        return
    lines = [f"salvaged {_plural(report.events, 'event')} (versions 1..{report.events}) of {path}; "
             f"head hash there: {report.head_hash}"]
    if report.complete:
        lines.append("no damage found: the export is complete")
    else:
        lines.append(f"damage: {report.problem}")
        lines += [f"left out: {item}" for item in report.left_out]
    for line in lines:
        click.echo(f"routilux-replay: {line}", err=True)

