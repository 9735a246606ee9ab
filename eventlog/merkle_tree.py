"""An append-only Merkle tree over a node store: roots, inclusion and consistency proofs.

:class:`MerkleTree` joins a :class:`~eventlog.merkle.CompactRange` (the current root,
kept in memory) and a :class:`~eventlog.merkle_store.NodeStore` (the perfect nodes
proofs read). Appends are queued and hashed in batches; everything that reads the tree
hashes the queue first, so the tree always answers for every leaf appended.

Proofs follow RFC 6962 §2.1.1-2.1.2 (``PATH`` and ``PROOF``); each proof hash is one
stored node, or the hash of the tree's ragged right edge folded from at most log2(n)
stored nodes. Nothing a store returns is believed unchecked: every proof and every past
root is verified against the current root (which was itself checked when the store was
opened) before it is returned, and a failure raises
:class:`~eventlog.errors.NodeStoreError` instead of answering wrongly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from .errors import NodeStoreError, ProofError
from .merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    LEAF_PREFIX,
    CompactRange,
    leaf_input_hashes,
    node_hash,
    node_hashes,
    split_point,
    verify_consistency,
    verify_inclusion,
)
from .merkle_store import MemoryNodeStore, NodeStore, PreparedCommit, StoreHead

__all__ = ["MerkleTree"]

#: Leaves queued before they are hashed in one batch.
DEFAULT_BATCH = 1024
#: Nodes read at a time by :meth:`MerkleTree.check`.
_CHECK_CHUNK = 1 << 14


class MerkleTree:
    """A Merkle tree that grows one leaf at a time and proves what it holds.

    ``store`` defaults to a :class:`MemoryNodeStore`. A store that already holds leaves
    (a reopened :class:`~eventlog.merkle_store.FileNodeStore`) is continued: feed it the
    leaves from ``tree.size`` on.

    Not thread-safe: one writer calls it, under the lock that orders its log's appends.
    """

    def __init__(self, store: NodeStore | None = None, *, batch: int = DEFAULT_BATCH) -> None:
        """Open the tree held by ``store``.

        Raises:
            NodeStoreError: the store's frontier does not fold to the root its head records.
        """
        if batch < 1:
            msg = f"batch must be >= 1, got {batch}"
            raise ValueError(msg)
        self._store = store if store is not None else MemoryNodeStore()
        size = self._store.size
        try:
            self._range = CompactRange.from_frontier(size, self._store.frontier())
        except ValueError as exc:
            raise NodeStoreError(f"the node store's frontier is unusable: {exc}") from None
        head = self._store.head
        if head is not None and head.size == size and self._range.root() != head.root:
            msg = f"the node store's nodes do not fold to the root its head records at size {size}"
            raise NodeStoreError(msg)
        #: Leaf inputs (``LEAF_PREFIX`` + the leaf's data) appended and not hashed yet. An owner
        #: on a hot path (the file log's append) appends to it directly and calls
        #: :meth:`hash_queue` once it holds :attr:`batch` items; everyone else uses append.
        self.queue: list[bytes] = []
        self._batch = batch

    # -- growing --------------------------------------------------------------------------------
    @property
    def store(self) -> NodeStore:
        """The node store."""
        return self._store

    @property
    def batch(self) -> int:
        """Leaves queued before they are hashed in one batch."""
        return self._batch

    @property
    def size(self) -> int:
        """Leaves appended (hashed or still queued)."""
        return self._range.size + len(self.queue)

    def append(self, data: bytes) -> None:
        """Append one leaf (its data, not its hash). O(1) now; hashed with its batch."""
        queue = self.queue
        queue.append(LEAF_PREFIX + data)
        if len(queue) >= self._batch:
            self.hash_queue()

    def extend(self, datas: Iterable[bytes]) -> None:
        """Append many leaves, in order."""
        self.queue.extend(map(LEAF_PREFIX.__add__, datas))
        if len(self.queue) >= self._batch:
            self.hash_queue()

    def append_hash(self, leaf: bytes) -> None:
        """Append one leaf given by its hash (``merkle.leaf_hash`` of its data)."""
        if len(leaf) != HASH_SIZE:
            msg = f"a leaf hash is {HASH_SIZE} bytes, got {len(leaf)}"
            raise ValueError(msg)
        self.hash_queue()
        self._range.append(leaf, self._store.add)

    def hash_queue(self) -> None:
        """Hash the queued leaves into the tree (leaf hashes, then each level of new nodes in one batch)."""
        queue = self.queue
        if queue:
            hashes = leaf_input_hashes(queue)
            queue.clear()
            self._range.extend(hashes, self._store.add)

    def commit(self, anchor: bytes = b"") -> StoreHead:
        """Hash the queue and make the store durable at the current size (see ``NodeStore.commit``)."""
        self.hash_queue()
        return self._store.commit(self._range.root(), anchor)

    def prepare_commit(self, anchor: bytes = b"") -> PreparedCommit:
        """Hash the queue and start a commit at the current size (see ``NodeStore.prepare_commit``)."""
        self.hash_queue()
        return self._store.prepare_commit(self._range.root(), anchor)

    def finish_commit(self, prepared: PreparedCommit) -> StoreHead:
        """Finish a prepared commit (see ``NodeStore.finish_commit``); may run in another thread."""
        return self._store.finish_commit(prepared)

    def truncate(self, size: int) -> None:
        """Forget the leaves at and after index ``size`` (the log was cut back to ``size`` events)."""
        self.hash_queue()
        if not 0 <= size <= self.size:
            msg = f"cannot truncate a tree of {self.size} leaves to {size}"
            raise ValueError(msg)
        self._store.truncate(size)
        self._range = CompactRange.from_frontier(size, self._store.frontier())

    def close(self) -> None:
        """Hash the queue and close the store (without committing)."""
        self.hash_queue()
        self._store.close()

    # -- reading --------------------------------------------------------------------------------
    def root(self) -> bytes:
        """The root at the current size."""
        self.hash_queue()
        return self._range.root()

    def leaf_hash_at(self, index: int) -> bytes:
        """The stored hash of leaf ``index`` (not checked: see :meth:`inclusion_proof`)."""
        self._check_index(index, self.size)
        self.hash_queue()
        return self._store.get(0, index)

    def root_at(self, size: int) -> bytes:
        """The root the tree had at ``size`` leaves, checked against the current root."""
        self._check_size(size)
        self.hash_queue()
        current = self._range.size
        if size == current:
            return self._range.root()
        self._prefetch([(0, size), *self._consistency_ranges(size, current)])
        root = self._stored_root(size)
        proof = self._consistency_path(size, current)
        self._vouch(lambda: verify_consistency(size, current, root, self._range.root(), proof),
                    f"the root at size {size}")
        return root

    def inclusion_proof(self, index: int, size: int | None = None, *, leaf_hash: bytes | None = None) -> list[bytes]:
        """The RFC 6962 audit path of leaf ``index`` in the tree of ``size`` leaves (default: now).

        The proof is verified against :meth:`root_at` before it is returned. With
        ``leaf_hash``, the leaf must also be that one.

        Raises:
            ValueError: ``index``/``size`` out of range, or ``leaf_hash`` is not that leaf's.
            NodeStoreError: the stored nodes do not give a proof that verifies.
        """
        self.hash_queue()
        size = self._range.size if size is None else size
        self._check_size(size)
        self._check_index(index, size)
        current = self._range.size
        self._prefetch([(0, size), *self._consistency_ranges(size, current), *self._inclusion_ranges(index, size)]
                       if size != current else self._inclusion_ranges(index, size), (0, index))
        root = self.root_at(size)
        stored_leaf = self._store.get(0, index)
        path = self._inclusion_path(index, size)
        self._vouch(lambda: verify_inclusion(stored_leaf, index, size, path, root),
                    f"the inclusion proof of leaf {index} at size {size}")
        if leaf_hash is not None and leaf_hash != stored_leaf:
            msg = f"leaf {index} of the tree is not the leaf given (its hash differs)"
            raise ValueError(msg)
        return path

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The RFC 6962 proof that the tree at ``size2`` (default: now) extends the one at ``size1``.

        Verified against the checked roots at both sizes before it is returned.

        Raises:
            ValueError: the sizes are out of range or ``size1 > size2``.
            NodeStoreError: the stored nodes do not give a proof that verifies.
        """
        self.hash_queue()
        size2 = self._range.size if size2 is None else size2
        self._check_size(size2)
        if not 0 <= size1 <= size2:
            msg = f"a consistency proof needs 0 <= size1 <= size2, got {size1} and {size2}"
            raise ValueError(msg)
        current = self._range.size
        self._prefetch([r for m in (size1, size2) if m != current
                        for r in ((0, m), *self._consistency_ranges(m, current))]
                       + self._consistency_ranges(size1, size2))
        root1, root2 = self.root_at(size1), self.root_at(size2)
        path = self._consistency_path(size1, size2)
        self._vouch(lambda: verify_consistency(size1, size2, root1, root2, path),
                    f"the consistency proof from {size1} to {size2}")
        return path

    def check(self, leaves: Iterable[bytes] | None = None) -> None:
        """Re-hash the whole store: every node must equal the hash of its two children.

        With ``leaves`` (the leaf hashes recomputed from the log, in order), level 0 must
        also equal them, one for one. O(n) hashes; for ``verify``, not for every open.

        Raises:
            NodeStoreError: the first node that does not match, by level and index.
        """
        self.hash_queue()
        size = self._range.size
        if leaves is not None:
            self._check_leaves(iter(leaves), size)
        for level in range(1, size.bit_length()):
            count = size >> level
            for start in range(0, count, _CHECK_CHUNK):
                n = min(_CHECK_CHUNK, count - start)
                below = self._store.read(level - 1, 2 * start, 2 * n)
                children = [below[i : i + HASH_SIZE] for i in range(0, len(below), HASH_SIZE)]
                if b"".join(node_hashes(children)) != self._store.read(level, start, n):
                    bad = next(i for i, h in enumerate(node_hashes(children))
                               if h != self._store.get(level, start + i))
                    msg = f"node {start + bad} of level {level} does not match its two children"
                    raise NodeStoreError(msg)
        if self._stored_root(size) != self._range.root():
            msg = f"the stored nodes do not fold to the tree's root at size {size}"
            raise NodeStoreError(msg)

    def _check_leaves(self, leaves: Iterator[bytes], size: int) -> None:
        for start in range(0, size, _CHECK_CHUNK):
            n = min(_CHECK_CHUNK, size - start)
            want = [next(leaves, b"") for _ in range(n)]
            stored = self._store.read(0, start, n)
            if b"".join(want) != stored:
                bad = next(i for i, h in enumerate(want) if h != stored[i * HASH_SIZE : (i + 1) * HASH_SIZE])
                msg = f"leaf {start + bad} of the node store is not the log's"
                raise NodeStoreError(msg)
        if next(leaves, None) is not None:
            msg = f"the log has more leaves than the node store's {size}"
            raise NodeStoreError(msg)

    # -- the RFC 6962 recursions, iteratively, over stored nodes ------------------------------------
    # Each proof hash is MTH of one subtree D[lo:hi]; the *_ranges functions name those
    # subtrees (they depend only on the sizes), _subtree folds one from stored nodes. A store
    # that answers in round trips (PostgreSQL) is told every node a call will read first.
    @staticmethod
    def _subtree_keys(lo: int, hi: int) -> list[tuple[int, int]]:
        """The stored nodes ``(level, index)`` whose fold is MTH(D[lo:hi]), left to right."""
        keys = []
        pos = lo
        while pos < hi:
            level = (hi - pos).bit_length() - 1
            if pos:
                level = min(level, (pos & -pos).bit_length() - 1)
            keys.append((level, pos >> level))
            pos += 1 << level
        return keys

    def _subtree(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for an RFC 6962 subtree (``lo`` a multiple of the power of two above ``hi - lo``)."""
        nodes = [self._store.get(level, index) for level, index in self._subtree_keys(lo, hi)]
        root = nodes.pop()
        while nodes:
            root = node_hash(nodes.pop(), root)
        return root

    def _prefetch(self, ranges: Iterable[tuple[int, int]], *extra: tuple[int, int]) -> None:
        keys = {key for lo, hi in ranges for key in self._subtree_keys(lo, hi)}
        keys.update(extra)
        self._store.prefetch(sorted(keys))

    def _stored_root(self, size: int) -> bytes:
        return EMPTY_ROOT if size == 0 else self._subtree(0, size)

    @staticmethod
    def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
        """The subtrees of PATH(index, D[size]), bottom-up."""
        ranges = []
        lo, hi = 0, size
        while hi - lo > 1:
            mid = lo + split_point(hi - lo)
            if index < mid:
                ranges.append((mid, hi))
                hi = mid
            else:
                ranges.append((lo, mid))
                lo = mid
        ranges.reverse()
        return ranges

    def _inclusion_path(self, index: int, size: int) -> list[bytes]:
        return [self._subtree(lo, hi) for lo, hi in self._inclusion_ranges(index, size)]

    @staticmethod
    def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
        """The subtrees of PROOF(size1, D[size2]), bottom-up."""
        if size1 in (0, size2):
            return []
        ranges = []
        lo, hi, m, whole = 0, size2, size1, True
        while m != hi - lo:
            k = split_point(hi - lo)
            if m <= k:
                ranges.append((lo + k, hi))
                hi = lo + k
            else:
                ranges.append((lo, lo + k))
                lo += k
                m -= k
                whole = False
        if not whole:
            ranges.append((lo, hi))
        ranges.reverse()
        return ranges

    def _consistency_path(self, size1: int, size2: int) -> list[bytes]:
        return [self._subtree(lo, hi) for lo, hi in self._consistency_ranges(size1, size2)]

    # -- checks ---------------------------------------------------------------------------------
    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            msg = f"tree size {size} is outside 0..{self.size}"
            raise ValueError(msg)

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if not 0 <= index < size:
            msg = f"leaf index {index} is outside a tree of {size} leaves"
            raise ValueError(msg)

    @staticmethod
    def _vouch(verify: Callable[[], None], what: str) -> None:
        try:
            verify()
        except ProofError as exc:
            msg = f"{what} built from the node store does not verify ({exc}); rebuild the store from the log"
            raise NodeStoreError(msg) from None
