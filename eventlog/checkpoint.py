"""Signed checkpoints: a log's ``(id, size, root, time)`` as a small text note anyone can check.

The layout follows the C2SP ``tlog-checkpoint`` body inside a C2SP ``signed-note``::

    example.org/jobs/job-42                         <- origin: the log's id
    1024                                            <- tree size (leaves = events)
    3Ka+oaEULh/bKmySJZm6qFgl5CGd2YSe3yo8b4Eb4us=    <- base64 Merkle root at that size
    time 2026-12-07T05:41:00.123456789Z             <- extension lines (here: when)
                                                    <- blank line
    — audit-key AbCdEf...base64...                  <- signature line(s): em dash, key name,
                                                       base64(4-byte key id || Ed25519 signature)

The signature covers the text above the blank line, final newline included. More
signature lines (a witness's cosignature, say) may follow; the reader looks for the one
by the key it was given and ignores the rest.

:func:`open_checkpoint` refuses, with a one-line :class:`~eventlog.errors.CheckpointError`,
a note that is malformed, that carries no signature by the key's name ("unknown key
name"), that is signed by another key of that name ("wrong key"), or whose signature
does not verify (the body was changed after signing).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import re
import time
from collections.abc import Sequence

import attrs

from .errors import CheckpointError
from .merkle import HASH_SIZE
from .signing import Signer, Verifier, check_key_name

__all__ = [
    "Checkpoint",
    "format_time",
    "open_checkpoint",
    "parse_checkpoint_text",
    "parse_time",
    "read_unverified",
    "sign_checkpoint",
    "signer_names",
]

#: The separator before a signature's key name (U+2014 EM DASH, then a space).
_SIG_PREFIX = "\u2014 "
#: Largest note read (a checkpoint is a few hundred bytes; this refuses hostile input cheaply).
MAX_NOTE_BYTES = 1 << 16
_TIME_RE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9})Z")
_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,19}")


def format_time(ts_ns: int) -> str:
    """Nanoseconds since the epoch as ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` (UTC)."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def parse_time(text: str) -> int:
    """The inverse of :func:`format_time`; raises ``ValueError`` on anything else."""
    m = _TIME_RE.fullmatch(text)
    if m is None:
        msg = f"time {text!r} is not YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"
        raise ValueError(msg)
    try:
        seconds = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        seconds = -1
    ts = seconds * 1_000_000_000 + int(m.group(2))
    if ts < 0 or format_time(ts) != text:  # one spelling per instant: no leap seconds, no Feb 30
        msg = f"time {text!r} is not a valid UTC time"
        raise ValueError(msg)
    return ts


def _check_line(text: str, what: str) -> None:
    if not text or text != text.strip() or any(not c.isprintable() for c in text):
        msg = f"{what} must be a non-empty line of printable text without leading or trailing spaces"
        raise ValueError(msg)


@attrs.frozen
class Checkpoint:
    """A log's tree at one moment: what a signed checkpoint states.

    Attributes:
        origin: the log's id (first line), unique among the logs a key signs for.
        size: number of leaves (events) in the tree.
        root: the 32-byte Merkle root at ``size``.
        time_ns: when the checkpoint was made (ns since the epoch, UTC).
        extensions: further extension lines, in order (not interpreted).
    """

    origin: str
    size: int
    root: bytes
    time_ns: int
    extensions: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        _check_line(self.origin, "the origin (log id)")
        if type(self.size) is not int or not 0 <= self.size < 2**64:
            msg = f"size must be an int in 0..2**64-1, got {self.size!r}"
            raise ValueError(msg)
        if type(self.root) is not bytes or len(self.root) != HASH_SIZE:
            msg = f"root must be {HASH_SIZE} bytes"
            raise ValueError(msg)
        if type(self.time_ns) is not int or not 0 <= self.time_ns < 2**63:
            msg = f"time_ns must be a non-negative int, got {self.time_ns!r}"
            raise ValueError(msg)
        for ext in self.extensions:
            _check_line(ext, "an extension line")
            if ext.startswith("time "):
                msg = "the time extension is set by time_ns"
                raise ValueError(msg)

    @property
    def root_b64(self) -> str:
        """The root as the checkpoint writes it (standard base64)."""
        return base64.b64encode(self.root).decode()

    def body(self) -> str:
        """The note text that is signed: origin, size, root, time, extensions; each ends in newline."""
        lines = [self.origin, str(self.size), self.root_b64, f"time {format_time(self.time_ns)}",
                 *self.extensions]
        return "".join(line + "\n" for line in lines)


def sign_checkpoint(checkpoint: Checkpoint, signers: Signer | Sequence[Signer]) -> str:
    """Return the signed note for ``checkpoint``: its body, a blank line, one signature line per signer."""
    signer_list = [signers] if isinstance(signers, Signer) else list(signers)
    if not signer_list:
        msg = "a checkpoint needs at least one signer"
        raise ValueError(msg)
    body = checkpoint.body()
    message = body.encode()
    lines = []
    for signer in signer_list:
        check_key_name(signer.name)
        sig = signer.sign(message)
        if len(signer.key_id) != 4 or len(sig) != 64:
            msg = f"signer {signer.name!r} returned a key id or signature of the wrong size"
            raise ValueError(msg)
        lines.append(f"{_SIG_PREFIX}{signer.name} {base64.b64encode(signer.key_id + sig).decode()}\n")
    return body + "\n" + "".join(lines)


@attrs.frozen
class _Signature:
    name: str
    key_id: bytes
    signature: bytes


def _malformed(why: str) -> CheckpointError:
    return CheckpointError(f"malformed checkpoint: {why}")


def _split_note(text: str | bytes) -> tuple[str, list[_Signature]]:
    """Split a signed note into its text and signature lines (signature bytes unchecked)."""
    if isinstance(text, bytes):
        if len(text) > MAX_NOTE_BYTES:
            raise _malformed(f"larger than {MAX_NOTE_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("not UTF-8 text") from None
    if len(text) > MAX_NOTE_BYTES:
        raise _malformed(f"larger than {MAX_NOTE_BYTES} bytes")
    if "\r" in text:
        raise _malformed("it has carriage returns (was it converted to CRLF line ends?)")
    if not text.endswith("\n"):
        raise _malformed("it does not end with a newline")
    split = text.rfind("\n\n")
    if split < 0:
        raise _malformed("no blank line before the signatures")
    body, sig_text = text[: split + 1], text[split + 2 :]
    if not sig_text:
        raise _malformed("no signature lines after the blank line")
    signatures = []
    for number, line in enumerate(sig_text[:-1].split("\n"), start=1):
        if not line.startswith(_SIG_PREFIX):
            raise _malformed(f"signature line {number} does not start with an em dash and a space")
        fields = line[len(_SIG_PREFIX) :].split(" ")
        if len(fields) != 2 or not fields[0]:
            raise _malformed(f"signature line {number} is not '\u2014 <key name> <base64 signature>'")
        try:
            raw = base64.b64decode(fields[1].encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise _malformed(f"signature line {number} is not base64") from None
        if len(raw) < 5:
            raise _malformed(f"signature line {number} is too short")
        signatures.append(_Signature(fields[0], raw[:4], raw[4:]))
    return body, signatures


def parse_checkpoint_text(body: str) -> Checkpoint:
    """Parse a checkpoint body (the signed text); raise :class:`CheckpointError` if malformed."""
    lines = body[:-1].split("\n") if body.endswith("\n") else []
    if len(lines) < 4:
        raise _malformed("the text needs an origin, a size, a root and a time line")
    origin, size_text, root_text, time_line, *extensions = lines
    if not _SIZE_RE.fullmatch(size_text) or int(size_text) >= 2**64:
        raise _malformed(f"the size line {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise _malformed("the root line is not base64") from None
    if len(root) != HASH_SIZE:
        raise _malformed(f"the root is {len(root)} bytes, not {HASH_SIZE}")
    if not time_line.startswith("time "):
        raise _malformed("the fourth line is not 'time <UTC time>'")
    try:
        ts = parse_time(time_line[len("time ") :])
        return Checkpoint(origin, int(size_text), root, ts, tuple(extensions))
    except ValueError as exc:
        raise _malformed(str(exc)) from None


def open_checkpoint(text: str | bytes, verifier: Verifier | str) -> Checkpoint:
    """Check a signed checkpoint against one verifier key and return what it states.

    ``verifier`` is a :class:`~eventlog.signing.Verifier` or a verifier key string.

    Raises:
        CheckpointError: with a one-line reason: malformed; no signature by this key's
            name; signed by another key of that name; signature does not verify (the
            text was changed after signing).
        SigningKeyError: ``verifier`` is a malformed key string.
        AuditUnavailableError: the ``cryptography`` package is missing.
    """
    if isinstance(verifier, str):
        verifier = Verifier.from_string(verifier)
    body, signatures = _split_note(text)
    named = [sig for sig in signatures if sig.name == verifier.name]
    if not named:
        names = ", ".join(sorted({repr(sig.name) for sig in signatures}))
        msg = (f"unknown key name: the checkpoint carries no signature by key {verifier.name!r} "
               f"(it is signed by {names})")
        raise CheckpointError(msg)
    mine = [sig for sig in named if sig.key_id == verifier.key_id]
    if not mine:
        ids = ", ".join(sig.key_id.hex() for sig in named)
        msg = (f"wrong key: the checkpoint is signed by another key named {verifier.name!r} "
               f"(key id {ids}, but the key given has id {verifier.key_id.hex()})")
        raise CheckpointError(msg)
    message = body.encode()
    if not any(len(sig.signature) == 64 and verifier.verify(message, sig.signature) for sig in mine):
        msg = (f"bad signature: the signature by {verifier.name!r} does not verify, so the checkpoint's "
               "text was changed after it was signed (or the signature is damaged)")
        raise CheckpointError(msg)
    return parse_checkpoint_text(body)


def read_unverified(note: str | bytes) -> Checkpoint:
    """What a signed note states, WITHOUT checking any signature (its shape is checked).

    For the writer's own bookkeeping (which checkpoints a log keeps, which origin); an
    auditor uses :func:`open_checkpoint` with the key they trust.

    Raises:
        CheckpointError: the note is malformed.
    """
    body, _signatures = _split_note(note)
    return parse_checkpoint_text(body)


def signer_names(note: str | bytes) -> list[str]:
    """The key names of a note's signature lines (unchecked).

    Raises:
        CheckpointError: the note is malformed.
    """
    return [sig.name for sig in _split_note(note)[1]]
