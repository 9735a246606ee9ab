"""``routilux-replay verify``: check a job's bytes, chain, snapshots and replay."""

from __future__ import annotations

import sys

import click

from .cli_common import Printer, handle_errors, key_option, output_options, path_argument, progress
from .errors import EXIT_CHECK_FAILED, EXIT_DAMAGED, DamagedLogError

__all__ = ["verify"]


@click.command()
@path_argument
@key_option
@click.option("--expect-head", metavar="HASH",
              help="Fail unless the head hash is this one (or starts with these 7+ hex digits).")
@click.option("--full-replay", is_flag=True,
              help="Check determinism with a second replay from the first event (default: from the newest snapshot).")
@click.option("--audit-key", metavar="PUB",
              help="Also check the signatures of the kept checkpoints and erasures against this verifier key.")
@output_options()
@handle_errors
def verify(path: str, key_file: str | None, expect_head: str | None, full_replay: bool, audit_key: str | None,
           printer: Printer) -> None:
    """Check a job: checksums, seq continuity, hash chain, snapshots, replay determinism.

    Prints the head hash. Exit code 0 only when everything holds; otherwise 1, and
    each problem (once) names the bad version, or file and byte offset. When the
    log is damaged the head hash is unknown: the versions up to the damage that are
    intact, and their hash, are shown instead. A check shows "-" when there was
    nothing to check (a job without snapshots) or it could not run (damage came
    first). A log too damaged to open at all exits with 5 (try `salvage`).

    \b
    Example:
      routilux-replay verify ./jobs/1234
      routilux-replay verify saved.rjob --key-file key.bin --expect-head 3f2a9c1
    """
    from .source import open_job, parse_hash_prefix, read_key_file
    from .verify import verify_job

    if expect_head is not None:
        parse_hash_prefix(expect_head)  # a malformed hash is refused before any work
    try:
        job = open_job(path, key=read_key_file(key_file))
    except DamagedLogError as exc:
        # Too damaged to open: still a verify result (exit 5), in JSON when asked.
        if printer.as_json:
            printer.json({"ok": False, "head_seq": None, "head_hash": None, "records": None, "intact_seq": None,
                          "intact_hash": None, "snapshots_checked": 0, "checks": {"storage": False},
                          "problems": [{"kind": "storage", "file": exc.file, "offset": exc.offset,
                                        "seq": exc.seq, "message": exc.reason}]})
            printer.close()
            sys.exit(EXIT_DAMAGED)
        raise
    verifier = None
    if audit_key is not None:
        from .audit_cli import verifier_from_option

        verifier = verifier_from_option(audit_key, "--audit-key")
    with job, progress(printer, job.head, "verifying") as update:
        result = verify_job(job, expect_head=expect_head, full_determinism=full_replay, progress=update,
                            audit_key=verifier)
    if printer.as_json:
        printer.json(result.to_json())
    else:
        if result.head_hash is not None:
            head = result.head_hash
        else:
            head = (f"unknown: the log is damaged after version {result.intact_seq} "
                    f"(hash there: {result.intact_hash or 'unknown'})")
        rows = [
            ("result", printer.out.style("OK", "32", "1") if result.ok else printer.out.style("FAILED", "31", "1")),
            ("events", str(result.head_seq) if result.head_hash is not None
             else f"{result.head_seq} ({result.intact_seq} intact)"),
            ("head hash", head),
            ("snapshots", f"{result.snapshots_checked} checked"),
        ] + [(f"check {name}", "-" if held is None else ("ok" if held else "FAILED"))
             for name, held in result.checks.items()]
        printer.kv(rows)
        for erasure in result.erasures:  # erased personal values are listed, not reported as damage
            printer.line(f"erasure: {erasure.describe()}")
        for problem in result.problems:
            click.echo(f"routilux-replay: problem: {problem}", err=True)
    if not result.ok:
        printer.close()
        sys.exit(EXIT_CHECK_FAILED)
