"""JobState ``serialize()``/``deserialize()``: the original 0.10 dict shape, both ways.

``serialize`` gives ``{"_type": "JobState", <fields>}`` with ISO timestamps and plain,
mutable copies (the shape routilux 0.10 writes, so a job can still be exported to JSON).
``deserialize`` checks such a dict and turns it into the payload of one ``deserialized``
event; the projection applies it like any other event.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from . import job_events as ev
from .execution_record import ExecutionRecord
from .frozen import thaw
from .projection import JobProjection
from .timestamps import iso_to_datetime

__all__ = ["JOB_FIELDS", "normalize_state", "record_dict", "serialize"]

#: The serialized fields, in the original's order.
JOB_FIELDS = ("flow_id", "job_id", "status", "current_routine_id", "routine_states", "execution_history",
              "created_at", "updated_at", "pause_points", "pending_tasks", "deferred_events", "shared_data",
              "shared_log", "output_log")
_TOP_FIELDS = frozenset(JOB_FIELDS)


def _iso(value: _dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def serialize(p: JobProjection) -> dict[str, Any]:
    """The original dict shape of ``p`` (its history lists must be complete)."""
    return {
        "_type": "JobState",
        "flow_id": p.flow_id,
        "job_id": p.job_id,
        "status": p.status,
        "current_routine_id": p.current_routine_id,
        "routine_states": thaw(p.routine_states),
        "execution_history": [r.serialize() for r in p.execution_history],
        "created_at": _iso(p.created_at),
        "updated_at": _iso(p.updated_at),
        "pause_points": thaw(p.pause_points),
        "pending_tasks": thaw(p.pending_tasks),
        "deferred_events": thaw(p.deferred_events),
        "shared_data": thaw(p.shared_data),
        "shared_log": thaw(p.shared_log),
        "output_log": thaw(p.output_log),
    }


def record_dict(record: ExecutionRecord) -> dict[str, Any]:
    """An execution record as stored in a ``deserialized`` event."""
    return {"routine_id": record.routine_id, "event_name": record.event_name, "data": thaw(record.data),
            "timestamp": record.timestamp.isoformat()}


def _check_str(name: str, value: Any) -> None:
    if type(value) is not str:
        msg = f"{name} must be a str, got {type(value).__name__} ({value!r})"
        raise TypeError(msg)


def normalize_state(data: Any) -> dict[str, Any]:
    """Check a serialize() dict and return the payload of a ``deserialized`` event.

    Raises:
        ValueError: not a JobState dict (wrong ``_type``, unknown field, invalid status,
            malformed history or timestamps).
        TypeError: an id is not a str.
    """
    if not isinstance(data, dict):
        msg = f"deserialize needs a dict made by JobState.serialize(), got {type(data).__name__}"
        raise ValueError(msg)
    tag = data.get("_type", "JobState")
    if tag != "JobState":
        msg = f"cannot deserialize a {tag!r} dict into a JobState (its _type must be 'JobState')"
        raise ValueError(msg)
    unknown = sorted(str(k) for k in data if k != "_type" and k not in _TOP_FIELDS)
    if unknown:
        msg = f"unknown JobState field(s) {', '.join(unknown)}; known: {', '.join(JOB_FIELDS)}"
        raise ValueError(msg)
    state: dict[str, Any] = {}
    for name in ("flow_id", "job_id"):
        if name in data:
            _check_str(name, data[name])
            state[name] = data[name]
    if "status" in data:
        # 0.10 allows a custom status string; an empty or non-str one is never a status.
        if type(data["status"]) is not str or not data["status"]:
            msg = f"invalid job status {data['status']!r}: a non-empty str (e.g. {', '.join(ev.JOB_STATUSES)})"
            raise ValueError(msg)
        state["status"] = data["status"]
    if "current_routine_id" in data:
        if data["current_routine_id"] is not None:
            _check_str("current_routine_id", data["current_routine_id"])
        state["current_routine_id"] = data["current_routine_id"]
    for name in ("created_at", "updated_at"):
        if data.get(name) is not None:
            state[name] = _iso_string(name, data[name])
    for name in ("routine_states", "shared_data"):
        if name in data:
            value = data[name]
            if not isinstance(value, dict):
                msg = f"{name} must be a dict, got {type(value).__name__}"
                raise ValueError(msg)
            for key in value:
                if type(key) is not str:
                    msg = f"{name} keys must be str, got {type(key).__name__} ({key!r})"
                    raise ValueError(msg)
            if name == "routine_states":
                for rid, rstate in value.items():
                    if not isinstance(rstate, dict):
                        msg = f"routine_states[{rid!r}] must be a dict, got {type(rstate).__name__}"
                        raise ValueError(msg)
            state[name] = value
    for name in ("pause_points", "pending_tasks", "deferred_events", "shared_log", "output_log"):
        if name in data:
            value = data[name]
            if not isinstance(value, list):
                msg = f"{name} must be a list, got {type(value).__name__}"
                raise ValueError(msg)
            state[name] = value
    if "execution_history" in data:
        state["execution_history"] = _records(data["execution_history"])
    return state


def _records(history: Any) -> list[dict[str, Any]]:
    if not isinstance(history, list):
        msg = f"execution_history must be a list, got {type(history).__name__}"
        raise ValueError(msg)
    records = []
    for i, item in enumerate(history):
        if isinstance(item, ExecutionRecord):
            records.append(record_dict(item))
            continue
        if not isinstance(item, dict):
            msg = f"execution_history[{i}] must be an ExecutionRecord dict, got {type(item).__name__}"
            raise ValueError(msg)
        rid, name, rdata = item.get("routine_id", ""), item.get("event_name", ""), item.get("data")
        if type(rid) is not str or type(name) is not str:
            msg = f"execution_history[{i}]: routine_id and event_name must be str"
            raise ValueError(msg)
        if rdata is None:
            rdata = {}
        if not isinstance(rdata, dict):
            msg = f"execution_history[{i}]['data'] must be a dict, got {type(rdata).__name__}"
            raise ValueError(msg)
        stamp = item.get("timestamp")
        records.append({"routine_id": rid, "event_name": name, "data": rdata,
                        "timestamp": None if stamp is None else _iso_string(f"execution_history[{i}]", stamp)})
    return records


def _iso_string(name: str, value: Any) -> str:
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            iso_to_datetime(value)
        except ValueError:
            msg = f"{name} {value!r} is not an ISO datetime"
            raise ValueError(msg) from None
        return value
    msg = f"{name} must be an ISO datetime string or a datetime, got {type(value).__name__}"
    raise ValueError(msg)
