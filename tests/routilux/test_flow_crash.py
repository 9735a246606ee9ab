"""Crash recovery: a durable flow killed with SIGKILL at random points resumes to completion.

A child process runs a multi-routine flow against ``JobState.open(path)``; every handler
appends a line to a side-effect file. The test kills the run (and some of the resuming
processes) at random moments, then resumes in fresh processes until the job completes, and
checks at-least-once delivery: every expected side effect happened at least once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from routilux import JobState
from routilux.flow import RESUMED_AFTER_INTERRUPTION

N = 6  # values the entry emits; each goes through stage1 -> stage2 (fan-out 2) -> stage3

CHILD = textwrap.dedent('''
    import os, sys, time
    from routilux import Flow, JobState, Routine

    mode, job_path, effects = sys.argv[1], sys.argv[2], sys.argv[3]
    fd = os.open(effects, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def effect(line):
        os.write(fd, (line + "\\n").encode())

    class Stage(Routine):
        def __init__(self, name, fan=1):
            super().__init__()
            self.name, self.fan = name, fan
            self.define_slot("trigger", self.start)
            self.define_slot("in", self.on)
            self.define_event("out")

        def start(self, n):
            effect("start")
            for i in range(n):
                self.emit("out", value=str(i))

        def on(self, value):
            effect(f"{self.name} {value}")
            time.sleep(0.02)
            for j in range(self.fan):
                self.emit("out", value=f"{value}.{j}" if self.fan > 1 else value)

    flow = Flow("crash-flow")
    flow.add_routine(Stage("start"), "start")
    flow.add_routine(Stage("stage1"), "stage1")
    flow.add_routine(Stage("stage2", fan=2), "stage2")
    flow.add_routine(Stage("stage3"), "stage3")
    flow.connect("start", "out", "stage1", "in")
    flow.connect("stage1", "out", "stage2", "in")
    flow.connect("stage2", "out", "stage3", "in")

    job = JobState.open(job_path, flow_id=flow.flow_id)
    if mode == "run":
        flow.execute("start", {"n": int(sys.argv[4])}, job_state=job)
    else:
        flow.resume(job)
    ok = JobState.wait_for_completion(flow, job, timeout=60)
    print(job.status if ok else "timeout", flush=True)
    job.close()
''')


def expected_effects(n: int) -> set[str]:
    out = {"start"}
    for i in range(n):
        out |= {f"stage1 {i}", f"stage2 {i}", f"stage3 {i}.0", f"stage3 {i}.1"}
    return out


def spawn(script: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def kill_after_progress(proc: subprocess.Popen[str], effects: Path, rng: random.Random) -> bool:
    """SIGKILL ``proc`` at a random moment after it made progress; False if it finished first."""
    start = len(lines(effects))
    deadline = time.monotonic() + 30
    while len(lines(effects)) <= start and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.12))
    if proc.poll() is not None:
        proc.communicate()
        return False
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return True


def test_sigkilled_durable_flow_resumes_to_completion(tmp_path: Path, rng: random.Random) -> None:
    """Several SIGKILLs mid-run; resume in fresh processes completes with every effect at least once."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    job_path, effects = tmp_path / "job", tmp_path / "effects.txt"
    kills = 0
    proc = spawn(script, "run", str(job_path), str(effects), str(N))
    kills += kill_after_progress(proc, effects, rng)
    for _ in range(2):  # kill a couple of resuming processes too
        proc = spawn(script, "resume", str(job_path), str(effects))
        kills += kill_after_progress(proc, effects, rng)
    final = spawn(script, "resume", str(job_path), str(effects))
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert out.strip() == "completed", (out, err)
    assert kills >= 1  # the run itself is always killed before it can finish

    seen = lines(effects)
    assert expected_effects(N) <= set(seen), sorted(expected_effects(N) - set(seen))
    assert set(seen) <= expected_effects(N)

    with JobState.open(job_path) as job:
        assert job.status == "completed"
        assert dict(job.open_tasks) == {}
        marks = [r for r in job.get_execution_history() if r.event_name == RESUMED_AFTER_INTERRUPTION]
        assert len(marks) >= 1
        assert all(m.data["previous_status"] == "running" for m in marks)
        # Every re-run task was recorded as queued before, and has finished since.
        queued = {e.data["task_id"] for e in job.events(kind="task_queued")}
        closed = {e.data["task_id"] for e in job.events(kind=["task_finished", "task_failed"])}
        rerun = {t["task_id"] for m in marks for t in m.data["rerun_tasks"]}
        assert rerun <= queued and rerun <= closed
        assert job.serialize() == JobState.from_events(job.events()).serialize()
