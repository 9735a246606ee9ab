"""RFC 6962 / RFC 9162 Merkle tree hashing, the compact range, and proof verification.

Everything an auditor needs to check a proof is here, and it needs only hashes:

* :func:`leaf_hash` / :func:`node_hash`: SHA-256 with the domain-separation prefixes
  ``0x00`` (leaf) and ``0x01`` (interior node), so a leaf can never pass for a node.
* :class:`CompactRange`: the tree over leaves ``[0, n)`` as the perfect subtrees of
  ``n``'s binary decomposition (at most one per level). Appending a leaf merges equal
  subtrees like a binary counter: O(log n) worst case, one node hash amortised. It gives
  the root at the current size and reports every new perfect node, so a node store
  (:mod:`eventlog.merkle_store`) can keep what proofs need.
* :func:`verify_inclusion` (RFC 9162 §2.1.3.2) and :func:`verify_consistency`
  (§2.1.4.2): raise :class:`~eventlog.errors.ProofError` with a one-line reason.

Proof *generation* over a stored tree lives in :mod:`eventlog.merkle_tree`.

Terms: a tree of ``size`` leaves numbered from 0; a node ``(level, index)`` is the
perfect subtree over leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 nodes
are leaf hashes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat

from .errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "event_leaf",
    "LEAF_PREFIX",
    "leaf_hash",
    "leaf_hashes",
    "leaf_input_hashes",
    "node_hash",
    "node_hashes",
    "root_of",
    "split_point",
    "verify_consistency",
    "verify_inclusion",
]

#: Bytes in every hash of the tree (SHA-256).
HASH_SIZE = 32
_sha256 = hashlib.sha256
_LEAF = b"\x00"
_NODE = b"\x01"
_add_leaf_prefix = _LEAF.__add__
_join = b"".join
_SEQ_TS = struct.Struct("<Qq")

#: The byte a leaf's data is hashed after (RFC 6962 §2.1): ``leaf_hash(d) = SHA-256(LEAF_PREFIX || d)``.
LEAF_PREFIX = _LEAF

#: The root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
EMPTY_ROOT = _sha256(b"").digest()

#: Receives the perfect nodes a :class:`CompactRange` creates: ``(level, first_index, hashes)``.
NodeSink = Callable[[int, int, list[bytes]], None]


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 hash of one leaf: ``SHA-256(0x00 || data)``."""
    return _sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return _sha256(_NODE + left + right).digest()


def leaf_hashes(datas: Iterable[bytes]) -> list[bytes]:
    """Return :func:`leaf_hash` of each item, in order."""
    return leaf_input_hashes(map(_add_leaf_prefix, datas))


def leaf_input_hashes(inputs: Iterable[bytes]) -> list[bytes]:
    """Return SHA-256 of each item: the leaf hashes of inputs that already start with :data:`LEAF_PREFIX`.

    A comprehension calling ``sha256(x).digest()``: the cheapest way through ``hashlib``
    measured here (a ``map`` chain with ``methodcaller("digest")`` costs ~0.07 us more per
    hash; see ``benchmarks/bench_merkle.py``). Nearly all that is left is ``hashlib``'s own
    per-call cost.
    """
    sha256 = _sha256
    return [sha256(x).digest() for x in inputs]


def _parents(pairs: Iterator[bytes]) -> list[bytes]:
    """``node_hash`` of consecutive items of an iterator: (0, 1), (2, 3), ...; an odd last item is left unread.

    ``pairs`` must be an iterator (not a list): ``zip`` draws left and right from it in turn.
    """
    sha256 = _sha256
    # zip(it, it) pairs the iterator's items without slicing the row; each input is built by
    # one join of (0x01, left, right): one allocation per node.
    return [sha256(x).digest() for x in map(_join, zip(repeat(_NODE), pairs, pairs))]


def node_hashes(children: Sequence[bytes]) -> list[bytes]:
    """Return the parents of consecutive pairs: ``node_hash(c[0], c[1]), node_hash(c[2], c[3]), ...``.

    ``children`` must have an even length.
    """
    if len(children) & 1:
        msg = f"node_hashes needs an even number of children, got {len(children)}"
        raise ValueError(msg)
    return _parents(iter(children))


def split_point(size: int) -> int:
    """Return the largest power of two strictly below ``size`` (``size >= 2``): RFC 6962's ``k``."""
    return 1 << ((size - 1).bit_length() - 1)


def event_leaf(seq: int, ts: int, event_bytes: bytes) -> bytes:
    """Return the leaf data that stands for one event of an event log.

    ``u64 seq || i64 ts || event_bytes`` (little-endian), where ``event_bytes`` is the
    event's canonical msgpack ``[kind, data]`` (for events with personal fields, its
    commitment form: see ``eventlog/MERKLE.md``). These are the bytes the hash chain
    hashes after the previous link, so an append already has them. ``seq`` is redundant
    with the leaf's index (``seq = index + 1``) but makes a leaf self-describing for an
    auditor; ``ts`` is in so that a proven event's time is proven too.
    """
    return _SEQ_TS.pack(seq, ts) + event_bytes


class CompactRange:
    """The Merkle tree over leaves ``[0, size)`` kept as its perfect subtrees (the frontier).

    ``frontier[level]`` is the hash of the perfect subtree of ``2**level`` leaves that
    bit ``level`` of ``size`` stands for (``None`` where the bit is clear); together they
    are the tree's "compact range". It is enough to compute the root and to keep
    appending, and it is O(log n) hashes however long the log grows.
    """

    __slots__ = ("_frontier", "_size")

    def __init__(self) -> None:
        """Start an empty tree."""
        self._size = 0
        self._frontier: list[bytes | None] = []

    @classmethod
    def from_frontier(cls, size: int, frontier: Sequence[bytes | None]) -> CompactRange:
        """Rebuild a range from a stored frontier (as returned by :attr:`frontier`).

        Raises:
            ValueError: the frontier's shape does not match ``size``'s bits.
        """
        if size < 0:
            msg = f"size must be >= 0, got {size}"
            raise ValueError(msg)
        nodes = list(frontier)
        while nodes and nodes[-1] is None:
            nodes.pop()
        for level in range(max(len(nodes), size.bit_length())):
            present = level < len(nodes) and nodes[level] is not None
            if present != bool(size >> level & 1):
                msg = f"frontier does not match size {size} at level {level}"
                raise ValueError(msg)
            node = nodes[level] if level < len(nodes) else None
            if node is not None and len(node) != HASH_SIZE:
                msg = f"frontier hash at level {level} is {len(node)} bytes, not {HASH_SIZE}"
                raise ValueError(msg)
        rng = cls()
        rng._size = size
        rng._frontier = nodes
        return rng

    def copy(self) -> CompactRange:
        """An independent copy (appending to it leaves this one as it is)."""
        rng = CompactRange()
        rng._size = self._size
        rng._frontier = list(self._frontier)
        return rng

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    @property
    def frontier(self) -> list[bytes | None]:
        """The perfect-subtree hashes by level (a copy; ``None`` where ``size`` has a 0 bit)."""
        return list(self._frontier)

    def append(self, leaf: bytes, sink: NodeSink | None = None) -> None:
        """Add one leaf hash; ``sink`` receives the leaf and every node it completes."""
        size = self._size
        frontier = self._frontier
        node = leaf
        level = 0
        while True:
            if sink is not None:
                sink(level, size >> level, [node])
            if not size >> level & 1:
                break
            left = frontier[level]
            assert left is not None  # bit set <=> hash present (class invariant)
            frontier[level] = None
            node = _sha256(_NODE + left + node).digest()
            level += 1
        if level == len(frontier):
            frontier.append(node)
        else:
            frontier[level] = node
        self._size = size + 1

    def extend(self, leaves: list[bytes], sink: NodeSink | None = None) -> None:
        """Add many leaf hashes at once; ``sink`` receives the new nodes level by level.

        The same result as :meth:`append` of each, but every level is hashed in one
        comprehension (no copies of the level's list), and the sink gets one call per level.
        """
        if not leaves:
            return
        old = self._size
        frontier = self._frontier
        sha256 = _sha256
        nodes = leaves
        level = 0
        while nodes:
            first = old >> level
            if sink is not None:
                sink(level, first, nodes)
            count = len(nodes)
            pairs = iter(nodes)
            # The level's new nodes continue the row of complete nodes; an odd first index
            # means the row's last old node (the frontier's) is the left sibling of the first.
            if first & 1:
                left = frontier[level]
                assert left is not None
                parents = [sha256(_join((_NODE, left, next(pairs)))).digest()]
                parents += _parents(pairs)
                count += 1
            else:
                parents = _parents(pairs)
            top = nodes[-1] if count & 1 else None
            if level == len(frontier):
                frontier.append(top)
            else:
                frontier[level] = top
            nodes = parents
            level += 1
        while frontier and frontier[-1] is None:
            frontier.pop()
        self._size = old + len(leaves)

    def root(self) -> bytes:
        """Return the Merkle tree hash of the ``size`` leaves (``EMPTY_ROOT`` when empty)."""
        root: bytes | None = None
        for node in self._frontier:
            if node is not None:
                root = node if root is None else _sha256(_NODE + node + root).digest()
        return EMPTY_ROOT if root is None else root


def root_of(leaves: Iterable[bytes], *, batch: int = 4096) -> bytes:
    """Return the Merkle tree hash over a stream of leaf hashes, keeping O(log n) of them."""
    rng = CompactRange()
    chunk: list[bytes] = []
    for leaf in leaves:
        chunk.append(leaf)
        if len(chunk) >= batch:
            rng.extend(chunk)
            chunk = []
    rng.extend(chunk)
    return rng.root()


# -- verification (RFC 9162 §2.1.3.2 and §2.1.4.2): only hashes, no tree ----------------------
def _check_hash(value: bytes, what: str) -> None:
    if type(value) is not bytes or len(value) != HASH_SIZE:
        msg = f"{what} is not a {HASH_SIZE}-byte hash"
        raise ProofError(msg)


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf`` (a leaf *hash*) is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    RFC 9162 §2.1.3.2, step by step.

    Raises:
        ProofError: the proof does not show it; the message says what failed.
    """
    _check_hash(leaf, "the leaf hash")
    _check_hash(root, "the root hash")
    for i, p in enumerate(path):
        _check_hash(p, f"proof hash {i}")
    if index < 0 or size < 0:
        msg = f"leaf index {index} and tree size {size} must not be negative"
        raise ProofError(msg)
    # 1. The index must lie inside the tree.
    if index >= size:
        msg = f"leaf index {index} is outside a tree of {size} leaves"
        raise ProofError(msg)
    # 2.-3.
    fn, sn = index, size - 1
    r = leaf
    # 4.
    for p in path:
        if sn == 0:  # a. more hashes than the tree has levels above this leaf
            msg = f"the proof has more hashes than leaf {index} of a {size}-leaf tree needs"
            raise ProofError(msg)
        if fn & 1 or fn == sn:  # b.
            r = _sha256(_NODE + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(_NODE + r + p).digest()
        fn >>= 1  # c.
        sn >>= 1
    # 5.
    if sn != 0:
        msg = f"the proof has too few hashes for leaf {index} of a {size}-leaf tree"
        raise ProofError(msg)
    if r != root:
        msg = f"the proof does not lead to the root: leaf {index} is not in this tree of {size} leaves"
        raise ProofError(msg)


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, path: Sequence[bytes]) -> None:
    """Check that the tree of ``size2`` leaves with ``root2`` extends the one of ``size1`` with ``root1``.

    That is: its first ``size1`` leaves are exactly the earlier tree's, nothing rewritten.
    RFC 9162 §2.1.4.2 for ``0 < size1 < size2``; equal sizes need equal roots and an empty
    proof, and the empty tree is extended by every tree (empty proof).

    Raises:
        ProofError: the proof does not show it; the message says what failed.
    """
    _check_hash(root1, "the first root hash")
    _check_hash(root2, "the second root hash")
    for i, p in enumerate(path):
        _check_hash(p, f"proof hash {i}")
    if size1 < 0 or size2 < 0:
        msg = f"tree sizes {size1} and {size2} must not be negative"
        raise ProofError(msg)
    if size1 > size2:
        msg = f"a tree of {size2} leaves cannot extend a larger one of {size1}"
        raise ProofError(msg)
    if size1 == size2:
        if path:
            msg = "a proof between two trees of the same size must be empty"
            raise ProofError(msg)
        if root1 != root2:
            msg = f"the two roots differ at the same size {size1}: the log was rewritten"
            raise ProofError(msg)
        return
    if size1 == 0:
        if path:
            msg = "a proof from the empty tree must be empty"
            raise ProofError(msg)
        return
    # 1.
    if not path:
        msg = f"an empty proof cannot show that {size2} leaves extend {size1}"
        raise ProofError(msg)
    # 2. A power-of-two first tree is itself a node of the second: its root starts the proof.
    hashes = list(path)
    if size1 & (size1 - 1) == 0:
        hashes.insert(0, root1)
    # 3.-4.
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = hashes[0]
    # 6.
    for c in hashes[1:]:
        if sn == 0:
            msg = f"the proof has more hashes than a consistency proof from {size1} to {size2} needs"
            raise ProofError(msg)
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE + c + fr).digest()
            sr = _sha256(_NODE + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(_NODE + sr + c).digest()
        fn >>= 1
        sn >>= 1
    # 7.
    if sn != 0:
        msg = f"the proof has too few hashes for a consistency proof from {size1} to {size2}"
        raise ProofError(msg)
    if fr != root1:
        msg = f"the proof does not lead to the first root: the tree of {size1} leaves is not a prefix"
        raise ProofError(msg)
    if sr != root2:
        msg = f"the proof does not lead to the second root: {size2} leaves do not extend {size1}"
        raise ProofError(msg)
