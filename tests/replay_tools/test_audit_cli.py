"""``routilux-replay keygen`` and ``verify-proof``: exit codes and one-line reasons an auditor relies on."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog.checkpoint import Checkpoint, sign_checkpoint
from eventlog.encoding import encode_event
from eventlog.merkle import event_leaf
from eventlog.merkle_log import catch_up, make_checkpoint, prove_event
from eventlog.merkle_tree import MerkleTree
from eventlog.proof import make_consistency_proof, make_inclusion_proof
from eventlog.signing import KeyFileSigner, generate_key
from replay_tools.errors import EXIT_CHECK_FAILED, EXIT_NOT_FOUND, EXIT_USAGE

LOG = "example.org/jobs/job-9"
T0 = 1_765_000_000_000_000_000


def one_line_refusal(result: Any, code: int = EXIT_CHECK_FAILED) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    err = result.stderr.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    assert result.stdout == ""
    return err


class Audit:
    """A log of 60 events, its tree, a key pair on disk, and files an auditor would get."""

    def __init__(self, root: Path, run: Any) -> None:
        self.dir = root
        result = run("keygen", "auditor.example", "--dir", str(root / "keys"))
        assert result.exit_code == 0, result.stderr
        self.pub = str(root / "keys" / "auditor.example.pub")
        self.signer = KeyFileSigner.from_file(str(root / "keys" / "auditor.example.key"))
        self.events = []
        self.tree = MerkleTree()
        for seq in range(1, 61):
            ev = encode_event("routine_finished", {"routine_id": f"r{seq}", "output": {"rows": seq, "ok": True}})
            self.events.append((seq, T0 + seq, ev))
            self.tree.append(event_leaf(seq, T0 + seq, ev))

    def checkpoint(self, size: int, signer: Any = None, name: str | None = None) -> tuple[Checkpoint, str]:
        cp = Checkpoint(LOG, size, self.tree.root_at(size), T0 + 1000 * size)
        path = self.dir / (name or f"cp-{size}.txt")
        path.write_text(sign_checkpoint(cp, signer or self.signer))
        return cp, str(path)

    def inclusion(self, cp: Checkpoint, seq: int, name: str = "event.proof") -> str:
        path = str(self.dir / name)
        make_inclusion_proof(self.tree, cp, *self.events[seq - 1]).save(path)
        return path


@pytest.fixture
def audit(tmp_path: Path, run: Any) -> Audit:
    return Audit(tmp_path, run)


def test_keygen_writes_a_private_0600_key_and_prints_the_verifier(tmp_path: Path, run: Any) -> None:
    result = run("keygen", "ops", "--dir", str(tmp_path / "k"))
    assert result.exit_code == 0
    assert stat.S_IMODE(os.stat(tmp_path / "k" / "ops.key").st_mode) == 0o600
    pub = (tmp_path / "k" / "ops.pub").read_text().strip()
    assert f"verifier key: {pub}" in result.stdout and pub.startswith("ops+")
    err = one_line_refusal(run("keygen", "ops", "--dir", str(tmp_path / "k")), EXIT_USAGE)
    assert "refusing to overwrite" in err
    err = one_line_refusal(run("keygen", "bad name", "--dir", str(tmp_path / "k")), EXIT_USAGE)
    assert "may not contain" in err


def test_an_inclusion_proof_verifies_and_shows_the_event(audit: Audit, run: Any) -> None:
    cp, cp_path = audit.checkpoint(60)
    result = run("verify-proof", audit.inclusion(cp, 42), "--checkpoint", cp_path, "--key", audit.pub)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"OK: event 42 is in log '{LOG}' as of its checkpoint of 60 events")
    assert "routine_finished" in result.stdout and '"rows": 42' in result.stdout
    as_json = run("verify-proof", audit.inclusion(cp, 7), "--checkpoint", cp_path, "--key", audit.pub, "--json")
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is True and doc["seq"] == 7 and doc["data"]["output"]["rows"] == 7


def test_the_key_may_be_given_as_text(audit: Audit, run: Any) -> None:
    cp, cp_path = audit.checkpoint(60)
    key_text = Path(audit.pub).read_text().strip()
    result = run("verify-proof", audit.inclusion(cp, 1), "--checkpoint", cp_path, "--key", key_text)
    assert result.exit_code == 0, result.stderr


def test_a_consistency_proof_verifies_in_either_order(audit: Audit, run: Any) -> None:
    old, old_path = audit.checkpoint(25)
    new, new_path = audit.checkpoint(60)
    proof = str(audit.dir / "grow.proof")
    make_consistency_proof(audit.tree, old, new).save(proof)
    for order in ((old_path, new_path), (new_path, old_path)):
        result = run("verify-proof", proof, "--checkpoint", order[0], "--checkpoint", order[1], "--key", audit.pub)
        assert result.exit_code == 0, result.stderr
        assert "at 60 events extends its checkpoint of 25 events" in result.stdout


def test_a_checkpoint_signed_by_another_key_is_refused(audit: Audit, run: Any) -> None:
    cp, _ = audit.checkpoint(60)
    _, forged = audit.checkpoint(60, signer=generate_key("auditor.example"), name="forged.txt")
    err = one_line_refusal(run("verify-proof", audit.inclusion(cp, 3), "--checkpoint", forged, "--key", audit.pub))
    assert err.startswith("routilux-replay: refused: wrong key: the checkpoint is signed by another key named")
    _, stranger = audit.checkpoint(60, signer=generate_key("someone.else"), name="stranger.txt")
    err = one_line_refusal(run("verify-proof", audit.inclusion(cp, 3), "--checkpoint", stranger, "--key", audit.pub))
    assert "unknown key name" in err


def test_a_tampered_checkpoint_is_refused(audit: Audit, run: Any) -> None:
    cp, cp_path = audit.checkpoint(60)
    proof = audit.inclusion(cp, 5)
    text = Path(cp_path).read_text()
    Path(cp_path).write_text(text.replace("\n60\n", "\n61\n", 1))
    err = one_line_refusal(run("verify-proof", proof, "--checkpoint", cp_path, "--key", audit.pub))
    assert "bad signature" in err and "changed after it was signed" in err
    Path(cp_path).write_text(text.replace("\n\n", "\n", 1))
    err = one_line_refusal(run("verify-proof", proof, "--checkpoint", cp_path, "--key", audit.pub))
    assert "malformed checkpoint" in err


def test_a_proof_for_the_wrong_size_is_refused(audit: Audit, run: Any) -> None:
    cp40, _ = audit.checkpoint(40)
    _, cp60_path = audit.checkpoint(60)
    err = one_line_refusal(run("verify-proof", audit.inclusion(cp40, 12), "--checkpoint", cp60_path,
                               "--key", audit.pub))
    assert "the proof is for tree size 40 but the checkpoint is for size 60" in err
    old, old_path = audit.checkpoint(10)
    mid, _ = audit.checkpoint(40)
    _, new_path = audit.checkpoint(60)
    proof = str(audit.dir / "grow.proof")
    make_consistency_proof(audit.tree, old, mid).save(proof)
    err = one_line_refusal(run("verify-proof", proof, "--checkpoint", old_path, "--checkpoint", new_path,
                               "--key", audit.pub))
    assert "from size 10 to 40 but the checkpoints are for sizes 10 and 60" in err


def test_an_edited_proof_is_refused(audit: Audit, run: Any) -> None:
    cp, cp_path = audit.checkpoint(60)
    proof = audit.inclusion(cp, 30)
    doc = json.loads(Path(proof).read_text())
    doc["leaf"]["ts"] += 1  # the auditor is told another time than the one proven
    Path(proof).write_text(json.dumps(doc))
    err = one_line_refusal(run("verify-proof", proof, "--checkpoint", cp_path, "--key", audit.pub))
    assert "event seq 30 is not proven to be in the checkpoint" in err
    Path(proof).write_text("{not json")
    err = one_line_refusal(run("verify-proof", proof, "--checkpoint", cp_path, "--key", audit.pub))
    assert "not a valid proof file" in err


def test_usage_and_missing_files(audit: Audit, run: Any) -> None:
    cp, cp_path = audit.checkpoint(60)
    proof = audit.inclusion(cp, 2)
    err = one_line_refusal(run("verify-proof", str(audit.dir / "nope"), "--checkpoint", cp_path, "--key", audit.pub),
                           EXIT_NOT_FOUND)
    assert "no such proof file" in err
    err = one_line_refusal(run("verify-proof", proof, "--checkpoint", cp_path, "--key", str(audit.dir / "x.pub")),
                           EXIT_NOT_FOUND)
    assert "no such key file" in err
    err = one_line_refusal(run("verify-proof", proof, "--checkpoint", cp_path, "--key",
                               str(audit.dir / "keys" / "auditor.example.key")), EXIT_USAGE)
    assert "PRIVATE key" in err
    err = one_line_refusal(run("verify-proof", proof, "--checkpoint", cp_path, "--checkpoint", cp_path,
                               "--key", audit.pub), EXIT_USAGE)
    assert "one checkpoint" in err
    err = one_line_refusal(run("verify-proof", proof, "--key", audit.pub), EXIT_USAGE)
    assert "--checkpoint" in err


def test_an_auditor_checks_an_event_of_a_real_job(flow_job: str, tmp_path: Path, run: Any) -> None:
    """The whole flow on a routilux job directory: keys, a checkpoint of the job's log, a proof
    of one event, and the auditor's offline check, which prints the event the job wrote."""
    assert run("keygen", "ops", "--dir", str(tmp_path / "keys")).exit_code == 0
    signer = KeyFileSigner.from_file(str(tmp_path / "keys" / "ops.key"))
    log = eventlog.open_log(flow_job, readonly=True, create=False)
    try:
        tree = MerkleTree()
        catch_up(tree, log)
        cp, note = make_checkpoint(tree, "jobs.example/flow", signer)
        (tmp_path / "cp.txt").write_text(note)
        last = log.get(log.head_seq)
        prove_event(tree, log, cp, last.seq).save(str(tmp_path / "last.proof"))
    finally:
        log.close()
    result = run("verify-proof", str(tmp_path / "last.proof"), "--checkpoint", str(tmp_path / "cp.txt"),
                 "--key", str(tmp_path / "keys" / "ops.pub"), "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["seq"], doc["kind"], doc["tree_size"]) == (last.seq, last.kind, cp.size)
