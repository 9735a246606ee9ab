"""Nothing dropped: pending tasks survive serialize()/JSON/deserialize() and resume() runs them;
queued work finishes before the interpreter exits; a durable job cut off at exit resumes (issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from compat_support import FIXTURES, assert_replays, fixture, needs_reference, run_reference
from fixture_routines import RELEASE, Collector, NumberSource, SlowWorker

from routilux import Flow, JobState
from routilux.flow import RESUMED_AFTER_INTERRUPTION


def _paused_flow() -> Flow:
    flow = Flow(flow_id="paused-flow")
    source = NumberSource()
    source.set_config(count=2)
    slow = SlowWorker()
    slow.set_config(delay=0.0, defer=True)
    flow.add_routine(source, "source")
    flow.add_routine(slow, "slow")
    flow.add_routine(Collector(), "collector")
    flow.connect("source", "numbers", "slow", "values")
    flow.connect("slow", "finished", "collector", "items")
    return flow


@pytest.fixture
def held_worker() -> Any:
    """SlowWorker blocks until the test releases it (so a pause lands while it runs)."""
    RELEASE.clear()
    yield RELEASE
    RELEASE.set()


def _pause_with_a_pending_task(release: Any) -> tuple[Flow, JobState]:
    flow = _paused_flow()
    job = flow.execute("source")
    import threading

    # The worker is blocked in its handler: pause waits for it (up to 5 s), so release it
    # shortly after; its emit then lands in the pause's pending list.
    threading.Timer(0.2, release.set).start()
    flow.pause(job, reason="move to host B")
    assert job.status == "paused" and len(job.pending_tasks) == 1
    assert job.pending_tasks[0]["slot_routine_id"] == "collector"
    return flow, job


def test_cross_host_resume_runs_the_pending_tasks(held_worker: Any) -> None:
    """serialize -> JSON -> deserialize -> resume: the held task and the deferred event run."""
    flow, job = _pause_with_a_pending_task(held_worker)
    transfer = json.loads(json.dumps({"flow": flow.serialize(), "job_state": job.serialize()}))
    flow.shutdown()

    host_b = Flow()
    host_b.deserialize(transfer["flow"])
    moved = JobState()
    moved.deserialize(transfer["job_state"])
    assert moved.pending_tasks == job.pending_tasks and moved.status == "paused"
    resumed = host_b.resume(moved)
    assert resumed is moved
    assert JobState.wait_for_completion(host_b, moved, timeout=10)
    assert moved.status == "completed"
    # the pending task (values [1, 2]) and the deferred event (["deferred"]) both reached the collector
    assert moved.shared_data["collected"] == [["deferred"], [1, 2]]  # deferred events run first
    assert moved.deferred_events == []
    assert_replays(moved)

    # Resumed again by another Flow object: the task is in the log as finished, so it does not run twice.
    host_c = Flow()
    host_c.deserialize(transfer["flow"])
    host_c.resume(moved)
    assert JobState.wait_for_completion(host_c, moved, timeout=10)
    assert len(moved.shared_data["collected"]) == 2
    assert_replays(moved)
    host_b.shutdown()
    host_c.shutdown()


def test_010_paused_save_resumes_here_with_its_pending_tasks() -> None:
    """A job paused and saved by routilux 0.10 (tasks named by hex _id) resumes on our flow."""
    flow = Flow()
    flow.deserialize(fixture("flows/paused.json"))
    flow.routines["slow"].set_config(delay=0.0)
    job = JobState()
    job.deserialize(fixture("saves/paused.json"))
    assert job.status == "paused" and job.pending_tasks[0]["slot_routine_id"].startswith("0x")
    flow.resume(job)
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert job.status == "completed"
    # 0.10's own resume drops this task (its routine ids do not match) and runs the deferred
    # event outside the job; here both run in the job, the deferred event first (as in 0.10).
    assert job.shared_data["collected"] == [["deferred"], [1, 2]]
    assert_replays(job)
    flow.shutdown()


@needs_reference
def test_010_itself_drops_the_pending_task_of_its_save() -> None:
    """What we improve on: routilux 0.10 resuming its own save records neither task in the job.

    It drops the pending task (routine ids by hex ``_id``) and runs the deferred event's task
    without the JobState, so nothing reaches ``shared_data`` (ROUTILUX_API.md §7 (a), (b)).
    """
    script = """
import json
import fixture_routines
from routilux import Flow, JobState
flow = Flow(); flow.deserialize(json.load(open("flows/paused.json")))
flow.routines["slow"].set_config(delay=0.0)
job = JobState(); job.deserialize(json.load(open("saves/paused.json")))
flow.resume(job)
JobState.wait_for_completion(flow, job, timeout=10)
print(json.dumps(job.shared_data.get("collected")))
"""
    done = run_reference(script)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) is None


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, PYTHONPATH=str(FIXTURES), **(env or {}))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True,
                          text=True, timeout=120, env=full_env)


EXIT_SCRIPT = """
import sys, time
from routilux import Flow, Routine, JobState

class Step(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.run)
        self.define_slot("inp", handler=self.run)
        self.define_event("out", ["n"])

    def run(self, n=0, **_):
        time.sleep(0.05)
        with open(sys.argv[1], "a") as f:
            f.write(f"{self.get_config('name')} {n}\\n")
        if n < 5:
            self.emit("out", n=n + 1)

flow = Flow(flow_id="exit-flow")
for name in "ab":
    step = Step()
    step.set_config(name=name)
    flow.add_routine(step, name)
flow.connect("a", "out", "b", "inp")
flow.connect("b", "out", "a", "inp")
if len(sys.argv) > 2:  # a durable job (not 0.10 API)
    flow.execute("a", job_state=JobState.open(sys.argv[2], flow_id="exit-flow"))
else:
    flow.execute("a")
print("returned", flush=True)
"""


def test_work_queued_by_execute_finishes_before_exit(tmp_path: Path) -> None:
    """A script that returns right after execute() still runs the whole chain (0.10 ran the queued task)."""
    out = tmp_path / "steps.txt"
    done = _run(EXIT_SCRIPT, str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text().split("\n")[:-1] == ["a 0", "b 1", "a 2", "b 3", "a 4", "b 5"]
    # With a durable job: every task is recorded as finished before the process ended.
    path = tmp_path / "job"
    done = _run(EXIT_SCRIPT, str(tmp_path / "steps2.txt"), str(path))
    assert done.returncode == 0, done.stderr
    with JobState.open(path) as job:
        assert dict(job.open_tasks) == {}
        assert job.status == "running"  # as in 0.10: only wait_for_completion marks it completed
        assert [r.event_name for r in job.execution_history] == ["start"] + ["out"] * 5
        assert_replays(job)


@needs_reference
def test_010_finishes_only_what_was_queued_at_exit(tmp_path: Path) -> None:
    """routilux 0.10 runs at most the task queued by execute() at exit (a race), never what it emits."""
    out = tmp_path / "steps.txt"
    done = run_reference(EXIT_SCRIPT, str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text().split("\n")[:-1] in (["a 0"], ["a 0", "b 1"])


def test_durable_job_cut_off_at_exit_resumes_from_its_log(tmp_path: Path) -> None:
    """Killed while finishing its work at exit, a durable job resumes in a new process and completes."""
    out, path = tmp_path / "steps.txt", tmp_path / "job"
    crash = EXIT_SCRIPT.replace('''        with open(sys.argv[1], "a") as f:''', '''        if n == 3:
            import os
            os._exit(9)  # killed during the exit drain, after "b 1" and "a 2" ran
        with open(sys.argv[1], "a") as f:''')
    done = _run(crash, str(out), str(path))
    assert done.returncode == 9 and "returned" in done.stdout, done.stderr
    assert out.read_text().split("\n")[:-1] == ["a 0", "b 1", "a 2"]

    resume = EXIT_SCRIPT.replace('''if len(sys.argv) > 2:  # a durable job (not 0.10 API)
    flow.execute("a", job_state=JobState.open(sys.argv[2], flow_id="exit-flow"))
else:
    flow.execute("a")''', '''job = JobState.open(sys.argv[2])
flow.resume(job)
assert JobState.wait_for_completion(flow, job, timeout=30)
assert job.serialize() == JobState.from_events(job.events()).serialize()
print(job.status, [r.event_name for r in job.execution_history if r.routine_id == "_flow"])
job.close()''')
    done = _run(resume, str(out), str(path))
    assert done.returncode == 0, done.stderr
    assert f"completed ['{RESUMED_AFTER_INTERRUPTION}']" in done.stdout
    # Nothing is lost. Delivery is at-least-once (see routilux/flow/flow.py): "a 2" ran, but
    # its end was not in the log yet when the process died (task ends ride with the job's
    # next batch), so it runs again, and what it emits runs again too.
    lines = out.read_text().split("\n")[:-1]
    assert lines[:3] == ["a 0", "b 1", "a 2"]
    assert set(lines[3:]) >= {"b 3", "a 4", "b 5"}
    assert all(lines.count(step) <= 2 for step in set(lines))


def test_010_pending_task_runs_once_across_a_crash(tmp_path: Path) -> None:
    """A 0.10 pending task (no task id) resumed into a durable job, crashed, resumed again: runs once."""
    script = """
    import json, os, sys
    import fixture_routines
    from routilux import Flow, JobState
    if sys.argv[2] == "crash":  # the first delivery kills the process
        fixture_routines.Collector.collect = lambda self, **kw: os._exit(7)
    flow = Flow()
    flow.deserialize(json.load(open(sys.argv[3] + "/flows/paused.json")))
    flow.routines["slow"].set_config(delay=0.0)
    job = JobState.open(sys.argv[1], flow_id="paused-flow")
    if sys.argv[2] == "crash":
        job.deserialize(json.load(open(sys.argv[3] + "/saves/paused.json")))
    flow.resume(job)
    assert JobState.wait_for_completion(flow, job, timeout=30)
    assert job.serialize() == JobState.from_events(job.events()).serialize()
    print(json.dumps([job.status, job.shared_data.get("collected")]))
    job.close()
    """
    path = str(tmp_path / "job")
    crashed = _run(script, path, "crash", str(FIXTURES))
    assert crashed.returncode == 7, crashed.stderr
    done = _run(script, path, "resume", str(FIXTURES))
    assert done.returncode == 0, done.stderr
    status, collected = json.loads(done.stdout)
    assert status == "completed" and sorted(collected, key=str) == [["deferred"], [1, 2]]


def test_a_flow_that_never_idles_leaves_on_ctrl_c_or_shutdown() -> None:
    """The exit wait ends on Ctrl-C (one warning line) or not at all after flow.shutdown()."""
    script = """
    import os, signal, sys, threading, time
    from routilux import Flow, Routine
    signal.signal(signal.SIGINT, signal.default_int_handler)

    class Loop(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=self.run)
            self.define_slot("again", handler=self.run)
            self.define_event("out", ["n"])

        def run(self, n=0, **_):
            time.sleep(0.02)
            self.emit("out", n=n + 1)

    flow = Flow()
    flow.add_routine(Loop(), "loop")
    flow.connect("loop", "out", "loop", "again")
    flow.execute("loop")
    if sys.argv[1] == "shutdown":
        flow.shutdown()
    else:
        threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    """
    done = _run(script, "shutdown")
    assert done.returncode == 0, done.stderr
    done = _run(script, "interrupt")
    assert "interrupted while finishing queued work at exit" in done.stderr
    assert "Traceback" not in done.stderr


def test_emit_after_shutdown_is_abandoned_not_restarted(held_worker: Any) -> None:
    """A handler still running when shutdown() returns does not start new workers: its emit stays open."""
    import threading

    flow = _paused_flow()
    job = flow.execute("source")
    stopper = threading.Thread(target=flow.shutdown)  # waits for the running (held) worker
    stopper.start()
    held_worker.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert flow._scheduler is None  # nothing was restarted behind shutdown's back
    (task,) = job.open_tasks.values()  # the worker's emit: recorded, not run
    assert task["task"]["routine_id"] == "collector"
    assert "collected" not in job.shared_data
    flow.resume(job)  # a later resume runs it (after the worker's deferred event)
    assert JobState.wait_for_completion(flow, job, timeout=10)
    assert job.shared_data["collected"] == [["deferred"], [1, 2]]
    assert_replays(job)
    flow.shutdown()
