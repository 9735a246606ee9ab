"""Field-level differences between two serialized job states.

Works on the plain dicts of ``JobState.serialize()`` (ISO timestamps, lists and dicts),
so it has no dependency on how the state was rebuilt. Differences are grouped:

* ``status``: top-level scalar fields (status, current routine, timestamps, ids);
* ``routine_states`` and ``shared_data``: per routine / per key, down to single fields;
* ``execution_history``, ``deferred_events``, ``output_log``, ``shared_log``,
  ``pause_points``, ``pending_tasks``: entries added or removed. These lists grow by
  appending, so the common prefix is skipped and only the tail that differs is listed
  (``removed`` then ``added`` when a list was rewritten, e.g. deferred events cleared).

Equality is strict about types (``1`` differs from ``1.0`` and from ``True``), because a
state that changed type did change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .paths import FieldPath

__all__ = ["GROUPS", "GROUP_TITLES", "Difference", "diff_states", "group_differences", "same_value"]

#: The groups, in display order.
GROUPS = (
    "status",
    "routine_states",
    "shared_data",
    "execution_history",
    "deferred_events",
    "output_log",
    "shared_log",
    "pause_points",
    "pending_tasks",
)
#: Human titles of the groups.
GROUP_TITLES = {
    "status": "Status",
    "routine_states": "Routine states",
    "shared_data": "Shared data",
    "execution_history": "History",
    "deferred_events": "Deferred events",
    "output_log": "Outputs",
    "shared_log": "Shared log",
    "pause_points": "Pause points",
    "pending_tasks": "Pending tasks",
}
_IGNORED = {"_type"}


class Difference(NamedTuple):
    """One field that differs between two states.

    Attributes:
        group: one of :data:`GROUPS` (or another top-level key of the state).
        path: the field's path, e.g. ``routine_states.fetch.status``.
        change: ``"added"``, ``"removed"`` or ``"changed"``.
        old: the value in the first state (``None`` when added).
        new: the value in the second state (``None`` when removed).
    """

    group: str
    path: str
    change: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        """Return the stable JSON shape: path, change, old, new."""
        return {"path": self.path, "change": self.change, "old": self.old, "new": self.new}


def same_value(a: Any, b: Any) -> bool:
    """Return True when ``a`` and ``b`` are equal with the same types all the way down."""
    if type(a) is not type(b):
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            pass  # read-only mapping types compare by content
        elif isinstance(a, list) and isinstance(b, list):
            pass
        else:
            return False
    if isinstance(a, Mapping):
        if len(a) != len(b):
            return False
        return all(k in b and same_value(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _key_order(a: Mapping[str, Any], b: Mapping[str, Any]) -> Iterable[str]:
    yield from a
    for key in b:
        if key not in a:
            yield key


def _diff_mapping(group: str, prefix: tuple[str, ...], a: Mapping[str, Any], b: Mapping[str, Any],
                  out: list[Difference]) -> None:
    for key in _key_order(a, b):
        path = str(FieldPath((*prefix, key)))
        if key not in b:
            out.append(Difference(group, path, "removed", a[key], None))
        elif key not in a:
            out.append(Difference(group, path, "added", None, b[key]))
        elif isinstance(a[key], Mapping) and isinstance(b[key], Mapping):
            _diff_mapping(group, (*prefix, key), a[key], b[key], out)
        elif not same_value(a[key], b[key]):
            out.append(Difference(group, path, "changed", a[key], b[key]))


def _diff_list(group: str, a: list[Any], b: list[Any], out: list[Difference]) -> None:
    k = 0
    limit = min(len(a), len(b))
    while k < limit and same_value(a[k], b[k]):
        k += 1
    for i in range(k, len(a)):
        out.append(Difference(group, f"{group}.{i}", "removed", a[i], None))
    for i in range(k, len(b)):
        out.append(Difference(group, f"{group}.{i}", "added", None, b[i]))


def diff_states(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Difference]:
    """Return every field-level difference from state ``a`` to state ``b``.

    Both are ``JobState.serialize()`` dicts. The result is ordered by group (see
    :data:`GROUPS`), then by key order of the states.
    """
    out: list[Difference] = []
    keys = [k for k in _key_order(a, b) if k not in _IGNORED]
    scalars = [k for k in keys if not isinstance(a.get(k), (Mapping, list)) and not isinstance(b.get(k), (Mapping, list))]
    for key in scalars:
        if key not in b:
            out.append(Difference("status", key, "removed", a[key], None))
        elif key not in a:
            out.append(Difference("status", key, "added", None, b[key]))
        elif not same_value(a[key], b[key]):
            out.append(Difference("status", key, "changed", a[key], b[key]))
    ordered = [g for g in GROUPS if g in keys] + [k for k in keys if k not in GROUPS and k not in scalars]
    for key in ordered:
        if key in scalars:
            continue
        va, vb = a.get(key), b.get(key)
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            _diff_mapping(key, (key,), va, vb, out)
        elif isinstance(va, list) and isinstance(vb, list):
            _diff_list(key, va, vb, out)
        elif not same_value(va, vb):
            out.append(Difference(key, key, "changed", va, vb))
    return out


def group_differences(diffs: Iterable[Difference]) -> dict[str, list[Difference]]:
    """Group differences by :attr:`Difference.group`, in display order."""
    grouped: dict[str, list[Difference]] = {}
    for d in diffs:
        grouped.setdefault(d.group, []).append(d)
    order = {g: i for i, g in enumerate(GROUPS)}
    return dict(sorted(grouped.items(), key=lambda kv: order.get(kv[0], len(order))))
