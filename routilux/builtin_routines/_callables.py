"""Callables in a builtin routine's configuration, written to and read from a serialized flow.

DataTransformer, DataValidator and ConditionalRouter keep functions in their configuration
(transformations, validation rules, route conditions). ``serialize()`` must turn them into
plain data and ``deserialize()`` must turn that data back into the same functions, or fail
loudly: a flow that silently loses a route condition routes everything to the default.

The shapes are serilux's (what routilux 0.10 wrote), so flow dicts travel both ways::

    {"_type": "callable", "callable_type": "function", "module": m, "name": qualname}
    {"_type": "callable", "callable_type": "builtin", "name": n}
    {"_type": "callable", "callable_type": "method", "class_name": c, "method_name": n, "object_id": id}
    {"_type": "lambda_expression", "expression": "data.get('priority') == 'high'"}

A lambda is written as its body, with its parameter renamed ``data``; it is read back as
``lambda data: <expression>`` (see :mod:`._expressions` for what that evaluation can and
cannot protect against). Differences from 0.10, on purpose: a lambda is found in its source
file by compiling each candidate and comparing the code (0.10 cut the text after the first
``lambda`` on the line, which broke on any line with more than one); a lambda that uses a
closure variable or a global name is refused when written (0.10 wrote it and the name was
missing when it ran); and the parameter names 0.10 wrote (``x``, ``item``, ``value``,
``obj``) are renamed as names only, never inside string literals.
"""

from __future__ import annotations
import __future__

import ast
import builtins
import functools
import importlib
import inspect
import linecache
import operator
from collections.abc import Callable
from types import CodeType, FunctionType
from typing import Any

from routilux.routine import Routine

from ._expressions import LAMBDA_BUILTINS, compile_lambda_expression
from .errors import CallableSerializationError

__all__ = ["CallableConfigRoutine", "decode_callables", "encode_callables"]

# Parameter names 0.10 left in the lambda expressions it wrote; its reader mapped them to ``data``.
_LEGACY_PARAMETER_NAMES = frozenset({"x", "item", "value", "obj"})
_ADVICE = "use a string expression or a function defined at module level instead"
_FUTURE_FLAGS = functools.reduce(
    operator.or_, (getattr(__future__, name).compiler_flag for name in __future__.all_feature_names), 0)
# A lambda rebuilt from a flow dict remembers its expression here, so it can be written again.
_EXPRESSION_ATTRIBUTE = "__lambda_expression__"


class CallableConfigRoutine(Routine):
    """A routine whose configuration may hold functions; it serializes them by reference.

    Raises (from ``serialize``/``deserialize``):
        CallableSerializationError: a function cannot be written or read back; the message
            names its place in the configuration.
    """

    def serialize(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Return the routine's structure with every configured function as a reference."""
        data = super().serialize(*args, **kwargs)
        data["_config"] = encode_callables(self._config, self, "_config")
        return data

    def deserialize(self, data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        """Restore the structure written by :meth:`serialize`, functions included."""
        # The configuration is read here only: serilux's generic reader would also try the
        # function references in it, with its own (narrower) rules for lambda expressions.
        config = data.get("_config") or {}
        super().deserialize({**data, "_config": {}}, *args, **kwargs)
        self._config = decode_callables(config, self, "_config")


# -- writing -----------------------------------------------------------------------------------
def encode_callables(value: Any, owner: Any, path: str) -> Any:
    """Return ``value`` with every callable inside it (dict values, list items) as plain data."""
    if isinstance(value, dict):
        return {k: encode_callables(v, owner, f"{path}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_callables(v, owner, f"{path}[{i}]") for i, v in enumerate(value)]
    if callable(value):
        return _encode_callable(value, owner, path)
    return value


def _encode_callable(function: Callable[..., Any], owner: Any, path: str) -> dict[str, Any]:
    if inspect.ismethod(function):
        if function.__self__ is not owner:
            msg = (f"{path}: the method {function.__qualname__} belongs to another object; only "
                   f"methods of the routine itself can be serialized ({_ADVICE})")
            raise CallableSerializationError(msg, path)
        return {"_type": "callable", "callable_type": "method", "class_name": type(owner).__name__,
                "method_name": function.__name__, "object_id": getattr(owner, "_id", None)}
    if inspect.isbuiltin(function) and getattr(builtins, function.__name__, None) is function:
        return {"_type": "callable", "callable_type": "builtin", "name": function.__name__}
    if isinstance(function, FunctionType) and function.__name__ == "<lambda>":
        expression = getattr(function, _EXPRESSION_ATTRIBUTE, None)  # read from a flow dict: no source
        if not isinstance(expression, str):
            expression = _lambda_expression(function, path)
        return {"_type": "lambda_expression", "expression": expression}
    # Methods of builtin types (str.upper) have no __module__; their class knows it.
    module = getattr(function, "__module__", None) or getattr(getattr(function, "__objclass__", None), "__module__", None)
    name = getattr(function, "__qualname__", None)
    if isinstance(module, str) and isinstance(name, str) and _resolve(module, name) is function:
        return {"_type": "callable", "callable_type": "function", "module": module, "name": name}
    msg = (f"{path}: {function!r} cannot be serialized: it cannot be found again by its module "
           f"and name (a nested function, a partial or a callable object); {_ADVICE}")
    raise CallableSerializationError(msg, path)


def _lambda_expression(function: FunctionType, path: str) -> str:
    code = function.__code__
    if code.co_freevars:
        msg = (f"{path}: the lambda uses the closure variable(s) {', '.join(code.co_freevars)}, which a "
               f"serialized flow cannot carry; {_ADVICE} (put the value in the routine's config)")
        raise CallableSerializationError(msg, path)
    node = _find_lambda(function)
    if node is None:
        msg = (f"{path}: the source of the lambda defined at {code.co_filename}:{code.co_firstlineno} "
               f"cannot be found; {_ADVICE}")
        raise CallableSerializationError(msg, path)
    args = node.args
    if (len(args.args) != 1 or args.posonlyargs or args.kwonlyargs or args.vararg or args.kwarg
            or args.defaults):
        msg = f"{path}: only a lambda of exactly one parameter can be serialized; {_ADVICE}"
        raise CallableSerializationError(msg, path)
    parameter = args.args[0].arg
    unknown = sorted(_free_names(node.body) - {parameter} - set(LAMBDA_BUILTINS))
    if unknown:
        msg = (f"{path}: the lambda uses the name(s) {', '.join(unknown)}, which a deserialized "
               f"condition cannot see (it only knows its parameter and {sorted(LAMBDA_BUILTINS)}); {_ADVICE}")
        raise CallableSerializationError(msg, path)
    return ast.unparse(_rename(node.body, {parameter}))


def _find_lambda(function: FunctionType) -> ast.Lambda | None:
    """The lambda's node in its source file, or None when it is not there exactly once.

    Several lambdas may start on one line: each is compiled on its own and the one whose code
    equals the function's is taken.
    """
    code = function.__code__
    lines = linecache.getlines(code.co_filename, function.__globals__)
    if not lines:
        return None
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        return None
    found = [node for node in ast.walk(tree)
             if isinstance(node, ast.Lambda) and node.lineno == code.co_firstlineno
             and _same_code(node, code)]
    return found[0] if len(found) == 1 else None


def _same_code(node: ast.Lambda, code: CodeType) -> bool:
    # Compile with the lambda's own __future__ flags, not this module's: nested code objects
    # (comprehensions) carry the flags, and code objects only compare equal when they match.
    try:
        compiled = compile(ast.Expression(body=node), code.co_filename, "eval",
                           flags=code.co_flags & _FUTURE_FLAGS, dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    inner = [c for c in compiled.co_consts if isinstance(c, CodeType)]
    return (len(inner) == 1 and inner[0].co_code == code.co_code and inner[0].co_consts == code.co_consts
            and inner[0].co_names == code.co_names and inner[0].co_varnames == code.co_varnames)


def _free_names(expression: ast.AST) -> set[str]:
    """Names the expression reads that it does not bind itself (comprehension targets, inner lambdas)."""
    read: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(expression):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return read - bound


def _rename(expression: ast.expr, names: set[str] | frozenset[str]) -> ast.expr:
    """Rename every variable called one of ``names`` to ``data`` (names only, never strings)."""

    class Renamer(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.Name:
            if node.id in names:
                return ast.copy_location(ast.Name(id="data", ctx=node.ctx), node)
            return node

    renamed: ast.expr = Renamer().visit(expression)
    return renamed


# -- reading -----------------------------------------------------------------------------------
def decode_callables(value: Any, owner: Any, path: str) -> Any:
    """Return ``value`` with every serialized callable inside it turned back into a function.

    Raises:
        CallableSerializationError: a reference names nothing that can be imported, or an
            expression does not compile.
    """
    if isinstance(value, dict):
        kind = value.get("_type")
        if kind == "lambda_expression":
            return _decode_lambda(value, path)
        if kind == "callable":
            return _decode_reference(value, owner, path)
        return {k: decode_callables(v, owner, f"{path}[{k!r}]") for k, v in value.items()}
    if isinstance(value, list):
        return [decode_callables(v, owner, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _decode_lambda(data: dict[str, Any], path: str) -> Callable[[Any], Any]:
    expression = data.get("expression")
    try:
        if not isinstance(expression, str) or not expression.strip():
            msg = "the 'expression' field is missing or empty"
            raise ValueError(msg)
        text = expression.strip()
        if text.startswith("return "):  # 0.10 also wrote the body of a one-line def this way
            text = text[len("return "):]
        tree = ast.parse(text, mode="eval")
        expression = ast.unparse(_rename(tree.body, _LEGACY_PARAMETER_NAMES))
        function = compile_lambda_expression(expression)
        setattr(function, _EXPRESSION_ATTRIBUTE, expression)
        return function
    except (SyntaxError, ValueError) as exc:
        msg = f"{path}: cannot restore the lambda expression {expression!r}: {exc}"
        raise CallableSerializationError(msg, path) from exc


def _decode_reference(data: dict[str, Any], owner: Any, path: str) -> Callable[..., Any]:
    kind = data.get("callable_type")
    found: Any = None
    if kind == "function":
        found = _resolve(str(data.get("module")), str(data.get("name")))
    elif kind == "builtin":
        found = getattr(builtins, str(data.get("name")), None)
    elif kind == "method":
        owner_classes = {cls.__name__ for cls in type(owner).__mro__}
        if data.get("class_name") in owner_classes:
            found = getattr(owner, str(data.get("method_name")), None)
    if not callable(found):
        where = f"{data.get('module')}.{data.get('name')}" if kind == "function" else repr(data)
        msg = (f"{path}: cannot restore the {kind or 'unknown'} callable {where}: import the module "
               f"that defines it, or check that it still exists")
        raise CallableSerializationError(msg, path)
    return found  # type: ignore[no-any-return]


def _resolve(module: str, qualname: str) -> Any:
    """The object called ``qualname`` in ``module``, or None when either cannot be found."""
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError):
        return None
    return found
