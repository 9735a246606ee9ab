"""Audit proofs for jobs and flows: personal values from mutators and routines, the checkpoint policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eventlog import Erased, EventEncodingError, Personal
from eventlog.audit import prove_inclusion, stored_checkpoints
from eventlog.audit_check import check_audit
from eventlog.erasure import find_personal
from eventlog.proof import check_inclusion
from eventlog.signing import generate_key
from routilux import Flow, JobState, JobStore, Routine
from routilux.job_audit import CheckpointPolicy

KEY = generate_key("ops.example")


class Signup(Routine):
    """Emits a sign-up whose email is personal."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.run)
        self.define_event("signed_up", ["user"])

    def run(self, **_: Any) -> None:
        self.emit("signed_up", user={"name": "Grace", "email": Personal("grace@example.org")})


class Welcome(Routine):
    """Stores the user (the email still personal) in shared data."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("user", handler=self.welcome)

    def welcome(self, user: Any) -> None:
        ctx = self.get_execution_context()
        ctx.job_state.update_shared_data("welcomed", user)


@pytest.mark.parametrize("durable", [False, True])
def test_a_flow_carries_personal_values_and_the_log_keeps_only_commitments(tmp_path: Path, durable: bool) -> None:
    """A routine emits a Personal value; the next stores it: the log holds commitments, the vault the value."""
    flow = Flow(flow_id="signup")
    flow.add_routine(Signup(), "signup")
    flow.add_routine(Welcome(), "welcome")
    flow.connect("signup", "signed_up", "welcome", "user")
    job = JobState.open(tmp_path / "job", flow_id="signup") if durable else None
    job = flow.execute("signup", job_state=job) if job is not None else flow.execute("signup")
    assert JobState.wait_for_completion(flow, job, timeout=10)
    flow.shutdown()
    welcomed = job.shared_data["welcomed"]
    assert welcomed["name"] == "Grace" and welcomed["email"].is_sealed
    assert job.reveal(welcomed) == {"name": "Grace", "email": "grace@example.org"}
    assert all(b"grace@example.org" not in ev for _s, _t, ev in job.log.read_raw())
    # Each event that stored it (the emitted data, the task, the shared data) sealed it with its own salt.
    refs = find_personal(job.log)
    assert welcomed["email"].commitment in {r.commitment for r in refs}
    assert {job.reveal(Personal.sealed(r.commitment)) for r in refs} == {"grace@example.org"}
    job.erase_personal(refs, "account deleted", KEY)
    assert isinstance(job.reveal(job.shared_data)["welcomed"]["email"], Erased)
    assert all(isinstance(job.reveal(Personal.sealed(r.commitment)), Erased) for r in refs)
    assert check_audit(job.log).ok
    if durable:
        job.close()
        assert all(b"grace@example.org" not in p.read_bytes() for p in (tmp_path / "job").rglob("*") if p.is_file())


def test_personal_values_in_a_transaction_and_in_every_mutator(tmp_path: Path) -> None:
    """Buffered (one atomic batch) or not, every mutator seals its personal values."""
    with JobState.open(tmp_path / "job", flow_id="f") as job:
        with job._transaction():
            job.update_shared_data("a", Personal("one"))
            job.update_routine_state("r", {"token": Personal("two")})
        job.record_execution("r", "e", {"card": Personal("three")})
        job.append_to_shared_log({"who": Personal("four")})
        job.send_output("r", "t", {"x": Personal("five")})
        assert job.reveal(job.shared_data["a"]) == "one"
        assert job.reveal(job.routine_states["r"]) == {"token": "two"}
        assert job.reveal(job.execution_history[-1].data) == {"card": "three"}
        assert job.reveal(job.shared_log[-1])["who"] == "four"
        assert job.reveal(job.output_log[-1]["data"]) == {"x": "five"}
        assert len(find_personal(job.log)) == 5
    again = JobState.open(tmp_path / "job")
    assert again.reveal(again.shared_data["a"]) == "one"  # rebuilt from the log (and its snapshots)
    again.close()


def test_a_personal_value_that_cannot_be_stored_raises_at_the_call(tmp_path: Path) -> None:
    """The value inside Personal is checked like any other: the error names the argument's path."""
    for job in (JobState(), JobState.open(tmp_path / "job")):  # lenient in memory or not, never a placeholder
        with pytest.raises(EventEncodingError, match=r"^value: the personal value's value: builtins:object cannot"):
            job.update_shared_data("k", Personal(object()))
        assert job.version == 1
        job.close()


def test_the_checkpoint_policy_signs_every_n_events_and_at_a_terminal_status(tmp_path: Path) -> None:
    """every=25 and the terminal status: checkpoints kept with the log; any event provable against them."""
    store = JobStore(tmp_path / "store", checkpoints=CheckpointPolicy(KEY, every=25,
                                                                       origin="audit.example/jobs/{job_id}"))
    job = store.create("flow", job_id="job-1")
    for i in range(60):
        job.record_execution("r", "e", {"i": i})
    job.status = "completed"
    job.close()
    with store.open("job-1", readonly=True) as view:
        kept = stored_checkpoints(view.log)
        assert [k.checkpoint.size for k in kept] == [26, 51, 62]
        assert {k.checkpoint.origin for k in kept} == {"audit.example/jobs/job-1"}
        for k in kept:
            proof = prove_inclusion(view.log, 7, k.checkpoint)
            assert check_inclusion(proof, k.note, KEY.verifier).data["data"] == {"i": 5}
    reopened = store.open("job-1")  # the policy goes on where the log left off
    for i in range(30):
        reopened.record_execution("r", "e", {"i": i})
    made = reopened.checkpoint()
    reopened.close()
    assert made.checkpoint.size == 92
    assert [k.checkpoint.size for k in stored_checkpoints(store.open("job-1", readonly=True).log)] == \
        [26, 51, 62, 87, 92]


def test_a_policy_without_every_signs_only_at_the_end_and_a_bad_every_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="every"):
        CheckpointPolicy(KEY, every=0)
    with JobState.open(tmp_path / "job", checkpoints=CheckpointPolicy(KEY)) as job:
        for i in range(10):
            job.record_execution("r", "e", {"i": i})
        assert stored_checkpoints(job.log) == []
        job.status = "failed"
        assert [k.checkpoint.size for k in stored_checkpoints(job.log)] == [12]
        assert stored_checkpoints(job.log)[0].checkpoint.origin == f"routilux/{job.job_id}"
