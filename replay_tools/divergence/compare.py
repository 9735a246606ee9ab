"""Compare two runs of a flow event by event, and find where they first diverge.

The engine runs handlers on more than one thread (the entry handler in the caller's
thread, downstream tasks on workers), so two runs of a deterministic flow can
interleave the events of *different* routines differently. The comparison therefore
splits each stream into **lanes** whose order is the flow's, not the scheduler's:

* one lane per routine: its history records, state updates, outputs, deferred events,
  the tasks its emits queued, and the failures of tasks aimed at it;
* one lane for shared data (or one per key, with ``CompareRules.shared_data_by_key``)
  and one for the shared log;
* one lane for the job itself: status, pauses, resumes, cancels, pending tasks.

Within a lane the events must match one for one, in order; across lanes order is free.
The first divergence is the earliest recorded event (by version) whose lane partner
differs or is missing, or an event the new run added to the end of a lane. Values are
compared strictly: ``1`` differs from ``1.0`` and from ``True``, and the key order of a
mapping counts (it is part of the recorded bytes and of every later iteration).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from routilux import events as ev
from routilux.job_state import JobEvent

from ..diff import GROUPS, Difference
from ..paths import MISSING, FieldPath
from .rules import CompareRules, Rule

__all__ = ["Comparison", "Divergence", "FieldChange", "IdMap", "compare_events", "field_changes", "lane_of",
           "state_changes"]

#: Kinds whose payload names the routine that wrote them.
_ROUTINE_KINDS = frozenset({ev.EXECUTION_RECORDED, ev.ROUTINE_STATE_SET, ev.DEFERRED_EVENT_ADDED, ev.OUTPUT_SENT})
_TASK_END_KINDS = frozenset({ev.TASK_STARTED, ev.TASK_FINISHED, ev.TASK_FAILED})


@attrs.frozen
class FieldChange:
    """One payload field that differs between the recorded and the new event.

    Attributes:
        path: dotted path in the payload (``data.total``); ``kind`` for the event kind;
            a path ending in ``(key order)`` when only the order of keys differs.
        expected: the recorded value (:data:`replay_tools.MISSING` when absent).
        actual: the new value (:data:`replay_tools.MISSING` when absent).
    """

    path: str
    expected: Any
    actual: Any

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape (absent values are ``null`` with ``*_exists: false``)."""
        return {
            "path": self.path,
            "expected": None if self.expected is MISSING else self.expected,
            "actual": None if self.actual is MISSING else self.actual,
            "expected_exists": self.expected is not MISSING,
            "actual_exists": self.actual is not MISSING,
        }


@attrs.frozen
class Divergence:
    """The first place where the new run differs from the recorded one.

    Attributes:
        version: the recorded job's version of the divergent event; for an ``extra``
            event, the recorded version it follows.
        change: ``"changed"`` (the events differ), ``"missing"`` (the new run has no
            such event) or ``"extra"`` (the new run has an event the recording lacks).
        lane: the lane (``routine:<id>``, ``shared_data``, ``shared_log``, ``job``).
        expected: the recorded event (None for ``extra``).
        actual: the new run's event, with its own seq (None for ``missing``).
        aligned: the new event's payload with the rules applied (ignored fields taken
            from the recorded event, ids renamed to the recorded ones): what the new run
            would have recorded in the old run's terms.
        fields: the payload fields that differ.
    """

    version: int
    change: str
    lane: str
    expected: JobEvent | None
    actual: JobEvent | None
    aligned: Any
    fields: tuple[FieldChange, ...]

    @property
    def routine_id(self) -> str | None:
        """The routine whose lane diverged (None for the job, shared data and shared log)."""
        return self.lane.split(":", 1)[1] if self.lane.startswith("routine:") else None


@attrs.frozen
class Comparison:
    """The result of :func:`compare_events`.

    Attributes:
        divergence: the first divergence, or None when the runs agree.
        compared: how many recorded events were compared (after the rules' ignores).
        recorded: events in the recorded stream (all kinds).
        actual: events in the new stream (all kinds).
    """

    divergence: Divergence | None
    compared: int
    recorded: int
    actual: int

    @property
    def ok(self) -> bool:
        """True when no divergence was found."""
        return self.divergence is None


class IdMap:
    """A one-to-one renaming of the new run's ids to the recorded run's."""

    def __init__(self) -> None:
        self._to_recorded: dict[str, str] = {}
        self._to_actual: dict[str, str] = {}

    def rename(self, actual: str, recorded: Any) -> str:
        """The recorded id for ``actual``; binds it to ``recorded`` the first time both are new.

        An id that is already bound to another one stays as it is, so it differs and the
        comparison reports it.
        """
        known = self._to_recorded.get(actual)
        if known is not None:
            return known
        if isinstance(recorded, str) and recorded not in self._to_actual:
            self._to_recorded[actual] = recorded
            self._to_actual[recorded] = actual
            return recorded
        return actual


def lane_of(kind: str, data: Any, task_targets: Mapping[str, Any], rules: CompareRules) -> str:
    """The lane of one event (see the module docstring)."""
    if kind in _ROUTINE_KINDS:
        return f"routine:{data.get('routine_id')}"
    if kind == ev.TASK_QUEUED:
        task = data.get("task") or {}
        source = task.get("source")
        owner = source[0] if isinstance(source, list) and source and source[0] is not None else task.get("routine_id")
        return f"routine:{owner}"
    if kind in _TASK_END_KINDS:
        return f"routine:{task_targets.get(data.get('task_id'))}"
    if kind == ev.SHARED_DATA_SET:
        return f"shared_data:{data.get('key')}" if rules.shared_data_by_key else "shared_data"
    if kind == ev.SHARED_LOG_APPENDED:
        return "shared_log"
    return "job"


def _lanes(events: Sequence[JobEvent], rules: CompareRules) -> dict[str, list[JobEvent]]:
    targets: dict[str, Any] = {}
    lanes: dict[str, list[JobEvent]] = {}
    for e in events:
        if e.kind == ev.TASK_QUEUED:
            targets[e.data.get("task_id")] = (e.data.get("task") or {}).get("routine_id")
        if rules.ignores_event(e.kind, e.data):
            continue
        lanes.setdefault(lane_of(e.kind, e.data, targets, rules), []).append(e)
    return lanes


# -- payload normalisation -------------------------------------------------------------
def _ignored(rules: tuple[Rule, ...], path: tuple[str, ...]) -> bool:
    return any(r.matches(path) for r in rules)


def _strip(value: Any, path: tuple[str, ...], ignore: tuple[Rule, ...]) -> Any:
    """``value`` without the ignored fields (MISSING if ``value`` itself is ignored)."""
    if path and _ignored(ignore, path):
        return MISSING
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            s = _strip(v, (*path, str(k)), ignore)
            if s is not MISSING:
                out[k] = s
        return out
    if isinstance(value, list):
        return [_strip(v, (*path, str(i)), ignore) for i, v in enumerate(value)]
    return value


def _rename(actual: Any, recorded: Any, path: tuple[str, ...], id_rules: tuple[Rule, ...], ids: IdMap) -> Any:
    """``actual`` with its id fields renamed to the recorded run's ids."""
    if isinstance(actual, str) and _ignored(id_rules, path):
        return ids.rename(actual, recorded)
    if isinstance(actual, Mapping):
        other = recorded if isinstance(recorded, Mapping) else {}
        return {k: _rename(v, other.get(k, MISSING), (*path, str(k)), id_rules, ids) for k, v in actual.items()}
    if isinstance(actual, list):
        other_list = recorded if isinstance(recorded, list) else []
        return [_rename(v, other_list[i] if i < len(other_list) else MISSING, (*path, str(i)), id_rules, ids)
                for i, v in enumerate(actual)]
    return actual


def _fill(actual: Any, recorded: Any, path: tuple[str, ...], ignore: tuple[Rule, ...]) -> Any:
    """``actual`` with every ignored field replaced by the recorded one (or dropped)."""
    if path and _ignored(ignore, path):
        return recorded
    if isinstance(actual, Mapping):
        other = recorded if isinstance(recorded, Mapping) else {}
        out = {}
        for k, v in actual.items():
            f = _fill(v, other.get(k, MISSING), (*path, str(k)), ignore)
            if f is not MISSING:
                out[k] = f
        for k, v in other.items():
            if k not in actual and _ignored(ignore, (*path, str(k))):
                out[k] = v
        return out
    if isinstance(actual, list):
        other_list = recorded if isinstance(recorded, list) else []
        return [_fill(v, other_list[i] if i < len(other_list) else MISSING, (*path, str(i)), ignore)
                for i, v in enumerate(actual)]
    return actual


def _same(a: Any, b: Any) -> bool:
    """Strict equality: same types, same mapping key order, same list items."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def field_changes(a: Any, b: Any) -> list[FieldChange]:
    """Every leaf field that differs from ``a`` to ``b``: mappings by key, lists by index.

    Strict like the comparison: types count, and so does the key order of a mapping
    (reported as ``path (key order)`` when the keys are the same but ordered differently).
    """
    out: list[FieldChange] = []
    _diff(a, b, (), out)
    return out


def state_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Difference]:
    """Leaf-level differences between two ``serialize()`` states, grouped like ``diff``.

    Unlike :func:`replay_tools.diff_states` (which lists whole history entries added or
    removed), list entries are compared index by index down to their fields, so one
    changed value in an output shows as ``output_log.0.data.total: 50.5 -> 55.55``.
    """
    out = []
    for change in field_changes({k: v for k, v in a.items() if k != "_type"},
                                {k: v for k, v in b.items() if k != "_type"}):
        top = change.path.split(".", 1)[0].split(" ", 1)[0]
        group = top if top in GROUPS else "status"
        kind = "added" if change.expected is MISSING else "removed" if change.actual is MISSING else "changed"
        out.append(Difference(group, change.path, kind, None if change.expected is MISSING else change.expected,
                              None if change.actual is MISSING else change.actual))
    return out


def _diff(a: Any, b: Any, path: tuple[str, ...], out: list[FieldChange]) -> None:
    """Append the fields that differ between ``a`` (recorded) and ``b`` (new)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        before = len(out)
        for k in [*a, *(k for k in b if k not in a)]:
            _diff(a.get(k, MISSING), b.get(k, MISSING), (*path, str(k)), out)
        if len(out) == before and list(a) != list(b):
            out.append(FieldChange(f"{FieldPath(path)} (key order)" if path else "(key order)", list(a), list(b)))
        return
    if isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            _diff(a[i] if i < len(a) else MISSING, b[i] if i < len(b) else MISSING, (*path, str(i)), out)
        return
    if a is MISSING and b is MISSING:
        return
    if a is MISSING or b is MISSING or not _same(a, b):
        out.append(FieldChange(str(FieldPath(path)), a, b))


class _Pairing:
    """Compares recorded events with their lane partners, renaming ids as it goes."""

    def __init__(self, rules: CompareRules) -> None:
        self.rules = rules
        self.ids = IdMap()

    def check(self, expected: JobEvent, actual: JobEvent) -> tuple[bool, Any, tuple[FieldChange, ...]]:
        """Return ``(same, aligned payload, differing fields)`` for one pair of events."""
        rules = self.rules
        renamed = _rename(actual.data, expected.data, (), rules.id_rules(actual.kind, actual.data), self.ids)
        ignore = (*rules.ignored_rules(expected.kind, expected.data), *rules.ignored_rules(actual.kind, renamed))
        aligned = _fill(renamed, expected.data, (), ignore)
        left, right = _strip(expected.data, (), ignore), _strip(renamed, (), ignore)
        same = expected.kind == actual.kind and _same(left, right)
        if same:
            return True, aligned, ()
        fields: list[FieldChange] = []
        if expected.kind != actual.kind:
            fields.append(FieldChange("kind", expected.kind, actual.kind))
        _diff(left, right, (), fields)
        return False, aligned, tuple(fields)


def compare_events(recorded: Sequence[JobEvent], actual: Sequence[JobEvent],
                   rules: CompareRules | None = None) -> Comparison:
    """Compare a recorded event stream with a new run's, lane by lane.

    Args:
        recorded: the recorded job's events, from seq 1 (``job_state.events()``).
        actual: the new run's events, from seq 1.
        rules: what may differ (default :class:`CompareRules`).

    Returns:
        The first divergence (smallest recorded version), if any, and counts.
    """
    rules = rules if rules is not None else CompareRules()
    rec_lanes, act_lanes = _lanes(recorded, rules), _lanes(actual, rules)
    lane_at: dict[int, tuple[str, int]] = {}
    for lane, items in rec_lanes.items():
        for i, e in enumerate(items):
            lane_at[e.seq] = (lane, i)
    pairing = _Pairing(rules)
    partner: dict[int, int] = {}  # actual seq -> recorded seq it matched
    found: list[tuple[float, Divergence]] = []
    broken: set[str] = set()  # lanes with a divergence: later events there say nothing new
    compared = 0
    for e in sorted((e for items in rec_lanes.values() for e in items), key=lambda r: r.seq):
        lane, i = lane_at[e.seq]
        if lane in broken:
            continue
        mine = act_lanes.get(lane, [])
        compared += 1
        if i >= len(mine):
            found.append((e.seq, Divergence(e.seq, "missing", lane, e, None, MISSING, ())))
            broken.add(lane)
            continue
        other = mine[i]
        same, aligned, fields = pairing.check(e, other)
        if not same:
            found.append((e.seq, Divergence(e.seq, "changed", lane, e, other, aligned, fields)))
            broken.add(lane)
            continue
        partner[other.seq] = e.seq
    # Events the new run added at the end of a lane (that otherwise matched): placed
    # after the recorded event matched just before them in the new run's order.
    extra_lane: dict[int, str] = {}
    for lane, items in act_lanes.items():
        held = len(rec_lanes.get(lane, []))
        if lane not in broken and len(items) > held:
            extra_lane[items[held].seq] = lane
    last = 0
    for e in actual:
        if e.seq in partner:
            last = max(last, partner[e.seq])
        elif e.seq in extra_lane:
            renamed = _rename(e.data, MISSING, (), rules.id_rules(e.kind, e.data), pairing.ids)
            found.append((last + 0.5, Divergence(last, "extra", extra_lane[e.seq], None, e, renamed, ())))
            break
    first = min(found, key=lambda item: item[0])[1] if found else None
    return Comparison(first, compared, len(recorded), len(actual))
