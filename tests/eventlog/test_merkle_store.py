"""Node stores: the file store agrees with the memory store, and damage is never believed.

A node store is derived data. What a user relies on: whatever happens to its files (a
crash before the commit, a cut or garbage tail, a flipped bit, a damaged ``HEAD``), the
tree built on it either answers exactly as the undamaged tree would, or raises
:class:`NodeStoreError`, and after feeding the leaves again from ``tree.size`` on it is
whole.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlog import _fs
from eventlog.errors import LogWriteError, NodeStoreError
from eventlog.merkle import leaf_hash
from eventlog.merkle_store import HEAD_NAME, FileNodeStore, MemoryNodeStore
from eventlog.merkle_tree import MerkleTree

#: The tests below share one directory per test (``folder``), made fresh for each example.
per_example_dirs = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

leaf_lists = st.lists(st.binary(max_size=10), min_size=1, max_size=80)


def reference(leaves: list[bytes]) -> MerkleTree:
    tree = MerkleTree(MemoryNodeStore())
    tree.extend(leaves)
    return tree


def assert_same_answers(tree: MerkleTree, ref: MerkleTree, size: int) -> None:
    """Every root, inclusion proof and consistency proof up to ``size`` equals the reference's."""
    assert tree.size == size
    for n in range(size + 1):
        assert tree.root_at(n) == ref.root_at(n), n
        for i in range(n):
            assert tree.inclusion_proof(i, n) == ref.inclusion_proof(i, n), (i, n)
        for m in range(n + 1):
            assert tree.consistency_proof(m, n) == ref.consistency_proof(m, n), (m, n)


def answers_or_refuses(tree: MerkleTree, ref: MerkleTree) -> int:
    """Each query: the reference's answer, or NodeStoreError. Returns how many refused."""
    refused = 0
    size = tree.size
    for n in range(size + 1):
        for query in ([lambda n=n: (tree.root_at(n), ref.root_at(n))]
                      + [lambda i=i, n=n: (tree.inclusion_proof(i, n), ref.inclusion_proof(i, n))
                         for i in range(n)]
                      + [lambda m=m, n=n: (tree.consistency_proof(m, n), ref.consistency_proof(m, n))
                         for m in range(n + 1)]):
            try:
                got, want = query()
            except NodeStoreError:
                refused += 1
                continue
            assert got == want
    return refused


@pytest.fixture
def folder() -> Iterator[str]:
    """A fresh directory (hypothesis runs many examples in one test: not tmp_path)."""
    d = tempfile.mkdtemp(prefix="nodes-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def fresh(folder: str) -> str:
    path = os.path.join(folder, "store")
    shutil.rmtree(path, ignore_errors=True)
    return path


@per_example_dirs
@given(leaf_lists, st.lists(st.sampled_from(["commit", "reopen", "crash"]), max_size=4), st.data())
def test_file_store_agrees_with_memory_store(folder: str, leaves: list[bytes], events: list[str],
                                             data: st.DataObject) -> None:
    """Grow a file-backed tree with commits, reopens and crashes in between; it always matches."""
    path = fresh(folder)
    tree = MerkleTree(FileNodeStore(path), batch=data.draw(st.integers(1, 9), label="batch"))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(leaves)), min_size=len(events),
                                     max_size=len(events)), label="cuts"))
    fed = 0
    committed = 0
    for cut, event in zip(cuts, events, strict=True):
        tree.extend(leaves[fed:cut])
        fed = max(fed, cut)
        if event == "commit":
            tree.commit()
            committed = fed
        elif event == "reopen":  # a clean close commits first
            tree.commit()
            tree.close()
            committed = fed
            tree = MerkleTree(FileNodeStore(path))
            assert tree.size == fed
        else:  # "crash": closed without a commit; the unsynced tail is cut at open
            tree.close()
            store = FileNodeStore(path)
            assert store.size == committed
            tree = MerkleTree(store)
            tree.extend(leaves[committed:fed])
    tree.extend(leaves[fed:])
    ref = reference(leaves)
    assert tree.root() == ref.root()
    for level in range(len(leaves).bit_length()):
        count = len(leaves) >> level
        assert tree.store.read(level, 0, count) == ref.store.read(level, 0, count)
    tree.check(leaf_hash(x) for x in leaves)
    tree.close()


def test_every_answer_matches_after_reopen(tmp_path: Path) -> None:
    leaves = [f"leaf {i}".encode() for i in range(37)]
    tree = MerkleTree(FileNodeStore(str(tmp_path / "s")))
    tree.extend(leaves)
    tree.commit(anchor=b"\x01" * 16)
    tree.close()
    store = FileNodeStore(str(tmp_path / "s"))
    assert store.recovery is None
    assert store.head is not None and store.head.anchor == b"\x01" * 16 and store.head.size == 37
    assert_same_answers(MerkleTree(store), reference(leaves), 37)


@per_example_dirs
@given(leaf_lists, st.data())
def test_a_cut_or_garbage_tail_is_detected_never_believed(folder: str, leaves: list[bytes],
                                                           data: st.DataObject) -> None:
    """A crash leaves any level file cut anywhere or with junk after it: open keeps only what it can vouch for."""
    path = fresh(folder)
    committed = data.draw(st.integers(0, len(leaves)), label="committed")
    tree = MerkleTree(FileNodeStore(path))
    tree.extend(leaves[:committed])
    tree.commit()
    tree.extend(leaves[committed:])
    tree.close()  # written, not committed
    files = sorted(name for name in os.listdir(path) if name.endswith(".hashes"))
    name = data.draw(st.sampled_from(files), label="file")
    file = os.path.join(path, name)
    length = os.path.getsize(file)
    level = int(name[len("level-") : -len(".hashes")])
    if data.draw(st.booleans(), label="garbage"):
        with open(file, "ab") as f:
            f.write(data.draw(st.binary(min_size=1, max_size=70), label="junk"))
        broke_committed = False
    else:
        cut = data.draw(st.integers(0, length), label="cut")
        os.truncate(file, cut)
        broke_committed = cut < (committed >> level) * 32
    store = FileNodeStore(path)
    if broke_committed:
        assert store.size == 0 and store.recovery is not None and "emptied" in store.recovery
    else:
        assert store.size == committed
    reopened = MerkleTree(store)
    ref = reference(leaves)
    assert answers_or_refuses(reopened, ref) == 0
    reopened.extend(leaves[store.size :])  # the caller feeds the rest again from the log
    assert reopened.root() == ref.root()
    reopened.check(leaf_hash(x) for x in leaves)
    reopened.close()


@per_example_dirs
@given(st.lists(st.binary(max_size=10), min_size=2, max_size=60), st.data())
def test_a_flipped_bit_in_committed_nodes_is_never_believed(folder: str, leaves: list[bytes],
                                                            data: st.DataObject) -> None:
    path = fresh(folder)
    tree = MerkleTree(FileNodeStore(path))
    tree.extend(leaves)
    tree.commit()
    tree.close()
    files = sorted(name for name in os.listdir(path) if name.endswith(".hashes"))
    file = os.path.join(path, data.draw(st.sampled_from(files), label="file"))
    with open(file, "r+b") as f:
        raw = bytearray(f.read())
        bit = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
        raw[bit // 8] ^= 1 << (bit % 8)
        f.seek(0)
        f.write(raw)
    store = FileNodeStore(path)
    reopened = MerkleTree(store)
    ref = reference(leaves)
    if store.size == 0:
        assert store.recovery is not None  # the flip hit a frontier node: caught at open
    else:
        answers_or_refuses(reopened, ref)  # asserts every answer given is the right one
        with pytest.raises(NodeStoreError):
            reopened.check()
    reopened.close()


def test_a_flipped_interior_node_refuses_the_proofs_that_use_it(tmp_path: Path) -> None:
    leaves = [bytes([i]) for i in range(16)]
    tree = MerkleTree(FileNodeStore(str(tmp_path / "s")))
    tree.extend(leaves)
    tree.commit()
    tree.close()
    with open(tmp_path / "s" / "level-01.hashes", "r+b") as f:  # node (1, 2): leaves 4 and 5
        f.seek(2 * 32)
        f.write(b"\xff" * 32)
    reopened = MerkleTree(FileNodeStore(str(tmp_path / "s")))
    assert reopened.size == 16  # not on the frontier: open cannot see it
    with pytest.raises(NodeStoreError, match="rebuild the store from the log"):
        reopened.inclusion_proof(6, 16)  # its path has node (1, 2)
    assert reopened.inclusion_proof(9, 16) == reference(leaves).inclusion_proof(9, 16)
    with pytest.raises(NodeStoreError, match="node 2 of level 1 does not match"):
        reopened.check()


def test_damaged_or_missing_head_empties_the_store(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    tree = MerkleTree(FileNodeStore(path))
    tree.extend([b"a", b"b", b"c"])
    tree.commit()
    tree.close()
    with open(os.path.join(path, HEAD_NAME), "r+b") as f:
        f.seek(16)
        f.write(b"\x02")  # size 3 -> 2: a HEAD that could be believed, but for its checksum
    store = FileNodeStore(path)
    assert store.size == 0 and "checksum" in (store.recovery or "")
    store.add(0, 0, [leaf_hash(b"x")])
    store.close()  # nodes but never a commit
    store = FileNodeStore(path)
    assert store.size == 0 and "no HEAD" in (store.recovery or "")
    store.close()


def test_readonly_uses_the_committed_part_and_refuses_damage(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    leaves = [bytes([i]) for i in range(10)]
    tree = MerkleTree(FileNodeStore(path))
    tree.extend(leaves[:6])
    tree.commit()
    tree.extend(leaves[6:])
    tree.close()
    before = {name: os.path.getsize(os.path.join(path, name)) for name in os.listdir(path)}
    ro = MerkleTree(FileNodeStore(path, readonly=True))
    assert ro.size == 6 and ro.root() == reference(leaves[:6]).root()
    with pytest.raises(NodeStoreError, match="read-only"):
        ro.append(b"x")
        ro.root()
    ro.close()
    assert before == {name: os.path.getsize(os.path.join(path, name)) for name in os.listdir(path)}
    os.truncate(os.path.join(path, "level-00.hashes"), 64)
    with pytest.raises(NodeStoreError, match="rebuild it from the log"):
        FileNodeStore(path, readonly=True)
    with pytest.raises(NodeStoreError, match="no node store"):
        FileNodeStore(str(tmp_path / "missing"), readonly=True)


def test_truncate_forgets_leaves_and_survives_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    leaves = [bytes([i]) * 3 for i in range(21)]
    tree = MerkleTree(FileNodeStore(path))
    tree.extend(leaves)
    tree.commit()
    tree.truncate(13)
    assert_same_answers(tree, reference(leaves[:13]), 13)
    tree.close()
    # The HEAD of 21 leaves was dropped before the files were cut, so nothing vouches for them.
    store = FileNodeStore(path)
    assert store.size == 0
    tree = MerkleTree(store)
    tree.extend(leaves[:13])
    tree.commit()
    tree.truncate(8)
    tree.commit()
    tree.close()
    again = MerkleTree(FileNodeStore(path))
    assert again.size == 8 and again.root() == reference(leaves[:8]).root()
    again.close()


def _refuses_then_reopens_at(tree: MerkleTree, path: str, leaves: list[bytes], durable: int,
                             commit: bool = False) -> None:
    """After a failed commit: ``tree`` refuses the next one; reopened, the store holds the
    ``durable`` leaves of the last good commit (and says it recovered), and the rest of
    ``leaves`` appended (and committed, with ``commit``) gives the reference root."""
    with pytest.raises(NodeStoreError, match="reopen"):
        tree.commit()
    tree.close()
    store = FileNodeStore(path)
    assert store.size == durable and store.recovery is not None
    tree = MerkleTree(store)
    tree.extend(leaves[durable:])
    if commit:
        tree.commit()
    assert tree.root() == reference(leaves).root()
    tree.close()


def test_a_failed_write_refuses_later_writes_and_reopen_recovers(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "s")
    leaves = [bytes([i]) for i in range(40)]
    tree = MerkleTree(FileNodeStore(path))
    tree.extend(leaves[:20])
    tree.commit()
    tree.extend(leaves[20:])

    def full(fd: int, data: bytes) -> None:
        os.write(fd, data[:5])  # a short, partial write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_fs, "write_all", full)
    with pytest.raises(LogWriteError, match="No space left"):
        tree.commit()
    monkeypatch.undo()
    _refuses_then_reopens_at(tree, path, leaves, 20)


def test_memory_store_refuses_out_of_order_nodes() -> None:
    store = MemoryNodeStore()
    store.add(0, 0, [leaf_hash(b"a")])
    with pytest.raises(NodeStoreError, match="index 5"):
        store.add(0, 5, [leaf_hash(b"b")])
    with pytest.raises(NodeStoreError, match="more leaves"):
        store.add(1, 0, [leaf_hash(b"c")])
    with pytest.raises(NodeStoreError, match="not stored"):
        store.get(0, 1)
    with pytest.raises(NodeStoreError, match="not all 32 bytes"):
        store.add(0, 1, [b"short"])


def test_a_failed_level_sync_writes_no_head_and_reopen_recovers(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # The level files of a commit are synced by several threads at once: one that fails
    # must still keep HEAD from vouching for the new nodes, whichever thread it was in.
    path = str(tmp_path / "s")
    leaves = [bytes([i]) for i in range(100)]
    tree = MerkleTree(FileNodeStore(path), batch=8)
    tree.extend(leaves[:30])
    tree.commit()
    tree.extend(leaves[30:])
    store = tree.store
    synced: list[str] = []
    real = _fs.fdatasync

    def sync(fd: int) -> None:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name == "level-03.hashes":
            raise OSError(errno.EIO, "Input/output error")
        synced.append(name)
        real(fd)

    monkeypatch.setattr(_fs, "fdatasync", sync)
    with pytest.raises(LogWriteError, match="level-03.hashes"):
        tree.commit()
    assert len(synced) == 100 .bit_length() - 1, "every other level file was synced too"
    monkeypatch.undo()
    assert store.head is not None and store.head.size == 30
    _refuses_then_reopens_at(tree, path, leaves, 30, commit=True)


def test_a_commit_syncs_every_level_file_it_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "s")
    tree = MerkleTree(FileNodeStore(path), batch=16)
    tree.extend(i.to_bytes(2, "big") for i in range(200))
    tree.commit()
    tree.extend(i.to_bytes(2, "big") for i in range(200, 300))
    synced: list[str] = []
    real = _fs.fdatasync

    def sync(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(_fs, "fdatasync", sync)
    tree.commit()
    # Leaves 200..299 added nodes to every level 0..8: each file is synced, once.
    assert sorted(synced) == [f"level-{level:02d}.hashes" for level in range(300 .bit_length())]
    tree.close()
