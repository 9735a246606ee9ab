"""The ``emits`` fixture of the builtin routine tests (other helpers: ``builtin_support.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from routilux import Routine

Emitted = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def emits(monkeypatch: pytest.MonkeyPatch) -> Callable[[Routine], Emitted]:
    """Start recording a routine's emits; returns the (growing) list of ``(event, data)``."""

    def attach(routine: Routine) -> Emitted:
        record: Emitted = []
        real = routine.emit

        def recording(event_name: str, flow: Any = None, **data: Any) -> None:
            record.append((event_name, data))
            real(event_name, flow, **data)

        monkeypatch.setattr(routine, "emit", recording)
        return record

    return attach
