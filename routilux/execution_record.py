"""ExecutionRecord: one entry of a job's execution history (immutable, named fields)."""

from __future__ import annotations

import datetime as _dt
from typing import Any, NoReturn

from .frozen import FrozenDict, freeze, thaw
from .serializable import Serializable
from .timestamps import iso_to_datetime, ts_to_datetime

__all__ = ["HINT_HISTORY", "HINT_RECORD", "ExecutionRecord"]

HINT_HISTORY = "job_state.record_execution(routine_id, event_name, data)"
HINT_RECORD = "job_state.record_execution(...) (execution records are immutable)"


class ExecutionRecord(Serializable):
    """Execution record for a single routine execution (immutable).

    Args:
        routine_id: routine identifier.
        event_name: event name.
        data: transmitted data (default ``{}``); stored as a read-only deep copy.
        timestamp: when it happened (default: now, a naive local datetime).

    Records inside a JobState take their timestamp from their event's ``ts`` and are
    part of its audit trail: they refuse every change. A record built by hand can be
    filled from a dict with :meth:`deserialize`, as in the original API.
    """

    __slots__ = ("_data", "_in_job", "_timestamp", "_ts", "event_name", "routine_id")

    routine_id: str
    event_name: str
    _data: Any
    _ts: int | None
    _timestamp: _dt.datetime | None
    _in_job: bool

    def __init__(self, routine_id: str = "", event_name: str = "", data: dict[str, Any] | None = None,
                 timestamp: _dt.datetime | None = None) -> None:
        self._set(routine_id, event_name, freeze({} if data is None else data, HINT_RECORD), None,
                  timestamp if timestamp is not None else _dt.datetime.now(), False)

    def _set(self, routine_id: str, event_name: str, data: Any, ts: int | None, timestamp: _dt.datetime | None,
             in_job: bool) -> None:
        set_ = object.__setattr__
        set_(self, "routine_id", routine_id)
        set_(self, "event_name", event_name)
        set_(self, "_data", data)
        set_(self, "_ts", ts)
        set_(self, "_timestamp", timestamp)
        set_(self, "_in_job", in_job)

    @classmethod
    def from_event(cls, routine_id: str, event_name: str, data: Any, ts: int | None,
                   timestamp: _dt.datetime | None = None) -> ExecutionRecord:
        """A record of a job's history, built from its event (``data`` as decoded; frozen on first access)."""
        record = object.__new__(cls)
        record._set(routine_id, event_name, data, ts, timestamp, True)
        return record

    @property
    def data(self) -> FrozenDict:
        """The data transmitted (read-only)."""
        data = self._data
        if type(data) is not FrozenDict:
            # Frozen on first access, not when the history is built: most records are never read.
            data = freeze(data, HINT_RECORD)
            object.__setattr__(self, "_data", data)
        return data  # type: ignore[no-any-return]

    @property
    def timestamp(self) -> _dt.datetime:
        """When it happened: a naive local datetime (from the event's ts in a JobState)."""
        stamp = self._timestamp
        if stamp is None:
            assert self._ts is not None  # a record without a timestamp has its ts
            stamp = ts_to_datetime(self._ts)
            object.__setattr__(self, "_timestamp", stamp)
        return stamp

    @property
    def ts(self) -> int | None:
        """The event timestamp in ns since the epoch, or ``None`` for a detached record."""
        return self._ts

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        msg = f"ExecutionRecord is immutable (cannot set {name!r}); record a new one with {HINT_HISTORY}"
        raise AttributeError(msg)

    __delattr__ = __setattr__  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ExecutionRecord[{self.routine_id}.{self.event_name}@{self.timestamp}]"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExecutionRecord):
            return NotImplemented
        return (self.routine_id == other.routine_id and self.event_name == other.event_name
                and self.timestamp == other.timestamp and self.data == other.data)

    def __hash__(self) -> int:
        return hash((self.routine_id, self.event_name, self.timestamp))

    def __reduce__(self) -> tuple[Any, ...]:
        return (ExecutionRecord, (self.routine_id, self.event_name, thaw(self.data), self.timestamp))

    @property
    def fields_to_serialize(self) -> list[str]:
        """The serialized fields, as in the original."""
        return ["routine_id", "event_name", "data", "timestamp"]

    def serialize(self) -> dict[str, Any]:
        """Return ``{"_type": "ExecutionRecord", routine_id, event_name, data, timestamp(iso)}``."""
        return {
            "_type": "ExecutionRecord",
            "routine_id": self.routine_id,
            "event_name": self.event_name,
            "data": thaw(self.data),
            "timestamp": self.timestamp.isoformat(),
        }

    def deserialize(self, data: dict[str, Any]) -> None:
        """Set this record's fields from a :meth:`serialize` dict (original API).

        Only for a record you built yourself: records inside a JobState are part of
        its audit trail and refuse.

        Raises:
            TypeError: the record belongs to a JobState.
            ValueError: ``data`` is not an ExecutionRecord dict.
        """
        if self._in_job:
            msg = f"this ExecutionRecord is part of a JobState and immutable; use {HINT_HISTORY}"
            raise TypeError(msg)
        other = ExecutionRecord.from_dict(data)
        self._set(other.routine_id, other.event_name, other._data, None, other.timestamp, False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecutionRecord:
        """Build a record from a dict made by :meth:`serialize` (ISO timestamp parsed).

        Raises:
            ValueError: ``data`` is not such a dict.
        """
        if not isinstance(data, dict):
            msg = f"an ExecutionRecord dict is needed, got {type(data).__name__}"
            raise ValueError(msg)
        try:
            stamp = iso_to_datetime(data.get("timestamp"))
        except (TypeError, ValueError) as exc:
            msg = f"ExecutionRecord timestamp {data.get('timestamp')!r} is not an ISO datetime"
            raise ValueError(msg) from exc
        return cls(data.get("routine_id", ""), data.get("event_name", ""), data.get("data"), stamp)
