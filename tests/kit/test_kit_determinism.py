"""assert_replay_deterministic passes on our example flows and catches planted non-determinism."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kit_flows
import pytest

from replay_tools.testing import (
    CompareRules,
    Execute,
    KitUsageError,
    Pause,
    ReplayDivergence,
    Resume,
    assert_rebuilds_agree,
    assert_replay_deterministic,
)
from routilux import JobState


def _first_planted(recorded: list[Any]) -> int:
    """The version of run 1's first event that carries the planted value."""
    return next(e.seq for e in recorded if e.kind == "output_sent" and e.data["output_type"] == "planted")


# -- the kit passes on our example flows --------------------------------------------------------


def test_demo_flow_with_pause_and_resume_is_deterministic() -> None:
    """The demo flow (retry, deferred event, external pause and resume) replays and re-runs identically."""
    job = assert_replay_deterministic(kit_flows.build_demo_flow, [
        Execute("fetch", {"customer": "acme"}), Pause("operator check", {"after": "fetch"}), Resume()])
    assert job.status == "completed"
    assert job.get_shared_data("done") is True


def test_squares_flow_whose_entry_races_the_worker_is_deterministic() -> None:
    """An entry that emits many events while the worker runs: lanes make the comparison timing-proof."""
    for _ in range(3):
        job = assert_replay_deterministic(kit_flows.build_squares, {"count": 8}, runs=3)
        assert [job.get_shared_data(f"square_{n}") for n in range(8)] == [n * n for n in range(8)]


def test_orders_flow_is_deterministic() -> None:
    """The quickstart-shaped flow."""
    job = assert_replay_deterministic(kit_flows.build_orders, Execute("fetch", {"customer": "zed", "count": 4}))
    assert job.get_shared_data("count") == 4


# -- planted non-determinism, one test per kind -------------------------------------------------


def test_catches_a_routine_that_reads_the_clock() -> None:
    """time.time() in an output: the failure names the version of that output in run 1."""
    with pytest.raises(ReplayDivergence) as caught:
        assert_replay_deterministic(kit_flows.build_clock, {"count": 4})
    err = caught.value
    assert err.version == _first_planted(err.recorded)
    assert f"first differing version: {err.version}" in str(err)
    assert "data.value" in str(err) and "routine planted" in str(err)
    assert [f.path for f in err.divergence.fields] == ["data.value"]


def test_catches_a_random_number() -> None:
    """random.random() in an output."""
    with pytest.raises(ReplayDivergence) as caught:
        assert_replay_deterministic(kit_flows.build_random, {"count": 4})
    err = caught.value
    assert err.version == _first_planted(err.recorded)
    assert [f.path for f in err.divergence.fields] == ["data.value"]


def _set_order(seed: int) -> list[str]:
    code = "import kit_flows; print(','.join(kit_flows.DependsOnSetOrder().value()))"
    env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip().split(",")


def test_catches_dependence_on_set_order() -> None:
    """list(set(strings)) differs between interpreters with other hash seeds: caught with hash_seeds."""
    assert _set_order(1) != _set_order(2), "the test needs two seeds that order the tags differently"
    with pytest.raises(ReplayDivergence) as caught:
        assert_replay_deterministic(kit_flows.build_set_order, {"count": 4}, hash_seeds=[1, 2])
    err = caught.value
    assert err.version == _first_planted(err.recorded)
    assert "PYTHONHASHSEED 2 vs 1" in str(err)
    assert all(f.path.startswith("data.value.") for f in err.divergence.fields)
    # The same flow in one interpreter (one seed) looks deterministic: that is why hash_seeds exists.
    assert_replay_deterministic(kit_flows.build_set_order, {"count": 4}, hash_seeds=[3, 3])


def test_catches_an_external_counter() -> None:
    """A counter that outlives the run (module state) gives each run another ticket."""
    with pytest.raises(ReplayDivergence) as caught:
        assert_replay_deterministic(kit_flows.build_counter, {"count": 4})
    err = caught.value
    assert err.version == _first_planted(err.recorded)
    (change,) = err.divergence.fields
    assert change.path == "data.value" and change.actual == change.expected + 1


def test_an_ignore_rule_accepts_a_planted_value() -> None:
    """Ignoring the planted field by rule makes the clock flow pass (rules are configurable)."""
    rules = CompareRules().ignoring("output_sent[output_type=planted].data.value")
    assert_replay_deterministic(kit_flows.build_clock, {"count": 4}, rules=rules)


# -- the rebuild checks can fail, and say where -------------------------------------------------


def test_rebuild_check_names_the_version_where_a_rebuild_differs(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A time-travel bug (at(v) answering v-1 from version 6 on) is reported at version 6."""
    job = JobState.open(tmp_path / "job", flow_id="f", durability="none")
    job.snapshot_every = 3
    for i in range(10):
        job.update_shared_data("i", i)
    real_at = JobState.at

    def broken_at(self: JobState, version: int | None = None, timestamp: Any = None) -> JobState:
        if version is not None and version >= 6 and not self.readonly:
            version -= 1
        return real_at(self, version=version, timestamp=timestamp)

    monkeypatch.setattr(JobState, "at", broken_at)
    with pytest.raises(ReplayDivergence) as caught:
        assert_rebuilds_agree(job, str(tmp_path))
    assert caught.value.version == 6
    assert "snapshot + tail (live job) differs from the full replay" in str(caught.value)
    assert "shared_data.i: 4 -> 3" in str(caught.value)


def test_inputs_must_name_an_entry_when_the_flow_has_several() -> None:
    """A dict of params is refused for a flow with two entry routines, with the fix in the message."""
    def two_entries() -> Any:
        flow = kit_flows.build_orders()
        flow.add_routine(kit_flows.Numbers(), "numbers")
        return flow

    with pytest.raises(KitUsageError, match="give Execute"):
        assert_replay_deterministic(two_entries, {"count": 1})


def test_hash_seeds_need_an_importable_factory() -> None:
    """A local factory cannot run in a child interpreter: a clear error, not a crash there."""
    def local() -> Any:
        return kit_flows.build_orders()

    with pytest.raises(KitUsageError, match="module-level"):
        assert_replay_deterministic(local, {"count": 1}, hash_seeds=[1, 2])
