"""The Serializable base (serilux's, with per-class field declarations) used by JobState and the engine."""

from __future__ import annotations

import datetime as dt

import pytest

from routilux.job_state import ExecutionRecord
from routilux.serializable import Serializable, register_serializable, registered_type


@register_serializable
class Point(Serializable):
    serializable_fields = ("x", "y")

    def __init__(self, x: int = 0, y: int = 0) -> None:
        self.x = x
        self.y = y


class Shape(Serializable):
    def __init__(self) -> None:
        self.name = ""
        self.points: list[Point] = []
        self.add_serializable_fields(["name", "points"])


def test_shape_and_round_trip() -> None:
    """serialize() tags the class name and recurses; deserialize() rebuilds nested objects."""
    shape = Shape()
    shape.name = "tri"
    shape.points = [Point(1, 2), Point(3, 4)]
    data = shape.serialize()
    assert data == {"_type": "Shape", "name": "tri", "points": [
        {"_type": "Point", "x": 1, "y": 2}, {"_type": "Point", "x": 3, "y": 4}]}
    again = Shape()
    again.deserialize(data)
    assert [(p.x, p.y) for p in again.points] == [(1, 2), (3, 4)]
    assert registered_type("Point") is Point


def test_errors() -> None:
    """Wrong _type, non-dict data and non-str field names are refused."""
    with pytest.raises(ValueError, match="'Point' dict into a Shape"):
        Shape().deserialize({"_type": "Point"})
    with pytest.raises(ValueError, match="needs a dict"):
        Shape().deserialize([1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be str"):
        Shape().add_serializable_fields([3])  # type: ignore[list-item]


def test_nested_execution_records_are_rebuilt() -> None:
    """An ExecutionRecord dict inside another object comes back as a record."""
    stamp = dt.datetime(2025, 5, 6, 7, 8, 9)
    shape = Shape()
    shape.points = [ExecutionRecord("r", "e", {"k": 1}, stamp)]  # type: ignore[list-item]
    again = Shape()
    again.deserialize(shape.serialize())
    (record,) = again.points
    assert isinstance(record, ExecutionRecord)
    assert (record.routine_id, record.data, record.timestamp) == ("r", {"k": 1}, stamp)
