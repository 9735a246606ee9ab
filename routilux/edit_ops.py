"""In-place edit operations: what each recorded edit does to a list or dict of a job's state.

An in-place edit (``job.get_shared_data("items").append(x)``) is recorded as one event
carrying the operation and its arguments (``op="append", args=[x]``), never a copy of
the container. The same two functions serve the live job and every replay:

* :func:`check` raises the error Python raises for that operation on that container
  (``IndexError``, ``KeyError``, ``ValueError``, ``TypeError``) when it cannot apply.
  The live job calls it *before* the event is written, so an edit that would fail
  records nothing; replay calls it again, so a forged edit is a clear error, never a
  half-applied one.
* :func:`apply` performs it with the base-class methods (the containers refuse changes
  through their own methods), storing each new value through ``child`` (which freezes it
  with its anchor and path).

Operations (``args`` in brackets). The user-facing method that records each one is in
:mod:`routilux.job_edits`; ``pop``/``remove``/``popitem`` are recorded as ``delitem`` of
the position or key found live, so replay never depends on equality or ordering rules.

=============  ==========================================  =====================================
op             list                                        dict
=============  ==========================================  =====================================
``append``     ``[value]``                                 --
``extend``     ``[values]``                                --
``insert``     ``[index, value]``                          --
``setitem``    ``[index, value]``                          ``[key, value]``
``delitem``    ``[index]``                                 ``[key]``
``setslice``   ``[start, stop, step, values]`` (slice as   --
               given: None or int)
``delslice``   ``[start, stop, step]``                     --
``clear``      ``[]``                                      ``[]``
``update``     --                                          ``[mapping]`` (insertion order kept)
``sort``       ``[reverse]`` (no key function)             --
``reorder``    ``[permutation]`` (``sort`` with a key: the --
               new order as old positions)
``reverse``    ``[]``                                      --
``repeat``     ``[count]`` (``*=``)                        --
``replace``    ``[values]`` (assignment of a whole list)   ``[mapping]`` (of a whole dict)
=============  ==========================================  =====================================
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

__all__ = ["DICT_OPS", "LIST_OPS", "apply", "check"]

#: Operations on a list, with their number of arguments.
LIST_OPS = {"append": 1, "extend": 1, "insert": 2, "setitem": 2, "delitem": 1, "setslice": 4, "delslice": 3,
            "clear": 0, "sort": 1, "reorder": 1, "reverse": 0, "repeat": 1, "replace": 1}
#: Operations on a dict, with their number of arguments.
DICT_OPS = {"setitem": 2, "delitem": 1, "clear": 0, "update": 1, "replace": 1}

#: ``child(value, key)``: the stored form of a new ``value`` at ``key`` (its index or key).
#: It is not called for the scalars in :data:`AS_IS`, which are stored as they are.
Child = Callable[[Any, Any], Any]

#: Values stored as they are, without calling ``child`` (immutable scalars: nothing to freeze).
AS_IS = frozenset({str, int, float, bool, bytes, type(None)})


def _slice(args: list[Any]) -> slice:
    for part in args[:3]:
        if part is not None and type(part) is not int:
            msg = f"slice bounds must be int or None, got {type(part).__name__}"
            raise TypeError(msg)
    if args[2] == 0:
        msg = "slice step cannot be zero"
        raise ValueError(msg)
    return slice(args[0], args[1], args[2])


def _index(target: list[Any], index: Any, what: str) -> int:
    """``index`` normalised to 0..len-1 (as list methods do), or the IndexError they raise."""
    if type(index) is not int:
        msg = f"list indices must be integers, not {type(index).__name__}"
        raise TypeError(msg)
    n = list.__len__(target)
    if not -n <= index < n:
        msg = f"{what} index out of range"
        raise IndexError(msg)
    return index + n if index < 0 else index


def check(target: Any, op: str, args: list[Any]) -> None:
    """Raise what Python raises for ``op(*args)`` on ``target``, if it cannot apply; change nothing.

    Raises:
        TypeError: not a list/dict operation, wrong arguments, or a sort of values that
            cannot be compared.
        IndexError, KeyError, ValueError: as the list or dict method would.
    """
    if type(args) is list:
        # The most common edits (a list grown item by item, a dict item set): nothing can fail.
        if op == "append":
            if len(args) == 1 and isinstance(target, list):
                return
        elif op == "setitem" and len(args) == 2 and isinstance(target, dict):
            return
    if isinstance(target, list):
        arity = LIST_OPS.get(op)
        kind = "list"
    elif isinstance(target, dict):
        arity = DICT_OPS.get(op)
        kind = "dict"
    else:
        msg = f"a {type(target).__name__} cannot be edited in place"
        raise TypeError(msg)
    if arity is None:
        msg = f"{op!r} is not an edit of a {kind}"
        raise TypeError(msg)
    if type(args) is not list or len(args) != arity:
        msg = f"{kind} edit {op!r} takes {arity} argument(s), got {args!r}"
        raise TypeError(msg)
    if kind == "list":
        _check_list(target, op, args)
    elif op == "delitem":
        if not dict.__contains__(target, args[0]):
            raise KeyError(args[0])
    elif op in ("update", "replace") and type(args[0]) is not dict:
        msg = f"dict edit {op!r} needs a dict, got {type(args[0]).__name__}"
        raise TypeError(msg)


def _check_list(target: list[Any], op: str, args: list[Any]) -> None:
    n = list.__len__(target)
    if op in ("extend", "replace") and type(args[0]) is not list:
        msg = f"list edit {op!r} needs a list, got {type(args[0]).__name__}"
        raise TypeError(msg)
    if op == "insert" and type(args[0]) is not int:
        msg = f"list.insert index must be an integer, not {type(args[0]).__name__}"
        raise TypeError(msg)
    if op == "setitem":
        _index(target, args[0], "list assignment")
    elif op == "delitem":
        _index(target, args[0], "list assignment")
    elif op == "setslice":
        if type(args[3]) is not list:
            msg = f"list edit 'setslice' needs a list of values, got {type(args[3]).__name__}"
            raise TypeError(msg)
        where = _slice(args)
        if where.step not in (None, 1):
            size = len(range(*where.indices(n)))
            if size != len(args[3]):
                msg = f"attempt to assign sequence of size {len(args[3])} to extended slice of size {size}"
                raise ValueError(msg)
    elif op == "delslice":
        _slice(args)
    elif op == "sort":
        if type(args[0]) is not bool:
            msg = "list edit 'sort' needs reverse as a bool"
            raise TypeError(msg)
        sorted(list.__iter__(target), reverse=args[0])  # raises TypeError for values that do not compare
    elif op == "reorder":
        perm = args[0]
        if type(perm) is not list or sorted(perm) != list(range(n)) or not all(type(i) is int for i in perm):
            msg = f"list edit 'reorder' needs a permutation of range({n})"
            raise ValueError(msg)
    elif op == "repeat":
        operator.index(args[0])


def apply(target: Any, op: str, args: list[Any], child: Child) -> None:
    """Perform ``op(*args)`` on ``target`` (after :func:`check`), new values stored through ``child``."""
    if isinstance(target, list):
        if op == "append":  # (the most common edit, without the dispatch below)
            value = args[0]
            list.append(target, value if type(value) in AS_IS else child(value, list.__len__(target)))
        else:
            _apply_list(target, op, args, child)
        return
    if op == "setitem":
        value = args[1]
        dict.__setitem__(target, args[0], value if type(value) in AS_IS else child(value, args[0]))
    elif op == "delitem":
        dict.__delitem__(target, args[0])
    elif op == "clear":
        dict.clear(target)
    elif op == "update":
        for key, value in args[0].items():
            dict.__setitem__(target, key, child(value, key))
    elif op == "replace":
        dict.clear(target)
        for key, value in args[0].items():
            dict.__setitem__(target, key, child(value, key))


def _apply_list(target: list[Any], op: str, args: list[Any], child: Child) -> None:
    n = list.__len__(target)
    if op == "extend":
        list.extend(target, [child(v, n + i) for i, v in enumerate(args[0])])
    elif op == "insert":
        at = min(max(args[0] + n, 0) if args[0] < 0 else args[0], n)  # where list.insert puts it
        list.insert(target, at, child(args[1], at))
    elif op == "setitem":
        at = _index(target, args[0], "list assignment")
        list.__setitem__(target, at, child(args[1], at))
    elif op == "delitem":
        list.__delitem__(target, _index(target, args[0], "list assignment"))
    elif op == "setslice":
        where = _slice(args)
        start = where.indices(n)[0] if where.step in (None, 1) else 0
        list.__setitem__(target, where, [child(v, start + i) for i, v in enumerate(args[3])])
    elif op == "delslice":
        list.__delitem__(target, _slice(args))
    elif op == "clear":
        list.clear(target)
    elif op == "sort":
        list.sort(target, reverse=args[0])
    elif op == "reorder":
        list.__setitem__(target, slice(None), [list.__getitem__(target, i) for i in args[0]])
    elif op == "reverse":
        list.reverse(target)
    elif op == "repeat":
        items = list(list.__iter__(target))
        count = operator.index(args[0])
        list.clear(target)
        # Each repetition is stored as its own value (the encoding has no shared references).
        for _ in range(max(count, 0)):
            base = list.__len__(target)
            list.extend(target, [child(v, base + i) for i, v in enumerate(items)])
    elif op == "replace":
        list.__setitem__(target, slice(None), [child(v, i) for i, v in enumerate(args[0])])
