"""TimeProvider: formats, per-request overrides, one clock reading, and a real flow."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from builtin_support import assert_replays, history, run_flow, send

from routilux import JobState
from routilux.builtin_routines import TimeProvider
from routilux.builtin_routines.utils import time_provider as module

FRIDAY = datetime(2026, 12, 4, 9, 30, 15, 123456)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    """Every TimeProvider in these tests reads FRIDAY."""
    monkeypatch.setattr(module, "_now", lambda: FRIDAY)


def request(emits, payload=None, **config):
    clock = TimeProvider()
    clock.set_config(**config)
    out = emits(clock)
    send(clock, payload or {})
    assert [name for name, _ in out] == ["output"]
    return out[0][1]


def test_defaults_slots_and_events():
    """0.10's defaults, slot ``request`` (trigger_slot) and event ``output``."""
    clock = TimeProvider()
    assert clock.config() == {"format": "iso", "custom_format": "%Y-%m-%d %H:%M:%S", "include_weekday": True,
                              "locale": "zh_CN"}
    assert clock.trigger_slot is clock.get_slot("request") and list(clock._slots) == ["request"]
    assert clock.output_event.output_params == ["time_string", "timestamp", "datetime", "formatted"]


def test_iso_by_default_with_every_field_from_one_reading(emits):
    """The default emits ISO time; timestamp, datetime and formatted describe the same instant."""
    assert request(emits) == {
        "time_string": "2026-12-04T09:30:15.123456",
        "timestamp": FRIDAY.timestamp(),
        "datetime": "2026-12-04T09:30:15.123456",
        "formatted": "2026-12-04 09:30:15",
    }


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"format": "timestamp"}, str(FRIDAY.timestamp())),
        ({"format": "custom", "custom_format": "%d/%m/%Y %Hh"}, "04/12/2026 09h"),
        ({"format": "formatted"}, "2026年12月04日，星期五，09:30:15"),
        ({"format": "formatted", "include_weekday": False}, "2026-12-04 09:30:15"),
        ({"format": "formatted", "locale": "en_US"}, "Friday, December 04, 2026 09:30:15"),
        ({"format": "formatted", "locale": "en_US", "include_weekday": False}, "2026-12-04 09:30:15"),
        ({"format": "no-such-format"}, "2026-12-04T09:30:15.123456"),
    ],
)
def test_formats(emits, config, expected):
    """Each format and locale option; an unknown format gives ISO."""
    assert request(emits, **config)["time_string"] == expected


def test_custom_format_always_fills_formatted(emits):
    """``formatted`` uses custom_format whatever the chosen format."""
    out = request(emits, format="iso", custom_format="%H:%M")
    assert out["formatted"] == "09:30" and out["time_string"] == "2026-12-04T09:30:15.123456"


def test_chinese_weekdays_cover_the_week(emits, monkeypatch):
    """Monday..Sunday map to 一..日."""
    names = []
    for offset in range(7):
        moment = datetime(2026, 11, 30, 12) + timedelta(days=offset)  # 2026-11-30 is a Monday
        monkeypatch.setattr(module, "_now", lambda moment=moment: moment)
        names.append(request(emits, format="formatted")["time_string"].split("星期")[1][0])
    assert "".join(names) == "一二三四五六日"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"format": "custom"}, "2026-12-04 09:30:15"),
        ({"data": {"format": "timestamp"}}, str(FRIDAY.timestamp())),
        ({"data": {"other": 1}}, "2026-12-04T09:30:15.123456"),  # no format in it: the configured one
        ({"data": "x", "format": "custom"}, "2026-12-04 09:30:15"),  # data that is not a dict
    ],
)
def test_a_format_in_the_request_overrides_the_config(emits, payload, expected):
    """A ``format`` key (directly, or in a ``data`` dict) wins for that request."""
    assert request(emits, payload)["time_string"] == expected


def test_in_a_flow_the_recorded_time_replays_not_the_clock(monkeypatch):
    """Through a real flow; replaying the job later shows the time recorded then, not the clock now."""
    clock = TimeProvider()
    clock.set_config(format="formatted", locale="en_US")
    _, job, got = run_flow(clock, [{}, {"format": "iso"}])
    assert [r["time_string"] for r in got["output"]] == ["Friday, December 04, 2026 09:30:15",
                                                         "2026-12-04T09:30:15.123456"]
    assert history(job) == [("output", r) for r in got["output"]]
    monkeypatch.setattr(module, "_now", lambda: datetime(2030, 1, 1))
    rebuilt = JobState.from_events(job.events())
    assert [r.data["time_string"] for r in rebuilt.get_execution_history("builtin")] == [
        "Friday, December 04, 2026 09:30:15", "2026-12-04T09:30:15.123456"]
    assert_replays(job)


def test_the_documented_trigger_outside_a_flow():
    """``trigger_slot.receive({})`` (the 0.10 docs' usage) delivers the output to connected slots."""
    from builtin_support import Sink

    clock, sink = TimeProvider(), Sink()
    clock.output_event.connect(sink.get_slot("in"))
    clock.trigger_slot.receive({})
    assert sink.received == [{"time_string": "2026-12-04T09:30:15.123456", "timestamp": FRIDAY.timestamp(),
                              "datetime": "2026-12-04T09:30:15.123456", "formatted": "2026-12-04 09:30:15"}]
