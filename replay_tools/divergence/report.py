"""Plain-text and JSON renderings of divergences (for the command line, pytest and the kit).

The text has no colours, no timestamps, no terminal-width dependence and nothing of
the new run's own numbering (its versions depend on thread timing; ``--json`` has
them), so the same divergence always prints the same lines (tests compare them exactly).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from routilux.job_state import JobEvent

from ..diff import GROUP_TITLES, Difference, group_differences
from ..jsonform import to_jsonable
from ..paths import MISSING, FieldPath
from .compare import Divergence, FieldChange
from .script import Action, Cancel, Execute, Pause, Resume, Wait

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .rerun import RerunReport, TaskRef

__all__ = ["action_text", "divergence_json", "divergence_text", "event_json", "produced_by", "rerun_text",
           "state_diff_text", "value_text"]

_WIDTH = 44  # widest value shown in a side-by-side column


def value_text(value: Any, limit: int = _WIDTH) -> str:
    """A short one-line rendering of a value (JSON; ``(absent)`` for a missing one)."""
    if value is MISSING:
        return "(absent)"
    try:
        text = json.dumps(to_jsonable(value), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def event_json(event: JobEvent | None) -> dict[str, Any] | None:
    """An event as ``{"seq", "ts", "kind", "data"}`` (JSON-safe), or None."""
    if event is None:
        return None
    return {"seq": event.seq, "ts": event.ts, "kind": event.kind, "data": to_jsonable(_plain(event.data))}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def divergence_json(div: Divergence) -> dict[str, Any]:
    """The stable JSON shape of a divergence."""
    return {
        "version": div.version,
        "change": div.change,
        "lane": div.lane,
        "expected": event_json(div.expected),
        "actual": event_json(div.actual),
        "fields": [f.to_json() for f in div.fields],
    }


def action_text(action: Action) -> str:
    """``execute fetch {"customer": "acme"}``, ``pause "operator check"``, ``resume``..."""
    if isinstance(action, Execute):
        return f"execute {action.entry} {value_text(action.params, 60)}"
    if isinstance(action, Pause):
        return f"pause {json.dumps(action.reason)}"
    if isinstance(action, Cancel):
        return f"cancel {json.dumps(action.reason)}"
    if isinstance(action, Resume):
        return "resume"
    assert isinstance(action, Wait)
    return "wait"


def _flatten(data: Any, prefix: tuple[str, ...], out: list[tuple[str, Any]]) -> None:
    # Mappings are opened up to their leaves; lists stay one value (their differences
    # are listed one by one under the table).
    if isinstance(data, Mapping) and data:
        for k, v in data.items():
            _flatten(v, (*prefix, str(k)), out)
    else:
        out.append((str(FieldPath(prefix)) if prefix else "(payload)", data))


def _rows(event: JobEvent | None) -> list[tuple[str, Any]]:
    if event is None:
        return []
    out: list[tuple[str, Any]] = [("kind", event.kind)]
    _flatten(event.data, (), out)
    return out


def _side_by_side(expected: JobEvent | None, actual: JobEvent | None, aligned: Any,
                  fields: Sequence[FieldChange]) -> list[str]:
    shown = JobEvent(actual.seq, actual.ts, actual.kind, aligned) if actual is not None else None
    left, right = dict(_rows(expected)), dict(_rows(shown))
    paths = [*left, *(p for p in right if p not in left)]
    differing = [f.path for f in fields]

    def marked(path: str) -> bool:
        return any(d == path or d.startswith(path + ".") or d.startswith(path + " ") for d in differing)

    head = ("field", "expected (recorded)", "actual (new run)")
    cells = [(p, value_text(left.get(p, MISSING)), value_text(right.get(p, MISSING)), marked(p)) for p in paths]
    w0 = max(len(head[0]), *(len(c[0]) for c in cells))
    w1 = max(len(head[1]), *(len(c[1]) for c in cells))
    w2 = max(len(head[2]), *(len(c[2]) for c in cells))
    lines = [f"  {head[0]:<{w0}}  {head[1]:<{w1}}  {head[2]}"]
    for path, a, b, mark in cells:
        line = f"  {path:<{w0}}  {a:<{w1}}  {b:<{w2}}"
        lines.append((line + "  <-- differs") if mark else line.rstrip())
    return lines


def _event_label(event: JobEvent | None, routine_id: str | None) -> str:
    if event is None:
        return "?"
    return f"{event.kind} of routine {routine_id}" if routine_id else event.kind


def divergence_text(div: Divergence) -> list[str]:
    """The divergence as lines: a headline, the events side by side, the differing fields."""
    lines: list[str] = []
    if div.change == "extra":
        lines.append(f"DIVERGED after version {div.version}: the new run adds {_event_label(div.actual, div.routine_id)}")
    elif div.change == "missing":
        lines.append(f"DIVERGED at version {div.version}: the new run does not record "
                     f"{_event_label(div.expected, div.routine_id)}")
    else:
        lines.append(f"DIVERGED at version {div.version}: {_event_label(div.expected, div.routine_id)} differs")
    lines.append("")
    lines.extend(_side_by_side(div.expected, div.actual, div.aligned, div.fields))
    if div.fields:
        lines.append("")
        lines.append("differing fields:")
        for f in div.fields:
            lines.append(f"  {f.path}: {value_text(f.expected, 200)} -> {value_text(f.actual, 200)}")
    return lines


def state_diff_text(diffs: Iterable[Difference]) -> list[str]:
    """A state difference as indented lines, grouped like ``routilux-replay diff``."""
    items = list(diffs)
    if not items:
        return ["  (no difference)"]
    lines: list[str] = []
    marks = {"added": "+", "removed": "-", "changed": "~"}
    for group, entries in group_differences(items).items():
        lines.append(f"  {GROUP_TITLES.get(group, group)} ({len(entries)})")
        for d in entries:
            if d.change == "changed":
                body = f"{d.path}: {value_text(d.old, 200)} -> {value_text(d.new, 200)}"
            else:
                body = f"{d.path}: {value_text(d.new if d.change == 'added' else d.old, 200)}"
            lines.append(f"    {marks[d.change]} {body}")
    return lines


def produced_by(div: Divergence, task: TaskRef | None) -> str:
    """``produced by: routine price, task price.accepted (queued at version 28 by ...)``."""
    if div.routine_id is not None:
        return f"produced by: routine {div.routine_id}" + (f", task {task.label()}" if task else "")
    if task is not None:  # shared data and the shared log do not name their writer
        return f"produced by: routine {task.routine_id} (inferred), task {task.label()}"
    return f"produced by: no running task (the {div.lane} lane)"


def rerun_text(report: RerunReport) -> str:
    """The whole ``routilux-replay rerun`` report."""
    lines = [
        f"job {report.job_id} of flow {report.flow_id}: {report.recorded_head} events recorded",
        report.version_line(),
        "inputs: " + ("; ".join(action_text(a) for a in report.actions) or "(none)"),
    ]
    div = report.divergence
    if div is None:
        lines.append(f"no divergence: the new run matches the recording ({report.comparison.compared} events "
                     "compared)")
        return "\n".join(lines) + "\n"
    lines.append("")
    lines.extend(divergence_text(div))
    lines.append("")
    lines.append(produced_by(div, report.task))
    lines.append("")
    where = f"after version {div.version}" if div.change != "extra" else f"after version {div.version} + the new event"
    if report.state_diff is None:
        lines.append(f"state {where}: {report.state_note}")
    else:
        lines.append(f"state {where} (recorded -> with the new run's event):")
        lines.extend(state_diff_text(report.state_diff))
    return "\n".join(lines) + "\n"
