"""An event appended to a log is first packed by a quick probe; it must give the careful path's bytes."""

from __future__ import annotations

import threading
import warnings
from typing import Any

from hypothesis import given
from value_types import values  # noqa: E402  (tests/value_types.py)

from eventlog import InMemoryEventLog
from eventlog.encoding import Personal, decode_event, encode_event
from eventlog.errors import UnrepresentableValueWarning


@given(value=values)
def test_sealing_encode_gives_the_plain_bytes_when_nothing_is_personal(value: Any) -> None:
    sealed: list[Any] = []
    assert encode_event("k", {"v": value}, False, sealed) == encode_event("k", {"v": value})
    assert sealed == []


def test_personal_values_are_still_sealed_and_placeholders_still_stored() -> None:
    lock = threading.Lock()
    sealed: list[Any] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnrepresentableValueWarning)
        event = encode_event("k", {"who": Personal("ann"), "lock": lock, "n": [1, (2, Personal("bob"))]}, True, sealed)
    assert len(sealed) == 2
    _, data = decode_event(event)
    assert data["who"].is_sealed and data["n"][1][1].is_sealed
    assert type(data["lock"]).__name__ == "Unrepresentable"


def test_a_log_keeps_personal_values_in_its_vault() -> None:
    log = InMemoryEventLog()
    log.append("k", {"who": Personal("ann")})
    assert log.reveal(next(iter(log.read(1, 1))).data["who"]) == "ann"
