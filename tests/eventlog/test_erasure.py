"""Erasure keeps every proof valid, is itself signed and in the log, and survives a crash at any point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog import Erased, Personal
from eventlog.audit import make_checkpoint, prove_consistency, prove_inclusion
from eventlog.audit_check import check_audit
from eventlog.erasure import ERASURE_KIND, erase, erasures, find_personal
from eventlog.proof import check_consistency, check_inclusion
from eventlog.signing import generate_key

ROOT = Path(__file__).resolve().parents[2]
KEY = generate_key("dpo.example")


def _job(log: Any, n: int = 30) -> None:
    for i in range(n):
        data: dict[str, Any] = {"step": i, "note": f"plain {i}"}
        if i % 7 == 3:
            data["customer"] = {"email": Personal(f"user{i}@example.org"), "birth_year": Personal(1980 + i)}
        log.append("execution_recorded", data)


def test_proofs_made_before_an_erasure_still_verify(make_log: Any) -> None:
    """Inclusion proofs of erased events and consistency proofs across the erasure hold, on every backend."""
    log = make_log()
    _job(log)
    cp1 = make_checkpoint(log, KEY, origin="example.org/jobs/e1")
    before = {seq: prove_inclusion(log, seq, cp1.checkpoint) for seq in (1, 4, 11, 30)}
    heads = (log.head_hash, log.merkle_root(30))
    refs = find_personal(log)
    assert [r.seq for r in refs] == [4, 4, 11, 11, 18, 18, 25, 25]
    record = erase(log, [r for r in refs if r.seq in (4, 11)], "GDPR request 4411", KEY)
    assert record.signature_ok is True and record.seq == 31
    # Nothing stored before changed: same chain head at 30, same root at 30.
    assert (log.link_at(30), log.merkle_root(30)) == heads
    for seq, proof in before.items():
        assert check_inclusion(proof, cp1.note, KEY.verifier).seq == seq
    cp2 = make_checkpoint(log, KEY)
    first, second = check_consistency(prove_consistency(log, cp1.checkpoint, cp2.checkpoint), [cp1.note, cp2.note],
                                      KEY.verifier)
    assert (first.size, second.size) == (30, 31)
    # The erased event is still proven; its value reads as erased, the others do not.
    proven = check_inclusion(prove_inclusion(log, 4, cp2.checkpoint), cp2.note, KEY.verifier)
    assert proven.data["customer"]["email"].is_sealed
    shown = log.reveal(log.get(4).data)["customer"]
    assert isinstance(shown["email"], Erased) and shown["email"].reason == "GDPR request 4411"
    assert log.reveal(log.get(18).data)["customer"]["email"] == "user17@example.org"
    # The audit check passes and lists the erasure.
    report = check_audit(log, verifier=KEY.verifier)
    assert report.ok, report.problems
    assert [(e.seq, e.reason, e.signature_ok) for e in report.erasures] == [(31, "GDPR request 4411", True)]
    assert [(e.seq, e.refs) for e in erasures(log)] == [(31, ((4, "data['customer']['email']"),
                                                               (4, "data['customer']['birth_year']"),
                                                               (11, "data['customer']['email']"),
                                                               (11, "data['customer']['birth_year']")))]


def test_erasure_refusals(make_log: Any) -> None:
    """No reason, nothing selected, already erased, a stale expected seq: refused, nothing appended."""
    log = make_log()
    _job(log, 5)
    refs = find_personal(log, seq=4)
    with pytest.raises(ValueError, match="reason"):
        erase(log, refs, "  ", KEY)
    with pytest.raises(ValueError, match="no personal value selected"):
        erase(log, [], "r", KEY)
    with pytest.raises(eventlog.ConcurrencyError):
        erase(log, refs, "r", KEY, expected_seq=3)
    assert log.head_seq == 5 and log.reveal(log.get(4).data)["customer"]["email"] == "user3@example.org"
    erase(log, refs, "r", KEY)
    with pytest.raises(ValueError, match="already erased"):
        erase(log, refs, "again", KEY)
    assert log.head_seq == 6


def test_a_forged_or_unsigned_erasure_is_reported(tmp_path: Path) -> None:
    """An erasure event whose signature does not hold (or by another key) fails the audit check."""
    from eventlog.encoding import encode_event

    log = eventlog.open_log(tmp_path / "log")
    _job(log, 5)
    ref = find_personal(log, seq=4)[0]
    data = {"commitments": [ref.commitment], "refs": [[4, ref.path]], "reason": "forged",
            "key": KEY.verifier.to_string(), "signature": b"\x00" * 64}
    log.erase_personal(encode_event(ERASURE_KIND, data), [ref.commitment])
    report = check_audit(log)
    assert not report.ok and report.problems[0].kind == "erasure" and "signature" in report.problems[0].message
    other = generate_key("other.example")
    honest = eventlog.InMemoryEventLog()
    _job(honest, 5)
    erase(honest, find_personal(honest, seq=4), "r", KEY)
    assert not check_audit(honest, verifier=other.verifier).ok  # signed, but not by the key the auditor trusts
    log.close()


CRASH = r"""
import os, sys
import eventlog
from eventlog import vault as vault_mod, filelog
from eventlog.erasure import erase, find_personal
from eventlog.signing import KeyFileSigner

point = sys.argv[2]
signer = KeyFileSigner.from_string(sys.argv[3])
real_append, real_finish, real_rewrite = filelog.FileEventLog._append, vault_mod.FileVault.finish_erasure, \
    vault_mod.FileVault._rewrite_locked

def append(self, *a, **k):
    if point == "before-append" and a[0][:20].find(b"eventlog.erasure") >= 0:
        os._exit(9)
    out = real_append(self, *a, **k)
    if point == "after-append" and a[0][:20].find(b"eventlog.erasure") >= 0:
        os._exit(9)
    return out

calls = []
def rewrite(self, *a, **k):
    real_rewrite(self, *a, **k)
    calls.append(1)
    if point == "mid-rewrite":
        os._exit(9)

filelog.FileEventLog._append = append
vault_mod.FileVault._rewrite_locked = rewrite
vault_mod.VAULT_FILE_BYTES = 400  # several vault files, so an erasure rewrites more than one
log = eventlog.open_log(sys.argv[1])
erase(log, find_personal(log), "crash test", signer)
os._exit(0)
"""


@pytest.mark.parametrize("point", ["before-append", "after-append", "mid-rewrite"])
def test_an_erasure_interrupted_by_a_crash_is_finished_at_the_next_open(tmp_path: Path, point: str) -> None:
    """Killed before its event is stored, after it, or between two vault files: the next open completes it."""
    path = tmp_path / "log"
    import eventlog.vault as vault_mod

    old = vault_mod.VAULT_FILE_BYTES
    vault_mod.VAULT_FILE_BYTES = 400
    try:
        log = eventlog.open_log(path)
        _job(log, 40)
        cp = make_checkpoint(log, KEY, origin="example.org/jobs/crash")
        proof = prove_inclusion(log, 4, cp.checkpoint)
        log.close()
    finally:
        vault_mod.VAULT_FILE_BYTES = old
    assert len(list((path / "personal").glob("vault-*.pv"))) > 1
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CRASH, str(path), point, KEY.to_string()], env=env, timeout=60)
    assert done.returncode == 9
    assert (path / "personal" / "ERASING").exists()
    with eventlog.open_log(path) as log:
        assert not (path / "personal" / "ERASING").exists()
        kinds = [r.kind for r in log.read()]
        assert kinds.count(ERASURE_KIND) == 1 and kinds[-1] == ERASURE_KIND
        assert all(isinstance(v, Erased) for r in find_personal(log) for v in [log.reveal(Personal.sealed(r.commitment))])
        report = check_audit(log, verifier=KEY.verifier)
        assert report.ok, report.problems
    assert check_inclusion(proof, cp.note, KEY.verifier).seq == 4
    for f in path.rglob("*"):
        if f.is_file():
            assert b"@example.org" not in f.read_bytes(), f
