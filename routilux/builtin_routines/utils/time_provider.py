"""TimeProvider: emits the current local time in several formats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from routilux.routine import Routine

__all__ = ["TimeProvider"]

_CHINESE_WEEKDAYS = "一二三四五六日"  # Monday .. Sunday
_PLAIN = "%Y-%m-%d %H:%M:%S"


def _now() -> datetime:
    """The current local time (naive, like ``datetime.now()``); tests replace it."""
    return datetime.now()


class TimeProvider(Routine):
    """Emit the current local time each time the ``request`` slot receives anything.

    Slot ``request`` (``self.trigger_slot``): the data is ignored except for a ``format`` key
    (received directly, or inside a dict under ``data``), which overrides the configured
    format for that request.

    Event ``output`` (``self.output_event``) carries ``time_string`` (in the chosen format),
    ``timestamp`` (Unix seconds, float), ``datetime`` (ISO 8601, local, no zone) and
    ``formatted`` (always ``custom_format``). All four come from one reading of the clock.

    Formats: ``"iso"`` (``2026-12-04T09:30:00.123456``), ``"timestamp"`` (the Unix time as a
    string), ``"formatted"`` (see ``locale``), ``"custom"`` (``custom_format``); any other
    value gives ISO.

    Configuration:
        format (str, ``"iso"``).
        custom_format (str, ``"%Y-%m-%d %H:%M:%S"``): a ``strftime`` pattern.
        locale (str, ``"zh_CN"``): with ``"zh_CN"`` and ``include_weekday``, ``"formatted"``
            reads ``2026年12月04日，星期五，09:30:00``; otherwise it reads
            ``Friday, December 04, 2026 09:30:00`` (weekday and month names from the C
            library's current locale), or ``2026-12-04 09:30:00`` without the weekday.
        include_weekday (bool, True).

    The time lands in the job's log as event data, so replaying the job shows the time the
    routine emitted, not the time of the replay. Records nothing else in the job.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(format="iso", custom_format=_PLAIN, include_weekday=True, locale="zh_CN")
        self.trigger_slot = self.define_slot("request", handler=self._handle_request)
        self.output_event = self.define_event("output", ["time_string", "timestamp", "datetime", "formatted"])

    def _handle_request(self, data: Any = None, **kwargs: Any) -> None:
        if data and isinstance(data, dict):
            requested = data.get("format")
        else:
            requested = kwargs.get("format")
        format_name = requested or self.get_config("format", "iso")
        now = _now()
        self.emit(
            "output",
            time_string=self._format(now, format_name),
            timestamp=now.timestamp(),
            datetime=now.isoformat(),
            formatted=now.strftime(self.get_config("custom_format", _PLAIN)),
        )

    def _format(self, now: datetime, format_name: Any) -> str:
        if format_name == "timestamp":
            return str(now.timestamp())
        if format_name == "custom":
            return now.strftime(self.get_config("custom_format", _PLAIN))
        if format_name == "formatted":
            with_weekday = self.get_config("include_weekday", True)
            if self.get_config("locale", "zh_CN") == "zh_CN" and with_weekday:
                weekday = _CHINESE_WEEKDAYS[now.weekday()]
                return now.strftime(f"%Y年%m月%d日，星期{weekday}，%H:%M:%S")
            return now.strftime("%A, %B %d, %Y %H:%M:%S" if with_weekday else _PLAIN)
        return now.isoformat()
