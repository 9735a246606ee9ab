"""The audit commands (issue 14): ``keygen``, ``checkpoint``, ``prove``, ``verify-proof``, ``erase``.

A thin click layer over :mod:`eventlog.signing`, :mod:`eventlog.audit`,
:mod:`eventlog.proof` and :mod:`eventlog.erasure`. ``verify-proof`` needs only the proof
file, the checkpoint file(s) and the public verifier key -- never the log -- so an
auditor can run it on their own machine. Exit codes (as for the other commands): 0 done
or the proof holds; 1 refused (one line saying why: a proof or checkpoint that does not
hold, a checkpoint that is not of this log, nothing to erase); 2 bad usage or a
malformed key; 3 a file that does not exist; 4 not a job; 5 a damaged log.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from eventlog.checkpoint import Checkpoint, format_time
from eventlog.errors import AuditUnavailableError, CheckpointError, ProofError, SigningKeyError
from eventlog.proof import ConsistencyProof, check_consistency, check_inclusion, load_proof
from eventlog.signing import Verifier, generate_key, write_key_files

from .cli_common import Printer, handle_errors, key_option, output_options, path_argument
from .errors import EXIT_CHECK_FAILED, EXIT_NOT_FOUND, EXIT_USAGE
from .jsonform import to_jsonable

__all__ = ["checkpoint", "erase", "keygen", "prove", "verifier_from_option", "verify_proof"]


class AuditFailure(click.ClickException):
    """One line on stderr and an exit code: ``refused`` for exit 1, ``error`` otherwise."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click declares it a ClassVar; per instance here

    def show(self, file: Any = None) -> None:
        """Print the one-line message."""
        word = "refused" if self.exit_code == EXIT_CHECK_FAILED else "error"
        click.echo(f"routilux-replay: {word}: {self.format_message()}", err=True)


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise AuditFailure(f"no such {what}: {path!r}", EXIT_NOT_FOUND) from None
    except OSError as err:
        raise AuditFailure(f"cannot read {what} {path!r}: {err.strerror}", EXIT_USAGE) from None


def verifier_from_option(key: str, option: str = "--key") -> Verifier:
    """A verifier key given on the command line: a file holding it, or the key text itself."""
    try:
        if os.path.exists(key):
            return Verifier.from_file(key)
        if "+" in key:
            return Verifier.from_string(key)
    except SigningKeyError as exc:
        raise AuditFailure(f"bad {option}: {exc}", EXIT_USAGE) from None
    raise AuditFailure(f"no such key file: {key!r} (give the .pub file or the verifier key text)",
                       EXIT_NOT_FOUND)


_verifier = verifier_from_option


@click.command()
@click.argument("name", metavar="NAME")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where to write NAME.key (private, mode 0600) and NAME.pub (public).")
@output_options()
def keygen(name: str, directory: str, printer: Printer) -> None:
    """Create an Ed25519 key pair for signing checkpoints.

    Writes NAME.key (the private key: keep it secret, mode 0600) and NAME.pub (the
    verifier key: give it to auditors), and prints the verifier key. Refuses to
    overwrite an existing key.

    \b
    Example:
      routilux-replay keygen audit.example.org --dir ./keys
    """
    try:
        signer = generate_key(name)
        os.makedirs(directory, exist_ok=True)
        private = os.path.join(directory, f"{name}.key")
        public = os.path.join(directory, f"{name}.pub")
        write_key_files(signer, private, public)
    except (SigningKeyError, AuditUnavailableError) as exc:
        raise AuditFailure(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise AuditFailure(f"cannot create {directory!r}: {exc.strerror}", EXIT_USAGE) from None
    if printer.as_json:
        printer.json({"private_key": private, "public_key": public, "verifier_key": signer.verifier.to_string()})
        return
    printer.line(f"private key: {private} (keep it secret)")
    printer.line(f"public key:  {public}")
    printer.line(f"verifier key: {signer.verifier.to_string()}")


def _describe(cp: Checkpoint) -> str:
    return f"checkpoint of {cp.size} events at {format_time(cp.time_ns)}"


@click.command("verify-proof")
@click.argument("proof_path", metavar="PROOF", type=click.Path(dir_okay=False))
@click.option("--checkpoint", "checkpoints", metavar="CP", multiple=True, required=True,
              type=click.Path(dir_okay=False),
              help="A signed checkpoint file (twice for a consistency proof: the old and the new).")
@click.option("--key", "key", metavar="PUB", required=True,
              help="The log's verifier key: the .pub file, or the key text itself.")
@output_options()
def verify_proof(proof_path: str, checkpoints: tuple[str, ...], key: str, printer: Printer) -> None:
    """Check an inclusion or consistency proof offline (no log needed).

    An inclusion proof shows that one event, printed on success, is in the log as the
    checkpoint states it. A consistency proof, checked against two checkpoints, shows
    that the later log extends the earlier one: nothing before it was changed.

    \b
    Example:
      routilux-replay verify-proof event-42.proof --checkpoint cp-100.txt --key audit.pub
      routilux-replay verify-proof grow.proof --checkpoint cp-100.txt --checkpoint cp-250.txt --key audit.pub
    """
    verifier = _verifier(key)
    raw = _read(proof_path, "proof file")
    notes = [_read(path, "checkpoint file") for path in checkpoints]
    try:
        proof = load_proof(raw)
        if isinstance(proof, ConsistencyProof):
            if len(notes) != 2:
                raise AuditFailure(f"a consistency proof is checked against two checkpoints (give "
                                   f"--checkpoint twice), got {len(notes)}", EXIT_USAGE)
            first, second = check_consistency(proof, notes, verifier)
            _print_consistency(first, second, verifier, printer)
            return
        if len(notes) != 1:
            raise AuditFailure(f"an inclusion proof is checked against one checkpoint, got {len(notes)}",
                               EXIT_USAGE)
        proven = check_inclusion(proof, notes[0], verifier)
    except (ProofError, CheckpointError) as exc:
        raise AuditFailure(str(exc), EXIT_CHECK_FAILED) from None
    except AuditUnavailableError as exc:
        raise AuditFailure(str(exc), EXIT_USAGE) from None
    data = to_jsonable(proven.data)
    if printer.as_json:
        doc = {"ok": True, "proof": "inclusion", "log_id": proven.checkpoint.origin,
               "tree_size": proven.checkpoint.size, "checkpoint_time": format_time(proven.checkpoint.time_ns),
               "key": verifier.name, "seq": proven.seq, "ts": proven.ts, "time": format_time(proven.ts),
               "kind": proven.kind, "data": data}
        printer.json(doc)
        return
    cp = proven.checkpoint
    printer.line(f"OK: event {proven.seq} is in log {cp.origin!r} as of its {_describe(cp)}, "
               f"signed by {verifier.name!r} (key id {verifier.key_id.hex()})")
    printer.line(f"  time  {format_time(proven.ts)}")
    printer.line(f"  kind  {proven.kind}")
    printer.line(f"  data  {json.dumps(data, ensure_ascii=False)}")


def _print_consistency(first: Checkpoint, second: Checkpoint, verifier: Verifier, printer: Printer) -> None:
    if printer.as_json:
        doc = {"ok": True, "proof": "consistency", "log_id": first.origin, "key": verifier.name,
               "first_size": first.size, "second_size": second.size,
               "first_time": format_time(first.time_ns), "second_time": format_time(second.time_ns)}
        printer.json(doc)
        return
    printer.line(f"OK: log {first.origin!r} at {second.size} events extends its {_describe(first)}: "
               f"none of those {first.size} events was changed, dropped or reordered "
               f"(both checkpoints signed by {verifier.name!r}, key id {verifier.key_id.hex()})")


# -- checkpoint, prove, erase: commands on a job's log ---------------------------------------------
def _signer(path: str) -> Any:
    """``--key`` of the commands that sign: a private key file made by ``keygen``."""
    from eventlog.signing import KeyFileSigner

    if not os.path.exists(path):
        raise AuditFailure(f"no such key file: {path!r} (make one with `routilux-replay keygen NAME`)",
                           EXIT_NOT_FOUND)
    try:
        return KeyFileSigner.from_file(path)
    except (SigningKeyError, AuditUnavailableError) as exc:
        raise AuditFailure(f"bad --key: {exc}", EXIT_USAGE) from None


def _open_writable(path: str, key_file: str | None) -> Any:
    """The job's log opened for writing (a directory or PostgreSQL; a saved file is a copy)."""
    import eventlog
    from eventlog.postgres import is_pg_location

    from .source import open_job, open_pg_job_log, read_key_file

    key = read_key_file(key_file)
    if is_pg_location(path):
        return open_pg_job_log(path, key=key, readonly=False)
    open_job(path, key=key).close()  # what is at PATH, said as the other commands say it
    if not os.path.isdir(path):
        raise AuditFailure(f"{path} is a saved job file, a copy: run this on the job itself (its directory or "
                           "database)", EXIT_USAGE)
    try:
        return eventlog.open_log(path, key=key, create=False)
    except eventlog.LogLockedError as exc:
        who = f"process {exc.pid}" if exc.pid is not None else "another process"
        raise AuditFailure(f"the job is open for writing by {who}: run this when it stops, or from that process "
                           "(JobState.checkpoint / erase_personal)", EXIT_USAGE) from None


def _job_origin(log: Any) -> str:
    """The default origin of a job's first checkpoint: as a job's CheckpointPolicy names it."""
    from routilux.job_audit import DEFAULT_ORIGIN

    first = next(iter(log.read(1, 1)), None)
    job_id = first.data.get("job_id") if first is not None and isinstance(first.data, dict) else None
    if not isinstance(job_id, str):
        raise AuditFailure("the log is not a job's (no job id at seq 1): give --origin", EXIT_USAGE)
    return DEFAULT_ORIGIN.replace("{job_id}", job_id)


@click.command()
@path_argument
@click.option("--key", "key_path", metavar="KEY", required=True, help="The private key file that signs (NAME.key).")
@click.option("--origin", help="The log's id in its checkpoints (default: the one its earlier checkpoints name, "
                               "else routilux/<job id>).")
@click.option("--no-store", is_flag=True, help="Only print (or write with -o) the checkpoint; do not keep it with "
                                               "the job (works on a running job).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Also write the checkpoint to this file.")
@key_option
@output_options()
@handle_errors
def checkpoint(path: str, key_path: str, origin: str | None, no_store: bool, output: str | None,
               key_file: str | None, printer: Printer) -> None:
    """Sign a checkpoint of the job's log (its size and Merkle root) and keep it with the job.

    The checkpoint is a small signed text note: hand it to an auditor with proofs
    (`prove`) and the public key (NAME.pub); they check them with `verify-proof`.
    A running job signs its own (JobState.open(..., checkpoints=CheckpointPolicy(...)));
    --no-store signs one from outside without writing to the job.

    \b
    Example:
      routilux-replay checkpoint ./jobs/1234 --key keys/audit.example.org.key -o cp.txt
    """
    from eventlog.audit import log_origin, make_checkpoint

    from .source import open_job, read_key_file

    signer = _signer(key_path)
    if no_store:
        job = open_job(path, key=read_key_file(key_file))
        log = job.log
    else:
        log = _open_writable(path, key_file)
    try:
        origin = origin or log_origin(log) or _job_origin(log)
        try:
            made = make_checkpoint(log, signer, origin=origin, store=not no_store)
        except ValueError as exc:
            raise AuditFailure(str(exc), EXIT_USAGE) from None
        except AuditUnavailableError as exc:
            raise AuditFailure(str(exc), EXIT_USAGE) from None
    finally:
        log.close()
    if output:
        _write(output, made.note)
    cp = made.checkpoint
    if printer.as_json:
        printer.json({"origin": cp.origin, "size": cp.size, "root": cp.root_b64, "time": format_time(cp.time_ns),
                      "key": signer.name, "stored": not no_store, "file": output, "note": made.note})
        return
    where = "kept with the job" if not no_store else "not kept with the job"
    printer.line(f"checkpoint of {cp.size} events of {cp.origin!r}, signed by {signer.name!r} ({where}"
                 + (f"; written to {output}" if output else "") + "):")
    printer.line(made.note.rstrip("\n"))


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise AuditFailure(f"cannot write {path!r}: {exc.strerror}", EXIT_USAGE) from None


def _checkpoint_arg(log: Any, text: str) -> Checkpoint:
    """A checkpoint named on the command line: a file, or the size of one kept with the job ("latest": the newest)."""
    from eventlog.audit import find_checkpoint
    from eventlog.checkpoint import read_unverified

    if os.path.exists(text):
        try:
            return read_unverified(_read(text, "checkpoint file"))
        except CheckpointError as exc:
            raise AuditFailure(f"{text}: {exc}", EXIT_CHECK_FAILED) from None
    if text == "latest" or text.isdigit():
        kept = find_checkpoint(log, None if text == "latest" else int(text))
        if kept is None:
            what = "no checkpoint is kept with the job" if text == "latest" else \
                f"no checkpoint of {text} events is kept with the job"
            raise AuditFailure(f"{what} (make one with `routilux-replay checkpoint`)", EXIT_USAGE)
        return kept.checkpoint
    raise AuditFailure(f"no such checkpoint file: {text!r} (or give the size of a kept one, or 'latest')",
                       EXIT_NOT_FOUND)


@click.command()
@path_argument
@click.option("--seq", type=click.IntRange(min=1), help="Prove that this event is in the checkpoint.")
@click.option("--checkpoint", "checkpoint_arg", metavar="CP",
              help="The checkpoint of an inclusion proof: a file, the size of one kept with the job, or 'latest'.")
@click.option("--from", "first_arg", metavar="CP1", help="A consistency proof from this checkpoint ...")
@click.option("--to", "second_arg", metavar="CP2", help="... to this one (files, sizes, or 'latest').")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the proof file here (default: stdout).")
@key_option
@output_options()
@handle_errors
def prove(path: str, seq: int | None, checkpoint_arg: str | None, first_arg: str | None, second_arg: str | None,
          output: str | None, key_file: str | None, printer: Printer) -> None:
    """Make a proof file an auditor checks offline with `verify-proof`.

    Inclusion: --seq S --checkpoint CP proves that event S (its bytes and time) is in
    the log as the checkpoint states it. Consistency: --from CP1 --to CP2 proves that
    the later log extends the earlier one, nothing changed, dropped or reordered.
    Reads the job only (works on a running job).

    \b
    Example:
      routilux-replay prove ./jobs/1234 --seq 42 --checkpoint cp.txt -o event-42.proof
      routilux-replay prove ./jobs/1234 --from cp-100.txt --to latest -o grow.proof
    """
    from eventlog.audit import prove_consistency, prove_inclusion

    from .source import open_job, read_key_file

    inclusion = seq is not None or checkpoint_arg is not None
    consistency = first_arg is not None or second_arg is not None
    if inclusion == consistency or (inclusion and (seq is None or checkpoint_arg is None)) \
            or (consistency and (first_arg is None or second_arg is None)):
        raise AuditFailure("give either --seq S --checkpoint CP (inclusion) or --from CP1 --to CP2 (consistency)",
                           EXIT_USAGE)
    with open_job(path, key=read_key_file(key_file)) as job:
        try:
            if inclusion:
                assert seq is not None and checkpoint_arg is not None
                cp = _checkpoint_arg(job.log, checkpoint_arg)
                if seq > cp.size:
                    raise AuditFailure(f"seq {seq} is not in the checkpoint of {cp.size} events (1..{cp.size})",
                                       EXIT_USAGE)
                made: Any = prove_inclusion(job.log, seq, cp)
                summary = f"event {seq} is in {cp.origin!r} as of its checkpoint of {cp.size} events"
            else:
                assert first_arg is not None and second_arg is not None
                a, b = _checkpoint_arg(job.log, first_arg), _checkpoint_arg(job.log, second_arg)
                made = prove_consistency(job.log, a, b)
                summary = (f"{a.origin!r} at {max(a.size, b.size)} events extends its checkpoint of "
                           f"{min(a.size, b.size)}")
        except ValueError as exc:
            raise AuditFailure(str(exc), EXIT_CHECK_FAILED) from None
    text = made.to_json()
    if output:
        made.save(output)
    if printer.as_json:
        printer.json({"proof": "inclusion" if inclusion else "consistency", "file": output,
                      "hashes": len(made.path), "document": json.loads(text)})
        return
    if output:
        printer.line(f"wrote {output}: {summary} ({len(made.path)} hashes)")
    else:
        printer.line(text.rstrip("\n"))


@click.command()
@path_argument
@click.option("--seq", type=click.IntRange(min=1), help="Erase the personal values of this event ...")
@click.option("--path", "field", metavar="FIELD", help="... only those at this path, e.g. \"data['customer']\".")
@click.option("--commitment", "commitments", multiple=True, metavar="HEX",
              help="Erase the value with this commitment (64 hex digits; repeatable).")
@click.option("--all", "everything", is_flag=True, help="Erase every personal value of the job.")
@click.option("--reason", required=True, help="Why (kept in the log): a request number, a legal basis.")
@click.option("--key", "key_path", metavar="KEY", required=True, help="The private key file that signs the erasure.")
@key_option
@output_options()
@handle_errors
def erase(path: str, seq: int | None, field: str | None, commitments: tuple[str, ...], everything: bool,
          reason: str, key_path: str, key_file: str | None, printer: Printer) -> None:
    """Erase personal values of a job: delete them and their salts, append a signed erasure event.

    The job's events hold only commitments of its personal values (eventlog.Personal),
    so nothing else changes: every proof made before still verifies, `verify` lists the
    erasure, `state` shows the value as erased, and no file of the job holds it any more.

    \b
    Example:
      routilux-replay erase ./jobs/1234 --seq 12 --reason "GDPR request 4411" --key keys/ops.key
    """
    from eventlog.erasure import erase as erase_values
    from eventlog.erasure import find_personal

    if sum((seq is not None, bool(commitments), everything)) != 1 or (field is not None and seq is None
                                                                     and not everything):
        raise AuditFailure("give one of --seq S [--path FIELD], --commitment HEX or --all", EXIT_USAGE)
    picked: list[Any] = []
    for text in commitments:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise AuditFailure(f"--commitment {text!r} is not 64 hex digits", EXIT_USAGE)
        picked.append(raw)
    signer = _signer(key_path)
    log = _open_writable(path, key_file)
    try:
        if not commitments:
            picked = find_personal(log, seq=seq, path=field)
        try:
            record = erase_values(log, picked, reason, signer)
        except ValueError as exc:
            raise AuditFailure(str(exc), EXIT_CHECK_FAILED) from None
        except AuditUnavailableError as exc:
            raise AuditFailure(str(exc), EXIT_USAGE) from None
    finally:
        log.close()
    if printer.as_json:
        printer.json({"seq": record.seq, "erased": len(record.commitments), "refs": [list(r) for r in record.refs],
                      "reason": record.reason, "key": record.key_name,
                      "commitments": [c.hex() for c in record.commitments]})
        return
    printer.line(f"erased: {record.describe()}")
