"""In-place edits of a live JobState: a read-modify-write on a value read from the job is one event.

routilux 0.10 handed out its plain dicts and lists, and its documentation mutates them:
``job.get_shared_data("items").append(x)``, ``job.get_routine_state(r)["count"] += 1``,
``job.shared_log.append(entry)``. Here those values are live containers
(:class:`~routilux.frozen.LiveDict`, :class:`~routilux.frozen.LiveList`) that hand each
mutation to :class:`JobEditor`, which

1. finds where the container is in the job (its path), under the job's lock;
2. checks that the mutation can apply, raising what the ``dict``/``list`` method would
   (``IndexError``, ``KeyError``, ``ValueError``...) with nothing recorded;
3. records it as ONE small event carrying the change itself -- the operation, the path
   and the arguments (``{"key": "items", "path": [], "op": "append", "args": [x]}``),
   never a copy of the container -- through the job's one write path
   (:class:`~routilux.job_writer.JobWriter`), which applies it to this very container.

So the live state equals the replayed state, ``blame`` names the routine that made the
change, and a list grown by 10,000 appends costs 10,000 small events. The operations
and what they do are defined once, in :mod:`routilux.edit_ops`.

Mapping of the methods (beyond the table in :mod:`routilux.edit_ops`):

* ``shared_data[k] = v`` and ``routine_states[r] = {...}`` are ``update_shared_data`` /
  ``update_routine_state`` (the same events); ``shared_log.append(entry)`` is
  ``append_to_shared_log`` (it adds a ``timestamp``); ``execution_history.append(record)``
  records the record as ``record_execution`` does, keeping the record's own timestamp;
  ``extend`` of those two lists is one such event per item, in one atomic batch.
* ``pop``, ``remove`` and ``popitem`` are recorded as ``delitem`` of the index or key
  found now; ``sort(key=f)`` as the resulting order; ``setdefault`` of an absent key as
  ``setitem``. A mutation that changes nothing (``clear()`` of an empty container,
  ``extend([])``, ``setdefault`` of a present key, ``x[k] = x[k]``, which is what ``+=``
  on an item does after the in-place change) records nothing.

A container that is no longer part of the job (its key was set again, it was popped,
the job was deserialized...) keeps showing what it held, like 0.10's detached object,
but refuses changes with :class:`~routilux.errors.DetachedValueError`: they would change
nothing in the job. Values of a read-only JobState (``at()``, ``from_events()``,
``load(version=...)``, ``open(readonly=True)``), of a closed job and of a job that has
ended (status ``completed``, ``failed`` or ``cancelled``) refuse with
:class:`~routilux.errors.ReadOnlyJobStateError`, saying why. An ended job's trail is what
auditors and the replay tools read: code that reads a result and then changes it for its
own use (``items = job.get_shared_data("items"); items.append(x)``) must not add to that
trail by accident. Changing an ended job on purpose stays possible with the explicit
calls (``update_shared_data``, ``update_routine_state``, ``append_to_shared_log``, a
whole-field assignment ``job.shared_data = {...}``), which 0.10 code uses for that, and
every one of them is recorded; a resumed job (status ``running`` again) is editable again.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from . import edit_ops
from . import job_events as ev
from .errors import DetachedValueError, ReadOnlyJobStateError
from .execution_record import ExecutionRecord
from .frozen import NO_DEFAULT, LiveDict, LiveList, thaw
from .job_writer import JobWriter
from .projection import JobProjection, ensure_history

__all__ = ["REPLACE", "JobEditor"]

#: The method name of an assignment of a whole field (``job.shared_data = {...}``).
REPLACE = "__replace__"
_MISSING: Any = object()
_HISTORY_FIELDS = frozenset({"shared_log", "execution_history"})
# Statuses after which values read from the job refuse in-place edits (see the module doc).
_ENDED = ev.TERMINAL_STATUSES
_KEYED = {"shared_data": (ev.SHARED_DATA_EDITED, "key"), "routine_states": (ev.ROUTINE_STATE_EDITED, "routine_id")}
# Values the codec gives back exactly as they are, type included (str subclasses are not).
_EXACT = frozenset({str, int, float, bool, type(None)})
Events = list[tuple[str, dict[str, Any]]]


class JobEditor:
    """Records the in-place edits of one writable JobState (the projection's ``editor``).

    Args:
        writer: the job's write path.
    """

    __slots__ = ("writer",)

    def __init__(self, writer: JobWriter) -> None:
        self.writer = writer

    def __call__(self, field: str, container: Any, method: str, args: tuple[Any, ...]) -> Any:
        """Record ``container.<method>(*args)`` (``container`` part of ``field``); return what the method returns.

        Raises:
            ReadOnlyJobStateError: the job is closed, or has ended (a terminal status).
            DetachedValueError: ``container`` is no longer part of the job.
            RuntimeError: called inside the engine's transaction.
            TypeError, ValueError, IndexError, KeyError: as the dict/list method would.
        """
        writer = self.writer
        p = writer.projection
        if writer.log.closed:
            msg = (f"job {p.job_id!r} is closed: its values are read-only; reopen it (JobState.open) "
                   "to change it")
            raise ReadOnlyJobStateError(msg)
        if p.status in _ENDED and method != REPLACE:
            msg = (f"job {p.job_id!r} has ended (status {p.status!r}): values read from it are read-only, so "
                   "nothing changes its trail by accident; copy the value to change it for yourself, or record a "
                   "change with update_shared_data / update_routine_state / append_to_shared_log")
            raise ReadOnlyJobStateError(msg)
        lock = writer.lock
        lock.acquire()
        try:
            if writer.tx is not None:
                msg = "an in-place edit cannot be part of a JobState transaction; call it outside the transaction"
                raise RuntimeError(msg)
            keyed = _KEYED.get(field)
            if keyed is None:
                if not p.history_complete:
                    ensure_history(p)
                path = _locate(p, field, container)
            else:
                path = _locate(p, field, container)
                if path and (method == "append" or method == "__setitem__"):
                    # The hot paths (issue 12's benchmarks: a list grown item by item, a
                    # counter in a routine's state): nothing can fail, and scalars come back
                    # from the codec as they are, so apply takes the payload without decoding it.
                    if _record_hot(writer, keyed, path, container, method, args):
                        return None
            events, result = _plan(p, field, path, container, method, args)
            if len(events) == 1:
                writer.emit(*events[0])
            elif events:
                with writer.transaction():
                    for kind, payload in events:
                        writer.emit(kind, payload)
            if events and field in _HISTORY_FIELDS:
                # The history lists are folded from the log when read: fold this edit now,
                # so a list or entry the caller holds shows it at once.
                ensure_history(p)
            return result() if callable(result) else result
        finally:
            lock.release()


def _record_hot(writer: JobWriter, keyed: tuple[str, str], path: tuple[Any, ...], container: Any, method: str,
                args: tuple[Any, ...]) -> bool:
    """Record an append, or a scalar set in a dict, inside a keyed field's value; False for any other set.

    The event is the one the general path records (:func:`_plan`); the caller vouches it
    applies, so only whether apply can take the payload as it is (``exact``: decoding the
    event gives it back unchanged) is worked out here.
    """
    kind, key_field = keyed
    inner = list(path[1:]) if len(path) > 1 else []
    if method == "append":
        value = args[0]
        op_args = [value]
        op = "append"
    else:
        item, value = args
        if (type(item) not in _EXACT or type(container) is not LiveDict
                or type(dict.get(container, item)) not in _EXACT):
            return False
        op_args = [item, value]
        op = "setitem"
    # (The item of a set was checked above.)
    exact = type(value) in _EXACT and type(path[0]) is str and (not inner or _all_exact(inner))
    writer.emit(kind, {key_field: path[0], "path": inner, "op": op, "args": op_args}, exact)
    return True


def _all_exact(values: Any) -> bool:
    """Whether every value comes back from the codec as it is (exact scalars)."""
    for value in values:
        if type(value) not in _EXACT:
            return False
    return True


# -- where a container is ------------------------------------------------------------
def _root(p: JobProjection, field: str) -> Any:
    """The field's top-level container (the view handed out by the JobState)."""
    if field == "shared_data":
        return p.shared_data
    if field == "routine_states":
        return p.routine_states
    if field == "shared_log":
        return p.shared_log
    return p.execution_history


def _step(container: Any, key: Any) -> Any:
    if isinstance(container, dict):
        return dict.get(container, key, _MISSING)
    if isinstance(container, (list, tuple)) and type(key) is int:
        seq: Any = container
        if 0 <= key < (list.__len__(seq) if isinstance(seq, list) else len(seq)):
            return list.__getitem__(seq, key) if isinstance(seq, list) else seq[key]
    return _MISSING


def _walk(start: Any, path: tuple[Any, ...]) -> Any:
    node = start
    for key in path:
        node = _step(node, key)
        if node is _MISSING:
            return _MISSING
    return node


def _children(node: Any) -> list[tuple[Any, Any]]:
    if isinstance(node, dict):
        return list(dict.items(node))
    if isinstance(node, list):
        return list(enumerate(list.__iter__(node)))
    if type(node) is tuple:
        return list(enumerate(node))
    return []


def _repath(start: Any, base: tuple[Any, ...], wanted: Any) -> tuple[Any, ...] | None:
    """Set the path hint of every live container under ``start`` (at ``base``); return ``wanted``'s path.

    The hints go stale when a list above a container changes shape (an insert, a sort);
    one pass re-marks the whole value, so later edits find their container directly.
    """
    found: tuple[Any, ...] | None = None
    stack = [(start, base)]
    while stack:
        node, path = stack.pop()
        if node is wanted:
            found = path
        if type(node) in (LiveDict, LiveList):
            node._path = path
        for key, child in _children(node):
            if isinstance(child, (dict, list, tuple)):
                stack.append((child, (*path, key)))
    return found


def _locate(p: JobProjection, field: str, container: Any) -> tuple[Any, ...]:
    """The path of ``container`` in ``field`` (``()``: the field itself).

    Raises:
        DetachedValueError: it is no longer part of the job.
    """
    hint: tuple[Any, ...] = getattr(container, "_path", ())
    if field in _KEYED:
        packed = p._shared_data if field == "shared_data" else p._routine_states
        if container is packed.view:
            return ()
        if not hint:
            raise _detached(p, field, None)
        key = hint[0]
        if packed.stale:
            packed.sync()
        # (The view holds every key of the field once synced.)
        root = dict.get(packed.view, key, _MISSING)
        if root is _MISSING:
            raise _detached(p, field, key)
        # (A value's own root, the common case, is found without walking.)
        if (root if len(hint) == 1 else _walk(root, hint[1:])) is container:
            return hint
        found = _repath(root, (key,), container)
    else:
        top = _root(p, field)
        if container is top:
            return ()
        if _walk(top, hint) is container:
            return hint
        found = _repath(top, (), container) if field == "shared_log" else None
    if found is None:
        raise _detached(p, field, hint[0] if hint else None)
    return found


def _detached(p: JobProjection, field: str, key: Any) -> DetachedValueError:
    where = f"{field}[{key!r}]" if key is not None else field
    msg = (f"this value is no longer part of job {p.job_id!r}: {where} was replaced or removed after it "
           f"was read, so changing it would change nothing in the job; read it again from the job")
    return DetachedValueError(msg)


# -- what a method records ---------------------------------------------------------------
def _plan(p: JobProjection, field: str, path: tuple[Any, ...], container: Any, method: str,
          args: tuple[Any, ...]) -> tuple[Events, Any]:
    """The events that record ``container.<method>(*args)`` and the method's result."""
    if not path:
        if field in _KEYED:
            return _plan_map(p, field, container, method, args)
        if field == "shared_log":
            return _plan_shared_log(container, method, args)
        return _plan_history(container, method, args)

    def edit(op: str, op_args: list[Any]) -> Events:
        edit_ops.check(container, op, op_args)
        if field in _KEYED:
            kind, key_field = _KEYED[field]
            return [(kind, {key_field: path[0], "path": list(path[1:]), "op": op, "args": op_args})]
        return [(ev.SHARED_LOG_EDITED, {"path": list(path), "op": op, "args": op_args})]

    if isinstance(container, dict):
        return _plan_dict(container, method, args, edit)
    return _plan_list(container, method, args, edit)


Edit = Callable[[str, list[Any]], Events]


def _plan_dict(d: dict[Any, Any], method: str, args: tuple[Any, ...], edit: Edit) -> tuple[Events, Any]:
    if method == "__setitem__":
        key, value = args
        hash(key)  # an unhashable key: the TypeError dict raises
        if dict.get(d, key, _MISSING) is value:
            return [], None  # `d[k] += ...`: the item was changed in place already
        return edit("setitem", [key, value]), None
    if method == "__delitem__":
        if not dict.__contains__(d, args[0]):
            raise KeyError(args[0])
        return edit("delitem", [args[0]]), None
    if method == "pop":
        key, default = args
        if dict.__contains__(d, key):
            return edit("delitem", [key]), thaw(dict.__getitem__(d, key))
        if default is not NO_DEFAULT:
            return [], default
        raise KeyError(key)
    if method == "popitem":
        if not dict.__len__(d):
            msg = "popitem(): dictionary is empty"
            raise KeyError(msg)
        key = next(reversed(dict.keys(d)))
        return edit("delitem", [key]), (key, thaw(dict.__getitem__(d, key)))
    if method == "clear":
        return (edit("clear", []) if dict.__len__(d) else []), None
    if method == "update":
        items = _update_items(args[0], args[1])
        return (edit("update", [items]) if items else []), None
    if method == "setdefault":
        key, default = args
        if dict.__contains__(d, key):
            return [], dict.__getitem__(d, key)
        return edit("setitem", [key, default]), lambda: dict.__getitem__(d, key)
    if method == REPLACE:
        return edit("replace", [_update_items(args[0], {})]), None
    msg = f"dict.{method} is not an in-place edit"
    raise TypeError(msg)


def _update_items(other: Any, kwargs: dict[str, Any]) -> dict[Any, Any]:
    """What ``dict.update(other, **kwargs)`` would set, in order (its errors for bad arguments)."""
    items: dict[Any, Any] = {}
    items.update(other, **kwargs)
    return items


def _index(n: int, index: Any, what: str) -> int:
    i = operator.index(index)
    if not -n <= i < n:
        msg = f"{what} index out of range"
        raise IndexError(msg)
    return i + n if i < 0 else i


def _slice_args(where: slice) -> list[Any]:
    return [None if part is None else operator.index(part) for part in (where.start, where.stop, where.step)]


def _plan_list(lst: list[Any], method: str, args: tuple[Any, ...], edit: Edit) -> tuple[Events, Any]:
    n = list.__len__(lst)
    if method == "append":
        return edit("append", [args[0]]), None
    if method == "extend":
        items = list(args[0])
        return (edit("extend", [items]) if items else []), None
    if method == "insert":
        return edit("insert", [operator.index(args[0]), args[1]]), None
    if method == "pop":
        if not n:
            msg = "pop from empty list"
            raise IndexError(msg)
        i = _index(n, args[0], "pop")
        return edit("delitem", [i]), thaw(list.__getitem__(lst, i))
    if method == "remove":
        try:
            i = list.index(lst, args[0])
        except ValueError:
            msg = "list.remove(x): x not in list"
            raise ValueError(msg) from None
        return edit("delitem", [i]), None
    if method == "clear":
        return (edit("clear", []) if n else []), None
    if method == "__setitem__":
        where, value = args
        if isinstance(where, slice):
            return edit("setslice", [*_slice_args(where), list(value)]), None
        i = _index(n, where, "list assignment")
        if list.__getitem__(lst, i) is value:
            return [], None  # `lst[i] += ...`: the item was changed in place already
        return edit("setitem", [i, value]), None
    if method == "__delitem__":
        where = args[0]
        if isinstance(where, slice):
            return edit("delslice", _slice_args(where)), None
        return edit("delitem", [_index(n, where, "list assignment")]), None
    if method == "sort":
        key, reverse = args[0], bool(args[1])
        if key is None:
            return edit("sort", [reverse]), None
        items = [list.__getitem__(lst, i) for i in range(n)]
        order = sorted(range(n), key=lambda i: key(items[i]), reverse=reverse)
        return edit("reorder", [order]), None
    if method == "reverse":
        return (edit("reverse", []) if n > 1 else []), None
    if method == "repeat":
        count = operator.index(args[0])
        return (edit("repeat", [count]) if count != 1 else []), None
    if method == REPLACE:
        return edit("replace", [list(args[0])]), None
    msg = f"list.{method} is not an in-place edit"
    raise TypeError(msg)


# -- the fields themselves ---------------------------------------------------------------
def _plan_map(p: JobProjection, field: str, view: Any, method: str, args: tuple[Any, ...]) -> tuple[Events, Any]:
    """An edit of ``shared_data`` or ``routine_states`` itself."""
    kind, key_field = _KEYED[field]
    states = field == "routine_states"
    packed = p._routine_states if states else p._shared_data

    def value_event(key: Any, value: Any) -> Events:
        _check_key(field, key)
        if states:
            _check_state(key, value)
            return [(ev.ROUTINE_STATE_SET, {"routine_id": key, "state": dict(value)})]
        return [(ev.SHARED_DATA_SET, {"key": key, "value": value})]

    def edit(op: str, op_args: list[Any]) -> Events:
        if op in ("update", "replace"):
            for key, value in op_args[0].items():
                _check_key(field, key)
                if states:
                    _check_state(key, value)
                    op_args[0][key] = dict(value)
        return [(kind, {key_field: None, "path": [], "op": op, "args": op_args})]

    if method == "__setitem__":
        key, value = args
        if dict.__contains__(packed.packed, key) and packed.value(key) is value:
            return [], None  # `view[k] += ...`: the value was changed in place already
        return value_event(key, value), None
    if method == "setdefault":
        key, default = args
        if dict.__contains__(packed.packed, key):
            return [], packed.value(key)
        return value_event(key, default), lambda: packed.value(key)
    if method in ("__delitem__", "pop", "popitem"):
        if method == "popitem":
            if not packed.packed:
                msg = "popitem(): dictionary is empty"
                raise KeyError(msg)
            key = next(reversed(packed.packed))
        else:
            key = args[0]
        if not dict.__contains__(packed.packed, key):
            if method == "pop" and args[1] is not NO_DEFAULT:
                return [], args[1]
            raise KeyError(key)
        value = thaw(packed.value(key))
        result = None if method == "__delitem__" else (value if method == "pop" else (key, value))
        return edit("delitem", [key]), result
    if method == "clear":
        return (edit("clear", []) if packed.packed else []), None
    if method == "update":
        items = _update_items(args[0], args[1])
        return (edit("update", [items]) if items else []), None
    if method == REPLACE:
        if not isinstance(args[0], dict):
            msg = f"JobState.{field} must be a dict, got {type(args[0]).__name__}"
            raise TypeError(msg)
        return edit("replace", [_update_items(args[0], {})]), None
    msg = f"dict.{method} is not an in-place edit"
    raise TypeError(msg)


def _check_key(field: str, key: Any) -> None:
    if type(key) is not str:
        msg = f"{field} keys must be str, got {type(key).__name__} ({key!r})"
        raise TypeError(msg)


def _check_state(routine_id: str, state: Any) -> None:
    if not isinstance(state, dict):
        msg = f"routine_states[{routine_id!r}] must be a dict (a routine's state), got {type(state).__name__}"
        raise TypeError(msg)


def _plan_shared_log(log: list[Any], method: str, args: tuple[Any, ...]) -> tuple[Events, Any]:
    """An edit of ``shared_log`` itself: appends are ``shared_log_appended``; entries are dicts."""
    if method == "append":
        return [(ev.SHARED_LOG_APPENDED, {"entry": _entry(args[0])})], None
    if method == "extend":
        return [(ev.SHARED_LOG_APPENDED, {"entry": _entry(e)}) for e in list(args[0])], None
    if method == "insert":
        args = (args[0], _entry(args[1]))
    elif method == "__setitem__":
        if isinstance(args[0], slice):
            args = (args[0], [_entry(e) for e in args[1]])
        elif not _same_item(log, args[0], args[1]):
            args = (args[0], _entry(args[1]))
    elif method == REPLACE:
        if not isinstance(args[0], (list, tuple)):
            msg = f"JobState.shared_log must be a list, got {type(args[0]).__name__}"
            raise TypeError(msg)
        args = ([_entry(e) for e in args[0]],)

    def edit(op: str, op_args: list[Any]) -> Events:
        edit_ops.check(log, op, op_args)
        return [(ev.SHARED_LOG_EDITED, {"path": [], "op": op, "args": op_args})]

    return _plan_list(log, method, args, edit)


def _same_item(lst: list[Any], index: Any, value: Any) -> bool:
    """Whether ``lst[index]`` is ``value`` itself (``lst[i] += ...`` re-assigns the item it changed)."""
    n = list.__len__(lst)
    try:
        i = _index(n, index, "list assignment")
    except (TypeError, IndexError):
        return False  # the planner raises the list's own error
    return list.__getitem__(lst, i) is value


def _entry(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        msg = f"shared log entry must be a dict, got {type(value).__name__}"
        raise ValueError(msg)
    return dict(value)


def _plan_history(history: list[Any], method: str, args: tuple[Any, ...]) -> tuple[Events, Any]:
    """An edit of ``execution_history``: appends are ``execution_recorded``; items are ExecutionRecords."""
    if method == "append":
        return [(ev.EXECUTION_RECORDED, _record_payload(args[0]))], None
    if method == "extend":
        return [(ev.EXECUTION_RECORDED, _record_payload(r)) for r in list(args[0])], None
    if method == "insert":
        args = (args[0], _record_dict(args[1]))
    elif method == "__setitem__":
        if isinstance(args[0], slice):
            args = (args[0], [_record_dict(r) for r in args[1]])
        elif not _same_item(history, args[0], args[1]):
            args = (args[0], _record_dict(args[1]))
    elif method == REPLACE:
        if not isinstance(args[0], (list, tuple)):
            msg = f"JobState.execution_history must be a list, got {type(args[0]).__name__}"
            raise TypeError(msg)
        args = ([_record_dict(r) for r in args[0]],)

    def edit(op: str, op_args: list[Any]) -> Events:
        edit_ops.check(history, op, op_args)
        return [(ev.EXECUTION_HISTORY_EDITED, {"path": [], "op": op, "args": op_args})]

    return _plan_list(history, method, args, edit)


def _record(value: Any) -> ExecutionRecord:
    if not isinstance(value, ExecutionRecord):
        msg = (f"execution_history holds ExecutionRecord objects, not {type(value).__name__}: append "
               "ExecutionRecord(routine_id, event_name, data) or call job_state.record_execution(...)")
        raise TypeError(msg)
    return value


def _record_payload(value: Any) -> dict[str, Any]:
    """The ``execution_recorded`` payload of a record appended in place (it keeps its own time)."""
    record = _record(value)
    return {"routine_id": record.routine_id, "event_name": record.event_name,
            "timestamp": record.timestamp.isoformat(), "data": thaw(record.data)}


def _record_dict(value: Any) -> dict[str, Any]:
    """A record as stored in an ``history_edited`` event."""
    record = _record(value)
    return {"routine_id": record.routine_id, "event_name": record.event_name, "data": thaw(record.data),
            "timestamp": record.timestamp.isoformat()}
