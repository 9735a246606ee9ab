"""Issue 14, "What it must show", erasure: after ``erase`` the proofs made before still verify, the
erased value is in no file of the job (every byte of every file scanned) nor in any export, and
``verify`` passes and lists the erasure."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from eventlog import Personal
from eventlog.encoding import encode
from eventlog.erasure import find_personal
from eventlog.signing import generate_key, write_key_files
from replay_tools.cli import cli
from routilux import JobState
from routilux.job_audit import CheckpointPolicy

SECRET = "ada.lovelace+4411@example.org"


def forms(value: Any) -> list[bytes]:
    """Every way the value could sit in a file: raw, msgpack, base64 of either (at each alignment), hex."""
    raw = value.encode() if isinstance(value, str) else encode(value)
    out = [raw, encode(value), raw.hex().encode()]
    for blob in (raw, encode(value)):
        for cut in range(3):  # base64 of the value inside a longer buffer starts at any of 3 alignments
            chunk = base64.b64encode(b"\x00" * cut + blob)[4:-4]
            out.append(chunk)
    return [f for f in out if len(f) >= 8]


def files_holding(root: Path, value: Any) -> list[str]:
    patterns = forms(value)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                  and any(pat in p.read_bytes() for pat in patterns))


def test_erase_leaves_no_copy_and_keeps_every_proof(tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
        return result

    key = generate_key("dpo.example")
    write_key_files(key, str(tmp_path / "dpo.key"), str(tmp_path / "dpo.pub"))
    job_dir = tmp_path / "jobs" / "order-7"
    job = JobState.open(job_dir, flow_id="orders", job_id="order-7",
                        checkpoints=CheckpointPolicy(key, every=40, origin="shop.example/jobs/{job_id}"))
    job.snapshot_every = 25  # snapshots before and after the personal value, and after the erasure
    job.update_shared_data("customer", {"email": Personal(SECRET), "tier": "gold", "year": Personal(1815)})
    for i in range(120):
        job.record_execution("ship", "done", {"parcel": i})
    job.status = "completed"  # a checkpoint at the terminal status too
    job.close()
    # Before: exactly one file holds the value, the vault; exports and saved files never do.
    run("export", str(job_dir), "-o", str(tmp_path / "before.jsonl"))
    JobState.open(job_dir, readonly=True).save(str(tmp_path / "before.rjob"))
    assert files_holding(tmp_path, SECRET) == ["jobs/order-7/personal/vault-000001.pv"]
    run("prove", str(job_dir), "--seq", "2", "--checkpoint", "latest", "-o", str(tmp_path / "ev2.proof"))
    run("checkpoint", str(job_dir), "--key", str(tmp_path / "dpo.key"), "-o", str(tmp_path / "cp-before.txt"))
    run("prove", str(job_dir), "--seq", "2", "--checkpoint", str(tmp_path / "cp-before.txt"),
        "-o", str(tmp_path / "ev2b.proof"))
    state_before = json.loads(run("state", str(job_dir), "--json").stdout)["state"]
    assert state_before["shared_data"]["customer"]["email"] == SECRET

    result = run("erase", str(job_dir), "--seq", "2", "--reason", "GDPR art. 17, request 4411",
                 "--key", str(tmp_path / "dpo.key"))
    assert "erased data['value']['email'] of seq 2, data['value']['year'] of seq 2" in result.stdout

    # After: the value is in no file of the job, and in no export or saved file made before or after.
    run("export", str(job_dir), "-o", str(tmp_path / "after.jsonl"))
    run("export", str(job_dir), "--format", "json", "-o", str(tmp_path / "after.json"))
    JobState.open(job_dir, readonly=True).save(str(tmp_path / "after.rjob"))
    run("checkpoint", str(job_dir), "--key", str(tmp_path / "dpo.key"), "-o", str(tmp_path / "cp-after.txt"))
    scanned = [p for p in tmp_path.rglob("*") if p.is_file()]
    kinds = {p.parent.name for p in scanned} | {p.suffix for p in scanned}
    assert {"merkle", "personal", "snapshots", "checkpoints", ".seg", ".idx", ".jsonl", ".json", ".rjob"} <= kinds
    assert files_holding(tmp_path, SECRET) == []
    assert files_holding(tmp_path, 1815) == []  # a small value: its salt is gone too

    # Every proof made before still verifies, against the checkpoint it was made for.
    for proof, cp in (("ev2.proof", "cp-before.txt"), ("ev2b.proof", "cp-before.txt")):
        out = run("verify-proof", str(tmp_path / proof), "--checkpoint", str(tmp_path / cp), "--key",
                  str(tmp_path / "dpo.pub"))
        assert out.stdout.startswith("OK: event 2 is in log 'shop.example/jobs/order-7'")
    run("prove", str(job_dir), "--from", str(tmp_path / "cp-before.txt"), "--to", str(tmp_path / "cp-after.txt"),
        "-o", str(tmp_path / "grow.proof"))
    run("verify-proof", str(tmp_path / "grow.proof"), "--checkpoint", str(tmp_path / "cp-before.txt"),
        "--checkpoint", str(tmp_path / "cp-after.txt"), "--key", str(tmp_path / "dpo.pub"))

    # verify passes and lists the erasure; replay shows the value as erased.
    verified = run("verify", str(job_dir), "--audit-key", str(tmp_path / "dpo.pub"))
    assert "check audit:       ok" in verified.stdout
    assert ("erasure: seq 124 erased data['value']['email'] of seq 2, data['value']['year'] of seq 2: "
            "'GDPR art. 17, request 4411', signed by dpo.example (signature ok)") in verified.stdout
    report = json.loads(run("verify", str(job_dir), "--json").stdout)
    assert report["ok"] and report["erasures"][0]["seq"] == 124
    customer = json.loads(run("state", str(job_dir), "--json").stdout)["state"]["shared_data"]["customer"]
    assert customer["tier"] == "gold"
    assert customer["email"]["$erased"]["reason"] == "GDPR art. 17, request 4411"
    assert customer["year"]["$erased"]["seq"] == 124
    # The job goes on: reopened, its state reads the same, and nothing can reveal the value.
    again = JobState.open(job_dir)
    assert again.version == 124
    assert again.reveal(again.shared_data)["customer"]["email"].seq == 124
    assert find_personal(again.log, seq=2)  # the commitments are still there, proving what was stored
    again.close()
