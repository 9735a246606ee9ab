"""``routilux-replay checkpoint``, ``prove`` and ``erase``: what they make, and one-line refusals with exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import eventlog
from eventlog import Personal
from replay_tools.cli import cli
from replay_tools.errors import EXIT_CHECK_FAILED, EXIT_NOT_FOUND, EXIT_USAGE
from routilux import JobState


@pytest.fixture
def run() -> Any:
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def refused(result: Any, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    err = result.stderr.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def job(tmp_path: Path, run: Any) -> Path:
    """A finished job with one personal value, and a key pair in tmp_path/keys."""
    assert run("keygen", "ops.example", "--dir", str(tmp_path / "keys")).exit_code == 0
    js = JobState.open(tmp_path / "job", flow_id="f", job_id="job-1")
    js.update_shared_data("who", Personal("grace@example.org"))
    for i in range(30):
        js.record_execution("r", "done", {"i": i})
    js.close()
    return tmp_path / "job"


def test_checkpoint_prove_and_verify_a_real_job(job: Path, tmp_path: Path, run: Any) -> None:
    """The commands' products check out with verify-proof; stored checkpoints are found by size or 'latest'."""
    key, pub = str(tmp_path / "keys" / "ops.example.key"), str(tmp_path / "keys" / "ops.example.pub")
    out = run("checkpoint", str(job), "--key", key, "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert (doc["origin"], doc["size"], doc["stored"]) == ("routilux/job-1", 32, True)
    assert (job / "checkpoints" / f"cp-{32:020d}.txt").read_text() == doc["note"]
    (tmp_path / "cp32.txt").write_text(doc["note"])
    with JobState.open(job) as js:
        js.record_execution("r", "late", {})
    assert run("checkpoint", str(job), "--key", key, "-o", str(tmp_path / "cp33.txt")).exit_code == 0
    for seq, cp in ((1, "32"), (32, "latest"), (33, str(tmp_path / "cp33.txt"))):
        made = run("prove", str(job), "--seq", str(seq), "--checkpoint", cp, "-o", str(tmp_path / "p.json"))
        assert made.exit_code == 0, made.output
        note = tmp_path / ("cp32.txt" if cp == "32" else "cp33.txt")
        ok = run("verify-proof", str(tmp_path / "p.json"), "--checkpoint", str(note), "--key", pub)
        assert ok.exit_code == 0 and ok.stdout.startswith(f"OK: event {seq} is in log 'routilux/job-1'")
    grow = run("prove", str(job), "--from", "32", "--to", "latest")
    assert grow.exit_code == 0 and json.loads(grow.stdout)["format"] == "routilux-eventlog/consistency-proof"
    # The stdout proof is the file verify-proof takes.
    (tmp_path / "grow.json").write_text(grow.stdout)
    assert run("verify-proof", str(tmp_path / "grow.json"), "--checkpoint", str(tmp_path / "cp32.txt"),
               "--checkpoint", str(tmp_path / "cp33.txt"), "--key", pub).exit_code == 0


def test_refusals_of_checkpoint_prove_and_erase(job: Path, tmp_path: Path, run: Any) -> None:
    """Each refusal is one line with its exit code, and changes nothing."""
    key, pub = str(tmp_path / "keys" / "ops.example.key"), str(tmp_path / "keys" / "ops.example.pub")
    assert "no such key file" in refused(run("checkpoint", str(job), "--key", str(tmp_path / "nope.key")),
                                         EXIT_NOT_FOUND)
    assert "bad --key" in refused(run("checkpoint", str(job), "--key", pub), EXIT_USAGE)
    assert run("checkpoint", str(job), "--key", key, "-o", str(tmp_path / "cp.txt")).exit_code == 0
    assert "origin" in refused(run("checkpoint", str(job), "--key", key, "--origin", "elsewhere/x"), EXIT_USAGE)
    JobState.open(job, readonly=True).save(str(tmp_path / "saved.rjob"))
    assert "saved job file" in refused(run("checkpoint", str(tmp_path / "saved.rjob"), "--key", key), EXIT_USAGE)
    with eventlog.open_log(job):  # a running writer holds the job
        msg = refused(run("checkpoint", str(job), "--key", key), EXIT_USAGE)
        assert "open for writing by process" in msg
        assert run("checkpoint", str(job), "--key", key, "--no-store").exit_code == 0

    # prove: a checkpoint of another log, a seq past the checkpoint, no such checkpoint, a bad mix of options.
    other = tmp_path / "other"
    with JobState.open(other, job_id="job-2") as js:
        for i in range(40):
            js.record_execution("r", "x", {"i": i})
    assert run("checkpoint", str(other), "--key", key, "-o", str(tmp_path / "cp-other.txt")).exit_code == 0
    msg = refused(run("prove", str(job), "--seq", "3", "--checkpoint", str(tmp_path / "cp-other.txt")),
                  EXIT_CHECK_FAILED)
    assert "not of this log" in msg or "not this log's" in msg
    assert "not in the checkpoint" in refused(run("prove", str(job), "--seq", "99", "--checkpoint", "latest"),
                                              EXIT_USAGE)
    assert "no such checkpoint file" in refused(run("prove", str(job), "--seq", "1", "--checkpoint", "cp9.txt"),
                                                EXIT_NOT_FOUND)
    assert "no checkpoint of 7 events" in refused(run("prove", str(job), "--seq", "1", "--checkpoint", "7"),
                                                  EXIT_USAGE)
    assert "give either" in refused(run("prove", str(job), "--seq", "1", "--from", "latest"), EXIT_USAGE)

    # erase: nothing there, a bad commitment, no selector.
    assert "nothing to erase" in refused(run("erase", str(job), "--seq", "5", "--reason", "r", "--key", key),
                                         EXIT_CHECK_FAILED)
    assert "64 hex digits" in refused(run("erase", str(job), "--commitment", "abc", "--reason", "r", "--key", key),
                                      EXIT_USAGE)
    assert "give one of" in refused(run("erase", str(job), "--reason", "r", "--key", key), EXIT_USAGE)
    with eventlog.open_log(job, readonly=True) as log:
        assert log.head_seq == 32 and log.reveal(log.get(2).data)["value"] == "grace@example.org"
    assert run("erase", str(job), "--all", "--reason", "offboarding", "--key", key).exit_code == 0
    assert "already erased" in refused(run("erase", str(job), "--all", "--reason", "r", "--key", key),
                                       EXIT_CHECK_FAILED)


def test_verify_proof_refuses_another_key_a_tampered_checkpoint_and_the_wrong_size(job: Path, tmp_path: Path,
                                                                                   run: Any) -> None:
    """Against proofs made from a real job: each refusal is one line and exit 1."""
    key, pub = str(tmp_path / "keys" / "ops.example.key"), str(tmp_path / "keys" / "ops.example.pub")
    assert run("keygen", "ops.example", "--dir", str(tmp_path / "other-keys")).exit_code == 0  # same name, other key
    assert run("checkpoint", str(job), "--key", key, "-o", str(tmp_path / "cp.txt")).exit_code == 0
    assert run("prove", str(job), "--seq", "7", "--checkpoint", "latest", "-o", str(tmp_path / "p.json")).exit_code == 0
    other = run("verify-proof", str(tmp_path / "p.json"), "--checkpoint", str(tmp_path / "cp.txt"),
                "--key", str(tmp_path / "other-keys" / "ops.example.pub"))
    assert refused(other, EXIT_CHECK_FAILED).startswith("routilux-replay: refused: wrong key")
    note = (tmp_path / "cp.txt").read_text().split("\n")
    note[1] = str(int(note[1]) + 1)
    (tmp_path / "tampered.txt").write_text("\n".join(note))
    tampered = run("verify-proof", str(tmp_path / "p.json"), "--checkpoint", str(tmp_path / "tampered.txt"),
                   "--key", pub)
    assert "bad signature" in refused(tampered, EXIT_CHECK_FAILED)
    with JobState.open(job) as js:
        js.record_execution("r", "more", {})
    assert run("checkpoint", str(job), "--key", key, "-o", str(tmp_path / "cp-later.txt")).exit_code == 0
    wrong = run("verify-proof", str(tmp_path / "p.json"), "--checkpoint", str(tmp_path / "cp-later.txt"), "--key", pub)
    assert "the proof is for tree size 32 but the checkpoint is for size 33" in refused(wrong, EXIT_CHECK_FAILED)
