"""The Merkle tree of a PostgreSQL log: its node rows, written with the events they cover.

Table ``eventlog_merkle_nodes`` holds, per log, the rows of complete perfect nodes of
the tree (``level``, ``idx``, ``hash``: the same nodes a file log's node store keeps, see
:mod:`eventlog.merkle_store`). Every append inserts the nodes its events complete *in the
same statement or transaction* as the events, and sets ``eventlog_logs.tree_size`` to
the new head: the tree is never behind or ahead of the log and has no crash window. The
appender computes the nodes from the frontier at the head (at most 64 rows, read in one
indexed query under the head row lock, or kept by the handle from its previous append).

A log written before the tree existed (schema version 1) has ``tree_size`` below its
head; the first writer to open it builds the missing nodes (under the head row lock, in
chunks). Proofs read their O(log n) nodes in one query (:meth:`PgNodeStore.prefetch`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .errors import CorruptionError, NodeStoreError
from .merkle import HASH_SIZE, CompactRange, event_leaf, leaf_hashes
from .merkle_store import NodeStore, PreparedCommit, StoreHead

__all__ = ["NODES_TABLE", "NodeRows", "PgNodeStore", "frontier_keys", "grow", "read_frontier"]

NODES_TABLE = "eventlog_merkle_nodes"

NODES_DDL = f"""CREATE TABLE IF NOT EXISTS {NODES_TABLE} (
        log_id bigint NOT NULL,
        level smallint NOT NULL CHECK (level >= 0 AND level < 64),
        idx bigint NOT NULL CHECK (idx >= 0),
        hash bytea NOT NULL,
        PRIMARY KEY (log_id, level, idx))"""

#: Inserts the rows of a :class:`NodeRows` (``%(log)s``, ``%(nlevels)s``, ``%(nidxs)s``, ``%(nhashes)s``).
INSERT_NODES = f"""
INSERT INTO {NODES_TABLE} (log_id, level, idx, hash)
SELECT %(log)s, n.level, n.idx, n.hash
FROM unnest(%(nlevels)s::smallint[], %(nidxs)s::bigint[], %(nhashes)s::bytea[]) AS n(level, idx, hash)
"""

_SELECT_NODES = (f"SELECT n.level, n.idx, n.hash FROM {NODES_TABLE} n "
                 "JOIN unnest(%s::smallint[], %s::bigint[]) AS k(level, idx) ON n.level = k.level AND n.idx = k.idx "
                 "WHERE n.log_id = %s")
_SELECT_ROW = (f"SELECT idx, hash FROM {NODES_TABLE} WHERE log_id = %s AND level = %s AND idx >= %s AND idx < %s "
               "ORDER BY idx")


class NodeRows:
    """The node rows an append inserts: three parallel lists, the parameters of :data:`INSERT_NODES`."""

    __slots__ = ("hashes", "idxs", "levels")

    def __init__(self) -> None:
        self.levels: list[int] = []
        self.idxs: list[int] = []
        self.hashes: list[bytes] = []

    def add(self, level: int, first: int, nodes: list[bytes]) -> None:
        """A :data:`eventlog.merkle.NodeSink`: note ``nodes`` as rows ``(level, first + i)``."""
        self.levels.extend([level] * len(nodes))
        self.idxs.extend(range(first, first + len(nodes)))
        self.hashes.extend(nodes)

    def params(self, log_id: int) -> dict[str, Any]:
        """The parameters of :data:`INSERT_NODES`."""
        return {"log": log_id, "nlevels": self.levels, "nidxs": self.idxs, "nhashes": self.hashes}

    def __len__(self) -> int:
        return len(self.hashes)


def grow(rng: CompactRange, first_seq: int, times: Sequence[int], events: Sequence[bytes]) -> tuple[CompactRange, NodeRows]:
    """The tree after appending ``events`` (seqs from ``first_seq``) to ``rng``, and the nodes they complete.

    ``rng`` is not changed (a failed or refused append leaves the caller's tree as it was).
    """
    grown = rng.copy()
    rows = NodeRows()
    grown.extend(leaf_hashes(map(event_leaf, range(first_seq, first_seq + len(events)), times, events)), rows.add)
    return grown, rows


def frontier_keys(size: int) -> list[tuple[int, int]]:
    """The nodes ``(level, idx)`` of the compact range of ``size`` leaves."""
    return [(level, (size >> level) - 1) for level in range(size.bit_length()) if size >> level & 1]


def read_frontier(execute: Callable[..., Any], log_id: int, size: int, where: str) -> CompactRange:
    """The compact range at ``size`` from the node rows: one query.

    Raises:
        CorruptionError: a frontier node is missing (rows deleted behind the log's back).
    """
    keys = frontier_keys(size)
    found = _select(execute, log_id, keys)
    frontier: list[bytes | None] = [None] * size.bit_length()
    for level, idx in keys:
        node = found.get((level, idx))
        if node is None:
            raise CorruptionError(where, None, None, f"the Merkle tree's node {idx} of level {level} is missing "
                                                     f"(the tree of {size} events needs it)")
        frontier[level] = node
    return CompactRange.from_frontier(size, frontier)


def _select(execute: Callable[..., Any], log_id: int, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    keys = list(keys)
    if not keys:
        return {}
    rows = execute(_SELECT_NODES, ([k[0] for k in keys], [k[1] for k in keys], log_id)).fetchall()
    return {(int(level), int(idx)): bytes(node) for level, idx, node in rows}


class PgNodeStore(NodeStore):
    """A read-only view of one log's node rows at a fixed tree size (for proofs and checks).

    ``execute`` runs one SQL statement and returns its cursor (the log's connection,
    under its lock). Nodes asked for through :meth:`prefetch` are read in one query.
    """

    def __init__(self, execute: Callable[..., Any], log_id: int, size: int) -> None:
        """A view of the tree of ``size`` leaves of log ``log_id``."""
        self._execute = execute
        self._log_id = log_id
        self._size = size
        self._cache: dict[tuple[int, int], bytes] = {}

    @property
    def size(self) -> int:
        """Leaves in the viewed tree."""
        return self._size

    @property
    def head(self) -> StoreHead | None:
        """No commit record: the rows are committed with the events."""
        return None

    def prefetch(self, keys: Sequence[tuple[int, int]]) -> None:
        """Read every node of ``keys`` not read yet, in one query."""
        want = [k for k in keys if k not in self._cache and 0 <= k[1] < self._size >> k[0]]
        self._cache.update(_select(self._execute, self._log_id, want))

    def frontier(self) -> list[bytes | None]:
        """The compact range's nodes (read in one query)."""
        self.prefetch(frontier_keys(self._size))
        return super().frontier()

    def read(self, level: int, start: int, count: int) -> bytes:
        """Return stored hashes (from the cache, else one query)."""
        have = self._size >> level
        if start < 0 or count < 0 or start + count > have:
            msg = f"nodes {start}..{start + count - 1} of level {level} are not in a tree of {self._size} leaves"
            raise NodeStoreError(msg)
        if count == 1 and (level, start) in self._cache:
            return self._cache[(level, start)]
        rows = self._execute(_SELECT_ROW, (self._log_id, level, start, start + count)).fetchall()
        data = b"".join(bytes(h) for _, h in rows)
        if len(rows) != count or len(data) != count * HASH_SIZE or \
                any(int(idx) != start + i for i, (idx, _) in enumerate(rows)):
            msg = (f"the Merkle tree's rows {start}..{start + count - 1} of level {level} are missing or "
                   "malformed; rebuild the tree from the log")
            raise NodeStoreError(msg)
        return data

    def add(self, level: int, first: int, nodes: list[bytes]) -> None:
        """Refused: the rows are written by the log's appends."""
        msg = "a PostgreSQL node store view is read-only"
        raise NodeStoreError(msg)

    def truncate(self, size: int) -> None:
        """Refused (see :meth:`add`)."""
        self.add(0, 0, [])

    def finish_commit(self, prepared: PreparedCommit) -> StoreHead:
        """Refused (see :meth:`add`)."""
        self.add(0, 0, [])
        raise AssertionError  # pragma: no cover - add raised
