"""0.10's ``routilux.flow.dependency``: which routines wait for which (by their connections)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..connection import Connection
    from ..routine import Routine

__all__ = ["build_dependency_graph", "get_ready_routines"]


def build_dependency_graph(routines: dict[str, Routine], connections: Iterable[Connection]) -> dict[str, set[str]]:
    """Return ``{routine id: ids of the routines whose events feed it}``.

    A connection from routine A's event to routine B's slot makes B depend on A; connections
    of a routine to itself, and to routines outside ``routines``, are ignored.
    """
    ids = {id(routine): rid for rid, routine in routines.items()}
    graph: dict[str, set[str]] = {rid: set() for rid in routines}
    for conn in connections:
        event, slot = conn.source_event, conn.target_slot
        source = ids.get(id(event.routine)) if event is not None and event.routine is not None else None
        target = ids.get(id(slot.routine)) if slot is not None and slot.routine is not None else None
        if source is not None and target is not None and source != target:
            graph[target].add(source)
    return graph


def get_ready_routines(completed: set[str], dependency_graph: dict[str, set[str]], running: set[str]) -> list[str]:
    """The routines (in graph order) not completed nor running whose dependencies all completed."""
    return [rid for rid, needs in dependency_graph.items()
            if rid not in completed and rid not in running and needs <= completed]
