"""Proof files: made from a tree of real events, checked with only the proof, the checkpoint(s) and a key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventlog.checkpoint import Checkpoint, sign_checkpoint
from eventlog.encoding import encode_event
from eventlog.errors import CheckpointError, ProofError
from eventlog.merkle import event_leaf
from eventlog.merkle_tree import MerkleTree
from eventlog.proof import (
    ConsistencyProof,
    InclusionProof,
    check_consistency,
    check_inclusion,
    load_proof,
    make_consistency_proof,
    make_inclusion_proof,
    verify_consistency_file,
    verify_inclusion_file,
)
from eventlog.signing import KeyFileSigner, generate_key

LOG = "example.org/jobs/job-7"
T0 = 1_765_000_000_000_000_000


def events(n: int, changed: int | None = None) -> list[tuple[int, int, bytes]]:
    """``(seq, ts, event_bytes)`` of a small job-like log (nested data, as a job writes)."""
    out = []
    for seq in range(1, n + 1):
        data = {"routine_id": f"r{seq % 5}", "n": seq,
                "result": {"value": seq * 1.5, "tags": ["a", "b"], "ok": seq % 3 != 0}}
        if seq == changed:
            data["result"]["value"] = -1.0
        out.append((seq, T0 + seq * 1000, encode_event("execution_recorded", data)))
    return out


def tree_of(evs: list[tuple[int, int, bytes]]) -> MerkleTree:
    tree = MerkleTree()
    for seq, ts, ev in evs:
        tree.append(event_leaf(seq, ts, ev))
    return tree


@pytest.fixture(scope="module")
def key() -> KeyFileSigner:
    return generate_key("auditor-test")


@pytest.fixture(scope="module")
def log() -> tuple[list[tuple[int, int, bytes]], MerkleTree]:
    evs = events(80)
    return evs, tree_of(evs)


def checkpoint(tree: MerkleTree, size: int, key: KeyFileSigner, origin: str = LOG) -> tuple[Checkpoint, str]:
    cp = Checkpoint(origin, size, tree.root_at(size), T0 + size)
    return cp, sign_checkpoint(cp, key)


def test_every_event_is_proven_at_every_checkpoint(log: tuple[list, MerkleTree], key: KeyFileSigner) -> None:
    evs, tree = log
    for size in (1, 2, 7, 8, 33, 80):
        cp, note = checkpoint(tree, size, key)
        for seq, ts, ev in evs[:size]:
            proof = load_proof(make_inclusion_proof(tree, cp, seq, ts, ev).to_json())
            proven = check_inclusion(proof, note, key.verifier.to_string())
            assert (proven.seq, proven.ts, proven.event, proven.kind) == (seq, ts, ev, "execution_recorded")
            assert proven.data["n"] == seq and proven.checkpoint == cp


def test_files_on_disk_round_trip(tmp_path: Path, log: tuple[list, MerkleTree], key: KeyFileSigner) -> None:
    evs, tree = log
    cp, note = checkpoint(tree, 80, key)
    old, old_note = checkpoint(tree, 30, key)
    (tmp_path / "cp80").write_text(note)
    (tmp_path / "cp30").write_text(old_note)
    make_inclusion_proof(tree, cp, *evs[41]).save(str(tmp_path / "incl.json"))
    make_consistency_proof(tree, cp, old).save(str(tmp_path / "cons.json"))  # either order
    doc = json.loads((tmp_path / "incl.json").read_text())
    assert doc["format"] == "routilux-eventlog/inclusion-proof" and doc["version"] == 1
    assert doc["log_id"] == LOG and doc["checkpoint"]["size"] == 80 and doc["leaf"]["seq"] == 42
    assert verify_inclusion_file(tmp_path / "incl.json", tmp_path / "cp80", key.verifier).seq == 42
    first, second = verify_consistency_file(tmp_path / "cons.json", [tmp_path / "cp80", tmp_path / "cp30"],
                                            key.verifier)
    assert (first.size, second.size) == (30, 80)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_proof_size_is_logarithmic(log: tuple[list, MerkleTree], key: KeyFileSigner) -> None:
    evs, tree = log
    cp, _ = checkpoint(tree, 80, key)
    proof = make_inclusion_proof(tree, cp, *evs[0])
    assert len(proof.path) == 7  # ceil(log2(80))


def test_a_proof_for_the_wrong_size_is_refused(log: tuple[list, MerkleTree], key: KeyFileSigner) -> None:
    evs, tree = log
    cp50, _ = checkpoint(tree, 50, key)
    _, note80 = checkpoint(tree, 80, key)
    proof = make_inclusion_proof(tree, cp50, *evs[9])
    with pytest.raises(ProofError, match="the proof is for tree size 50 but the checkpoint is for size 80: "
                                          "ask for a proof at size 80"):
        check_inclusion(proof, note80, key.verifier)


def test_a_proof_of_another_log_is_refused(log: tuple[list, MerkleTree], key: KeyFileSigner) -> None:
    evs, tree = log
    cp, _ = checkpoint(tree, 80, key)
    _, other_note = checkpoint(tree, 80, key, origin="example.org/jobs/job-8")
    with pytest.raises(ProofError, match="for log 'example.org/jobs/job-7' but the checkpoint is for log"):
        check_inclusion(make_inclusion_proof(tree, cp, *evs[0]), other_note, key.verifier)


def test_a_checkpoint_signed_by_another_key_is_refused(log: tuple[list, MerkleTree], key: KeyFileSigner) -> None:
    evs, tree = log
    cp, _ = checkpoint(tree, 80, key)
    forged = sign_checkpoint(cp, generate_key(key.name))
    with pytest.raises(CheckpointError, match="wrong key"):
        check_inclusion(make_inclusion_proof(tree, cp, *evs[0]), forged, key.verifier)


@pytest.mark.parametrize("edit, reason", [
    (lambda d: d["leaf"].update(event="not base64!"), "'leaf.event' is not base64"),
    (lambda d: d["leaf"].update(event="kqRleGVj"), "not proven"),  # another (valid) event
    (lambda d: d["leaf"].update(ts=d["leaf"]["ts"] + 1), "not proven"),
    (lambda d: d["leaf"].update(seq=d["leaf"]["seq"] + 1), "not proven"),
    (lambda d: d["path"].reverse(), "not proven"),
    (lambda d: d["path"].pop(), "not proven"),
    (lambda d: d["checkpoint"].update(root=d["path"][0]), "names root"),
    (lambda d: d.update(version=2), "version 2"),
    (lambda d: d.update(format="something"), "unknown format"),
    (lambda d: d["leaf"].update(seq=0), "at least 1"),
    (lambda d: d["leaf"].update(seq=True), "not a int"),
    (lambda d: d["checkpoint"].update(size=-1), "out of range"),
    (lambda d: d.pop("path"), "'path' is missing"),
    (lambda d: d["path"].append("AAAA"), "3 bytes"),
])
def test_an_edited_proof_file_is_refused(log: tuple[list, MerkleTree], key: KeyFileSigner, edit: object,
                                         reason: str) -> None:
    evs, tree = log
    cp, note = checkpoint(tree, 80, key)
    doc = json.loads(make_inclusion_proof(tree, cp, *evs[20]).to_json())
    assert callable(edit)
    edit(doc)
    with pytest.raises(ProofError) as exc:
        check_inclusion(load_proof(json.dumps(doc)), note, key.verifier)  # type: ignore[arg-type]
    assert reason in str(exc.value) and "\n" not in str(exc.value)


def test_an_edited_event_is_refused(log: tuple[list, MerkleTree], key: KeyFileSigner) -> None:
    """The auditor changes one byte of the proven event: the proof no longer holds."""
    evs, tree = log
    cp, note = checkpoint(tree, 80, key)
    proof = make_inclusion_proof(tree, cp, *evs[20])
    edited = bytearray(proof.event)
    edited[-1] ^= 1
    bad = InclusionProof(proof.log_id, proof.tree_size, proof.root, proof.seq, proof.ts, bytes(edited), proof.path)
    with pytest.raises(ProofError, match="event seq 21 is not proven to be in the checkpoint"):
        check_inclusion(bad, note, key.verifier)


def test_not_json_is_refused() -> None:
    for text in ("", "not json", "[1, 2]", '{"format": 1}'):
        with pytest.raises(ProofError, match="not a valid proof file"):
            load_proof(text)


def test_a_rewritten_history_fails_consistency_even_if_the_writer_signs_it(key: KeyFileSigner) -> None:
    """The writer holds the key, rewrites event 10, recomputes everything and signs a new
    checkpoint. An auditor who kept the old checkpoint refuses the new one."""
    honest = tree_of(events(40))
    _, old_note = checkpoint(honest, 30, key)
    forged = tree_of(events(60, changed=10))
    new_cp, new_note = checkpoint(forged, 60, key)
    # The forger cannot make a consistency proof from the honest root at all ...
    honest_cp30 = Checkpoint(LOG, 30, honest.root_at(30), T0 + 30)
    with pytest.raises(ValueError, match="not this tree's root"):
        make_consistency_proof(forged, honest_cp30, new_cp)
    # ... and one from its own tree at 30 names a root that is not the auditor's.
    forged_cp30 = Checkpoint(LOG, 30, forged.root_at(30), T0 + 30)
    proof = make_consistency_proof(forged, forged_cp30, new_cp)
    with pytest.raises(ProofError, match="names root .* at size 30 but the checkpoint's root is"):
        check_consistency(proof, [old_note, new_note], key.verifier)
    # Claiming the auditor's root with the forger's hashes does not verify.
    spliced = ConsistencyProof(LOG, 30, honest.root_at(30), 60, forged.root(), proof.path)
    with pytest.raises(ProofError, match="not proven to extend"):
        check_consistency(spliced, [old_note, new_note], key.verifier)


def test_consistency_is_refused_for_other_sizes(log: tuple[list, MerkleTree], key: KeyFileSigner) -> None:
    evs, tree = log
    cp20, n20 = checkpoint(tree, 20, key)
    cp60, n60 = checkpoint(tree, 60, key)
    _, n80 = checkpoint(tree, 80, key)
    proof = make_consistency_proof(tree, cp20, cp60)
    assert check_consistency(proof, [n60, n20], key.verifier)[0] == cp20
    with pytest.raises(ProofError, match="from size 20 to 60 but the checkpoints are for sizes 20 and 80"):
        check_consistency(proof, [n20, n80], key.verifier)
    with pytest.raises(ProofError, match="two checkpoints"):
        check_consistency(proof, [n20], key.verifier)


def test_making_a_proof_refuses_what_the_tree_does_not_hold(log: tuple[list, MerkleTree],
                                                           key: KeyFileSigner) -> None:
    evs, tree = log
    cp, _ = checkpoint(tree, 80, key)
    seq, ts, ev = evs[5]
    with pytest.raises(ValueError, match="not the leaf given"):
        make_inclusion_proof(tree, cp, seq, ts + 1, ev)
    stale = Checkpoint(LOG, 80, tree.root_at(79), T0)
    with pytest.raises(ValueError, match="not this tree's root"):
        make_inclusion_proof(tree, stale, seq, ts, ev)
