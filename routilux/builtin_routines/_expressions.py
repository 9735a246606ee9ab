"""User-written Python expressions, evaluated the way routilux 0.10 evaluated them: with ``eval``.

Two places accept an expression as text:

* a ConditionalRouter route condition given as a string, e.g. ``"data.get('priority') == 'high'"``,
  which sees the names ``data`` (the routed value), ``config`` (the routine's live configuration
  dict) and ``stats`` (always an empty dict; 0.10 kept it for old code);
* a ``{"_type": "lambda_expression", "expression": ...}`` entry of a serialized flow (how 0.10
  wrote a lambda), which becomes ``lambda data: <expression>``.

Both run with a reduced set of builtins, exactly the sets 0.10 used, no more.

SECURITY: this is NOT a sandbox. Restricting ``__builtins__`` stops accidents, not attackers:
an expression can still walk from any object to its class and on to the interpreter
(``().__class__.__base__.__subclasses__()``), so it can do anything the process can. Evaluate
only expressions you would run as code, never ones from an untrusted source (a web form, a
message, a flow file somebody sent you).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import CodeType
from typing import Any

__all__ = [
    "CONDITION_BUILTINS",
    "LAMBDA_BUILTINS",
    "compile_lambda_expression",
    "evaluate_condition",
]

#: The builtins a string route condition may call (0.10's set).
CONDITION_BUILTINS: dict[str, Any] = {
    "isinstance": isinstance,
    "dict": dict,
    "list": list,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "len": len,
    "getattr": getattr,
    "hasattr": hasattr,
}

#: The builtins a deserialized lambda expression may call (0.10's set, narrower than the above).
LAMBDA_BUILTINS: dict[str, Any] = {
    name: CONDITION_BUILTINS[name] for name in ("isinstance", "dict", "list", "str", "int", "float", "bool")
}


@functools.lru_cache(maxsize=256)
def _compiled(expression: str) -> CodeType:
    # Routers evaluate the same few conditions for every routed value: compile each once.
    return compile(expression, "<route condition>", "eval")


def evaluate_condition(expression: str, data: Any, config: dict[str, Any]) -> bool:
    """Evaluate a string route condition; any error (syntax included) counts as "no match".

    Swallowing errors is 0.10's documented behaviour: a condition that does not apply to the
    value at hand (``data.get`` on a list, a missing key) simply does not match.
    """
    try:
        code = _compiled(expression)
        # A fresh globals dict per call: an expression cannot leave anything behind for the next.
        scope = {"__builtins__": dict(CONDITION_BUILTINS)}
        return bool(eval(code, scope, {"data": data, "config": config, "stats": {}}))  # noqa: S307 - see module docstring
    except Exception:
        return False


def compile_lambda_expression(expression: str) -> Callable[[Any], Any]:
    """Return ``lambda data: <expression>`` evaluated with :data:`LAMBDA_BUILTINS`.

    Raises:
        SyntaxError: the expression is not valid Python.
    """
    scope = {"__builtins__": dict(LAMBDA_BUILTINS)}
    function: Callable[[Any], Any] = eval(  # noqa: S307 - see module docstring
        # The newlines keep a trailing comment in the expression from swallowing the parenthesis.
        compile(f"lambda data: (\n{expression}\n)", "<lambda expression>", "eval"), scope
    )
    return function
