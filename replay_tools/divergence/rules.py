"""Comparison rules: which parts of two runs' events may differ by nature.

Two runs of the same deterministic flow still differ in timestamps, job and task ids,
and in the few values the engine itself reads from the clock (a routine's measured
``execution_time``, a pause point's ``timestamp``...). A rule names such a field so
the comparison ignores it; an id field is compared up to a consistent renaming (the
first run's task ``a1`` must always correspond to the second run's ``b7``).

A rule is a string::

    rule      := kind [ "[" cond { "," cond } "]" ] { "." segment }
    kind      := an event kind, or "*" for every kind
    cond      := FIELD "=" VALUE        (a top-level payload field equals VALUE, as text)
    segment   := a key | a list index | "*" (any one) | "**" (any number, even none)

Examples: ``task_started`` (the whole kind), ``routine_state_set.state.execution_time``,
``shared_data_set[key=started_at].value`` (one shared-data key), ``*.**.traceback``
(a field at any depth of any event).

Timestamps (each event's ``ts``) and seqs are never compared: they are the log's, not
the flow's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .errors import RuleSyntaxError

__all__ = ["DEFAULT_ID_FIELDS", "DEFAULT_IGNORE", "CompareRules", "Rule", "parse_rule"]

#: Fields that differ between two runs of a deterministic flow, and why.
DEFAULT_IGNORE: tuple[str, ...] = (
    # Task starts and ends are recorded with the job's next batch (routilux._scheduler):
    # where they land in the log depends on thread timing, not on the flow.
    "task_started",
    "task_finished",
    # Values the engine measures with the clock.
    "routine_state_set.state.execution_time",
    "routine_state_set.state.error_time",
    "execution_recorded.data.execution_time",
    "pause_point_added.point.timestamp",
    "pending_tasks_set.tasks.*.created_at",
    # A task's state (queued or started) when a crashed run was resumed: timing again.
    "execution_recorded[routine_id=_flow].data.rerun_tasks.*.state",
    # "file:line in function" of the frames of an error: moves whenever code is edited.
    "*.**.traceback",
    # The library's event schema version: a property of the routilux-es release that wrote
    # the log, not of the user's flow (upgrading must not turn every golden log red).
    "job_created.schema",
    # The flow version (compared and reported on its own) and a fork's own record.
    "execution_recorded[routine_id=_flow,event_name=flow_version]",
    "execution_recorded[routine_id=_flow,event_name=forked]",
)

#: Fields holding ids that are new in every run: compared up to a consistent renaming.
DEFAULT_ID_FIELDS: tuple[str, ...] = (
    "job_created.job_id",
    "*.**.task_id",
)

_KIND_RE = re.compile(r"^(?P<kind>[^.\[\]]+)(?:\[(?P<conds>[^\]]*)\])?(?P<rest>(?:\..*)?)$")


@attrs.frozen
class Rule:
    """One parsed rule: an event kind (or ``*``), payload conditions, a field path.

    Attributes:
        text: the rule as written.
        kind: the event kind, or ``"*"``.
        where: ``(field, value)`` pairs the payload must have (values compared as text).
        path: the field path (empty: the whole event).
    """

    text: str
    kind: str
    where: tuple[tuple[str, str], ...]
    path: tuple[str, ...]

    def applies_to(self, kind: str, data: Any) -> bool:
        """True if this rule is about events of ``kind`` with payload ``data``."""
        if self.kind not in ("*", kind):
            return False
        for name, value in self.where:
            if not isinstance(data, Mapping) or name not in data or _text(data[name]) != value:
                return False
        return True

    def matches(self, path: tuple[str, ...]) -> bool:
        """True if the payload field at ``path`` is named by this rule."""
        return _match(self.path, path)


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@functools.lru_cache(maxsize=4096)
def _match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(rest, path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    return (head == "*" or head == path[0]) and _match(rest, path[1:])


@functools.lru_cache(maxsize=1024)
def parse_rule(text: str) -> Rule:
    """Parse one rule (see the module docstring).

    Raises:
        RuleSyntaxError: the rule does not parse; the message says why.
    """
    raw = text.strip()
    if not raw:
        raise RuleSyntaxError(text, "it is empty")
    m = _KIND_RE.match(raw)
    if m is None:
        raise RuleSyntaxError(text, "expected KIND[FIELD=VALUE,...].path.to.field")
    where: list[tuple[str, str]] = []
    conds = m.group("conds")
    if conds is not None:
        for part in conds.split(","):
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise RuleSyntaxError(text, f"condition {part.strip()!r} is not FIELD=VALUE")
            where.append((name.strip(), value.strip()))
    rest = m.group("rest")
    path = tuple(rest[1:].split(".")) if rest else ()
    if any(not seg for seg in path):
        raise RuleSyntaxError(text, "a field path segment is empty (two dots, or a trailing dot)")
    return Rule(raw, m.group("kind").strip(), tuple(where), path)


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _rules(texts: Iterable[str]) -> tuple[Rule, ...]:
    return tuple(parse_rule(t) for t in texts)


@attrs.frozen
class CompareRules:
    """What the comparison of two event streams ignores, and which fields are ids.

    Attributes:
        ignore: rules for fields (or whole kinds) that may differ between runs
            (default :data:`DEFAULT_IGNORE`).
        ids: rules for id fields, compared up to a consistent renaming
            (default :data:`DEFAULT_ID_FIELDS`).
        shared_data_by_key: compare the order of shared-data writes per key instead of
            for the whole job (for flows whose routines write different keys at the
            same time, where the interleaving of those writes is timing).
    """

    ignore: tuple[str, ...] = attrs.field(default=DEFAULT_IGNORE, converter=_strings)
    ids: tuple[str, ...] = attrs.field(default=DEFAULT_ID_FIELDS, converter=_strings)
    shared_data_by_key: bool = False

    def __attrs_post_init__(self) -> None:
        _rules(self.ignore)  # refuse a bad rule now, not in the middle of a comparison
        _rules(self.ids)

    def ignoring(self, *rules: str) -> CompareRules:
        """Return these rules with ``rules`` ignored as well."""
        return attrs.evolve(self, ignore=self.ignore + tuple(rules))

    def ignores_event(self, kind: str, data: Any) -> bool:
        """True if this event is left out of the comparison as a whole."""
        return any(not r.path and r.applies_to(kind, data) for r in _rules(self.ignore))

    def ignored_rules(self, kind: str, data: Any) -> tuple[Rule, ...]:
        """The ignore rules about fields of this event (whole-kind rules excluded)."""
        return tuple(r for r in _rules(self.ignore) if r.path and r.applies_to(kind, data))

    def id_rules(self, kind: str, data: Any) -> tuple[Rule, ...]:
        """The id rules about fields of this event."""
        return tuple(r for r in _rules(self.ids) if r.path and r.applies_to(kind, data))
