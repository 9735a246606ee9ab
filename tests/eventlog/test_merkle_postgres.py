"""The Merkle tree of PostgreSQL logs: node rows written with the events, upgrades, many writers, damage."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from eventlog.errors import NodeStoreError
from eventlog.merkle import event_leaf, leaf_hash, root_of, verify_inclusion

PG_URL = os.environ.get("EVENTLOG_PG_URL", "")
pytestmark = pytest.mark.skipif(
    not PG_URL, reason="set EVENTLOG_PG_URL=postgresql://... to run the PostgreSQL tests; .ci/run starts a "
                       "throw-away server")
T0 = 1_765_000_000_000_000_000


@pytest.fixture
def schema_url(pg_schema_url: str) -> str:
    """A URL whose search_path is a new, empty PostgreSQL schema (tests/conftest.py)."""
    return pg_schema_url


def oracle_root(log: Any) -> bytes:
    return root_of(leaf_hash(event_leaf(seq, ts, ev)) for seq, ts, ev in log.read_raw())


def sql(url: str, *statements: str) -> list[Any]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        out = []
        for statement in statements:
            cur = conn.execute(statement)
            out.append(cur.fetchall() if cur.description else None)
        return out


def test_a_version_1_database_is_upgraded_and_its_trees_built(schema_url: str) -> None:
    """Logs written before the tree existed: readers still prove (in memory); the first writer builds the rows."""
    from eventlog.postgres import SCHEMA_VERSION, open_pg_log

    with open_pg_log(schema_url, "old") as log:
        for i in range(300):
            log.append("k", {"i": i}, ts=T0 + i)
        log.append_batch([("b", {"j": j}) for j in range(5)], ts=T0 + 400)
        root = log.merkle_root()
    # What a version 1 database looked like: no nodes table, no tree_size.
    sql(schema_url, "DROP TABLE eventlog_merkle_nodes", "ALTER TABLE eventlog_logs DROP COLUMN tree_size",
        "UPDATE eventlog_schema_version SET version = 1")
    with open_pg_log(schema_url, "old", readonly=True) as reader:
        assert reader.merkle_root() == root == oracle_root(reader)
    assert sql(schema_url, "SELECT version FROM eventlog_schema_version")[0] == [(1,)]
    with open_pg_log(schema_url, "old") as writer:
        assert sql(schema_url, "SELECT version FROM eventlog_schema_version")[0] == [(SCHEMA_VERSION,)]
        assert sql(schema_url, "SELECT tree_size, head_seq FROM eventlog_logs")[0] == [(305, 305)]
        assert writer.merkle_root() == root
        writer.append("k", {"after": True})
        assert writer.merkle_root() == oracle_root(writer)
        writer.check_merkle()


def test_many_writers_of_one_log_build_one_tree(schema_url: str) -> None:
    """Handles racing on one log (fast path and locking path) all compute their nodes from the same tree."""
    from eventlog import ConcurrencyError
    from eventlog.postgres import open_pg_log

    handles = [open_pg_log(schema_url, "shared") for _ in range(3)]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(40):
                if i % 7 == 3:
                    handles[k].append_batch([("b", {"k": k, "i": i, "j": j}) for j in range(3)])
                else:
                    try:
                        handles[k].append("a", {"k": k, "i": i}, expected_seq=handles[k].head_seq)
                    except ConcurrencyError:
                        handles[k].append("a", {"k": k, "i": i, "retry": True})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    try:
        root = oracle_root(handles[0])
        for h in handles:
            assert h.merkle_root() == root
        handles[1].check_merkle()
        n = handles[0].head_seq
        leaves = [leaf_hash(event_leaf(s, t, e)) for s, t, e in handles[0].read_raw()]
        for seq in (1, n // 2, n):
            verify_inclusion(leaves[seq - 1], seq - 1, n, handles[2].merkle_inclusion(seq, n), root)
    finally:
        for h in handles:
            h.close()


def test_damaged_node_rows_are_never_believed(schema_url: str) -> None:
    """A changed or deleted node row makes check_merkle and the proofs that use it fail loudly."""
    from eventlog.postgres import open_pg_log

    with open_pg_log(schema_url, "dmg") as log:
        for i in range(64):
            log.append("k", {"i": i}, ts=T0 + i)
        root = log.merkle_root()
        sql(schema_url, "UPDATE eventlog_merkle_nodes SET hash = decode(repeat('ab', 32), 'hex') "
                        "WHERE level = 0 AND idx = 9")
        with pytest.raises(NodeStoreError):
            log.check_merkle()
        with pytest.raises(NodeStoreError):
            log.merkle_inclusion(10)
        assert log.merkle_root() == root  # the frontier (one level-6 node) is untouched
        sql(schema_url, "DELETE FROM eventlog_merkle_nodes WHERE level = 6")
        with pytest.raises(NodeStoreError):
            log.merkle_root()
