"""ConditionalRouter: emits its input on the event named after the route whose condition holds."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

from .._callables import CallableConfigRoutine
from .._expressions import evaluate_condition

__all__ = ["ConditionalRouter"]

Condition = Callable[..., Any] | dict[str, Any] | str


class ConditionalRouter(CallableConfigRoutine):
    """Route the input: emit it on the event of each matching route (or of the default route).

    Slot ``input`` (``self.input_slot``) takes the value as ``data`` or the single value it
    received (several keys: the received dict itself).

    Every route emits ``data`` (the input) and ``route`` (the route name) on the event named
    after the route; the event is defined on first use if it does not exist yet (define it
    yourself before connecting it in a flow). When no route matches, the ``default_route``
    event gets the input; without a default route the ``output`` event
    (``self.default_output``) gets it with ``route="unmatched"``.

    A condition is one of:

    * a **string**: a Python expression evaluated with ``eval`` over the names ``data``,
      ``config`` (this routine's live configuration dict) and ``stats`` (an empty dict, kept
      for 0.10 code), and only the builtins ``isinstance, dict, list, str, int, float, bool,
      len, getattr, hasattr``. An expression that raises does not match.
      **Security: restricted builtins are not a sandbox. A condition string can run any code
      the process can; never build one from untrusted input** (see ``_expressions``);
    * a **dict**: every key must be in the input (a dict) with an equal value, or a value
      for which the given function returns something truthy;
    * a **function**: called as ``f(data)`` if it has one parameter; with two, as
      ``f(data=..., config=..., stats=...)`` when it names ``config`` or ``stats`` (the ones it
      names), else ``f(data, config)``; otherwise with whichever of ``data`` and ``config``
      it names (``stats`` only alongside ``config``), or ``f(data)`` if it names neither. If
      that call raises, ``f(data)`` is tried once more (so such a function may run twice);
      if that raises too, the route does not match. A truthy result matches.

    Anything else never matches. Routes are tried in order.

    Configuration:
        routes (list, []): ``(route_name, condition)`` pairs; see :meth:`add_route`.
        default_route (str or None, None).
        route_priority (str, ``"first_match"``): stop at the first matching route, or with any
            other value (``"all_matches"``) emit on every matching route, in order.

    Conditions are serialized with the flow: strings and dicts as they are, module-level
    functions by reference and lambdas as expressions (see ``CallableConfigRoutine``).
    Records nothing in the job beyond the emits.
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(routes=[], default_route=None, route_priority="first_match")
        # Concurrent handlers may define the same route event at once: only one may create it.
        self._events_lock = threading.Lock()
        self.input_slot = self.define_slot("input", handler=self._handle_input)
        self.default_output = self.define_event("output", ["data", "route"])

    def add_route(self, route_name: str, condition: Condition) -> None:
        """Append a route to ``routes`` and define its event (if it is not defined yet)."""
        routes = self.get_config("routes", [])
        routes.append((route_name, condition))
        self.set_config(routes=routes)
        self._route_event(route_name)

    def _handle_input(self, data: Any = None, **kwargs: Any) -> None:
        value = self._extract_input_data(data, **kwargs)
        first_only = self.get_config("route_priority", "first_match") == "first_match"
        matched = []
        for route_name, condition in self.get_config("routes", []):
            if self._matches(condition, value):
                matched.append(route_name)
                if first_only:
                    break
        if not matched:
            default = self.get_config("default_route", None)
            if not default:
                self.emit("output", data=value, route="unmatched")
                return
            matched = [default]
        for route_name in matched:
            self._route_event(route_name)
            self.emit(route_name, data=value, route=route_name)

    def _route_event(self, name: str) -> None:
        with self._events_lock:
            if self.get_event(name) is None:
                self.define_event(name, ["data", "route"])

    def _matches(self, condition: Any, value: Any) -> bool:
        try:
            if isinstance(condition, str):
                return evaluate_condition(condition, value, self._config)
            if callable(condition):
                try:
                    result = self._call_condition(condition, value)
                except Exception:
                    result = condition(value)
                return bool(result)
            if isinstance(condition, dict):
                return _fields_match(condition, value)
        except Exception:
            pass  # a condition that fails does not match (0.10)
        return False

    def _call_condition(self, condition: Callable[..., Any], value: Any) -> Any:
        names = list(inspect.signature(condition).parameters)
        if len(names) == 1:
            return condition(value)
        if len(names) == 2:
            if "config" not in names and "stats" not in names:
                return condition(value, self._config)
            kwargs: dict[str, Any] = {"data": value}
        else:
            kwargs = {"data": value} if "data" in names else {}
            if "config" not in names:
                return condition(**kwargs) if kwargs else condition(value)
        if "config" in names:
            kwargs["config"] = self._config
        if "stats" in names:
            kwargs["stats"] = {}
        return condition(**kwargs)


def _fields_match(condition: dict[str, Any], value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    for field, expected in condition.items():
        if field not in value:
            return False
        actual = value[field]
        if callable(expected):
            if not expected(actual):
                return False
        elif actual != expected:
            return False
    return True
