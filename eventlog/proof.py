"""Proof files an auditor checks offline: one event is in a log; a log extends its past.

Two small, versioned JSON documents (layout in ``eventlog/MERKLE.md``):

* an **inclusion proof** says "event ``seq`` -- these bytes, at this time -- is in log
  ``log_id`` as signed by the checkpoint of ``tree_size`` events with ``root``"; it
  carries the event's leaf preimage (``seq``, ``ts``, the event's canonical bytes), so
  the auditor sees exactly what was proven, and the audit path;
* a **consistency proof** says "the log at ``second.size`` events extends the log at
  ``first.size`` events, nothing rewritten"; it carries both roots and the proof hashes.

:func:`verify_inclusion_file` and :func:`verify_consistency_file` need only the proof,
the checkpoint note(s) and the public verifier key -- not the log. The checkpoint is
checked first (signature, key), then the proof is matched to it (log id, size, root),
then the Merkle proof itself is verified (RFC 9162). Every refusal is one line:
:class:`~eventlog.errors.ProofError` or :class:`~eventlog.errors.CheckpointError`.
Nothing in a proof file is believed before it has been checked: the decoded event a
successful check returns is decoded from the proven bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Sequence
from typing import Any

import attrs

from ._atomic import write_atomically
from .checkpoint import Checkpoint, open_checkpoint
from .encoding import decode_event
from .errors import CorruptionError, ProofError
from .merkle import HASH_SIZE, event_leaf, leaf_hash, verify_consistency, verify_inclusion
from .merkle_tree import MerkleTree
from .signing import Verifier

__all__ = [
    "CONSISTENCY_FORMAT",
    "INCLUSION_FORMAT",
    "ConsistencyProof",
    "InclusionProof",
    "ProvenEvent",
    "check_consistency",
    "check_inclusion",
    "load_proof",
    "make_consistency_proof",
    "make_inclusion_proof",
    "ordered_pair",
    "verify_consistency_file",
    "verify_inclusion_file",
]

INCLUSION_FORMAT = "routilux-eventlog/inclusion-proof"
CONSISTENCY_FORMAT = "routilux-eventlog/consistency-proof"
#: The proof file version this library writes and reads.
VERSION = 1
#: A proof has at most one hash per level of a tree of up to 2**64 leaves (two more for consistency).
_MAX_PATH = 66
#: Largest proof file read: an event is at most 32 MiB, a little more once in base64 and JSON.
MAX_PROOF_BYTES = 48 << 20


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@attrs.frozen
class InclusionProof:
    """Event ``seq`` is leaf ``seq - 1`` of the tree of ``tree_size`` leaves with ``root``.

    Attributes:
        log_id: the log's id, as in its checkpoints' origin line.
        tree_size: the size of the checkpoint the proof is for.
        root: that checkpoint's root.
        seq, ts, event: the leaf preimage: the event's seq, timestamp (ns) and canonical
            bytes (msgpack ``[kind, data]``).
        path: the audit path, bottom-up (RFC 6962 §2.1.1).
    """

    log_id: str
    tree_size: int
    root: bytes
    seq: int
    ts: int
    event: bytes
    path: tuple[bytes, ...]

    @property
    def leaf_hash(self) -> bytes:
        """The leaf's hash, computed from the preimage."""
        return leaf_hash(event_leaf(self.seq, self.ts, self.event))

    def to_json(self) -> str:
        """The proof file's text."""
        doc = {
            "format": INCLUSION_FORMAT,
            "version": VERSION,
            "log_id": self.log_id,
            "checkpoint": {"size": self.tree_size, "root": _b64(self.root)},
            "leaf": {"seq": self.seq, "ts": self.ts, "event": _b64(self.event)},
            "path": [_b64(h) for h in self.path],
        }
        return json.dumps(doc, indent=2) + "\n"

    def save(self, path: str) -> None:
        """Write the proof file atomically (temp file, fsync, rename)."""
        _save(path, self.to_json())


@attrs.frozen
class ConsistencyProof:
    """The tree of ``second_size`` leaves (``second_root``) extends the one of ``first_size`` (``first_root``)."""

    log_id: str
    first_size: int
    first_root: bytes
    second_size: int
    second_root: bytes
    path: tuple[bytes, ...]

    def to_json(self) -> str:
        """The proof file's text."""
        doc = {
            "format": CONSISTENCY_FORMAT,
            "version": VERSION,
            "log_id": self.log_id,
            "first": {"size": self.first_size, "root": _b64(self.first_root)},
            "second": {"size": self.second_size, "root": _b64(self.second_root)},
            "path": [_b64(h) for h in self.path],
        }
        return json.dumps(doc, indent=2) + "\n"

    def save(self, path: str) -> None:
        """Write the proof file atomically (temp file, fsync, rename)."""
        _save(path, self.to_json())


def _save(path: str, text: str) -> None:
    folder, name = os.path.split(os.path.abspath(path))
    write_atomically(path, text.encode(), tmp=os.path.join(folder, f".{name}.tmp"), what="proof file")


# -- making proofs (the writer's side) -----------------------------------------------------------
def make_inclusion_proof(tree: MerkleTree, checkpoint: Checkpoint, seq: int, ts: int,
                         event_bytes: bytes) -> InclusionProof:
    """Prove that event ``(seq, ts, event_bytes)`` is in ``tree`` at the checkpoint's size.

    Raises:
        ValueError: the checkpoint's root is not the tree's at that size, or the event is
            not leaf ``seq - 1`` of the tree.
        NodeStoreError: the tree's store is damaged (the proof would not verify).
    """
    if tree.root_at(checkpoint.size) != checkpoint.root:
        msg = f"the checkpoint's root is not this tree's root at size {checkpoint.size}"
        raise ValueError(msg)
    leaf = leaf_hash(event_leaf(seq, ts, event_bytes))
    path = tree.inclusion_proof(seq - 1, checkpoint.size, leaf_hash=leaf)
    return InclusionProof(checkpoint.origin, checkpoint.size, checkpoint.root, seq, ts, bytes(event_bytes),
                          tuple(path))


def ordered_pair(first: Checkpoint, second: Checkpoint) -> tuple[Checkpoint, Checkpoint]:
    """The two checkpoints of one consistency proof, the smaller size first.

    Raises:
        ValueError: they are checkpoints of different logs.
    """
    if first.origin != second.origin:
        msg = f"the checkpoints are of different logs ({first.origin!r} and {second.origin!r})"
        raise ValueError(msg)
    return (second, first) if first.size > second.size else (first, second)


def make_consistency_proof(tree: MerkleTree, first: Checkpoint, second: Checkpoint) -> ConsistencyProof:
    """Prove that the tree at ``second``'s size extends the tree at ``first``'s.

    Raises:
        ValueError: the checkpoints are of different logs, out of order, or their roots are
            not this tree's.
        NodeStoreError: the tree's store is damaged.
    """
    first, second = ordered_pair(first, second)
    for cp in (first, second):
        if tree.root_at(cp.size) != cp.root:
            msg = f"the checkpoint's root is not this tree's root at size {cp.size}"
            raise ValueError(msg)
    path = tree.consistency_proof(first.size, second.size)
    return ConsistencyProof(first.origin, first.size, first.root, second.size, second.root, tuple(path))


# -- reading proof files -------------------------------------------------------------------------
def _bad(why: str) -> ProofError:
    return ProofError(f"not a valid proof file: {why}")


def _field(doc: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    value = doc.get(key)
    if type(value) is not kind:
        raise _bad(f"'{where}{key}' is missing or not a {kind.__name__}")
    return value


def _uint(doc: dict[str, Any], key: str, where: str = "", bits: int = 64, signed: bool = False) -> int:
    value = _field(doc, key, int, where)
    low = -(2 ** (bits - 1)) if signed else 0
    high = 2 ** (bits - 1) if signed else 2**bits
    if not low <= value < high:
        raise _bad(f"'{where}{key}' is out of range")
    return int(value)


def _bytes(doc: dict[str, Any], key: str, where: str = "", size: int | None = None) -> bytes:
    text = _field(doc, key, str, where)
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise _bad(f"'{where}{key}' is not base64") from None
    if size is not None and len(raw) != size:
        raise _bad(f"'{where}{key}' is {len(raw)} bytes, not {size}")
    return raw


def _path(doc: dict[str, Any]) -> tuple[bytes, ...]:
    items = _field(doc, "path", list)
    if len(items) > _MAX_PATH:
        raise _bad(f"the path has {len(items)} hashes, more than any tree needs")
    return tuple(_bytes({"path": item}, "path", size=HASH_SIZE) for item in items)


def load_proof(source: str | bytes) -> InclusionProof | ConsistencyProof:
    """Parse a proof file's text (either kind), strictly.

    Raises:
        ProofError: not JSON, not a proof file, an unknown version, a missing or bad field.
    """
    if len(source) > MAX_PROOF_BYTES:
        raise _bad(f"larger than {MAX_PROOF_BYTES} bytes")
    try:
        doc = json.loads(source)
    except (ValueError, UnicodeDecodeError):
        raise _bad("it is not JSON") from None
    if type(doc) is not dict:
        raise _bad("it is not a JSON object")
    fmt = doc.get("format")
    if fmt not in (INCLUSION_FORMAT, CONSISTENCY_FORMAT):
        raise _bad(f"unknown format {fmt!r} (expected {INCLUSION_FORMAT!r} or {CONSISTENCY_FORMAT!r})")
    version = doc.get("version")
    if version != VERSION:
        raise _bad(f"version {version!r}; this library reads version {VERSION} (upgrade routilux-es?)")
    log_id = _field(doc, "log_id", str)
    if fmt == INCLUSION_FORMAT:
        cp = _field(doc, "checkpoint", dict)
        leaf = _field(doc, "leaf", dict)
        seq = _uint(leaf, "seq", "leaf.")
        if seq < 1:
            raise _bad("'leaf.seq' must be at least 1")
        return InclusionProof(log_id, _uint(cp, "size", "checkpoint."), _bytes(cp, "root", "checkpoint.", HASH_SIZE),
                              seq, _uint(leaf, "ts", "leaf.", signed=True), _bytes(leaf, "event", "leaf."),
                              _path(doc))
    first = _field(doc, "first", dict)
    second = _field(doc, "second", dict)
    return ConsistencyProof(log_id, _uint(first, "size", "first."), _bytes(first, "root", "first.", HASH_SIZE),
                            _uint(second, "size", "second."), _bytes(second, "root", "second.", HASH_SIZE),
                            _path(doc))


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(MAX_PROOF_BYTES + 1)
    except OSError as err:
        msg = f"cannot read {what} {os.fspath(path)}: {err.strerror}"
        raise ProofError(msg) from None


# -- checking (the auditor's side) -----------------------------------------------------------------
@attrs.frozen
class ProvenEvent:
    """What a verified inclusion proof shows: this event is in the checkpointed log.

    ``kind`` and ``data`` are decoded from the proven bytes (``event``), never taken
    from anything unchecked.
    """

    checkpoint: Checkpoint
    seq: int
    ts: int
    event: bytes
    kind: str
    data: Any


def _match(proof: InclusionProof | ConsistencyProof, checkpoint: Checkpoint) -> None:
    if proof.log_id != checkpoint.origin:
        msg = f"the proof is for log {proof.log_id!r} but the checkpoint is for log {checkpoint.origin!r}"
        raise ProofError(msg)


def check_inclusion(proof: InclusionProof, checkpoint_note: str | bytes, verifier: Verifier | str) -> ProvenEvent:
    """Verify an inclusion proof against a signed checkpoint; return the proven event.

    Raises:
        CheckpointError: the checkpoint is malformed or its signature is refused.
        ProofError: the proof is for another log or size, or does not verify.
    """
    checkpoint = open_checkpoint(checkpoint_note, verifier)
    _match(proof, checkpoint)
    if proof.tree_size != checkpoint.size:
        msg = (f"the proof is for tree size {proof.tree_size} but the checkpoint is for size "
               f"{checkpoint.size}: ask for a proof at size {checkpoint.size}")
        raise ProofError(msg)
    if proof.root != checkpoint.root:
        msg = (f"the proof names root {_b64(proof.root)} but the checkpoint's root at size "
               f"{checkpoint.size} is {_b64(checkpoint.root)}: the log was rewritten, or the proof "
               "belongs to another copy of it")
        raise ProofError(msg)
    try:
        verify_inclusion(proof.leaf_hash, proof.seq - 1, checkpoint.size, proof.path, checkpoint.root)
    except ProofError as exc:
        msg = f"event seq {proof.seq} is not proven to be in the checkpoint: {exc}"
        raise ProofError(msg) from None
    try:
        kind, data = decode_event(proof.event, where="the proof's event")
    except CorruptionError as exc:
        msg = f"the proven leaf of seq {proof.seq} is not an event: {exc}"
        raise ProofError(msg) from None
    return ProvenEvent(checkpoint, proof.seq, proof.ts, proof.event, kind, data)


def check_consistency(proof: ConsistencyProof, checkpoint_notes: Sequence[str | bytes],
                      verifier: Verifier | str) -> tuple[Checkpoint, Checkpoint]:
    """Verify a consistency proof against two signed checkpoints (either order).

    Returns the two checkpoints, smaller size first.

    Raises:
        CheckpointError: a checkpoint is malformed or its signature is refused.
        ProofError: the checkpoints are not the ones the proof is about, or it does not verify.
    """
    if len(checkpoint_notes) != 2:
        msg = f"a consistency proof is checked against two checkpoints, got {len(checkpoint_notes)}"
        raise ProofError(msg)
    if isinstance(verifier, str):
        verifier = Verifier.from_string(verifier)
    a, b = (open_checkpoint(note, verifier) for note in checkpoint_notes)
    first, second = (a, b) if a.size <= b.size else (b, a)
    for cp in (first, second):
        _match(proof, cp)
    if (first.size, second.size) != (proof.first_size, proof.second_size):
        msg = (f"the proof is from size {proof.first_size} to {proof.second_size} but the checkpoints "
               f"are for sizes {first.size} and {second.size}: ask for a proof between those sizes")
        raise ProofError(msg)
    for cp, root in ((first, proof.first_root), (second, proof.second_root)):
        if cp.root != root:
            msg = (f"the proof names root {_b64(root)} at size {cp.size} but the checkpoint's root is "
                   f"{_b64(cp.root)}")
            raise ProofError(msg)
    try:
        verify_consistency(first.size, second.size, first.root, second.root, proof.path)
    except ProofError as exc:
        msg = f"the log at size {second.size} is not proven to extend its checkpoint at size {first.size}: {exc}"
        raise ProofError(msg) from None
    return first, second


def verify_inclusion_file(proof: str | os.PathLike[str], checkpoint: str | os.PathLike[str],
                          public_key: Verifier | str) -> ProvenEvent:
    """Check an inclusion proof file against a checkpoint file and a verifier key.

    ``public_key`` is a :class:`~eventlog.signing.Verifier` or a verifier key string.
    Needs nothing else: not the log. Raises as :func:`check_inclusion`.
    """
    doc = load_proof(_read(proof, "proof file"))
    if not isinstance(doc, InclusionProof):
        raise ProofError(f"{os.fspath(proof)} is a consistency proof, not an inclusion proof")
    return check_inclusion(doc, _read(checkpoint, "checkpoint file"), public_key)


def verify_consistency_file(proof: str | os.PathLike[str], checkpoints: Sequence[str | os.PathLike[str]],
                            public_key: Verifier | str) -> tuple[Checkpoint, Checkpoint]:
    """Check a consistency proof file against two checkpoint files and a verifier key.

    Raises as :func:`check_consistency`.
    """
    doc = load_proof(_read(proof, "proof file"))
    if not isinstance(doc, ConsistencyProof):
        raise ProofError(f"{os.fspath(proof)} is an inclusion proof, not a consistency proof")
    return check_consistency(doc, [_read(cp, "checkpoint file") for cp in checkpoints], public_key)
