"""A tree kept beside real event logs (file and in-memory): catch up, checkpoint, prove, verify.

The attacker here rewrites a log the honest way: a new log with one event changed, so
its hash chain, checksums and frames are all recomputed and ``eventlog.verify`` passes.
Only the checkpoint an auditor kept catches it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog.encoding import encode_event
from eventlog.errors import ProofError
from eventlog.memory import InMemoryEventLog
from eventlog.merkle import event_leaf, leaf_hash, root_of
from eventlog.merkle_log import catch_up, commit, event_leaves, make_checkpoint, prove_event
from eventlog.merkle_store import FileNodeStore
from eventlog.merkle_tree import MerkleTree
from eventlog.proof import check_consistency, check_inclusion, make_consistency_proof
from eventlog.signing import KeyFileSigner, generate_key

LOG_ID = "example.org/jobs/merkle-log"


@pytest.fixture(scope="module")
def key() -> KeyFileSigner:
    return generate_key("ops.example")


def fill(log: Any, first: int, count: int, changed: int | None = None) -> None:
    """Append events ``first..first+count-1``: singles and atomic batches, nested data."""
    seq = first
    while seq < first + count:
        n = min(3 if seq % 4 == 0 else 1, first + count - seq)
        batch = []
        for s in range(seq, seq + n):
            data = {"routine_id": f"step{s % 7}", "n": s, "out": {"rows": [s, s * 2], "note": "ok"}}
            if s == changed:
                data["out"]["note"] = "forged"
            batch.append(("routine_finished", data))
        if n == 1:
            log.append(*batch[0], ts=1_765_000_000_000_000_000 + seq)
        else:
            log.append_batch(batch, ts=1_765_000_000_000_000_000 + seq)
        seq += n


def test_a_tree_beside_a_file_log_proves_its_events(tmp_path: Path, key: KeyFileSigner) -> None:
    log = eventlog.open_log(str(tmp_path / "log"))
    fill(log, 1, 150)
    tree = MerkleTree(FileNodeStore(str(tmp_path / "tree")))
    assert catch_up(tree, log).fed == 150
    # The tree is the one anyone gets from the log's records, re-encoded independently.
    assert tree.root() == root_of(leaf_hash(event_leaf(r.seq, r.ts, encode_event(r.kind, r.data)))
                                  for r in log.read())
    commit(tree, log)
    cp150, note150 = make_checkpoint(tree, LOG_ID, key)
    for seq in (1, 2, 4, 5, 6, 77, 150):
        proven = check_inclusion(prove_event(tree, log, cp150, seq), note150, key.verifier)
        assert proven.seq == seq and proven.data["n"] == seq
    tree.close()

    fill(log, 151, 90)  # the job goes on; the tree catches up with only what is new
    tree = MerkleTree(FileNodeStore(str(tmp_path / "tree")))
    report = catch_up(tree, log)
    assert (report.fed, report.cut, report.rebuilt) == (90, 0, False)
    cp240, note240 = make_checkpoint(tree, LOG_ID, key)
    check_consistency(make_consistency_proof(tree, cp150, cp240), [note150, note240], key.verifier)
    with pytest.raises(KeyError):
        prove_event(tree, InMemoryEventLog(), cp240, 3)
    tree.close()
    log.close()


def test_a_tree_of_another_history_is_rebuilt(tmp_path: Path) -> None:
    honest = InMemoryEventLog()
    fill(honest, 1, 40)
    tree = MerkleTree(FileNodeStore(str(tmp_path / "tree")))
    catch_up(tree, honest)
    commit(tree, honest)
    tree.close()
    other = InMemoryEventLog()
    fill(other, 1, 50, changed=7)  # same length and more, a different event 7
    tree = MerkleTree(FileNodeStore(str(tmp_path / "tree")))
    report = catch_up(tree, other)
    assert report.rebuilt and report.fed == 50
    assert tree.root() == root_of(leaf_hash(x) for x in event_leaves(other))
    shorter = InMemoryEventLog()
    fill(shorter, 1, 30, changed=7)
    report = catch_up(tree, shorter)
    assert (report.cut, report.fed) == (20, 0)
    assert tree.root() == root_of(leaf_hash(x) for x in event_leaves(shorter))
    tree.close()


def test_a_rewritten_log_with_a_recomputed_chain_fails_against_a_kept_checkpoint(tmp_path: Path,
                                                                                  key: KeyFileSigner) -> None:
    honest = eventlog.open_log(str(tmp_path / "honest"))
    fill(honest, 1, 60)
    tree = MerkleTree()
    catch_up(tree, honest)
    cp60, note60 = make_checkpoint(tree, LOG_ID, key)  # the auditor keeps this note
    kept_proof = prove_event(tree, honest, cp60, 12)
    honest.close()

    forged = eventlog.open_log(str(tmp_path / "forged"))
    fill(forged, 1, 80, changed=12)  # event 12 rewritten; chain and checksums all recomputed
    forged.close()
    forged = eventlog.open_log(str(tmp_path / "forged"), readonly=True)
    assert eventlog.verify(str(tmp_path / "forged")).ok  # the log itself looks perfect
    ftree = MerkleTree()
    catch_up(ftree, forged)
    cp80, note80 = make_checkpoint(ftree, LOG_ID, key)  # the writer holds the key and signs it
    # The forged log cannot even make a proof for the auditor's checkpoint (another root at 60) ...
    with pytest.raises(ValueError, match="not this tree's root"):
        prove_event(ftree, forged, cp60, 12)
    # ... a proof for its own tree at 60 is refused against the kept checkpoint ...
    forged_at_60 = MerkleTree()
    forged_at_60.extend(list(event_leaves(forged, 1, 60)))
    cp_f60, _ = make_checkpoint(forged_at_60, LOG_ID, key, time_ns=cp60.time_ns)
    with pytest.raises(ProofError):
        check_inclusion(prove_event(forged_at_60, forged, cp_f60, 12), note60, key.verifier)
    # ... and so does the claim that the new checkpoint extends the kept one.
    with pytest.raises(ProofError):
        check_consistency(make_consistency_proof(ftree, cp_f60, cp80), [note60, note80], key.verifier)
    # The honest proof the auditor was given earlier still holds.
    assert check_inclusion(kept_proof, note60, key.verifier).data["out"]["note"] == "ok"
    forged.close()
