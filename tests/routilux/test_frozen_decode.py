"""Records' data is decoded straight into read-only containers: the same as freeze(decode(...))."""

from __future__ import annotations

import dataclasses
from typing import Any

import attrs
import pytest
from hypothesis import given
from value_types import values  # noqa: E402  (tests/value_types.py)

from eventlog.encoding import decode, encode
from routilux import JobState
from routilux.execution_record import HINT_RECORD
from routilux.frozen import freeze, frozen_containers


def exact(value: Any) -> Any:
    """The value with the exact type of every container (and the hint of read-only ones)."""
    kind = type(value)
    hint = getattr(value, "_hint", None)
    if isinstance(value, dict):
        return (kind.__name__, hint, [(exact(k), exact(v)) for k, v in dict.items(value)])
    if isinstance(value, (tuple, list)):  # named tuples too
        return (kind.__name__, hint, [exact(v) for v in value])
    if isinstance(value, (set, frozenset)):
        return (kind.__name__, hint, sorted(repr(exact(v)) for v in value))
    if attrs.has(kind) or dataclasses.is_dataclass(value):
        names = [f.name for f in (attrs.fields(kind) if attrs.has(kind) else dataclasses.fields(value))]
        return (kind.__name__, [(name, exact(getattr(value, name))) for name in names])
    return (kind.__name__, repr(value))


@given(value=values)
def test_frozen_containers_give_what_freeze_gives(value: Any) -> None:
    payload = encode(value)
    assert exact(decode(payload, containers=frozen_containers("hint"))) == exact(freeze(decode(payload), "hint"))


def test_record_data_read_after_a_load_is_read_only_and_equal(tmp_path: Any) -> None:
    data = {"result": "ok", "items": [1, [2, {"x": 3}]], "meta": {"tags": ("a", ["b"]), "s": {1, 2}}}
    job = JobState("flow")
    job.record_execution("r", "out", data)
    path = tmp_path / "job.json"
    job.save(str(path))
    loaded = JobState.load(str(path))
    got = loaded.execution_history[0].data
    assert got == data
    assert exact(got) == exact(freeze(data, HINT_RECORD))
    with pytest.raises(TypeError, match="read-only"):
        got["items"][1].append(4)
    with pytest.raises(TypeError, match="read-only"):
        got["meta"]["s"].add(3)
