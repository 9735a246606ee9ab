"""The kinds of job events: the one list of JobState event kinds, their payloads, and the schema version.

(Not to be confused with :mod:`routilux.event`, a routine's output port, nor with
:mod:`eventlog.encoding`, which turns these events into bytes.)

Every mutation of a :class:`~routilux.job_state.JobState` is exactly one event
``(kind, data)`` in the job's log; :func:`routilux.projection.apply` folds them. Timestamps
are never part of a payload: they come from the record's ``ts``.

Evolution rules (after msgspec's schema-evolution page):

1. A new kind, or a new optional payload field with a default, bumps
   :data:`SCHEMA_VERSION`; old logs still replay.
2. A field is never removed or renamed and its meaning never changes; add a new kind instead.
3. ``job_created`` records the schema version the job was written with. Replaying a log or
   a snapshot written with a newer version, or meeting a kind not listed here, is a
   :class:`~routilux.errors.ReplayError`, never a silent skip.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "CANCELLED",
    "CURRENT_ROUTINE_SET",
    "DEFERRED_EVENTS_SET",
    "DEFERRED_EVENT_ADDED",
    "DESERIALIZED",
    "EXECUTION_RECORDED",
    "HISTORY_KINDS",
    "HISTORY_ONLY_KINDS",
    "JOB_CREATED",
    "JOB_STATUSES",
    "KINDS",
    "OUTPUT_SENT",
    "PAUSED",
    "PAUSE_POINT_ADDED",
    "PENDING_TASKS_SET",
    "PERSONAL_ERASED",
    "RESUMED",
    "ROUTINE_STATE_SET",
    "SCHEMA_VERSION",
    "SHARED_DATA_SET",
    "SHARED_LOG_APPENDED",
    "STATUS_SET",
    "TASK_FAILED",
    "TASK_FINISHED",
    "TASK_QUEUED",
    "TASK_STARTED",
    "TERMINAL_STATUSES",
    "EventKind",
]

#: Version of the event payloads and of the snapshot state layout.
#:
#: History: 1 -- the first layout. 2 -- snapshots also store ``kind_counts`` (events
#: per kind up to the snapshot's seq); the event payloads are unchanged, so logs written
#: at version 1 replay as before. Snapshots are looked up by this exact version, so a
#: version-1 snapshot (without counts) is simply not used: the next policy snapshot
#: replaces it, and until then a rebuild replays from an older one or from the start.
#: 3 -- snapshots keep each routine state and shared-data value as its encoded bytes
#: (exactly the bytes of the event that set it), so a snapshot is assembled without
#: re-encoding the state and a rebuilt state decodes a value only when it is read. The
#: event payloads are unchanged; older snapshots are not used (as above).
SCHEMA_VERSION = 3

#: The six job statuses of the original API, in lifecycle order.
JOB_STATUSES = ("pending", "running", "paused", "completed", "failed", "cancelled")
#: Statuses after which the durable log is synced (the run is over, or parked).
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


class EventKind(NamedTuple):
    """Description of one event kind.

    Attributes:
        name: the ``kind`` string stored in the log.
        since: the schema version that introduced it.
        fields: payload keys, in the order the writer puts them.
        doc: what it records (and which API writes it).
    """

    name: str
    since: int
    fields: tuple[str, ...]
    doc: str


JOB_CREATED = "job_created"
STATUS_SET = "status_set"
CURRENT_ROUTINE_SET = "current_routine_set"
ROUTINE_STATE_SET = "routine_state_set"
EXECUTION_RECORDED = "execution_recorded"
DEFERRED_EVENT_ADDED = "deferred_event_added"
DEFERRED_EVENTS_SET = "deferred_events_set"
SHARED_DATA_SET = "shared_data_set"
SHARED_LOG_APPENDED = "shared_log_appended"
OUTPUT_SENT = "output_sent"
PAUSE_POINT_ADDED = "pause_point_added"
PAUSED = "paused"
RESUMED = "resumed"
CANCELLED = "cancelled"
PENDING_TASKS_SET = "pending_tasks_set"
TASK_QUEUED = "task_queued"
TASK_STARTED = "task_started"
TASK_FINISHED = "task_finished"
TASK_FAILED = "task_failed"
DESERIALIZED = "deserialized"
#: The log's own erasure event (eventlog.erasure.ERASURE_KIND): personal values were
#: erased from the vault. It changes no state (the state holds only their commitments).
PERSONAL_ERASED = "eventlog.erasure"

_KIND_LIST = [
    EventKind(JOB_CREATED, 1, ("job_id", "flow_id", "schema"),
              "Always seq 1: the job's identity and the schema version it was written with."),
    EventKind(STATUS_SET, 1, ("status",), "`job_state.status = ...` (one of JOB_STATUSES)."),
    EventKind(CURRENT_ROUTINE_SET, 1, ("routine_id",), "`job_state.current_routine_id = ...` (str or None)."),
    EventKind(ROUTINE_STATE_SET, 1, ("routine_id", "state"),
              "update_routine_state: replaces routine_states[routine_id] (no merge)."),
    EventKind(EXECUTION_RECORDED, 1, ("routine_id", "event_name", "data"),
              "record_execution: one ExecutionRecord, timestamped with the event's ts."),
    EventKind(DEFERRED_EVENT_ADDED, 1, ("routine_id", "event_name", "data"),
              "add_deferred_event: appends {routine_id, event_name, data, timestamp(iso)}."),
    EventKind(DEFERRED_EVENTS_SET, 1, ("events",),
              "`job_state.deferred_events = [...]` (the engine clears them on resume)."),
    EventKind(SHARED_DATA_SET, 1, ("key", "value"), "update_shared_data(key, value)."),
    EventKind(SHARED_LOG_APPENDED, 1, ("entry",),
              "append_to_shared_log: the entry, plus an iso 'timestamp' from ts if it had none."),
    EventKind(OUTPUT_SENT, 1, ("routine_id", "output_type", "data"),
              "send_output: appends {routine_id, output_type, data, timestamp(iso)} to output_log."),
    EventKind(PAUSE_POINT_ADDED, 1, ("point",), "_add_pause_point: the engine's own pause-point dict."),
    EventKind(PAUSED, 1, ("reason", "checkpoint"),
              "_set_paused: status paused + pause point {timestamp, reason, current_routine_id, checkpoint}."),
    EventKind(RESUMED, 1, (), "_set_running: status paused -> running (other statuses unchanged)."),
    EventKind(CANCELLED, 1, ("reason",),
              "_set_cancelled: status cancelled; a non-empty reason sets routine_states['_cancellation']."),
    EventKind(PENDING_TASKS_SET, 1, ("tasks",), "`job_state.pending_tasks = [...]` (the engine on pause)."),
    EventKind(TASK_QUEUED, 1, ("task_id", "task"), "_task_queued: open_tasks[task_id] = {task, state: queued}."),
    EventKind(TASK_STARTED, 1, ("task_id",), "_task_started: open_tasks[task_id].state = started."),
    EventKind(TASK_FINISHED, 1, ("task_id",), "_task_finished: removes the task from open_tasks."),
    EventKind(TASK_FAILED, 1, ("task_id", "error"), "_task_failed: removes the task from open_tasks."),
    EventKind(DESERIALIZED, 1, ("state",),
              "deserialize(data): the given fields replace the current ones (lists included)."),
    EventKind(PERSONAL_ERASED, 3, ("commitments", "refs", "reason", "key", "signature"),
              "erase_personal (eventlog.erasure): personal values erased from the vault; no state changes."),
]

#: Every known kind by name.
KINDS: dict[str, EventKind] = {k.name: k for k in _KIND_LIST}

#: Kinds that append to the history lists (execution_history, shared_log, output_log,
#: pause_points) or replace them; snapshots do not store those lists.
HISTORY_KINDS = frozenset({EXECUTION_RECORDED, SHARED_LOG_APPENDED, OUTPUT_SENT, PAUSE_POINT_ADDED, PAUSED,
                           DESERIALIZED})
#: Kinds that change nothing but the history lists: a rebuild counts them and reads
#: their payloads only when the history is asked for.
HISTORY_ONLY_KINDS = frozenset({EXECUTION_RECORDED, SHARED_LOG_APPENDED, OUTPUT_SENT, PAUSE_POINT_ADDED})
