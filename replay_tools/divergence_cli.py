"""``routilux-replay rerun``, ``fork`` and ``whatif``: the divergence debugger's commands.

A thin click layer over :mod:`replay_tools.divergence` (issue 16). The commands join
the ``routilux-replay`` group when :mod:`replay_tools.cli` imports this module (the one
line at its end). Exit codes follow the group's: 0 ok, 1 a divergence was found, 2 bad
usage (a bad factory, rule, fork point, skip or edit), 3 no such job, 4 not a job,
5 damaged job.
"""

from __future__ import annotations

import sys

import click

from .cli import cli
from .cli_common import Printer, handle_errors, output_options
from .divergence import CompareRules, fork, load_factory, parse_edit, rerun, whatif
from .divergence.report import state_diff_text
from .errors import EXIT_CHECK_FAILED
from .source import read_key_file

__all__ = ["fork_command", "rerun_command", "whatif_command"]

_flow_opt = click.option("--flow", "factory", required=True, metavar="MODULE:FACTORY",
                         help="A function that builds the flow with the current code, e.g. myflows:build_flow "
                              "(the current directory is importable).")
_timeout_opt = click.option("--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
                            help="Seconds to wait for the re-run flow to settle after each input.")
_key_opt = click.option("--key-file", type=click.Path(), default=None,
                        help="File holding the secret key of a keyed hash chain.")
_at_opt = click.option("--at", "at", required=True, type=click.IntRange(min=1), metavar="VERSION",
                       help="The fork point: the new job's history is the original's up to this version.")
_skip_opt = click.option("--skip", "skips", multiple=True, type=click.IntRange(min=1), metavar="SEQ",
                         help="Leave out this event (a version of the original; repeatable).")
_edit_opt = click.option("--edit", "edits", multiple=True, metavar="SEQ=JSON",
                         help="Change fields of this event's payload, e.g. 8='{\"value\": 1}' (repeatable).")


def _edits(texts: tuple[str, ...]) -> dict[int, dict[str, object]]:
    out: dict[int, dict[str, object]] = {}
    for text in texts:
        seq, fields = parse_edit(text)
        out.setdefault(seq, {}).update(fields)
    return out


@click.command("rerun")
@click.argument("path", metavar="PATH", type=click.Path())
@_flow_opt
@click.option("--ignore", "ignore", multiple=True, metavar="RULE",
              help="Also ignore this field, e.g. 'shared_data_set[key=started_at].value' (repeatable).")
@click.option("--shared-data-by-key", is_flag=True,
              help="Compare the order of shared-data writes per key (routines writing different keys at once).")
@_timeout_opt
@_key_opt
@output_options()
@handle_errors
def rerun_command(path: str, factory: str, ignore: tuple[str, ...], shared_data_by_key: bool, timeout: float,
                  key_file: str | None, printer: Printer) -> None:
    """Re-run a recorded job's inputs with the current code; report the first divergence.

    The job's inputs (execute with its entry params, pause, resume, cancel, as
    recorded) are performed on a new flow from FACTORY, in memory, one task at a
    time. The two event streams are compared per routine (timestamps, ids and the
    engine's measured times ignored). For the first divergent event it prints the
    recorded and the new event side by side, the field-level difference of the state
    right after it, and the routine and task that produced it. Flow versions
    (Flow(version=...)) are compared and a mismatch is said plainly.

    Exit code 0 when the runs match, 1 when they diverge.

    \b
    Example:
      routilux-replay rerun ./jobs/1234 --flow myflows:build_flow
      routilux-replay rerun saved.rjob --flow myflows:build_flow --json
    """
    rules = CompareRules(shared_data_by_key=shared_data_by_key).ignoring(*ignore)
    report = rerun(path, load_factory(factory), rules=rules, timeout=timeout, key=read_key_file(key_file))
    if printer.as_json:
        printer.json(report.to_json())
    else:
        printer.out.write(report.text())
    if not report.ok:
        sys.exit(EXIT_CHECK_FAILED)


@click.command("fork")
@click.argument("path", metavar="PATH", type=click.Path())
@_at_opt
@_skip_opt
@_edit_opt
@click.option("-o", "--output", "dest", required=True, type=click.Path(), metavar="NEW",
              help="Where to write the new job (must not exist).")
@click.option("--file", "as_file", is_flag=True, help="Write a saved job file instead of a durable directory.")
@click.option("--job-id", default=None, help="The new job's id (default: a new uuid4).")
@_key_opt
@output_options()
@handle_errors
def fork_command(path: str, at: int, skips: tuple[int, ...], edits: tuple[str, ...], dest: str, as_file: bool,
                 job_id: str | None, key_file: str | None, printer: Printer) -> None:
    """Write a new job: this job's history up to --at, with events skipped or edited.

    The original is only read. The new job records what was done (its last event is
    a '_flow' history entry 'forked' naming the source job, the fork point, the
    source's hash-chain link there, each skipped event and each edit with the
    original payload). Resume it with the current code:
    flow.resume(JobState.open(NEW)).

    An edit is a JSON object whose fields replace those of the event's payload.

    \b
    Example:
      routilux-replay fork ./jobs/1234 --at 17 --skip 9 --edit 8='{"value": 1}' -o ./jobs/1234-b
    """
    result = fork(path, dest, at=at, skip=skips, edit=_edits(edits), job_id=job_id, as_file=as_file,
                  key=read_key_file(key_file))
    if printer.as_json:
        printer.json(result.to_json())
        return
    printer.line(f"forked job {result.source_job_id} at version {result.source_version} into {result.path}")
    printer.line(f"new job:   {result.job_id} ({result.events} events, the last one records the fork)")
    printer.line("skipped:   " + (", ".join(str(s) for s in result.skipped) or "none"))
    printer.line("edited:    " + (", ".join(str(s) for s in result.edited) or "none"))
    printer.line(f"head hash: {result.head_hash}")
    printer.line(f"next:      flow.resume(JobState.open({result.path!r})) with the current code")


@click.command("whatif")
@click.argument("path", metavar="PATH", type=click.Path())
@_at_opt
@_skip_opt
@_edit_opt
@_flow_opt
@click.option("-o", "--output", "dest", type=click.Path(), metavar="NEW", default=None,
              help="Keep the resumed fork here (default: a temporary directory, removed).")
@_timeout_opt
@_key_opt
@output_options()
@handle_errors
def whatif_command(path: str, at: int, skips: tuple[int, ...], edits: tuple[str, ...], factory: str,
                   dest: str | None, timeout: float, key_file: str | None, printer: Printer) -> None:
    """What if? Fork at --at with skips/edits, resume with the current code, diff the final states.

    Prints the differences from the original's final state to the fork's (ids,
    timestamps and measured durations left out).

    \b
    Example:
      routilux-replay whatif ./jobs/1234 --at 17 --edit 8='{"value": 1}' --flow myflows:build_flow
    """
    result = whatif(path, load_factory(factory), at=at, skip=skips, edit=_edits(edits), dest=dest,
                    timeout=timeout, key=read_key_file(key_file))
    if printer.as_json:
        printer.json(result.to_json())
        return
    f = result.fork
    changes = []
    if f.skipped:
        changes.append("skipped " + ", ".join(str(s) for s in f.skipped))
    if f.edited:
        changes.append("edited " + ", ".join(str(s) for s in f.edited))
    printer.line(f"what if: job {f.source_job_id} forked at version {f.source_version} "
               f"({'; '.join(changes) or 'unchanged'}), resumed with {factory}: {result.status}")
    if dest is not None:
        printer.line(f"the fork is kept in {f.path}")
    if not result.differences:
        printer.line("final state: no difference from the original")
        return
    printer.line("final state (original -> what if):")
    for line in state_diff_text(result.differences):
        printer.line(line)


cli.add_command(rerun_command)
cli.add_command(fork_command)
cli.add_command(whatif_command)
