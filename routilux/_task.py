"""Queued slot activations: the unit of work of the scheduler and of a job's task log."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .connection import Connection
    from .flow import Flow
    from .slot import Slot

__all__ = ["SlotActivationTask", "TaskPriority", "pending_task_id"]


def pending_task_id(index: int, entry: Any) -> str:
    """The task id of entry ``index`` of a job's ``pending_tasks``.

    Entries written by this version carry their ``task_id``. Entries written by routilux 0.10
    have none: they get one derived from their position and content, the same every time the
    job is resumed, so a task that has been queued (and is in the job's log) is recognised.
    """
    tid = entry.get("task_id") if isinstance(entry, Mapping) else None
    if isinstance(tid, str):
        return tid
    body = json.dumps(entry, sort_keys=True, default=str).encode()
    return f"pending-{index}-{hashlib.blake2b(body, digest_size=8).hexdigest()}"


class TaskPriority(Enum):
    """Priority of a queued slot activation (recorded; the queue itself is FIFO)."""

    HIGH = 1
    NORMAL = 2
    LOW = 3


class SlotActivationTask:
    """One queued delivery of data to a slot, for one job.

    ``kind`` is ``"slot"`` for a downstream delivery and ``"entry"`` for the entry routine's
    trigger call (recorded too, so a crash during the entry handler is resumable).
    """

    __slots__ = ("slot", "data", "connection", "priority", "job_state", "retry_count", "max_retries",
                 "_created_at", "_created_ts", "task_id", "routine_id", "kind")

    def __init__(
        self, slot: Slot | None, data: dict[str, Any], connection: Connection | None = None,
        priority: TaskPriority = TaskPriority.NORMAL, job_state: Any = None, retry_count: int = 0,
        max_retries: int = 0, created_at: datetime | None = None, task_id: str = "",
        routine_id: str | None = None, kind: str = "slot",
    ) -> None:
        self.slot = slot
        self.data = data
        self.connection = connection
        self.priority = priority
        self.job_state = job_state
        self.retry_count = retry_count
        self.max_retries = max_retries
        # A float timestamp is taken per task and the datetime built only when asked for
        # (to_dict, on pause): datetime.now() was a visible share of a task's cost.
        self._created_at = created_at
        self._created_ts = time.time() if created_at is None else 0.0
        self.task_id = task_id
        self.routine_id = routine_id
        self.kind = kind

    @property
    def created_at(self) -> datetime:
        """When the task was created (local time, like the original's ``datetime.now()``)."""
        if self._created_at is None:
            self._created_at = datetime.fromtimestamp(self._created_ts)
        return self._created_at

    @created_at.setter
    def created_at(self, value: datetime) -> None:
        self._created_at = value

    def __repr__(self) -> str:
        return f"SlotActivationTask[{self.task_id}:{self.routine_id}.{self.slot.name if self.slot else None}]"

    def to_record(self, flow: Flow, source_id: str | None = None) -> dict[str, Any]:
        """The compact form recorded by ``_task_queued``: target routine (flow id), slot, data,
        and the connection as ``[source routine id, event name]``; ``kind`` only for entries.

        Kept small on purpose: it is encoded once per task and lives in every snapshot of a
        job's open tasks. :meth:`Flow._task_from_dict` reads both this and :meth:`to_dict`.
        ``source_id``, when given, is the source routine's id in ``flow`` (saves a lookup).
        """
        record: dict[str, Any] = {"routine_id": self.routine_id,
                                  "slot": self.slot.name if self.slot is not None else "trigger",
                                  "data": self.data}
        if self.kind != "slot":
            record["kind"] = self.kind
        conn = self.connection
        if conn is not None and conn.source_event is not None:
            ev = conn.source_event
            if source_id is None and ev.routine is not None:
                source_id = flow._routine_id_of(ev.routine)
            record["source"] = [source_id, ev.name]
        return record

    def to_dict(self, flow: Flow) -> dict[str, Any]:
        """The task as recorded in the job: the original's pending-task keys plus ``task_id`` and ``kind``.

        Routines are named by their id in ``flow`` (not their hex ``_id``), so a restored task
        always finds its routine again (the original dropped them: ROUTILUX_API.md §7 (a)).
        """
        conn = self.connection
        src_rid = src_event = tgt_rid = tgt_slot = None
        mapping: dict[str, str] | None = None
        if conn is not None:
            ev = conn.source_event
            if ev is not None:
                src_rid = flow._routine_id_of(ev.routine) if ev.routine is not None else None
                src_event = ev.name
            if conn.target_slot is not None:
                tgt_rid = self.routine_id
                tgt_slot = conn.target_slot.name
            mapping = conn.param_mapping
        return {
            "task_id": self.task_id,
            "kind": self.kind,
            "slot_routine_id": self.routine_id,
            "slot_name": self.slot.name if self.slot is not None else "trigger",
            "data": self.data,
            "connection_source_routine_id": src_rid,
            "connection_source_event_name": src_event,
            "connection_target_routine_id": tgt_rid,
            "connection_target_slot_name": tgt_slot,
            "param_mapping": mapping,
            "priority": self.priority.value,
            "retry_count": self.retry_count,
            "max_retries": self.max_retries,
            "created_at": self.created_at.isoformat(),
        }
