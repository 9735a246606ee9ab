"""Hypothesis strategies for job operations and for flow inputs.

* :func:`storable_values`: nested values a job can record (None, bools, 64-bit ints,
  finite floats, text, lists, str-keyed dicts), the shapes real routines write;
* :func:`job_operations`: calls of JobState's public mutators (:class:`JobOperation`),
  to drive a job directly;
* :func:`entry_params` / :func:`flow_inputs`: keyword arguments for a flow's entry
  routine, derived from its ``trigger`` handler's signature (annotations ``int``,
  ``float``, ``str``, ``bool``, ``list[...]``, ``dict[str, ...]``; anything else gets
  :func:`storable_values`), each overridable with your own strategy.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs
from hypothesis import strategies as st

from routilux import Flow, JobState

from ..divergence.script import Execute
from .errors import KitUsageError

__all__ = [
    "JobOperation",
    "entry_params",
    "entry_routines",
    "flow_inputs",
    "job_operations",
    "storable_dicts",
    "storable_values",
]

_KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
# An explicit alphabet (ASCII, controls, accents, CJK, an emoji): plain st.text() makes
# Hypothesis build its Unicode table on first use, which takes over a second on a fresh
# machine and fails the users' first run with a "too slow" health check.
_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 _-.:/\n\t\x00\"'{}[]éßøΩжअ中文🙂",
                max_size=12)
_INT64 = st.integers(-(2**63), 2**63 - 1)
_SCALARS = st.one_of(st.none(), st.booleans(), _INT64, st.floats(allow_nan=False, allow_infinity=False),
                     _TEXT)


def storable_values(max_leaves: int = 10) -> st.SearchStrategy[Any]:
    """Nested values a job can store: scalars, lists and str-keyed dicts of them."""
    return st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(_KEYS, inner, max_size=4)),
                        max_leaves=max_leaves)


def storable_dicts(max_size: int = 4) -> st.SearchStrategy[dict[str, Any]]:
    """Str-keyed dicts of :func:`storable_values` (routine states, outputs, entry params)."""
    return st.dictionaries(_KEYS, storable_values(6), max_size=max_size)


@attrs.frozen
class JobOperation:
    """One call of a public JobState mutator, e.g. ``update_shared_data("limit", 3)``.

    Attributes:
        method: the JobState method (or ``"status"`` / ``"current_routine_id"`` for an
            assignment).
        args: its positional arguments.
    """

    method: str
    args: tuple[Any, ...]

    def apply(self, job: JobState) -> None:
        """Perform the call on ``job``."""
        if self.method in ("status", "current_routine_id", "deferred_events", "pending_tasks"):
            setattr(job, self.method, self.args[0])
        else:
            getattr(job, self.method)(*self.args)

    def __repr__(self) -> str:
        if self.method in ("status", "current_routine_id", "deferred_events", "pending_tasks"):
            return f"job.{self.method} = {self.args[0]!r}"
        return f"job.{self.method}({', '.join(repr(a) for a in self.args)})"


def job_operations(routine_ids: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[JobOperation]:
    """Calls of JobState's public mutators with storable arguments.

    Args:
        routine_ids: the routine ids to use (default: a few short names).
    """
    rids = routine_ids if routine_ids is not None else st.sampled_from(["fetch", "parse", "store"])
    op = JobOperation
    return st.one_of(
        st.builds(lambda s: op("status", (s,)),
                  st.sampled_from(["pending", "running", "paused", "completed", "failed", "cancelled"])),
        st.builds(lambda r: op("current_routine_id", (r,)), st.one_of(st.none(), rids)),
        st.builds(lambda r, s: op("update_routine_state", (r, s)), rids, storable_dicts()),
        st.builds(lambda r, n, d: op("record_execution", (r, n, d)), rids, _KEYS,
                  st.one_of(st.none(), storable_dicts())),
        st.builds(lambda k, v: op("update_shared_data", (k, v)), _KEYS, storable_values()),
        st.builds(lambda d: op("append_to_shared_log", (d,)), storable_dicts()),
        st.builds(lambda r, t, d: op("send_output", (r, t, d)), rids, _KEYS, storable_dicts()),
        st.builds(lambda r, n, d: op("add_deferred_event", (r, n, d)), rids, _KEYS, storable_dicts()),
        st.just(op("deferred_events", ([],))),
    )


def entry_routines(flow: Flow) -> list[str]:
    """The ids of the routines of ``flow`` that have a ``trigger`` slot (possible entries)."""
    return [rid for rid, routine in flow.routines.items() if routine.get_slot("trigger") is not None]


def _for_annotation(annotation: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return _INT64
    if annotation is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if annotation is str:
        return _TEXT
    if origin is list:
        return st.lists(_for_annotation(args[0]) if args else storable_values(6), max_size=4)
    if origin is dict and (not args or args[0] is str):
        return st.dictionaries(_KEYS, _for_annotation(args[1]) if len(args) == 2 else storable_values(6), max_size=4)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(st.none() if a is type(None) else _for_annotation(a) for a in args))
    return storable_values(6)


def entry_params(flow: Flow, entry: str, **overrides: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for ``entry``'s trigger handler, from its signature.

    Required parameters are always given; those with a default are sometimes left out.
    ``overrides`` replace the strategy of a parameter (or add one the signature does
    not name, for handlers taking ``**kwargs``).

    Raises:
        KitUsageError: ``entry`` is not a routine of ``flow`` with a trigger handler.
    """
    routine = flow.routines.get(entry)
    slot = routine.get_slot("trigger") if routine is not None else None
    handler: Callable[..., Any] | None = getattr(slot, "handler", None)
    if handler is None:
        msg = f"{entry!r} is not an entry routine of flow {flow.flow_id!r} (entries: {entry_routines(flow)})"
        raise KitUsageError(msg)
    try:
        hints = typing.get_type_hints(handler)
    except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to storable values
        hints = {}
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, param in inspect.signature(handler).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or name == "self":
            continue
        strategy = overrides.get(name, _for_annotation(hints.get(name, Any)))
        (required if param.default is param.empty else optional)[name] = strategy
    for name, strategy in overrides.items():
        if name not in required and name not in optional:
            required[name] = strategy
    return st.fixed_dictionaries(required, optional=optional)


def flow_inputs(flow: Flow | Callable[[], Flow], entry: str | None = None,
                **overrides: st.SearchStrategy[Any]) -> st.SearchStrategy[Execute]:
    """Inputs for a flow: ``Execute(entry, params)`` with :func:`entry_params`.

    Args:
        flow: a Flow, or the factory that builds it.
        entry: the entry routine (default: the flow's only routine with a trigger slot).
        overrides: strategies for particular parameters.

    Raises:
        KitUsageError: no ``entry`` was given and the flow has no single entry routine.
    """
    built = flow if isinstance(flow, Flow) else flow()
    if entry is None:
        entries = entry_routines(built)
        if len(entries) != 1:
            msg = f"flow {built.flow_id!r} has entry routines {entries}; pass entry=... to flow_inputs"
            raise KitUsageError(msg)
        entry = entries[0]
    chosen: str = entry
    return entry_params(built, chosen, **overrides).map(lambda params: Execute(chosen, params))
