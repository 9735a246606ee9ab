"""The checks of the write path that were made cheaper (issue 11) still say what they said.

* The generated shape checks (``job_events.SHAPE_CHECKS``) accept exactly the payloads
  :func:`~routilux.job_events.payload_problem` finds nothing wrong with.
* ``record_execution`` relies on its event's shape check for the ids: a non-str id is
  still a ``TypeError`` naming the argument, and nothing is written.
* The snapshot and checkpoint policies are armed by one "due" version: they still fire
  at their intervals, after the interval or the policy changes, and after a reopen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlog.signing import generate_key
from routilux import JobState
from routilux import job_events as ev
from routilux.job_audit import CheckpointPolicy

_FIELD_NAMES = sorted({f.name for spec in ev.KINDS.values() for f in spec.shape} | {"other"})
_FIELD_VALUES = st.one_of(st.none(), st.text(max_size=3), st.integers(-2, 2), st.booleans(),
                          st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
                          st.lists(st.integers(), max_size=2))
#: A value of each declared field type (routilux.job_events: str, str or None, int, dict, list, any).
_OF_TYPE = {"str": st.text(max_size=3), "str?": st.one_of(st.none(), st.text(max_size=3)), "int": st.integers(-2, 2),
            "dict": st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
            "list": st.lists(st.integers(), max_size=2), "any": _FIELD_VALUES}


@st.composite
def _payloads(draw: st.DrawFn) -> tuple[str, Any]:
    """A kind and a payload that is often valid, often off by one field, type or name."""
    kind = draw(st.sampled_from(sorted(ev.KINDS)))
    spec = ev.KINDS[kind]
    data: dict[str, Any] = {}
    for f in spec.shape:
        if f.required or draw(st.booleans()):
            right = draw(st.integers(0, 9)) > 0  # mostly of the declared type
            data[f.name] = draw(_OF_TYPE[f.type] if right else _FIELD_VALUES)
    for name in draw(st.lists(st.sampled_from(_FIELD_NAMES), max_size=1)):
        if draw(st.booleans()):
            data.pop(name, None)
        else:
            data[name] = draw(_FIELD_VALUES)
    wrapped = draw(st.sampled_from(["dict", "dict", "dict", "list", "none"]))
    return kind, data if wrapped == "dict" else list(data) if wrapped == "list" else None


@given(_payloads())
def test_the_generated_shape_check_agrees_with_the_explanation(case: tuple[str, Any]) -> None:
    kind, data = case
    assert ev.SHAPE_CHECKS[kind](data) == (ev.payload_problem(kind, data) is None), (kind, data)


@pytest.mark.parametrize(("routine_id", "event_name", "named"), [(5, "ev", "routine_id"), ("r", None, "event_name"),
                                                                 (b"r", b"e", "routine_id")])
def test_record_execution_names_a_non_str_id_and_writes_nothing(routine_id: Any, event_name: Any,
                                                                named: str) -> None:
    job = JobState("f")
    before = job.version
    with pytest.raises(TypeError, match=rf"^{named} must be a str, got "):
        job.record_execution(routine_id, event_name, {"x": 1})
    assert job.version == before
    assert job.execution_history == []


def _record(job: JobState, n: int) -> None:
    for i in range(n):
        job.record_execution("r", "e", {"i": i})
    job._writer.drain_snapshots()


def test_snapshots_follow_the_interval_as_it_changes(tmp_path: Path) -> None:
    with JobState.open(tmp_path / "job", flow_id="f") as job:  # version 1: job_created
        job.snapshot_every = 5
        _record(job, 11)  # versions 2..12
        assert job.log.snapshot_seqs() == [5, 10]
        job.snapshot_every = 3  # counts on from the last snapshot (10)
        _record(job, 4)  # 13..16
        assert job.log.snapshot_seqs()[-2:] == [13, 16]
    with JobState.open(tmp_path / "job", flow_id="f") as job:  # the policy goes on from the newest snapshot
        job.snapshot_every = 3
        _record(job, 3)  # 17..19
        assert job.log.snapshot_seqs()[-1] == 19


def test_checkpoints_follow_their_policy_beside_the_snapshot_policy(tmp_path: Path) -> None:
    policy = CheckpointPolicy(generate_key("test"), every=3, at_terminal=False)
    with JobState.open(tmp_path / "job", flow_id="f", checkpoints=policy) as job:  # version 1
        job.snapshot_every = 4
        _record(job, 9)  # versions 2..10: checkpoints at 4, 7, 10; snapshots at 4, 8
        assert len(job.log.checkpoint_notes()) == 3
        assert job.log.snapshot_seqs() == [4, 8]
