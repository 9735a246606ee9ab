"""A Merkle tree kept in step with an event log, through the public :class:`EventLog` API.

The backend-neutral half of wiring the tree into a log (``eventlog/MERKLE.md``, part 2):

* :func:`event_leaves` turns a log's events into leaves (``merkle.event_leaf`` of each
  ``read_raw`` record);
* :func:`catch_up` brings a tree up to the log's head: it cuts leaves the log no longer
  has, empties a tree whose committed state belongs to another history (its anchor is not
  the log's chain link at that size), then feeds the events it lacks;
* :func:`commit` commits the tree with the log's chain link as the anchor;
* :func:`make_checkpoint` and :func:`prove_event` give a signed checkpoint of the tree
  and an inclusion proof of one of the log's events.

Until the backends maintain the tree at append (part 2), a caller keeps a tree beside a
log with these; afterwards the backends call the same functions at open.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

import attrs

from .base import EventLog
from .checkpoint import Checkpoint, sign_checkpoint
from .merkle import event_leaf
from .merkle_store import StoreHead
from .merkle_tree import MerkleTree
from .proof import InclusionProof, make_inclusion_proof
from .signing import Signer

__all__ = ["CatchUp", "catch_up", "commit", "event_leaves", "make_checkpoint", "prove_event"]

#: Events read from the log per batch while catching up.
_CHUNK = 1 << 14


def event_leaves(log: EventLog, start: int = 1, stop: int | None = None) -> Iterator[bytes]:
    """Yield the leaf of each event ``start..stop`` of ``log`` (``stop=None``: to the head)."""
    for seq, ts, event_bytes in log.read_raw(start, stop):
        yield event_leaf(seq, ts, event_bytes)


@attrs.frozen
class CatchUp:
    """What :func:`catch_up` did.

    Attributes:
        fed: events read from the log into the tree.
        cut: leaves dropped because the log holds fewer events than the tree did.
        rebuilt: the tree was emptied first: its committed state did not match the log's
            history (the log was replaced or restored from another copy).
    """

    fed: int
    cut: int
    rebuilt: bool


def catch_up(tree: MerkleTree, log: EventLog) -> CatchUp:
    """Make ``tree`` the tree of ``log``'s events ``1..head_seq``.

    The committed part is trusted only if its anchor (when it has one) equals the log's
    hash-chain link at the committed size; otherwise the tree is emptied and rebuilt. A
    commit of more events than the log holds (the log lost a tail the tree had
    committed, or was replaced by a shorter one) cannot be checked at all, so it is
    rebuilt too. Only the events the tree lacks are read, so a tree committed recently
    costs little.
    """
    head = log.head_seq
    start_size = tree.size
    committed = tree.store.head
    rebuilt = False
    if committed is not None and committed.size > head:
        rebuilt = True  # nothing in the log to check that commit against
    elif (committed is not None and committed.anchor and 0 < committed.size <= min(tree.size, head)
          and log.link_at(committed.size) != committed.anchor):
        rebuilt = True  # the commit belongs to another history
    if rebuilt:
        tree.truncate(0)
    elif tree.size > head:
        tree.truncate(head)
    cut = max(0, start_size - head) if not rebuilt else 0
    start = tree.size + 1
    for first in range(start, head + 1, _CHUNK):
        tree.extend(event_leaves(log, first, min(first + _CHUNK - 1, head)))
    return CatchUp(fed=head - start + 1, cut=cut, rebuilt=rebuilt)


def commit(tree: MerkleTree, log: EventLog) -> StoreHead:
    """Commit ``tree`` with the log's chain link at the tree's size as its anchor."""
    size = tree.size
    anchor = log.head_hash if size == log.head_seq else log.link_at(size)
    return tree.commit(anchor)


def make_checkpoint(tree: MerkleTree, log_id: str, signers: Signer | Sequence[Signer], *,
                    time_ns: int | None = None) -> tuple[Checkpoint, str]:
    """Return the checkpoint of the tree at its current size and its signed note."""
    cp = Checkpoint(log_id, tree.size, tree.root(), time.time_ns() if time_ns is None else time_ns)
    return cp, sign_checkpoint(cp, signers)


def prove_event(tree: MerkleTree, log: EventLog, checkpoint: Checkpoint, seq: int) -> InclusionProof:
    """Return the inclusion proof of event ``seq`` of ``log`` in the checkpoint's tree.

    Raises:
        KeyError: ``seq`` is not in the log.
        ValueError: the checkpoint is not this tree's, or ``seq`` is past its size.
    """
    if not 1 <= seq <= checkpoint.size:
        msg = f"seq {seq} is not in the checkpoint of {checkpoint.size} events"
        raise ValueError(msg)
    for got, ts, event_bytes in log.read_raw(seq, seq):
        return make_inclusion_proof(tree, checkpoint, got, ts, event_bytes)
    msg = f"seq {seq} is not in the log (head is {log.head_seq})"
    raise KeyError(msg)
