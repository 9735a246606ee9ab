"""States for the scrubber: a keyframe plus one patch per event, computed in Python.

The page never folds events itself (there is one fold: ``routilux.projection.apply``).
For a window of versions ``base .. base + size - 1`` it receives:

* ``state``: the state at ``base``, shaped like ``JobState.serialize()`` without the four
  history lists (:func:`replay_tools.replay.state_dict` with ``history=False``);
* ``patches``: for each version ``v`` in the window, the changes made by event ``v`` as
  generic operations on that tree: ``[path, value]`` sets the value at ``path``,
  ``[path]`` deletes it. ``patches[0]`` (the changes of event ``base``) is only shown,
  never applied: ``state`` already includes it.

Paths are lists of keys (list positions as decimal strings), escaped like the tree's
keys (:func:`replay_tools.ui.display.escape_segment`). They come from
:func:`replay_tools.diff.diff_states` on the states before and after each event, so the
page highlights exactly the fields ``routilux-replay diff`` would list. Removals inside
a list are listed last-first, so deleting them in order keeps the positions right.

To keep a window cheap on large states, each step compares only the parts whose objects
changed: the projection's containers are immutable values, replaced (never edited in
place) by ``apply``, so an entry that is the same object before and after an event did
not change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any, cast

from routilux.projection import JobProjection, apply

from ..diff import diff_states
from ..paths import parse_path
from ..replay import fast_tuples, projection_at, state_dict
from ..source import Job
from .display import escape_segment, to_display

__all__ = ["WINDOW", "Window", "compute_window", "differences_to_ops", "iter_windows", "window_base"]

#: Versions per window (a keyframe every this many versions).
WINDOW = 128

Op = list[Any]
Window = dict[str, Any]


def window_base(version: int, size: int = WINDOW) -> int:
    """The first version of the window holding ``version`` (windows start at 1)."""
    return ((version - 1) // size) * size + 1


def differences_to_ops(diffs: list[Any]) -> list[Op]:
    """Turn :class:`~replay_tools.diff.Difference` s into patch operations (see module doc)."""
    sets: list[Op] = []
    removals: list[tuple[list[str], Any]] = []
    for d in diffs:
        path = [escape_segment(seg) for seg in parse_path(d.path)]
        if d.change == "removed":
            removals.append((path, d))
        else:
            sets.append([path, to_display(d.new)])
    # Deletions first, the deepest list positions first, then sets in diff order (a list
    # that was rewritten loses its tail, then gets its new items appended).
    removals.sort(key=lambda item: [(int(s) if s.isdigit() else -1) for s in item[0]], reverse=True)
    return [[path] for path, _d in removals] + sets


class _Shallow:
    """References to the parts of a projection a step may change (no copies of values)."""

    __slots__ = ("deferred", "pending", "routine_states", "scalars", "shared_data")

    def __init__(self, p: JobProjection) -> None:
        self.scalars = (p.job_id, p.flow_id, p.status, p.current_routine_id, p.created_at, p.updated_at)
        self.routine_states = dict(p.routine_states)
        self.shared_data = dict(p.shared_data)
        self.deferred = list(p.deferred_events)
        self.pending = list(p.pending_tasks)


def _changed_keys(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    return [k for k in {**a, **b} if a.get(k, _ABSENT) is not b.get(k, _ABSENT)]


_ABSENT = object()


def _same_list(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _reduced(before: _Shallow, after: _Shallow, side: _Shallow) -> dict[str, Any]:
    """``state_dict`` of ``side`` restricted to the entries that differ between the two."""
    rs_keys = _changed_keys(before.routine_states, after.routine_states)
    sd_keys = _changed_keys(before.shared_data, after.shared_data)
    job_id, flow_id, status, current, created_at, updated_at = side.scalars
    view = SimpleNamespace(
        job_id=job_id, flow_id=flow_id, status=status, current_routine_id=current,
        created_at=created_at, updated_at=updated_at, history_from=0,
        routine_states={k: side.routine_states[k] for k in rs_keys if k in side.routine_states},
        shared_data={k: side.shared_data[k] for k in sd_keys if k in side.shared_data},
        deferred_events=[] if _same_list(before.deferred, after.deferred) else side.deferred,
        pending_tasks=[] if _same_list(before.pending, after.pending) else side.pending,
    )
    return state_dict(cast(JobProjection, view), history=False)


def step_ops(before: _Shallow, after: _Shallow) -> list[Op]:
    """The patch for one event: what changed from ``before`` to ``after``."""
    a = _reduced(before, after, before)
    b = _reduced(before, after, after)
    return differences_to_ops(diff_states(a, b))


def iter_windows(job: Job, lo: int, hi: int, size: int = WINDOW) -> Iterator[Window]:
    """Windows covering ``lo..hi``: the first starts at ``lo``, the others on multiples of ``size``.

    One rebuild (snapshot and tail, by :func:`replay_tools.replay.projection_at`) before
    ``lo``, then one fold step per version: a whole range costs about as much as a replay
    of it.
    """
    p = projection_at(job, lo - 1, history=False) if lo > 1 else JobProjection()
    before = _Shallow(p)
    patches: list[list[Op]] = []
    state: dict[str, Any] | None = None
    base = lo
    for item in fast_tuples(job, lo, hi):
        apply(p, item)
        after = _Shallow(p)
        patches.append(step_ops(before, after))
        if state is None:
            state = to_display(state_dict(p, history=False))
        before = after
        if item[0] % size == 0:  # the next version starts a new window
            yield {"base": base, "last": item[0], "state": state, "patches": patches}
            base, state, patches = item[0] + 1, None, []
    if state is not None:
        yield {"base": base, "last": base + len(patches) - 1, "state": state, "patches": patches}


def compute_window(job: Job, base: int, last: int) -> Window:
    """The window ``base..last`` (inclusive): the state at ``base`` and a patch per version.

    ``base`` must be >= 1 and ``last`` <= the job's head, in one window (see :func:`iter_windows`).
    """
    for win in iter_windows(job, base, last):
        return win
    msg = f"versions {base}..{last} are not in the log"
    raise ValueError(msg)
