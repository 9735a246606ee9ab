"""routilux-replay rerun, fork and whatif: exact reports, forks that resume, originals untouched."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from replay_tools import open_job
from replay_tools.demo import build_flow
from routilux import JobState


def _events(path: str) -> list[Any]:
    with open_job(path) as job:
        return list(job.read())


def _seq(events: list[Any], kind: str, **fields: Any) -> int:
    return next(e.seq for e in events if e.kind == kind and all(e.data.get(k) == v for k, v in fields.items()))


def _tree_digest(path: str) -> str:
    digest = hashlib.sha256()
    for root, _dirs, files in sorted(os.walk(path)):
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(full.encode())
            with open(full, "rb") as fh:
                digest.update(fh.read())
    return digest.hexdigest()


# -- rerun ------------------------------------------------------------------------------------


def test_rerun_with_a_changed_routine_reports_the_first_divergent_event_exactly(run: Any, ledger_job: str) -> None:
    """Recorded with Total v1, re-run with DiscountedTotal v2: the invoice output is the first divergence."""
    events = _events(ledger_job)
    v = _seq(events, "output_sent", output_type="invoice")
    queued = next(e.seq for e in events if e.kind == "task_queued" and e.data["task"]["routine_id"] == "total")
    result = run("rerun", ledger_job, "--flow", "kit_flows:build_ledger_v2")
    assert result.exit_code == 1
    assert result.stderr == ""
    assert result.stdout == f"""\
job ledger-1 of flow ledger: {len(events)} events recorded
flow version MISMATCH: recorded with 1, re-run with 2
inputs: execute load {{"items": [3, 4, 5], "rate": 2}}; wait

DIVERGED at version {v}: output_sent of routine total differs

  field        expected (recorded)  actual (new run)
  kind         "output_sent"        "output_sent"
  routine_id   "total"              "total"
  output_type  "invoice"            "invoice"
  data.lines   3                    3
  data.total   24                   19                <-- differs

differing fields:
  data.total: 24 -> 19

produced by: routine total, task total.items (queued at version {queued} by load.loaded)

state after version {v} (recorded -> with the new run's event):
  Outputs (1)
    ~ output_log.0.data.total: 24 -> 19
"""


def test_rerun_with_the_same_code_finds_no_divergence(run: Any, ledger_job: str) -> None:
    """The recording's own code re-runs without divergence: exit 0."""
    result = run("rerun", ledger_job, "--flow", "kit_flows:build_ledger_v1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "flow version: 1 (same as recorded)"
    assert lines[3].startswith("no divergence: the new run matches the recording (")


def test_rerun_json_is_stable_and_complete(run: Any, ledger_job: str) -> None:
    """--json: versions, the two events, the differing field, the state diff, the routine and task."""
    events = _events(ledger_job)
    result = run("rerun", ledger_job, "--flow", "kit_flows:build_ledger_v2", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["diverged"] is True and report["version_mismatch"] is True
    assert (report["recorded_version"], report["current_version"]) == ("1", "2")
    div = report["divergence"]
    assert div["version"] == _seq(events, "output_sent") and div["change"] == "changed"
    assert div["expected"]["data"]["data"]["total"] == 24 and div["actual"]["data"]["data"]["total"] == 19
    assert div["fields"] == [{"path": "data.total", "expected": 24, "actual": 19, "expected_exists": True,
                              "actual_exists": True}]
    assert div["state"] == [{"path": "output_log.0.data.total", "change": "changed", "old": 24, "new": 19}]
    assert div["routine_id"] == "total" and div["task"]["slot"] == "items"
    assert div["task"]["source"] == ["load", "loaded"] and div["lane"] == "routine:total"


def test_rerun_of_the_demo_job_replays_its_pause_and_resume(run: Any, demo_job: str) -> None:
    """The demo job's inputs include an operator's pause and resume: re-run, they match."""
    result = run("rerun", demo_job, "--flow", "replay_tools.demo:build_flow")
    assert result.exit_code == 0, result.output
    assert ('inputs: execute fetch {"customer": "acme"}; wait; pause "operator check"; resume; wait'
            in result.stdout)


def test_rerun_refuses_a_factory_of_another_flow(run: Any, ledger_job: str) -> None:
    """A factory building another flow id is a usage error naming both ids."""
    result = run("rerun", ledger_job, "--flow", "kit_flows:build_orders")
    assert result.exit_code == 2
    assert "built flow 'orders', but the job belongs to flow 'ledger'" in result.stderr


@pytest.mark.parametrize(("spec", "message"), [
    ("kit_flows", "expected MODULE:FACTORY"),
    ("no_such_module_xyz:build", "cannot import module 'no_such_module_xyz'"),
    ("kit_flows:missing", "has no attribute 'missing'"),
    ("kit_flows:TAGS", "is not callable"),
])
def test_rerun_bad_factory_is_one_line_exit_2(run: Any, ledger_job: str, spec: str, message: str) -> None:
    """Each way a --flow can be wrong gets one line on stderr and exit code 2."""
    result = run("rerun", ledger_job, "--flow", spec)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_rerun_bad_ignore_rule_is_a_usage_error(run: Any, ledger_job: str) -> None:
    """A rule that does not parse is named."""
    result = run("rerun", ledger_job, "--flow", "kit_flows:build_ledger_v1", "--ignore", "output_sent[oops")
    assert result.exit_code == 2
    assert "bad comparison rule 'output_sent[oops'" in result.stderr


def test_rerun_ignore_rule_hides_the_changed_field(run: Any, ledger_job: str) -> None:
    """Ignoring the changed fields makes v2 match (the version mismatch is still said)."""
    result = run("rerun", ledger_job, "--flow", "kit_flows:build_ledger_v2",
                 "--ignore", "output_sent.data.total", "--ignore", "shared_data_set[key=total].value")
    assert result.exit_code == 0, result.output
    assert "flow version MISMATCH: recorded with 1, re-run with 2" in result.stdout


# -- fork ---------------------------------------------------------------------------------------


def _demo_points(path: str) -> tuple[int, int, int]:
    events = _events(path)
    return (_seq(events, "paused"), _seq(events, "shared_data_set", key="limit", value=3),
            _seq(events, "shared_log_appended"))


def test_fork_with_a_skipped_and_an_edited_event_resumes_to_the_expected_state(run: Any, demo_job: str,
                                                                              tmp_path: Path) -> None:
    """Fork the demo at its pause, limit 3 -> 1 and the shared-log entry skipped, resume: 1 order accepted."""
    paused, limit, log_entry = _demo_points(demo_job)
    with open_job(demo_job) as job:
        head_before, events_before, source_id = job.log.head_hash.hex(), job.head, job.job_id
    tree_before = _tree_digest(demo_job)
    new = str(tmp_path / "fork")
    result = run("fork", demo_job, "--at", str(paused), "--skip", str(log_entry), "--edit",
                 f'{limit}={{"value": 1}}', "-o", new, "--job-id", "what-if-1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"forked job {source_id} at version {paused} into {new}"
    # The original is untouched: same head hash, same files.
    with open_job(demo_job) as job:
        assert (job.log.head_hash.hex(), job.head) == (head_before, events_before)
    assert _tree_digest(demo_job) == tree_before

    flow = build_flow()
    job = JobState.open(new)
    try:
        assert job.job_id == "what-if-1" and job.status == "paused" and job.version == paused
        forked = job.get_execution_history("_flow")[-1]
        assert forked.event_name == "forked"
        assert forked.data["source_version"] == paused
        assert [s["seq"] for s in forked.data["skipped"]] == [log_entry]
        assert forked.data["edited"][0]["seq"] == limit
        assert forked.data["edited"][0]["original"]["value"] == 3
        assert forked.data["edited"][0]["edited"]["value"] == 1
        flow.resume(job)
        assert JobState.wait_for_completion(flow, job, timeout=30)
        assert job.status == "completed"
        assert job.get_routine_state("validate") == {"status": "completed", "accepted": 1,
                                                     "rejected": ["A-101", "A-102", "A-103"]}
        assert [o["data"] for o in job.output_log] == [
            {"lines": 1, "total": 9.0, "currency": "EUR"}, {"total": 9.0, "rejected": ["A-101", "A-102", "A-103"]}]
        assert list(job.shared_log) == []
        assert job.get_shared_data("limit") == 0 and job.get_shared_data("done") is True
    finally:
        flow.shutdown(wait=True, timeout=5)
        job.close()
    with open_job(demo_job) as original:
        assert original.log.head_hash.hex() == head_before


def test_fork_prefix_is_the_original_minus_skips_plus_edits(demo_job: str, tmp_path: Path) -> None:
    """Event for event, with the original timestamps; the source link is the original's link at --at."""
    from replay_tools.divergence import fork

    paused, limit, log_entry = _demo_points(demo_job)
    result = fork(demo_job, tmp_path / "f.rjob", at=paused, skip=[log_entry], edit={limit: {"value": 1}},
                  as_file=True)
    original = _events(demo_job)[:paused]
    forked = _events(str(tmp_path / "f.rjob"))
    assert len(forked) == paused  # one skipped, one marker added
    kept = [e for e in original if e.seq != log_entry]
    for old, new in zip(kept[1:], forked[1:-1], strict=True):
        assert (old.ts, old.kind) == (new.ts, new.kind)
        assert new.data == ({**old.data, "value": 1} if old.seq == limit else old.data)
    assert forked[0].data["job_id"] == result.job_id != original[0].data["job_id"]
    with open_job(demo_job) as job:
        assert result.source_link == job.log.link_at(paused).hex()


@pytest.mark.parametrize(("args", "message"), [
    (["--at", "999"], "outside the job's versions"),
    (["--at", "5", "--skip", "1"], "cannot skip version 1"),
    (["--at", "5", "--skip", "9"], "cannot skip version 9"),
    (["--at", "5", "--edit", "3=nope"], "the JSON does not parse"),
    (["--at", "5", "--edit", "3=[1]"], "give a JSON object"),
    (["--at", "5", "--edit", "x=1"], "expected SEQ=JSON"),
    (["--at", "5", "--edit", '2={"status": 5}'], "the fork cannot be replayed"),
])
def test_fork_refuses_bad_specs_and_leaves_nothing(run: Any, demo_job: str, tmp_path: Path, args: list[str],
                                                   message: str) -> None:
    """Bad points, skips and edits: one line, exit 2, and no file or directory left behind."""
    before = sorted(os.listdir(tmp_path))
    result = run("fork", demo_job, *args, "-o", str(tmp_path / "new"))
    assert result.exit_code == 2
    assert message in result.stderr
    assert sorted(os.listdir(tmp_path)) == before


def test_fork_refuses_an_existing_destination(run: Any, demo_job: str, tmp_path: Path) -> None:
    """A fork never writes over anything."""
    (tmp_path / "taken").mkdir()
    result = run("fork", demo_job, "--at", "5", "-o", str(tmp_path / "taken"))
    assert result.exit_code == 2 and "already exists" in result.stderr


# -- whatif -------------------------------------------------------------------------------------


def test_whatif_shows_how_the_final_state_would_differ(run: Any, demo_job: str) -> None:
    """whatif = fork + resume + diff of the final states, ids and times left out."""
    paused, limit, log_entry = _demo_points(demo_job)
    result = run("whatif", demo_job, "--at", str(paused), "--skip", str(log_entry), "--edit",
                 f'{limit}={{"value": 1}}', "--flow", "replay_tools.demo:build_flow")
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[0].endswith(f"forked at version {paused} (skipped {log_entry}; edited {limit}), resumed with "
                           "replay_tools.demo:build_flow: completed")
    assert "    ~ routine_states.validate.accepted: 3 -> 1" in out
    assert "    ~ output_log.0.data.total: 50.5 -> 9.0" in out
    assert '    - shared_log.0: {"event": "orders fetched", "count": 4, "attempt": 2}' in out
    assert not any("timestamp" in line or "job_id" in line for line in out)


def test_whatif_without_changes_shows_no_difference(run: Any, demo_job: str) -> None:
    """Forking at the pause and resuming with the same code ends where the original ended."""
    paused, _limit, _log = _demo_points(demo_job)
    result = run("whatif", demo_job, "--at", str(paused), "--flow", "replay_tools.demo:build_flow", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "completed" and report["differences"] == []


def test_commands_have_help(run: Any) -> None:
    """Every new command documents itself with an example."""
    for name in ("rerun", "fork", "whatif"):
        result = run(name, "--help")
        assert result.exit_code == 0 and "Example:" in result.stdout


def test_a_fork_verifies_against_its_source_and_not_against_another_job(demo_job: str, tmp_path: Path) -> None:
    """verify_fork: the recorded link, skips and edits rebuild the fork's prefix from the source exactly."""
    from replay_tools.demo import run_flow
    from replay_tools.divergence import fork, verify_fork

    paused, limit, log_entry = _demo_points(demo_job)
    fork(demo_job, tmp_path / "f", at=paused, skip=[log_entry], edit={limit: {"value": 1}})
    assert verify_fork(tmp_path / "f", demo_job) == []
    other = str(tmp_path / "other")
    run_flow(other)
    problems = verify_fork(tmp_path / "f", other)
    assert problems and problems[0].startswith(f"the source's hash-chain link at version {paused} is")
    assert verify_fork(demo_job, demo_job) == [f"the last event (version {_events(demo_job)[-1].seq}, status_set) "
                                               "is not a fork record"]
