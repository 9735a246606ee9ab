"""``routilux-replay``: the command line over :mod:`replay_tools` (a thin click layer).

The library does the work; the command modules (``cli_*.py``) parse arguments and
print, following the conventions in :mod:`replay_tools.cli_common` (one-line errors,
exit codes, ``--json``, ``--format``, ``--color``, the pager, times). This module
defines the group ``cli`` and the entry point ``main``; each command is registered at
the end with one ``cli.add_command(...)`` line. Exit codes:

====  =========================================================================
code  meaning
====  =========================================================================
0     success (for ``verify``: everything holds); also when the reader of the
      output goes away (``| head``, quitting the pager)
1     a check ran and failed: ``verify`` found a problem, ``bisect`` found no
      version where the condition holds, ``--expect-head`` did not match
2     bad usage: unknown option, bad version or time, bad condition or field
3     no such file or directory
4     the path is not a job log (or not an importable export)
5     the job log is damaged (the message names the file and byte offset)
6     the storage cannot be reached (a PostgreSQL server is down or refused us)
====  =========================================================================
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import click

from .cli_common import (
    Failure,
    handle_errors,
    key_option,
    open_for_reading,
    path_argument,
    reader_gone,
    translate,
)
from .errors import EXIT_USAGE

__all__ = ["cli", "main"]

# The helpers command modules used before the conventions moved to cli_common, kept under
# their old names so that modules written against them still register and run. New code
# imports cli_common (output_options, Printer, handle_errors, ...) instead.
_Failure = Failure
_errors = handle_errors
_translate = translate
_job = open_for_reading
_path_arg = path_argument
_key_opt = key_option
_json_opt = click.option("--json", "as_json", is_flag=True, help="Print stable JSON for scripts.")


def _out() -> Any:
    """A rich console on stdout (old helper; new commands print through a Printer)."""
    from .render import console

    return console(sys.stdout)

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
        argv = list(sys.argv[1:] if args is None else args)
        if not argv:
            argv = ["--help"]  # bare `routilux-replay`: the help, as a successful answer
        try:
            with warnings.catch_warnings():
                # Library warnings (e.g. "ignoring a damaged snapshot") become one line on
                # stderr, like errors, instead of Python's two-line warning format.
                warnings.simplefilter("always")
                warnings.showwarning = _show_warning
                _warned.clear()
                code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "routilux-replay"
            click.echo(f"routilux-replay: error: {exc.format_message()} (see `{where} --help`)", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            # The reader went away (`| head`, the pager quit): what it wanted was printed.
            reader_gone()
            sys.exit(0)
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
    Points in a job's history are versions (1..head, 'head', 'head-N'), hash
    prefixes (7+ hex digits of a version's chain link, as export shows them), ISO
    times (Z or +HH:MM; naive = local time) or times relative to now (10m, 2h, 1d ago).

    Times are shown in UTC with Z (--local: local time with its offset), the same in
    text and JSON. Text on a terminal goes through a pager ($PAGER, else less;
    --no-pager), in colour unless NO_COLOR is set (--color=never|always). Every
    command has --json; listings also take --format table|json|jsonl|csv|tsv and
    --fields.

    Exit codes: 0 ok; 1 a check failed (verify, bisect found nothing);
    2 bad usage, version, time or condition; 3 no such file; 4 not a job log;
    5 damaged log; 6 the database cannot be reached.

    \b
    Example:
      routilux-replay demo                  # run an example job and explore it
      routilux-replay info ./jobs/1234      # what is this job?
    """


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``routilux-replay``)."""
    cli.main(args=argv, prog_name="routilux-replay")


from .cli_read import diff, events, info, state, tail  # noqa: E402  (commands register below)
from .cli_search import bisect, blame  # noqa: E402
from .cli_store import copy, demo, export, import_, jobs, salvage  # noqa: E402
from .cli_verify import verify  # noqa: E402

cli.add_command(demo)
cli.add_command(jobs)
cli.add_command(info)
cli.add_command(events)
cli.add_command(state)
cli.add_command(diff)
cli.add_command(bisect)
cli.add_command(blame)
cli.add_command(verify)
cli.add_command(export)
cli.add_command(import_)
cli.add_command(copy)
cli.add_command(salvage)
cli.add_command(tail)

from . import divergence_cli  # noqa: E402, F401 - registers rerun, fork and whatif (issue 16)
from .audit_cli import checkpoint, erase, keygen, prove, verify_proof  # noqa: E402 - audit commands (issue 14)

cli.add_command(keygen)
cli.add_command(checkpoint)
cli.add_command(prove)
cli.add_command(verify_proof)
cli.add_command(erase)

from .ui.commands import register_commands  # noqa: E402 - the ui and html commands (issue 15)

register_commands(cli)
