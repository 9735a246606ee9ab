"""``routilux-replay keygen`` and ``verify-proof``: audit keys and offline proof checks.

A thin click layer over :mod:`eventlog.signing`, :mod:`eventlog.checkpoint` and
:mod:`eventlog.proof`. ``verify-proof`` needs only the proof file, the checkpoint
file(s) and the public verifier key -- never the log -- so an auditor can run it on their
own machine. Exit codes (as for the other commands): 0 the proof holds; 1 refused (one
line saying why); 2 bad usage or a malformed key; 3 a file that does not exist.
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

from .cli_common import Printer, output_options
from .errors import EXIT_CHECK_FAILED, EXIT_NOT_FOUND, EXIT_USAGE
from .jsonform import to_jsonable

__all__ = ["keygen", "verify_proof"]


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


def _verifier(key: str) -> Verifier:
    """``--key``: a file holding the verifier key, or the verifier key itself."""
    try:
        if os.path.exists(key):
            return Verifier.from_file(key)
        if "+" in key:
            return Verifier.from_string(key)
    except SigningKeyError as exc:
        raise AuditFailure(f"bad --key: {exc}", EXIT_USAGE) from None
    raise AuditFailure(f"no such key file: {key!r} (give the .pub file or the verifier key text)",
                       EXIT_NOT_FOUND)


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
