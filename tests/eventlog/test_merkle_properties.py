"""Property tests of the Merkle tree, its proofs and their verification (hypothesis).

The oracle is RFC 6962 §2.1 written out as its recursive definitions (``mth``, ``path``,
``proof`` below): short enough to check by eye against the RFC, and independent of the
iterative, store-backed code under test.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from eventlog.errors import ProofError
from eventlog.merkle import (
    CompactRange,
    leaf_hash,
    leaf_hashes,
    node_hash,
    node_hashes,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from eventlog.merkle_tree import MerkleTree


# -- RFC 6962 §2.1, literally --------------------------------------------------------------------
def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) over leaf *data*."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return leaf_hash(d[0])
    k = _k(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    if m == len(d):
        return [] if b else [mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) (empty for m == 0 or m == n)."""
    return [] if m in (0, len(d)) else subproof(m, d, True)


def build(leaves: list[bytes], batch: int = 7) -> MerkleTree:
    tree = MerkleTree(batch=batch)
    tree.extend(leaves)
    return tree


leaf_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=70)
unique_leaf_lists = st.lists(st.binary(max_size=12), min_size=2, max_size=70, unique=True)


# -- every proof verifies, and equals the RFC's -------------------------------------------------------
@given(leaf_lists, st.data())
def test_roots_and_proofs_equal_the_rfc_definitions(leaves: list[bytes], data: st.DataObject) -> None:
    tree = build(leaves, batch=data.draw(st.integers(1, 9), label="batch"))
    n = data.draw(st.integers(1, len(leaves)), label="n")
    m = data.draw(st.integers(0, n), label="m")
    i = data.draw(st.integers(0, n - 1), label="i")
    assert tree.root_at(n) == mth(leaves[:n])
    assert tree.inclusion_proof(i, n) == path(i, leaves[:n])
    assert tree.consistency_proof(m, n) == proof(m, leaves[:n])


@given(leaf_lists)
def test_every_inclusion_and_consistency_proof_verifies(leaves: list[bytes]) -> None:
    tree = build(leaves)
    roots = [tree.root_at(n) for n in range(len(leaves) + 1)]
    for n in range(1, len(leaves) + 1):
        for i in range(n):
            verify_inclusion(leaf_hash(leaves[i]), i, n, tree.inclusion_proof(i, n), roots[n])
    for n in range(len(leaves) + 1):
        for m in range(n + 1):
            verify_consistency(m, n, roots[m], roots[n], tree.consistency_proof(m, n))


@given(leaf_lists, st.lists(st.integers(1, 40), max_size=6))
def test_batching_never_changes_the_tree(leaves: list[bytes], cuts: list[int]) -> None:
    """One leaf at a time, by hash, in batches of any size: the same roots at every size."""
    one = CompactRange()
    seen = []
    for leaf in leaves:
        one.append(leaf_hash(leaf))
        seen.append(one.root())
    batched = CompactRange()
    pos = 0
    for cut in [*cuts, len(leaves)]:
        batched.extend([leaf_hash(x) for x in leaves[pos : pos + cut]])
        pos = min(pos + cut, len(leaves))
        assert batched.root() == seen[pos - 1]
    assert batched.root() == seen[-1] == root_of(leaf_hash(x) for x in leaves)
    assert batched.frontier == one.frontier
    mixed = MerkleTree(batch=3)
    for j, leaf in enumerate(leaves):
        if j % 2:
            mixed.append_hash(leaf_hash(leaf))
        else:
            mixed.append(leaf)
    assert mixed.root() == seen[-1]


# -- tampering: a changed, dropped or reordered leaf breaks the proofs ----------------------------------
def _tampered(leaves: list[bytes], how: str, j: int, new: bytes) -> list[bytes]:
    out = list(leaves)
    if how == "change":
        out[j] = new
    elif how == "drop":
        del out[j]
    else:  # swap with the next leaf (reorder)
        out[j], out[j + 1] = out[j + 1], out[j]
    return out


@given(unique_leaf_lists, st.sampled_from(["change", "drop", "swap"]), st.binary(min_size=13, max_size=13),
       st.data())
def test_any_tampered_leaf_fails_the_relevant_proofs(leaves: list[bytes], how: str, new: bytes,
                                                      data: st.DataObject) -> None:
    """An attacker rewrites one leaf (and recomputes everything they can); honest roots refuse it.

    ``new`` is 13 bytes, longer than any generated leaf, so a change is never a no-op.
    """
    j = data.draw(st.integers(0, len(leaves) - 2), label="j")
    bad = _tampered(leaves, how, j, new)
    honest, forged = build(leaves), build(bad)
    # Every size whose prefix the tampering touched: sizes > j (a swap touches j + 1 too).
    s = data.draw(st.integers(j + 1, min(len(leaves), len(bad))), label="s")
    if how == "swap" and s == j + 1:
        s = j + 2 if j + 2 <= len(bad) else s
    assume(bad[:s] != leaves[:s])
    honest_root = honest.root_at(s)
    assert forged.root_at(s) != honest_root
    # Any inclusion proof the forged log gives at size s fails against the honest checkpoint.
    i = data.draw(st.integers(0, s - 1), label="i")
    try:
        verify_inclusion(leaf_hash(bad[i]), i, s, forged.inclusion_proof(i, s), honest_root)
        raise AssertionError("a forged inclusion proof verified")
    except ProofError:
        pass
    # The forged log at its full size does not extend the honest checkpoint at size s.
    n = forged.size
    try:
        verify_consistency(s, n, honest_root, forged.root(), forged.consistency_proof(s, n))
        raise AssertionError("a forged consistency proof verified")
    except ProofError:
        pass


@given(leaf_lists, st.data())
def test_a_flipped_proof_bit_fails(leaves: list[bytes], data: st.DataObject) -> None:
    tree = build(leaves)
    n = data.draw(st.integers(1, len(leaves)), label="n")
    i = data.draw(st.integers(0, n - 1), label="i")
    p = tree.inclusion_proof(i, n)
    if p:
        where = data.draw(st.integers(0, len(p) - 1), label="where")
        bit = data.draw(st.integers(0, 255), label="bit")
        flipped = list(p)
        flipped[where] = _flip(p[where], bit)
        try:
            verify_inclusion(leaf_hash(leaves[i]), i, n, flipped, tree.root_at(n))
            raise AssertionError("a flipped inclusion proof verified")
        except ProofError:
            pass
    m = data.draw(st.integers(0, n), label="m")
    c = tree.consistency_proof(m, n)
    if c:
        where = data.draw(st.integers(0, len(c) - 1), label="cwhere")
        bit = data.draw(st.integers(0, 255), label="cbit")
        flipped = list(c)
        flipped[where] = _flip(c[where], bit)
        try:
            verify_consistency(m, n, tree.root_at(m), tree.root_at(n), flipped)
            raise AssertionError("a flipped consistency proof verified")
        except ProofError:
            pass


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


@given(unique_leaf_lists, st.data())
def test_a_wrong_index_or_size_fails(leaves: list[bytes], data: st.DataObject) -> None:
    """A proof checked at another index, or against the checkpoint of another size, fails.

    Leaves are distinct here: with two equal leaves a proof for one legitimately proves
    the other's position too.
    """
    tree = build(leaves)
    n = data.draw(st.integers(1, len(leaves)), label="n")
    i = data.draw(st.integers(0, n - 1), label="i")
    p = tree.inclusion_proof(i, n)
    j = data.draw(st.integers(0, len(leaves)), label="j")
    if j != i:
        try:
            verify_inclusion(leaf_hash(leaves[i]), j, n, p, tree.root_at(n))
            raise AssertionError(f"the proof of leaf {i} verified at index {j}")
        except ProofError:
            pass
    other = data.draw(st.integers(1, len(leaves)), label="other size")
    if other != n:
        try:
            verify_inclusion(leaf_hash(leaves[i]), i, other, p, tree.root_at(other))
            raise AssertionError(f"a proof at size {n} verified against the checkpoint of size {other}")
        except ProofError:
            pass
    m = data.draw(st.integers(1, n), label="m")
    c = tree.consistency_proof(m, n)
    m2 = data.draw(st.integers(1, n), label="m2")
    if m2 != m:
        try:
            verify_consistency(m2, n, tree.root_at(m2), tree.root_at(n), c)
            raise AssertionError(f"a proof from size {m} verified from size {m2}")
        except ProofError:
            pass


@given(st.lists(st.binary(max_size=40), max_size=40))
def test_batched_hashes_equal_one_at_a_time(datas: list[bytes]) -> None:
    """The batch helpers the append path uses give exactly leaf_hash / node_hash of each."""
    leaves = leaf_hashes(datas)
    assert leaves == [leaf_hash(d) for d in datas]
    even = leaves[: len(leaves) & ~1]
    assert node_hashes(even) == [node_hash(even[i], even[i + 1]) for i in range(0, len(even), 2)]
    if len(leaves) & 1:
        with pytest.raises(ValueError, match="even number"):
            node_hashes(leaves)
