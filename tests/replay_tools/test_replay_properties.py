"""state --at, diff, bisect and blame agree with a brute-force full replay on random logs.

Each example drives a JobState with random mutations (snapshots every few events, so the
fast paths start from snapshots), then compares every answer of the library with the
oracle: ``JobState.from_events(events[:v]).serialize()`` for each version ``v``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

import replay_tools.replay as replay_module
from replay_tools import bisect, blame, diff, parse_condition, projection_at, state_at, state_dict
from replay_tools.diff import Difference, diff_states, same_value
from replay_tools.errors import ConditionTypeError, UnknownFieldError
from replay_tools.paths import MISSING, parse_path, resolve
from replay_tools.replay import transitions
from replay_tools.source import Job
from routilux.job_state import JobState

ROUTINES = ["fetch", "parse"]
KEYS = ["limit", "mode"]
STATUSES = ["pending", "running", "paused", "completed", "failed", "cancelled"]
values = st.one_of(st.integers(-1, 3), st.sampled_from(["a", "b"]), st.none(),
                   st.lists(st.integers(0, 2), max_size=2))
ops = st.one_of(
    st.tuples(st.just("status"), st.sampled_from(STATUSES)),
    st.tuples(st.just("shared"), st.sampled_from(KEYS), values),
    st.tuples(st.just("routine"), st.sampled_from(ROUTINES),
              st.fixed_dictionaries({"status": st.sampled_from(["running", "failed", "error", "completed"])},
                                    optional={"n": st.integers(0, 2)})),
    st.tuples(st.just("record"), st.sampled_from(ROUTINES), st.sampled_from(["start", "out"])),
    st.tuples(st.just("output"), st.sampled_from(ROUTINES), st.integers(0, 3)),
    st.tuples(st.just("log"), st.integers(0, 3)),
    st.tuples(st.just("defer"), st.sampled_from(ROUTINES)),
    st.tuples(st.just("clear_deferred")),
    st.tuples(st.just("pause"), st.sampled_from(["", "check"])),
    st.tuples(st.just("resume")),
    st.tuples(st.just("cancel"), st.sampled_from(["", "stop"])),
    st.tuples(st.just("current"), st.sampled_from([*ROUTINES, None])),
    st.tuples(st.just("pending"), st.lists(st.integers(0, 3), max_size=2)),
)


def build(program: list[tuple[Any, ...]]) -> Job:
    """Run ``program`` on a fresh in-memory JobState (snapshots every 3 events)."""
    job = JobState("prop")
    job.snapshot_every = 3
    for op in program:
        name = op[0]
        if name == "status":
            job.status = op[1]
        elif name == "shared":
            job.update_shared_data(op[1], op[2])
        elif name == "routine":
            job.update_routine_state(op[1], op[2])
        elif name == "record":
            job.record_execution(op[1], op[2], {"via": op[1]})
        elif name == "output":
            job.send_output(op[1], "result", {"n": op[2]})
        elif name == "log":
            job.append_to_shared_log({"n": op[1]})
        elif name == "defer":
            job.add_deferred_event(op[1], "later", {"x": 1})
        elif name == "clear_deferred":
            job.deferred_events = []
        elif name == "pause":
            job._set_paused(reason=op[1])
        elif name == "resume":
            job._set_running()
        elif name == "cancel":
            job._set_cancelled(reason=op[1])
        elif name == "current":
            job.current_routine_id = op[1]
        elif name == "pending":
            job.pending_tasks = [{"slot_routine_id": "fetch", "n": n} for n in op[1]]
    return Job("<memory>", "memory", job.log, None)


def oracle(job: Job) -> list[dict[str, Any] | None]:
    """``states[v]``: the serialized state after a full replay of events 1..v (index 0 unused)."""
    records = list(job.log.read())
    return [None] + [JobState.from_events(records[:v]).serialize() for v in range(1, len(records) + 1)]


programs = st.lists(ops, min_size=1, max_size=25)


@given(programs)
def test_state_at_every_version_matches_full_replay(program: list[tuple[Any, ...]]) -> None:
    """The state at version v (snapshot + tail) equals a full replay of events 1..v."""
    job = build(program)
    states = oracle(job)
    assert job.log.snapshots() or job.head < 3
    for version in range(1, job.head + 1):
        assert state_dict(projection_at(job, version, history=True)) == states[version]
        assert state_at(job, version).serialize() == states[version]
        light = state_dict(projection_at(job, version, history=False), history=False)
        assert light == {k: v for k, v in states[version].items()  # type: ignore[union-attr]
                         if k not in ("execution_history", "shared_log", "output_log", "pause_points")}


LIST_GROUPS = ("execution_history", "deferred_events", "output_log", "shared_log", "pause_points", "pending_tasks")


def patch(state: dict[str, Any], diffs: list[Difference]) -> dict[str, Any]:
    """Apply differences to a serialized state (the test's own reading of the diff)."""
    import copy

    out = copy.deepcopy(state)
    for d in diffs:
        if d.group in LIST_GROUPS:
            continue
        path = parse_path(d.path)
        target = out
        for seg in path[:-1]:
            target = target[seg]
        if d.change == "removed":
            del target[path[-1]]
        else:
            target[path[-1]] = copy.deepcopy(d.new)
    for group in LIST_GROUPS:
        items = [d for d in diffs if d.group == group]
        removed = [int(d.path.rsplit(".", 1)[1]) for d in items if d.change == "removed"]
        if removed:
            del out[group][min(removed):]
        out[group].extend(copy.deepcopy(d.new) for d in items if d.change == "added")
    return out


@given(programs, st.data())
def test_diff_matches_full_replay_and_is_complete(program: list[tuple[Any, ...]], data: st.DataObject) -> None:
    """diff(a, b) equals the diff of two full replays, and applying it to a gives b."""
    job = build(program)
    states = oracle(job)
    a = data.draw(st.integers(1, job.head))
    b = data.draw(st.integers(1, job.head))
    got = diff(job, a, b)
    assert got == diff_states(states[a], states[b])  # type: ignore[arg-type]
    assert patch(states[a], got) == states[b]  # type: ignore[arg-type]
    assert (got == []) == (states[a] == states[b])


def _value() -> st.SearchStrategy[str]:
    return st.sampled_from(["0", "1", "3", "-1", "a", "'b'", "null", "true"])


atoms = st.one_of(
    st.builds(lambda s: f"status == {s}", st.sampled_from(STATUSES)),
    st.builds(lambda s, t: f"status in [{s}, {t}]", st.sampled_from(STATUSES), st.sampled_from(STATUSES)),
    st.builds(lambda k, op, v: f"shared_data.{k} {op} {v}", st.sampled_from(KEYS),
              st.sampled_from(["==", "!=", "<", ">="]), _value()),
    st.builds(lambda k: f"shared_data.{k} in [0, 1, 3]", st.sampled_from(KEYS)),
    st.builds(lambda r: f"routine_states.{r}.status in [failed, error]", st.sampled_from(ROUTINES)),
    st.builds(lambda r, n: f"routine_states.{r}.n == {n}", st.sampled_from(ROUTINES), st.integers(0, 2)),
    st.builds(lambda n: f"len(execution_history) >= {n}", st.integers(0, 4)),
    st.builds(lambda n: f"len(output_log) > {n}", st.integers(0, 2)),
    st.builds(lambda n: f"len(deferred_events) == {n}", st.integers(0, 2)),
    st.builds(lambda n: f"len(pause_points) >= {n}", st.integers(1, 2)),
    st.builds(lambda k: f"shared_data.{k} exists", st.sampled_from(KEYS)),
    st.builds(lambda k: f"shared_data.{k} missing", st.sampled_from([*KEYS, "never"])),
    st.just("current_routine_id == fetch"),
    st.just("not current_routine_id"),
    st.just("shared_data.never == 1"),
    st.just("version >= 4"),
)
conditions = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
        st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
        st.builds(lambda a: f"not ({a})", inner),
    ),
    max_leaves=3,
)


class Brute(NamedTuple):
    """What a full replay at every version says about a condition."""

    truth: list[bool]  # truth[v] for v in 1..head (index 0 unused); cut short at an error
    error_at: int | None  # the first version where evaluating it is a type error
    known: bool  # every field it needs exists at some version (or at the head)


def brute(job: Job, cond: Any, states: list[Any]) -> Brute:
    """Evaluate ``cond`` on the full replay of every version, in order."""
    truth = [False]
    error_at = None
    for v in range(1, job.head + 1):
        try:
            truth.append(cond.evaluate(states[v], v))
        except ConditionTypeError:
            error_at = v
            break
    return Brute(truth, error_at, True)


def known_through(cond: Any, states: list[Any], upto: int, head: int) -> bool:
    """Whether every field ``cond`` needs exists at some version <= upto, or at the head."""
    for use in cond.uses:
        if not use.needs_existence:
            continue
        if not any(resolve(states[v], use.path) is not MISSING for v in [*range(1, upto + 1), head]):
            return False
    return True


@given(programs, conditions)
def test_bisect_agrees_with_brute_force(program: list[tuple[Any, ...]], text: str) -> None:
    """Default bisect (incremental scan) returns exactly the brute-force first version for any
    condition, and the same errors; --all lists exactly the brute-force flips; with
    assume_monotonic, the binary search agrees whenever the condition is monotonic."""
    job = build(program)
    # A projection also has its version; serialize() leaves it out.
    states = [None] + [{**state, "version": v} for v, state in enumerate(oracle(job)) if state is not None]
    cond = parse_condition(text)
    seen = brute(job, cond, states)
    first = next((v for v in range(1, len(seen.truth)) if seen.truth[v]), None)
    if seen.error_at is not None and (first is None or seen.error_at < first):
        with pytest.raises(ConditionTypeError) as info:
            bisect(job, cond)
        assert info.value.version == seen.error_at
        with pytest.raises(ConditionTypeError):
            list(transitions(job, cond))
        return
    if not known_through(cond, states, first or job.head, job.head):
        with pytest.raises(UnknownFieldError):
            bisect(job, cond)
        assert bisect(job, cond, allow_missing=True).version == first
        return
    found = bisect(job, cond)
    assert found.version == first and found.exhaustive
    if first is not None:
        rec = job.log.get(first)
        assert (found.kind, found.ts, found.data) == (rec.kind, rec.ts, rec.data)
    if seen.error_at is None:
        flips = [v for v in range(1, job.head + 1) if seen.truth[v] != seen.truth[v - 1]]
        got = list(transitions(job, cond))
        assert [t.version for t in got] == flips
        assert [t.holds for t in got] == [seen.truth[v] for v in flips]
        monotonic = all(seen.truth[v] for v in range(first or job.head + 1, job.head + 1))
        if monotonic:
            binary = bisect(job, cond, assume_monotonic=True)
            assert binary.version == first and not binary.exhaustive
            assert binary.probes <= 2 + job.head.bit_length()
            # In-memory checkpoints (taken every 2 events here) must not change any answer.
            saved = replay_module.CHECKPOINT_EVERY
            replay_module.CHECKPOINT_EVERY = 2
            try:
                assert bisect(job, cond, assume_monotonic=True).version == first
            finally:
                replay_module.CHECKPOINT_EVERY = saved


@given(programs, st.data())
def test_bisect_within_a_range_agrees_with_brute_force(program: list[tuple[Any, ...]], data: st.DataObject) -> None:
    """bisect(lo=, hi=) finds the first version in lo..hi where a condition holds."""
    job = build(program)
    states = oracle(job)
    lo = data.draw(st.integers(1, job.head))
    hi = data.draw(st.integers(lo, job.head))
    cond = parse_condition(data.draw(st.sampled_from(["status == paused", "shared_data.limit exists",
                                                      "len(output_log) >= 1", "current_routine_id == parse"])))
    first = next((v for v in range(lo, hi + 1) if cond(states[v])), None)
    assert bisect(job, cond, lo=lo, hi=hi, allow_missing=True).version == first


fields = st.sampled_from(["status", "current_routine_id", "shared_data.limit", "shared_data.mode", "shared_data",
                          "routine_states.fetch", "routine_states.fetch.status", "routine_states",
                          "deferred_events", "output_log", "pending_tasks", "pause_points", "shared_log"])


@given(programs, fields)
def test_blame_agrees_with_brute_force(program: list[tuple[Any, ...]], field: str) -> None:
    """blame lists exactly the versions where the field's replayed value changed, with old/new."""
    job = build(program)
    states = oracle(job)
    path = parse_path(field)
    expected = []
    prev: Any = MISSING
    for version in range(1, job.head + 1):
        cur = resolve(states[version], path)
        if not (prev is MISSING and cur is MISSING) and (prev is MISSING or cur is MISSING
                                                        or not same_value(prev, cur)):
            expected.append((version, prev, cur))
        prev = cur
    if all(resolve(states[v], path) is MISSING for v in range(1, job.head + 1)):
        with pytest.raises(UnknownFieldError):  # a field no version has: a typo, not "no change"
            blame(job, field)
        return
    got = blame(job, field)
    assert [e.version for e in got] == [v for v, _, _ in expected]
    for entry, (_, old, new) in zip(got, expected, strict=True):
        assert (entry.old is MISSING) == (old is MISSING) and (entry.new is MISSING) == (new is MISSING)
        if old is not MISSING:
            assert same_value(entry.old, old)
        if new is not MISSING:
            assert same_value(entry.new, new)
        assert entry.kind == job.log.get(entry.version).kind


def test_blame_on_a_long_history_list_reports_each_append() -> None:
    """Blaming a history list longer than LONG_LIST still finds every event that grew it."""
    job = JobState("long")
    for i in range(replay_module.LONG_LIST + 40):
        job.record_execution("r", "tick", {"i": i})
        if i % 10 == 0:
            job.update_shared_data("i", i)  # events that do not touch the list
    wrapped = Job("<memory>", "memory", job.log, None)
    changes = blame(wrapped, "execution_history")
    kinds = [rec.kind for rec in job.log.read()]
    assert [c.version for c in changes] == [1] + [i + 1 for i, k in enumerate(kinds) if k == "execution_recorded"]
    last = changes[-1].new
    assert isinstance(last, replay_module.ListSummary)
    assert last.length == replay_module.LONG_LIST + 40 and last.last["data"] == {"i": replay_module.LONG_LIST + 39}


@given(programs, st.sampled_from(KEYS), st.integers(-1, 3))
def test_bisect_takes_any_callable_on_a_jobstate(program: list[tuple[Any, ...]], key: str, value: int) -> None:
    """The library's bisect accepts a plain Python predicate on a read-only JobState, and
    finds the first version where it holds (assume_monotonic: a version where it turns true)."""
    job = build(program)
    states = oracle(job)

    def predicate(state: Any) -> bool:
        return key in state.shared_data and state.shared_data[key] == value and \
            type(state.shared_data[key]) is int

    truth = [False] + [predicate(JobState.from_events(list(job.log.read(1, v)))) for v in range(1, job.head + 1)]
    first = next((v for v in range(1, job.head + 1) if truth[v]), None)
    assert bisect(job, predicate).version == first
    binary = bisect(job, predicate, assume_monotonic=True)
    if binary.version is not None:
        assert truth[binary.version] and not truth[binary.version - 1]
    del states
