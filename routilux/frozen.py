"""The ``dict``, ``list`` and ``set`` types handed out by a JobState.

They subclass ``dict``, ``list`` and ``set`` so user code keeps working: ``isinstance(x, dict)``,
``==`` with plain values, iteration, ``json.dumps``, ``dict(x)``/``x.copy()`` (which give
plain, mutable copies). Tuples stay tuples (their items are frozen).

Two families:

* :class:`FrozenDict`, :class:`FrozenList`, :class:`ReadOnlySet`: read-only. Every in-place
  mutation raises ``TypeError`` naming the JobState method to use instead (execution
  records' data, outputs, pause points, tasks...): a change that bypassed the event log
  would silently break the audit trail (DESIGN.md, "The event model", rule 4).
* :class:`LiveDict`, :class:`LiveList` (and the synced top-level views): the values of
  ``shared_data``, ``routine_states``, ``shared_log`` and ``execution_history``, which
  accept the mutations a dict or list accepts, as routilux 0.10's plain containers did.
  A mutation does not change the container: it is handed to the container's *anchor*
  (``edit(container, method, args)``), which records it as one event in the job's log;
  the projection then applies that event to this very container. A live container
  knows its path from the value's root (``_path``), a hint its anchor checks.

The projection itself mutates all of these through the base-class methods
(``dict.__setitem__(d, k, v)``, ``list.append(lst, x)``); nothing else should.
"""

from __future__ import annotations

from typing import Any, NoReturn, Protocol

from eventlog.encoding import Containers

__all__ = ["NO_DEFAULT", "EditAnchor", "FrozenDict", "FrozenList", "LiveDict", "LiveList", "ReadOnlySet", "SyncedFrozenDict",
           "SyncedFrozenList", "freeze", "freeze_live", "frozen_containers", "thaw"]

_DEFAULT_HINT = "the JobState's methods"


class FrozenDict(dict):  # type: ignore[type-arg]
    """A ``dict`` that refuses in-place mutation; ``hint`` names the method to use."""

    __slots__ = ("_hint",)

    def __init__(self, *args: Any, hint: str = _DEFAULT_HINT, **kwargs: Any) -> None:
        dict.__init__(self, *args, **kwargs)
        self._hint = hint

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        msg = f"this dict is read-only (it is part of a JobState); to change it use {self._hint}"
        raise TypeError(msg)

    # Typed Any: the live subclass (LiveDict) gives each of them the dict method's own signature.
    _refused: Any = _refuse
    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refused

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return thaw(self)  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (or copied) values come back as plain dicts: a copy is the user's own.
        return (dict, (thaw(self),))


class FrozenList(list):  # type: ignore[type-arg]
    """A ``list`` that refuses in-place mutation; ``hint`` names the method to use."""

    __slots__ = ("_hint",)

    def __init__(self, *args: Any, hint: str = _DEFAULT_HINT) -> None:
        list.__init__(self, *args)
        self._hint = hint

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        msg = f"this list is read-only (it is part of a JobState); to change it use {self._hint}"
        raise TypeError(msg)

    # Typed Any: the live subclass (LiveList) gives each of them the list method's own signature.
    _refused: Any = _refuse
    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = _refused
    sort = reverse = __iadd__ = __imul__ = _refused

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return thaw(self)  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (thaw(self),))


class ReadOnlySet(set):  # type: ignore[type-arg]
    """A ``set`` that refuses in-place mutation; ``hint`` names the method to use."""

    __slots__ = ("_hint",)

    def __init__(self, *args: Any, hint: str = _DEFAULT_HINT) -> None:
        set.__init__(self, *args)
        self._hint = hint

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        msg = f"this set is read-only (it is part of a JobState); to change it use {self._hint}"
        raise TypeError(msg)

    add = discard = remove = pop = clear = update = _refuse
    difference_update = intersection_update = symmetric_difference_update = _refuse
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse

    def __repr__(self) -> str:
        return repr(set(self)) if self else "set()"

    def __copy__(self) -> set[Any]:
        return set(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> set[Any]:
        return thaw(self)  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[Any, ...]:
        return (set, (thaw(self),))


class EditAnchor(Protocol):
    """What a live container hands its mutations to (a JobState's field)."""

    def edit(self, container: Any, method: str, args: tuple[Any, ...]) -> Any:
        """Record ``container.<method>(*args)`` as an event and return what the method returns."""
        ...  # pragma: no cover


#: ``pop``'s default when none is given (a live container tells its anchor so).
NO_DEFAULT: Any = object()


class LiveDict(FrozenDict):
    """A dict of a job's state that records every in-place mutation as an event (see the module doc).

    Reads are plain ``dict`` reads; each mutation (``d[k] = v``, ``del d[k]``, ``pop``,
    ``popitem``, ``clear``, ``update``, ``setdefault``, ``|=``) becomes one event through
    its anchor, and returns what the ``dict`` method returns (popped values as plain
    copies).
    """

    __slots__ = ("_anchor", "_path")

    def __init__(self, *args: Any, hint: str = _DEFAULT_HINT, anchor: EditAnchor | None = None,
                 path: tuple[Any, ...] = ()) -> None:
        FrozenDict.__init__(self, *args, hint=hint)
        self._anchor = anchor
        self._path = path

    def _edit(self, method: str, *args: Any) -> Any:
        anchor = self._anchor
        if anchor is None:
            self._refuse()
        return anchor.edit(self, method, args)

    def _live_child(self, value: Any, at: Any) -> Any:
        """``value`` as stored at ``at`` (a key or index) in this container: live, with its path."""
        anchor = self._anchor
        if anchor is None:
            self._refuse()  # (a container without an anchor takes no edits)
        return freeze_live(value, self._hint, anchor, (*self._path, at))

    def __setitem__(self, key: Any, value: Any) -> None:
        # (Straight to the anchor, not through _edit: the hot path of `state["count"] += 1`.)
        anchor = self._anchor
        if anchor is None:
            self._refuse()
        anchor.edit(self, "__setitem__", (key, value))

    def __delitem__(self, key: Any) -> None:
        self._edit("__delitem__", key)

    def pop(self, key: Any, default: Any = NO_DEFAULT) -> Any:
        """Remove ``key`` and return its value (a plain copy), or ``default``."""
        return self._edit("pop", key, default)

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return the last ``(key, value)`` pair (the value a plain copy)."""
        result: tuple[Any, Any] = self._edit("popitem")
        return result

    def clear(self) -> None:
        """Remove every item."""
        self._edit("clear")

    def update(self, *args: Any, **kwargs: Any) -> None:
        """``dict.update``, recorded as one event."""
        if len(args) > 1:
            msg = f"update expected at most 1 argument, got {len(args)}"
            raise TypeError(msg)
        self._edit("update", args[0] if args else (), kwargs)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """``d[key]`` if present, else set it to ``default`` (recorded) and return the stored value."""
        return self._edit("setdefault", key, default)

    def __ior__(self, other: Any) -> LiveDict:  # type: ignore[misc]  # (in place: self, not a new dict)
        self._edit("update", other, {})
        return self


class LiveList(FrozenList):
    """A list of a job's state that records every in-place mutation as an event (see the module doc).

    ``append``, ``extend``, ``insert``, ``pop``, ``remove``, ``clear``, ``lst[i] = v``
    (slices too), ``del lst[i]``, ``sort`` (with or without ``key``), ``reverse``, ``+=``
    and ``*=`` each become one event through the list's anchor.
    """

    __slots__ = ("_anchor", "_path")

    def __init__(self, *args: Any, hint: str = _DEFAULT_HINT, anchor: EditAnchor | None = None,
                 path: tuple[Any, ...] = ()) -> None:
        FrozenList.__init__(self, *args, hint=hint)
        self._anchor = anchor
        self._path = path

    def _edit(self, method: str, *args: Any) -> Any:
        anchor = self._anchor
        if anchor is None:
            self._refuse()
        return anchor.edit(self, method, args)

    def _live_child(self, value: Any, at: Any) -> Any:
        """``value`` as stored at ``at`` (a key or index) in this container: live, with its path."""
        anchor = self._anchor
        if anchor is None:
            self._refuse()  # (a container without an anchor takes no edits)
        return freeze_live(value, self._hint, anchor, (*self._path, at))

    def append(self, value: Any) -> None:
        """Append ``value`` (recorded)."""
        # (Straight to the anchor, not through _edit: the hot path of a list grown item by item.)
        anchor = self._anchor
        if anchor is None:
            self._refuse()
        anchor.edit(self, "append", (value,))

    def extend(self, values: Any) -> None:
        """Append every item of ``values`` (recorded)."""
        self._edit("extend", values)

    def insert(self, index: Any, value: Any) -> None:
        """Insert ``value`` before ``index`` (recorded)."""
        self._edit("insert", index, value)

    def pop(self, index: Any = -1) -> Any:
        """Remove and return the item at ``index`` (a plain copy)."""
        return self._edit("pop", index)

    def remove(self, value: Any) -> None:
        """Remove the first item equal to ``value`` (recorded)."""
        self._edit("remove", value)

    def clear(self) -> None:
        """Remove every item (recorded)."""
        self._edit("clear")

    def __setitem__(self, index: Any, value: Any) -> None:
        self._edit("__setitem__", index, value)

    def __delitem__(self, index: Any) -> None:
        self._edit("__delitem__", index)

    def sort(self, *, key: Any = None, reverse: bool = False) -> None:
        """Sort in place (recorded; with a ``key``, as the resulting order)."""
        self._edit("sort", key, reverse)

    def reverse(self) -> None:
        """Reverse in place (recorded)."""
        self._edit("reverse")

    def __iadd__(self, values: Any) -> LiveList:  # type: ignore[misc]  # (in place: self, not a new list)
        self._edit("extend", values)
        return self

    def __imul__(self, count: Any) -> LiveList:  # type: ignore[misc]  # (in place: self, not a new list)
        self._edit("repeat", count)
        return self



class SyncedFrozenDict(LiveDict):
    """A :class:`LiveDict` whose owner fills it lazily: every read brings it up to date first.

    A JobState keeps routine states and shared data encoded and decodes a value only when
    it is read; ``sync`` (set by the owner) decodes what changed since the last read.
    Every way of reading (item access, iteration, ``len``, ``==``, ``dict(x)``,
    ``json.dumps``) calls it, so a reference kept by user code always shows the current
    state, like the original's live dict.
    """

    __slots__ = ("sync",)

    def __init__(self, *args: Any, hint: str = _DEFAULT_HINT, anchor: EditAnchor | None = None) -> None:
        LiveDict.__init__(self, *args, hint=hint, anchor=anchor)
        self.sync: Any = None

    def _up_to_date(self) -> None:
        sync = self.sync
        if sync is not None:
            sync()

    def __getitem__(self, key: Any) -> Any:
        self._up_to_date()
        return dict.__getitem__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._up_to_date()
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        self._up_to_date()
        return dict.__contains__(self, key)

    def __iter__(self) -> Any:
        self._up_to_date()
        return dict.__iter__(self)

    def __reversed__(self) -> Any:
        self._up_to_date()
        return dict.__reversed__(self)

    def __len__(self) -> int:
        self._up_to_date()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._up_to_date()
        return dict.keys(self)

    def values(self) -> Any:
        self._up_to_date()
        return dict.values(self)

    def items(self) -> Any:
        self._up_to_date()
        return dict.items(self)

    def __eq__(self, other: object) -> bool:
        self._up_to_date()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        self._up_to_date()
        return dict.__ne__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._up_to_date()
        return dict.__repr__(self)

    def __or__(self, other: Any) -> Any:
        self._up_to_date()
        return dict.__or__(self, other)

    def __ror__(self, other: Any) -> Any:
        self._up_to_date()
        return dict.__ror__(self, other)

    def copy(self) -> dict[Any, Any]:
        """A plain, mutable shallow copy."""
        self._up_to_date()
        return dict(dict.items(self))

    def __copy__(self) -> dict[Any, Any]:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        self._up_to_date()
        return thaw(self)  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[Any, ...]:
        self._up_to_date()
        return (dict, (thaw(self),))


class SyncedFrozenList(LiveList):
    """A :class:`LiveList` that brings itself up to date before every read.

    Its owner may append to it lazily (a JobState notes hot-path records and builds
    them later): ``sync`` is called first by every read, so a reference kept by user
    code always shows every item, like the original's live list. ``sync`` is ``None``
    when nothing is deferred.
    """

    __slots__ = ("sync",)

    def __init__(self, *args: Any, hint: str = _DEFAULT_HINT, anchor: EditAnchor | None = None) -> None:
        LiveList.__init__(self, *args, hint=hint, anchor=anchor)
        self.sync: Any = None

    def _up_to_date(self) -> None:
        sync = self.sync
        if sync is not None:
            sync()

    def __len__(self) -> int:
        self._up_to_date()
        return list.__len__(self)

    def __iter__(self) -> Any:
        self._up_to_date()
        return list.__iter__(self)

    def __reversed__(self) -> Any:
        self._up_to_date()
        return list.__reversed__(self)

    def __getitem__(self, index: Any) -> Any:
        self._up_to_date()
        return list.__getitem__(self, index)

    def __contains__(self, item: object) -> bool:
        self._up_to_date()
        return list.__contains__(self, item)

    def __eq__(self, other: object) -> bool:
        self._up_to_date()
        return list.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        self._up_to_date()
        return list.__ne__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._up_to_date()
        return list.__repr__(self)

    def __add__(self, other: Any) -> Any:
        self._up_to_date()
        return list.__add__(self, other)

    def copy(self) -> list[Any]:
        """A plain, mutable shallow copy."""
        self._up_to_date()
        return list(list.__iter__(self))

    def index(self, *args: Any) -> int:
        self._up_to_date()
        return list.index(self, *args)

    def count(self, value: Any) -> int:
        self._up_to_date()
        return list.count(self, value)

    def __copy__(self) -> list[Any]:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        self._up_to_date()
        return thaw(self)  # type: ignore[no-any-return]

    def __reduce__(self) -> tuple[Any, ...]:
        self._up_to_date()
        return (list, (thaw(self),))


_new_dict = FrozenDict.__new__
_new_list = FrozenList.__new__
_dict_init = dict.__init__
_list_init = list.__init__


def freeze(value: Any, hint: str = _DEFAULT_HINT) -> Any:
    """Return ``value`` with every dict/list/set (at any depth) replaced by a read-only copy.

    Tuples stay tuples (with frozen items); scalars and other objects are returned as
    they are. Already-frozen containers are copied too, so the result never shares a
    container with the argument.
    """
    kind = type(value)
    # Built with the base-class __new__/__init__ (no FrozenDict/FrozenList __init__ call):
    # this runs for every container of every value read from a job.
    if kind is dict or kind is FrozenDict or kind is LiveDict or kind is SyncedFrozenDict:
        frozen_dict = _new_dict(FrozenDict)
        _dict_init(frozen_dict, {k: (freeze(v, hint) if type(v) in _CONTAINERS else v)
                                 for k, v in dict.items(value)})
        frozen_dict._hint = hint
        return frozen_dict
    if kind is list or kind is FrozenList or kind is LiveList or kind is SyncedFrozenList:
        frozen_list = _new_list(FrozenList)
        _list_init(frozen_list, [freeze(v, hint) if type(v) in _CONTAINERS else v for v in list.__iter__(value)])
        frozen_list._hint = hint
        return frozen_list
    if kind is tuple:
        return tuple(freeze(v, hint) if type(v) in _CONTAINERS else v for v in value)
    if kind is set or kind is ReadOnlySet:
        return ReadOnlySet(value, hint=hint)  # items are hashable, hence not lists or dicts
    return value


_CONTAINERS = frozenset({dict, list, tuple, set, FrozenDict, FrozenList, LiveDict, LiveList, SyncedFrozenDict,
                         SyncedFrozenList, ReadOnlySet})
_DICTS = frozenset({dict, FrozenDict, LiveDict, SyncedFrozenDict})
_LISTS = frozenset({list, FrozenList, LiveList, SyncedFrozenList})
_new_live_dict = LiveDict.__new__
_new_live_list = LiveList.__new__


def frozen_containers(hint: str = _DEFAULT_HINT) -> Containers:
    """The constructors that make a decode build :func:`freeze`'s result directly.

    ``decode(value_bytes, containers=frozen_containers(hint))`` equals
    ``freeze(decode(value_bytes), hint)`` (types included), without building the plain
    value first: a record's data read after a load or replay costs one pass.
    """
    cached = _frozen_containers.get(hint)
    if cached is not None:
        return cached

    def make_dict(value: dict[Any, Any]) -> FrozenDict:
        frozen_dict = _new_dict(FrozenDict)
        _dict_init(frozen_dict, value)
        frozen_dict._hint = hint
        return frozen_dict

    def make_list(value: list[Any]) -> FrozenList:
        frozen_list = _new_list(FrozenList)
        _list_init(frozen_list, value)
        frozen_list._hint = hint
        return frozen_list

    def make_set(value: set[Any]) -> ReadOnlySet:
        return ReadOnlySet(value, hint=hint)

    made = Containers(make_dict, make_list, make_set)
    if len(_frozen_containers) < 64:  # (hints are a handful of constants)
        _frozen_containers[hint] = made
    return made


_frozen_containers: dict[str, Containers] = {}


def freeze_live(value: Any, hint: str, anchor: EditAnchor, path: tuple[Any, ...]) -> Any:
    """Like :func:`freeze`, but dicts and lists become :class:`LiveDict`/:class:`LiveList`
    whose mutations go to ``anchor``; ``path`` is the value's path from its root.

    Sets stay read-only (:class:`ReadOnlySet`); tuples stay tuples, their items live.
    """
    kind = type(value)
    if kind in _DICTS:
        live_dict = _new_live_dict(LiveDict)
        _dict_init(live_dict, {k: (freeze_live(v, hint, anchor, (*path, k)) if type(v) in _CONTAINERS else v)
                               for k, v in dict.items(value)})
        live_dict._hint = hint
        live_dict._anchor = anchor
        live_dict._path = path
        return live_dict
    if kind in _LISTS:
        live_list = _new_live_list(LiveList)
        _list_init(live_list, [freeze_live(v, hint, anchor, (*path, i)) if type(v) in _CONTAINERS else v
                               for i, v in enumerate(list.__iter__(value))])
        live_list._hint = hint
        live_list._anchor = anchor
        live_list._path = path
        return live_list
    if kind is tuple:
        return tuple(freeze_live(v, hint, anchor, (*path, i)) if type(v) in _CONTAINERS else v
                     for i, v in enumerate(value))
    if kind is set or kind is ReadOnlySet:
        return ReadOnlySet(value, hint=hint)
    return value


# Items thaw leaves as they are (checked first: a long list of numbers is thawed with no
# call per item, e.g. when a snapshot re-encodes a list grown by in-place appends).
_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})


def thaw(value: Any) -> Any:
    """Return a plain, mutable deep copy of ``value`` (dicts, lists and sets copied at every depth).

    Tuples stay tuples, with their items thawed.
    """
    scalars = _SCALARS
    if isinstance(value, dict):
        return {k: v if type(v) in scalars else thaw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in scalars else thaw(v) for v in list.__iter__(value)]
    if type(value) is tuple:
        return tuple(thaw(v) for v in value)
    if isinstance(value, set):
        return set(value)
    return value


def empty_dict(hint: str) -> FrozenDict:
    """Return a new empty :class:`FrozenDict` with ``hint``."""
    return FrozenDict(hint=hint)


def empty_list(hint: str) -> FrozenList:
    """Return a new empty :class:`FrozenList` with ``hint``."""
    return FrozenList(hint=hint)
