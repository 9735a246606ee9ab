"""Values of every type the codec keeps, for property tests across every path a value takes.

``values`` draws nested values of every standard type (and of registered dataclass,
attrs and named-tuple classes); ``typed`` gives a comparable form that also compares
exact types, float bits (NaN-aware) and Decimal digits. Read-only views handed out by a
JobState compare as the containers they stand for.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import pathlib
import struct
from typing import Any, NamedTuple

import attrs
from hypothesis import strategies as st

from eventlog.encoding import register_type

__all__ = ["Box", "Colour", "Level", "Pair", "Point", "hashables", "typed", "values"]


class Colour(enum.Enum):
    """A plain enum."""

    RED = 1
    GREEN = "green"


class Level(enum.IntEnum):
    """An int enum (an int subclass)."""

    LOW = 1
    HIGH = 2


@dataclasses.dataclass(frozen=True)
class Point:
    """A frozen dataclass (hashable, so usable as a key)."""

    x: int
    y: Any = None


@attrs.define
class Box:
    """A mutable attrs class."""

    label: str
    items: list[Any] = attrs.field(factory=list)


class Pair(NamedTuple):
    """A named tuple."""

    a: Any
    b: Any


for _cls in (Colour, Level, Point, Box, Pair):
    register_type(_cls)


def typed(value: Any) -> Any:
    """A comparable form of ``value`` that also compares exact types, float bits and Decimal digits.

    A JobState's read-only dict/list/set views compare as dict/list/set.
    """
    t = type(value)
    if t is float:
        return ("float", struct.pack(">d", value))
    if t is decimal.Decimal:
        return ("Decimal", str(value))
    if t is tuple:
        return ("tuple", [typed(v) for v in value])
    if isinstance(value, list):
        return ("list", [typed(v) for v in list.__iter__(value)])
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in dict.items(value)])
    if t is frozenset:
        return ("frozenset", sorted(repr(typed(v)) for v in value))
    if isinstance(value, set):
        return ("set", sorted(repr(typed(v)) for v in value))
    if t in (dt.datetime, dt.time):
        return (t.__name__, value.isoformat(), repr(value.tzinfo), value.fold)
    if t is Pair:
        return ("Pair", typed(value.a), typed(value.b))
    if t is Point:
        return ("Point", typed(value.x), typed(value.y))
    if t is Box:
        return ("Box", typed(value.label), typed(value.items))
    return (t.__name__, value)


offsets = st.builds(dt.timezone, st.timedeltas(min_value=dt.timedelta(hours=-23, minutes=-59),
                                               max_value=dt.timedelta(hours=23, minutes=59)))
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
hashables = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), texts, st.binary(max_size=8),
        st.datetimes(timezones=st.none() | st.just(dt.timezone.utc) | offsets),
        st.dates(), st.times(timezones=st.none() | offsets), st.timedeltas(),
        st.decimals(allow_nan=True, allow_infinity=True).filter(lambda d: not d.is_snan()), st.uuids(),
        st.builds(pathlib.PurePosixPath, texts), st.sampled_from(list(Colour) + list(Level)),
    ),
    lambda inner: st.one_of(st.tuples(inner, inner), st.frozensets(inner, max_size=3),
                            st.builds(Point, inner, inner)),
    max_leaves=6,
)
values = st.recursive(
    hashables,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(hashables, inner, max_size=4),
        st.sets(hashables, max_size=4),
        st.builds(Box, texts, st.lists(inner, max_size=2)),
        st.builds(Pair, inner, inner),
    ),
    max_leaves=16,
)
