"""The kit's strategies and its FlowMachine, used as a user would."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import kit_flows
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule, run_state_machine_as_test

from replay_tools.testing import (
    Execute,
    FlowMachine,
    JobOperation,
    KitUsageError,
    ReplayDivergence,
    assert_rebuilds_agree,
    assert_replay_deterministic,
    entry_params,
    flow_inputs,
    job_operations,
    kit_seed,
    seeded,
    storable_values,
)
from routilux import JobState

FEW = settings(max_examples=5, deadline=None, stateful_step_count=4)


@seeded
@FEW
@given(flow_inputs(kit_flows.build_orders, count=st.integers(0, 4)))
def test_orders_flow_is_deterministic_for_any_input(inputs: Execute) -> None:
    """flow_inputs + assert_replay_deterministic: the README's property test."""
    assert inputs.entry == "fetch" and set(inputs.params or {}) <= {"customer", "count"}
    assert_replay_deterministic(kit_flows.build_orders, inputs)


@given(entry_params(kit_flows.build_orders(), "fetch"))
def test_entry_params_follow_the_handler_signature(params: dict[str, Any]) -> None:
    """customer: str and count: int, both optional (they have defaults)."""
    assert set(params) <= {"customer", "count"}
    assert isinstance(params.get("customer", ""), str)
    assert type(params.get("count", 0)) is int


def test_entry_params_refuse_a_routine_that_is_not_an_entry() -> None:
    """A routine without a trigger handler is named, with the flow's entries."""
    with pytest.raises(KitUsageError, match=r"'count' is not an entry routine .* \['fetch'\]"):
        entry_params(kit_flows.build_orders(), "count")


@FEW
@given(st.lists(job_operations(), min_size=1, max_size=20))
def test_any_job_operations_rebuild_identically_everywhere(ops: list[JobOperation]) -> None:
    """job_operations drive a durable job; every rebuild agrees with a full replay at every version."""
    with tempfile.TemporaryDirectory() as tmp:
        job = JobState.open(os.path.join(tmp, "job"), flow_id="ops", durability="none")
        job.snapshot_every = 3
        for op in ops:
            op.apply(job)
        assert_rebuilds_agree(job, tmp).close()


@given(storable_values())
def test_storable_values_are_storable(value: Any) -> None:
    """Everything storable_values draws is accepted by a job and comes back equal."""
    job = JobState("f")
    job.update_shared_data("v", value)
    assert JobState.from_events(job.events()).get_shared_data("v") == value


# -- FlowMachine ------------------------------------------------------------------------------


class OrdersMachine(FlowMachine):
    """Drives the orders flow: batches of any size and customer, pauses and resumes."""

    flow_factory = kit_flows.build_orders

    @rule(params=entry_params(kit_flows.build_orders(), "fetch", count=st.integers(0, 3)))
    def run_batch(self, params: dict[str, Any]) -> None:
        self.execute("fetch", params)
        assert self.job.status == "running" or self.job.get_shared_data("count") is not None

    @rule()
    def pause_and_resume(self) -> None:
        self.pause("check")
        assert self.job.status == "paused"
        self.resume()


OrdersMachine.TestCase.settings = FEW
TestOrdersMachine = OrdersMachine.TestCase


class ClockMachine(FlowMachine):
    """A machine over a flow that reads the clock: its examples must fail."""

    flow_factory = kit_flows.build_clock

    @rule(count=st.integers(3, 4))
    def run(self, count: int) -> None:
        self.execute("numbers", {"count": count})


def test_flow_machine_catches_planted_non_determinism() -> None:
    """The machine's end-of-example check re-runs the inputs and names the first differing version."""
    with pytest.raises(ReplayDivergence) as caught:
        run_state_machine_as_test(ClockMachine, settings=FEW)
    err = caught.value
    planted = next(e.seq for e in err.recorded if e.kind == "output_sent")
    assert err.version == planted
    assert f"Hypothesis seed: {kit_seed()}" in str(err)


def test_flow_machine_needs_a_factory() -> None:
    """A subclass without flow_factory is told what to set."""
    class Bare(FlowMachine):
        @rule()
        def nothing(self) -> None:
            pass

    with pytest.raises(KitUsageError, match="must set flow_factory"):
        Bare()


def test_flow_machines_are_seeded_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """ROUTILUX_REPLAY_SEED fixes the seed of every subclass."""
    monkeypatch.setenv("ROUTILUX_REPLAY_SEED", "4242")

    class Seeded(FlowMachine):
        flow_factory = kit_flows.build_orders

    assert Seeded._hypothesis_internal_use_seed == 4242  # what hypothesis.seed(...) sets
