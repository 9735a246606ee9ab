"""Signed checkpoints of a log, and proofs about its events, from any backend.

The writer's side of issue 14, on top of the tree every backend keeps
(:meth:`EventLog.merkle_root` and friends):

* :func:`make_checkpoint` makes the log's events durable, signs ``(origin, size, root,
  time)`` as a C2SP signed note (:mod:`eventlog.checkpoint`) and keeps the note with the
  log (:meth:`EventLog.store_checkpoint`); :func:`stored_checkpoints` lists them;
* :func:`prove_inclusion` and :func:`prove_consistency` build the proof files
  (:mod:`eventlog.proof`) an auditor checks with :func:`eventlog.proof.verify_inclusion_file`
  / ``routilux-replay verify-proof`` -- needing only the proof, the checkpoint(s) and the
  public key.

The *origin* (the first line of a checkpoint) names the log for the auditor; it must be
unique among the logs one key signs for. A log keeps the origin of its first checkpoint:
later ones must use the same.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import attrs

from .base import EventLog
from .checkpoint import Checkpoint, read_unverified, sign_checkpoint
from .errors import CheckpointError
from .proof import ConsistencyProof, InclusionProof, ordered_pair
from .signing import Signer

__all__ = [
    "StoredCheckpoint",
    "find_checkpoint",
    "log_origin",
    "make_checkpoint",
    "prove_consistency",
    "prove_inclusion",
    "stored_checkpoints",
]


@attrs.frozen
class StoredCheckpoint:
    """A checkpoint kept with a log: what it states, and its signed note (the text to hand over).

    ``checkpoint`` was read from the note WITHOUT checking its signature (the log does
    not know which key an auditor trusts): :func:`eventlog.checkpoint.open_checkpoint`.
    """

    checkpoint: Checkpoint
    note: str


def stored_checkpoints(log: EventLog) -> list[StoredCheckpoint]:
    """The checkpoints kept with ``log``, smallest size first (malformed notes are skipped; ``verify`` reports them)."""
    out = []
    for note in log.checkpoint_notes():
        try:
            out.append(StoredCheckpoint(read_unverified(note), note))
        except CheckpointError:
            continue
    return out


def log_origin(log: EventLog) -> str | None:
    """The origin of the log's checkpoints (``None`` before its first one)."""
    kept = stored_checkpoints(log)
    return kept[0].checkpoint.origin if kept else None


def find_checkpoint(log: EventLog, size: int | None = None) -> StoredCheckpoint | None:
    """The stored checkpoint of ``size`` events (``None``: the newest), or ``None``."""
    kept = stored_checkpoints(log)
    if size is None:
        return kept[-1] if kept else None
    return next((cp for cp in kept if cp.checkpoint.size == size), None)


def make_checkpoint(log: EventLog, signers: Signer | Sequence[Signer], *, origin: str | None = None,
                    time_ns: int | None = None, store: bool = True) -> StoredCheckpoint:
    """Sign the log's tree at its (durable) head and keep the note with the log.

    The log is synced first: a checkpoint never states an event a crash could still
    take back (the log could then never prove it extends that checkpoint).

    Args:
        signers: the key(s) that sign (a key file signer, an HSM, a witness...).
        origin: the log's id for auditors; default: that of the log's earlier checkpoints.
        time_ns: the checkpoint's time (default: now).
        store: keep the note with the log (the default).

    Raises:
        ValueError: no origin given for a log without checkpoints, or another origin
            than the log's earlier checkpoints name.
        AuditUnavailableError: the ``cryptography`` package is missing.
    """
    known = log_origin(log)
    if origin is None:
        origin = known
    if origin is None:
        msg = "the log has no checkpoint yet: give its origin (an id unique among the logs this key signs)"
        raise ValueError(msg)
    if known is not None and origin != known:
        msg = f"this log's checkpoints name origin {known!r}, not {origin!r} (an origin stays the same for a log)"
        raise ValueError(msg)
    size = log.sync() if log.persistent else log.head_seq
    size = min(size, log.head_seq)
    cp = Checkpoint(origin, size, log.merkle_root(size), time.time_ns() if time_ns is None else time_ns)
    note = sign_checkpoint(cp, signers)
    if store:
        log.store_checkpoint(size, note)
    return StoredCheckpoint(cp, note)


def _check_is_of_log(log: EventLog, cp: Checkpoint) -> None:
    head = log.head_seq
    if cp.size > head:
        msg = f"the checkpoint is of {cp.size} events but this log has {head}: it is not of this log (or a later copy)"
        raise ValueError(msg)
    if log.merkle_root(cp.size) != cp.root:
        msg = (f"the checkpoint's root is not this log's root at {cp.size} events: the checkpoint is of another "
               "log, or this log was rewritten since it was signed")
        raise ValueError(msg)


def prove_inclusion(log: EventLog, seq: int, checkpoint: Checkpoint) -> InclusionProof:
    """The proof that event ``seq`` (its bytes and time) is in the log as ``checkpoint`` states it.

    Raises:
        ValueError: ``seq`` is outside the checkpoint, or the checkpoint is not of this log.
    """
    if type(seq) is not int or not 1 <= seq <= checkpoint.size:
        msg = f"seq {seq} is not in the checkpoint of {checkpoint.size} events (1..{checkpoint.size})"
        raise ValueError(msg)
    _check_is_of_log(log, checkpoint)
    _got, ts, event_bytes = next(iter(log.read_raw(seq, seq)))
    path = log.merkle_inclusion(seq, checkpoint.size)
    return InclusionProof(checkpoint.origin, checkpoint.size, checkpoint.root, seq, ts, bytes(event_bytes),
                          tuple(path))


def prove_consistency(log: EventLog, first: Checkpoint, second: Checkpoint) -> ConsistencyProof:
    """The proof that the log at ``second`` extends the log at ``first`` (either order).

    Raises:
        ValueError: the checkpoints name different origins, or one is not of this log.
    """
    first, second = ordered_pair(first, second)
    for cp in (first, second):
        _check_is_of_log(log, cp)
    path = log.merkle_consistency(first.size, second.size)
    return ConsistencyProof(first.origin, first.size, first.root, second.size, second.root, tuple(path))
