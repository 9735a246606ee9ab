"""Importing a routilux 0.10 JSON save: the original's ``JobState.save`` file as a new job log.

routilux 0.10 saved a job as one JSON document (``serialize()`` with ISO timestamps). An
import turns it into events, the only way into a job's state here:

1. ``job_created`` with the job's own id and flow id and ``imported_from``: the file's
   name, the SHA-256 of its bytes and the format, so the trail says where it began;
2. the saved state, item by item, through the ordinary kinds: one ``routine_state_set``
   per routine, one ``shared_data_set`` per key, one ``execution_recorded`` per record
   (each with its original timestamp), one ``shared_log_appended`` per entry (entries keep
   theirs), one ``pause_point_added`` per pause point, the deferred events and pending
   tasks, the current routine and the status;
3. one ``deserialized`` event for what has no event of its own: the outputs (with their
   original timestamps) and the job's original ``created_at``/``updated_at``.

``blame`` on an imported value therefore names the import, and ``verify`` checks the new
log like any other. Nothing is read from the file but data: a save is refused (one
``ValueError`` line naming the file and the reason) when it is not JSON, not a JobState
dict, or holds a value of the wrong type; nothing is created then.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import Any

from . import job_events as ev
from .job_serialize import normalize_state

__all__ = ["FORMAT", "MAX_SAVE_BYTES", "events_from_save", "is_json_save", "read_010_save"]

#: The ``format`` recorded in ``job_created.imported_from``.
FORMAT = "routilux-0.10-json"
#: Largest save file read (0.10 wrote ~300 bytes per execution record: 2 GiB is millions).
MAX_SAVE_BYTES = 2 * 1024**3


def is_json_save(path: str) -> bool:
    """Whether the file at ``path`` starts like a JSON document (``{`` after white space).

    Only a regular file is looked at: opening a FIFO would block and a device may never
    end, and :func:`eventlog.read_bundle` refuses those with a clear message.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return False
    return head.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] == b"{"


def read_010_save(path: str) -> list[tuple[str, dict[str, Any]]]:
    """The events of a job imported from the routilux 0.10 save at ``path``.

    Raises:
        ValueError: not a readable 0.10 save (the message names the file and the reason).
    """
    name = os.path.basename(path)
    try:
        size = os.path.getsize(path)
        if size > MAX_SAVE_BYTES:
            msg = f"it is {size} bytes, more than the {MAX_SAVE_BYTES} a save is read up to"
            raise ValueError(msg)
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SAVE_BYTES + 1)
        try:
            data = json.loads(raw.decode("utf-8-sig"))
        except RecursionError:
            msg = "its JSON nests too deep"
            raise ValueError(msg) from None
        except UnicodeDecodeError as exc:
            msg = f"it is not UTF-8 text ({exc.reason})"
            raise ValueError(msg) from None
        except json.JSONDecodeError as exc:
            msg = f"it is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            raise ValueError(msg) from None
        if not isinstance(data, dict) or data.get("_type") != "JobState":
            msg = "it is JSON but not a routilux JobState save (no \"_type\": \"JobState\")"
            raise ValueError(msg)
        return events_from_save(data, name, hashlib.sha256(raw).hexdigest())
    except OSError as exc:
        msg = f"{path!r} cannot be read as a routilux 0.10 save: {exc.strerror or exc}"
        raise ValueError(msg) from None
    except (ValueError, TypeError) as exc:
        msg = f"{path!r} is not a routilux 0.10 save: {exc}"
        raise ValueError(msg) from None


def events_from_save(data: dict[str, Any], file_name: str, sha256: str) -> list[tuple[str, dict[str, Any]]]:
    """The events that rebuild the 0.10 ``serialize()`` dict ``data`` (see the module doc).

    Raises:
        ValueError, TypeError: ``data`` is not a JobState dict (what is wrong, named).
    """
    state = normalize_state(data)
    job_id = state.get("job_id")
    if not job_id:
        msg = "it has no job_id"
        raise ValueError(msg)
    created: dict[str, Any] = {"job_id": job_id, "flow_id": state.get("flow_id", ""), "schema": ev.SCHEMA_VERSION,
                               "imported_from": {"file": file_name, "sha256": sha256, "format": FORMAT}}
    events: list[tuple[str, dict[str, Any]]] = [(ev.JOB_CREATED, created)]
    for routine_id, routine_state in state.get("routine_states", {}).items():
        events.append((ev.ROUTINE_STATE_SET, {"routine_id": routine_id, "state": routine_state}))
    for key, value in state.get("shared_data", {}).items():
        events.append((ev.SHARED_DATA_SET, {"key": key, "value": value}))
    for record in state.get("execution_history", []):
        payload = {"routine_id": record["routine_id"], "event_name": record["event_name"]}
        if record["timestamp"] is not None:
            payload["timestamp"] = record["timestamp"]
        payload["data"] = record["data"]
        events.append((ev.EXECUTION_RECORDED, payload))
    for entry in state.get("shared_log", []):
        events.append((ev.SHARED_LOG_APPENDED, {"entry": _dict("shared_log entry", entry)}))
    for point in state.get("pause_points", []):
        events.append((ev.PAUSE_POINT_ADDED, {"point": _dict("pause point", point)}))
    if state.get("deferred_events"):
        events.append((ev.DEFERRED_EVENTS_SET, {"events": state["deferred_events"]}))
    if state.get("pending_tasks"):
        events.append((ev.PENDING_TASKS_SET, {"tasks": state["pending_tasks"]}))
    if state.get("current_routine_id") is not None:
        events.append((ev.CURRENT_ROUTINE_SET, {"routine_id": state["current_routine_id"]}))
    if "status" in state and state["status"] != "pending":
        events.append((ev.STATUS_SET, {"status": state["status"]}))
    rest = {name: state[name] for name in ("output_log", "created_at", "updated_at") if state.get(name) is not None}
    if rest:
        events.append((ev.DESERIALIZED, {"state": rest}))
    return events


def _dict(what: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        msg = f"a {what} must be a dict, got {type(value).__name__}"
        raise ValueError(msg)
    return value
