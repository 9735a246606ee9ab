"""The audit part of ``verify``: the Merkle tree, the kept checkpoints, the personal values and erasures.

:func:`check_audit` reads the log once and answers, for any backend:

* **tree**: the stored tree (node store, node rows) re-hashed against the events
  (:meth:`EventLog.check_merkle`);
* **checkpoints**: every checkpoint kept with the log states the root the log's own
  events give at its size (recomputed from the events, not read from the tree), all
  name one origin, none counts more events than the log has; with a verifier key,
  every signature is checked too;
* **personal values**: every commitment in an event has its value in the vault (the
  value hashing to the commitment) or a tombstone of an erasure event that lists it;
  every vault entry belongs to an event; every erasure event's signature holds and its
  values are gone from the vault. Erased values are *listed* (not reported as damage).
"""

from __future__ import annotations

import attrs

from .base import EventLog
from .checkpoint import Checkpoint, open_checkpoint, read_unverified
from .encoding import event_kind
from .erasure import ERASURE_KIND, ErasureRecord, PersonalRef, erasure_record, personal_refs
from .errors import CheckpointError, EventLogError, NodeStoreError
from .merkle import EMPTY_ROOT, CompactRange, event_leaf, leaf_hash
from .signing import Verifier
from .verify import Problem

__all__ = ["AuditReport", "check_audit"]

_CHUNK = 4096


@attrs.frozen
class AuditReport:
    """What :func:`check_audit` found.

    Attributes:
        problems: everything that does not hold (kinds ``merkle``, ``checkpoint``,
            ``personal``, ``erasure``).
        erasures: the erasure events, in order (each says what, why and who).
        checkpoints_checked: checkpoints compared with the log.
        signatures_checked: whether their signatures were checked (a key was given).
        tree_checked: whether a stored tree was re-hashed (False: none is kept).
        personal_values: personal values the events commit to.
    """

    problems: list[Problem]
    erasures: list[ErasureRecord]
    checkpoints_checked: int
    signatures_checked: bool
    tree_checked: bool
    personal_values: int

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def check_audit(log: EventLog, *, verifier: Verifier | None = None, where: str | None = None) -> AuditReport:
    """Check the log's tree, checkpoints, personal values and erasures (see the module docstring)."""
    where = where or log.location
    problems: list[Problem] = []
    tree_checked = False
    try:
        tree_checked = log.check_merkle()
    except NodeStoreError as exc:
        problems.append(Problem("merkle", where, None, None, f"the stored Merkle tree: {exc}"))

    head = log.head_seq
    kept: list[tuple[Checkpoint, str]] = []
    for note in log.checkpoint_notes():
        try:
            kept.append((read_unverified(note), note))
        except CheckpointError as exc:
            problems.append(Problem("checkpoint", where, None, None, str(exc)))
    sizes = sorted({cp.size for cp, _ in kept if cp.size <= head})
    roots: dict[int, bytes] = {0: EMPTY_ROOT}
    refs: dict[bytes, PersonalRef] = {}
    erased: list[ErasureRecord] = []
    rng = CompactRange()
    pending: list[bytes] = []
    targets = iter([size for size in sizes if size > 0])
    target = next(targets, None)
    for seq, ts, event_bytes in log.read_raw(1, head):
        pending.append(leaf_hash(event_leaf(seq, ts, event_bytes)))
        if seq == target or len(pending) >= _CHUNK:
            rng.extend(pending)
            pending = []
            while target is not None and target <= rng.size:
                if target == rng.size:
                    roots[target] = rng.root()
                target = next(targets, None)
        if event_kind(event_bytes) == ERASURE_KIND:
            _check_erasure(log, seq, ts, event_bytes, verifier, erased, problems, where)
            continue
        for ref in personal_refs(seq, event_bytes):
            refs.setdefault(ref.commitment, ref)

    checked = _check_checkpoints(kept, roots, head, verifier, problems, where)
    _check_vault(log, refs, erased, problems, where)
    return AuditReport(problems, erased, checked, verifier is not None, tree_checked, len(refs))


def _check_erasure(log: EventLog, seq: int, ts: int, event_bytes: bytes, verifier: Verifier | None,
                   erased: list[ErasureRecord], problems: list[Problem], where: str) -> None:
    from .encoding import decode_event

    try:
        record = erasure_record(seq, ts, decode_event(event_bytes, seq=seq)[1], verifier)
    except (ValueError, EventLogError) as exc:
        problems.append(Problem("erasure", where, None, seq, str(exc)))
        return
    erased.append(record)
    if record.signature_ok is False:
        problems.append(Problem("erasure", where, None, seq,
                                f"the erasure's signature does not verify (key {record.key_name})"))


def _check_checkpoints(kept: list[tuple[Checkpoint, str]], roots: dict[int, bytes], head: int,
                       verifier: Verifier | None, problems: list[Problem], where: str) -> int:
    origins = {cp.origin for cp, _ in kept}
    if len(origins) > 1:
        problems.append(Problem("checkpoint", where, None, None,
                                f"the checkpoints name {len(origins)} origins ({', '.join(sorted(origins))}); "
                                "a log has one"))
    for cp, note in kept:
        if cp.size > head:
            problems.append(Problem("checkpoint", where, None, cp.size,
                                    f"a checkpoint of {cp.size} events, but the log has {head}: events it counted "
                                    "are gone"))
            continue
        if roots.get(cp.size) != cp.root:
            problems.append(Problem("checkpoint", where, None, cp.size,
                                    f"the checkpoint of {cp.size} events states another root than the log's events "
                                    "give: the log was rewritten after it was signed"))
        if verifier is not None:
            try:
                open_checkpoint(note, verifier)
            except CheckpointError as exc:
                problems.append(Problem("checkpoint", where, None, cp.size, str(exc)))
    return len(kept)


def _check_vault(log: EventLog, refs: dict[bytes, PersonalRef], erased: list[ErasureRecord],
                 problems: list[Problem], where: str) -> None:
    entries = {entry.commitment: entry for entry in log.personal_entries()}
    erased_by: dict[bytes, int] = {c: record.seq for record in erased for c in record.commitments}
    for name, offset, what in getattr(log, "vault_problems", ()):
        problems.append(Problem("personal", name, offset, None, f"vault file: {what}"))
    for commitment, ref in refs.items():
        entry = entries.get(commitment)
        if entry is None:
            if log.holds_personal_values and commitment not in erased_by:
                problems.append(Problem("personal", where, None, ref.seq,
                                        f"{ref.path}: no value in the vault and no erasure (lost)"))
        elif entry.sealed is not None:
            if not entry.sealed.matches():
                problems.append(Problem("personal", where, None, ref.seq,
                                        f"{ref.path}: the vault's value does not hash to its commitment (damaged)"))
        elif entry.erased_seq != erased_by.get(commitment):
            problems.append(Problem("personal", where, None, ref.seq,
                                    f"{ref.path}: marked erased at seq {entry.erased_seq}, but no erasure event "
                                    "there lists it"))
    for commitment, entry in entries.items():
        if commitment not in refs and entry.sealed is not None:
            problems.append(Problem("personal", where, None, None,
                                    f"a vault value ({commitment[:4].hex()}...) that no event refers to (an append "
                                    "that did not complete): erase it by its commitment"))
    for record in erased:
        for commitment in record.commitments:
            entry = entries.get(commitment)
            if entry is not None and entry.sealed is not None:
                problems.append(Problem("erasure", where, None, record.seq,
                                        f"the erasure at seq {record.seq} is not carried out: the vault still holds "
                                        f"value {commitment[:4].hex()}..."))
