"""ExecutionRecord: one entry of a job's execution history (immutable, named fields)."""

from __future__ import annotations

import datetime as _dt
from typing import Any, NoReturn

from eventlog.encoding import decode

from .frozen import FrozenDict, freeze, frozen_containers, thaw
from .serializable import Serializable
from .timestamps import iso_to_datetime, ts_to_datetime

__all__ = ["HINT_HISTORY", "HINT_RECORD", "ExecutionRecord"]

_new_record = object.__new__

HINT_HISTORY = "job_state.record_execution(routine_id, event_name, data)"
HINT_RECORD = "job_state.record_execution(...) (execution records are immutable)"
_RECORD_CONTAINERS = frozen_containers(HINT_RECORD)


def _refuse(name: str) -> NoReturn:
    msg = f"ExecutionRecord is immutable (cannot set {name!r}); record a new one with {HINT_HISTORY}"
    raise AttributeError(msg)


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

    A JobState builds one record per execution event when its history is read: the
    record keeps the event's encoded ``data`` and decodes it on first access, and turns
    ``ts`` into a datetime on first access, so building a long history costs little.
    """

    # ``_timestamp`` is set when known (a record built by hand, or one restored with an ISO
    # timestamp) or on first access; ``_detached`` only on records built by hand. Records
    # of a job set four slots: building a long history costs little.
    __slots__ = ("_data", "_detached", "_event_name", "_routine_id", "_timestamp", "_ts")

    _routine_id: str
    _event_name: str
    _data: Any  # encoded bytes, a plain dict, or the FrozenDict made from them on first access
    _ts: int | None
    _timestamp: _dt.datetime
    _detached: bool

    def __init__(self, routine_id: str = "", event_name: str = "", data: dict[str, Any] | None = None,
                 timestamp: _dt.datetime | None = None) -> None:
        self._routine_id = routine_id
        self._event_name = event_name
        self._data = freeze({} if data is None else data, HINT_RECORD)
        self._ts = None
        self._timestamp = timestamp if timestamp is not None else _dt.datetime.now()
        self._detached = True

    @classmethod
    def from_event(cls, routine_id: str, event_name: str, data: Any, ts: int | None,
                   timestamp: _dt.datetime | None = None) -> ExecutionRecord:
        """A record of a job's history, built from its event.

        ``data`` is the event's data as decoded, or its encoded bytes (decoded on first
        access); ``ts`` the event's timestamp (or None with an explicit ``timestamp``).
        """
        record = _new_record(cls)
        record._routine_id = routine_id
        record._event_name = event_name
        record._data = data
        record._ts = ts
        if timestamp is not None:
            record._timestamp = timestamp
        return record

    @property
    def routine_id(self) -> str:
        """The routine that executed."""
        return self._routine_id

    @routine_id.setter
    def routine_id(self, value: str) -> NoReturn:
        _refuse("routine_id")

    @property
    def event_name(self) -> str:
        """The event emitted, or the action name (``start``, ``error``, ...)."""
        return self._event_name

    @event_name.setter
    def event_name(self, value: str) -> NoReturn:
        _refuse("event_name")

    @property
    def data(self) -> FrozenDict:
        """The data transmitted (read-only)."""
        data = self._data
        if type(data) is not FrozenDict:
            if type(data) is bytes:  # decoded straight into the read-only containers
                data = decode(data, where="<execution record>", containers=_RECORD_CONTAINERS)
            else:
                data = freeze(data, HINT_RECORD)
            self._data = data
        return data  # type: ignore[no-any-return]

    @data.setter
    def data(self, value: Any) -> NoReturn:
        _refuse("data")

    @property
    def timestamp(self) -> _dt.datetime:
        """When it happened: a naive local datetime (from the event's ts in a JobState)."""
        try:
            return self._timestamp
        except AttributeError:  # first access: from the event's ts
            assert self._ts is not None  # a record without a timestamp has its ts
            stamp = self._timestamp = ts_to_datetime(self._ts)
            return stamp

    @timestamp.setter
    def timestamp(self, value: Any) -> NoReturn:
        _refuse("timestamp")

    @property
    def ts(self) -> int | None:
        """The event timestamp in ns since the epoch, or ``None`` for a detached record."""
        return self._ts

    def __repr__(self) -> str:
        return f"ExecutionRecord[{self.routine_id}.{self.event_name}@{self.timestamp}]"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExecutionRecord):
            return NotImplemented
        return (self._routine_id == other._routine_id and self._event_name == other._event_name
                and self.timestamp == other.timestamp and self.data == other.data)

    def __hash__(self) -> int:
        return hash((self.routine_id, self.event_name, self.timestamp))

    def __reduce__(self) -> tuple[Any, ...]:
        return (ExecutionRecord, (self.routine_id, self.event_name, thaw(self.data), self.timestamp))

    @property
    def fields_to_serialize(self) -> list[str]:
        """The serialized fields, as in the original."""
        return ["routine_id", "event_name", "data", "timestamp"]

    @fields_to_serialize.setter
    def fields_to_serialize(self, value: list[str]) -> None:
        msg = f"{type(self).__name__} always serializes the same fields; they cannot be changed"
        raise AttributeError(msg)

    def serialize(self, max_depth: int = 100, _current_depth: int = 0) -> dict[str, Any]:
        """Return ``{"_type": "ExecutionRecord", routine_id, event_name, data, timestamp(iso)}``."""
        return {
            "_type": "ExecutionRecord",
            "routine_id": self.routine_id,
            "event_name": self.event_name,
            "data": thaw(self.data),
            "timestamp": self.timestamp.isoformat(),
        }

    def deserialize(self, data: dict[str, Any], strict: bool = False, registry: Any = None) -> None:
        """Set this record's fields from a :meth:`serialize` dict (original API).

        Only for a record you built yourself: records inside a JobState are part of
        its audit trail and refuse.

        Raises:
            TypeError: the record belongs to a JobState.
            ValueError: ``data`` is not an ExecutionRecord dict.
        """
        if not getattr(self, "_detached", False):
            msg = f"this ExecutionRecord is part of a JobState and immutable; use {HINT_HISTORY}"
            raise TypeError(msg)
        other = ExecutionRecord.from_dict(data)
        self._routine_id, self._event_name, self._data = other._routine_id, other._event_name, other._data
        self._ts, self._timestamp = None, other.timestamp

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
