"""Conditions on a job's state, parsed without ``eval``.

Grammar (keywords are case-insensitive)::

    condition  := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" condition ")" | test
    test       := operand [op value | "in" list | "not" "in" list | "exists" | "missing"]
    operand    := path | "len(" path ")"
    op         := "==" | "=" | "!=" | "<" | "<=" | ">" | ">="
    list       := value ("," value)*
    value      := number | "true" | "false" | "null" | quoted string | bare word

Examples: ``shared_data.limit == 0``, ``routine_states.fetch.status in failed,error``,
``status == paused``, ``len(execution_history) >= 10 and not shared_data.done``.

A bare operand is true when the value is truthy. A path that does not exist makes
every comparison false except ``!=`` and ``not in`` (and ``missing``). Comparing
values of types that do not order (``"a" < 3``) is false, not an error. A bare word
compared with a string field matches its text, so ``shared_data.code == 007`` matches
the string ``"007"`` as well as the number 7.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from .errors import ConditionSyntaxError, FieldPathError
from .paths import MISSING, FieldPath, parse_path, resolve

__all__ = ["Condition", "parse_condition"]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_KEYWORDS = {"and", "or", "not", "in", "exists", "missing"}

# Tokens: operators, parens, commas, quoted strings, and "words" (paths or bare values,
# which may embed quoted path segments such as shared_data."a.b").
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<op>==|!=|<=|>=|<|>|=)
  | (?P<punct>[(),])
  | (?P<word>(?:[^\s()<>=!,"']|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')+)
  | (?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)


class _Tok(NamedTuple):
    kind: str  # "op", "punct", "word", "end"
    text: str
    col: int  # 1-based


class _Literal(NamedTuple):
    value: Any
    raw: str | None  # the bare word's text, for matching string fields


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "bad"
        if kind == "ws":
            continue
        if kind == "bad":
            ch = m.group()
            reason = "unterminated quote" if ch in "\"'" else f"unexpected character {ch!r}"
            raise ConditionSyntaxError(text, m.start() + 1, ch, reason)
        toks.append(_Tok(kind, m.group(), m.start() + 1))
    toks.append(_Tok("end", "", len(text) + 1))
    return toks


def _unquote(word: str) -> str | None:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "\"'":
        body = word[1:-1]
        return re.sub(r"\\(.)", r"\1", body)
    return None


def _literal(word: str) -> _Literal:
    quoted = _unquote(word)
    if quoted is not None:
        return _Literal(quoted, None)
    low = word.lower()
    if low == "true":
        return _Literal(True, word)
    if low == "false":
        return _Literal(False, word)
    if low in ("null", "none"):
        return _Literal(None, word)
    try:
        return _Literal(int(word), word)
    except ValueError:
        pass
    try:
        return _Literal(float(word), word)
    except ValueError:
        return _Literal(word, word)


def _equal(value: Any, lit: _Literal) -> bool:
    if value is MISSING:
        return False
    if isinstance(value, str) and lit.raw is not None and value == lit.raw:
        return True
    if isinstance(value, bool) != isinstance(lit.value, bool):
        return False  # True == 1 in Python, but not in a condition on a state
    try:
        return bool(value == lit.value)
    except Exception:
        return False


def _ordered(op: Callable[[Any, Any], bool], value: Any, lit: _Literal) -> bool:
    if value is MISSING or value is None or lit.value is None:
        return False
    other = lit.value
    if isinstance(value, str) and not isinstance(other, str) and lit.raw is not None:
        other = lit.raw
    try:
        return bool(op(value, other))
    except TypeError:
        return False


class _Operand(NamedTuple):
    path: FieldPath
    length: bool

    def get(self, state: Any) -> Any:
        value = resolve(state, self.path)
        if self.length:
            if value is MISSING:
                return MISSING
            try:
                return len(value)
            except TypeError:
                return MISSING
        return value

    def __str__(self) -> str:
        return f"len({self.path})" if self.length else str(self.path)


_Node = Callable[[Any], bool]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.paths: list[FieldPath] = []

    # -- helpers ------------------------------------------------------------
    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, tok: _Tok, reason: str) -> ConditionSyntaxError:
        return ConditionSyntaxError(self.text, tok.col, tok.text, reason)

    def is_kw(self, tok: _Tok, *words: str) -> bool:
        return tok.kind == "word" and tok.text.lower() in words

    # -- grammar ------------------------------------------------------------
    def parse(self) -> _Node:
        if self.peek().kind == "end":
            raise self.fail(self.peek(), "the condition is empty (expected e.g. status == failed)")
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "end":
            raise self.fail(tok, "expected 'and', 'or' or the end of the condition")
        return node

    def or_expr(self) -> _Node:
        parts = [self.and_expr()]
        while self.is_kw(self.peek(), "or"):
            self.take()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda s: any(p(s) for p in parts)

    def and_expr(self) -> _Node:
        parts = [self.not_expr()]
        while self.is_kw(self.peek(), "and"):
            self.take()
            parts.append(self.not_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda s: all(p(s) for p in parts)

    def not_expr(self) -> _Node:
        tok = self.peek()
        if self.is_kw(tok, "not"):
            self.take()
            inner = self.not_expr()
            return lambda s: not inner(s)
        if tok.kind == "punct" and tok.text == "(":
            self.take()
            node = self.or_expr()
            close = self.take()
            if close.kind != "punct" or close.text != ")":
                raise self.fail(close, "expected ')'")
            return node
        return self.test()

    def operand(self) -> _Operand:
        tok = self.take()
        if tok.kind != "word" or tok.text.lower() in _KEYWORDS:
            raise self.fail(tok, "expected a field path such as shared_data.limit")
        if tok.text.lower() == "len" and self.peek().kind == "punct" and self.peek().text == "(":
            self.take()
            inner = self.take()
            if inner.kind != "word":
                raise self.fail(inner, "expected a field path inside len(...)")
            path = self.path(inner)
            close = self.take()
            if close.kind != "punct" or close.text != ")":
                raise self.fail(close, "expected ')' after the path in len(...)")
            return _Operand(path, True)
        return _Operand(self.path(tok), False)

    def path(self, tok: _Tok) -> FieldPath:
        try:
            path = parse_path(tok.text)
        except FieldPathError as exc:
            col = tok.col + (exc.column or 1) - 1
            raise ConditionSyntaxError(self.text, col, tok.text, exc.reason) from None
        self.paths.append(path)
        return path

    def value(self) -> _Literal:
        tok = self.take()
        if tok.kind != "word":
            raise self.fail(tok, "expected a value (a number, true/false/null, a word or a quoted string)")
        return _literal(tok.text)

    def value_list(self) -> list[_Literal]:
        values = [self.value()]
        while self.peek().kind == "punct" and self.peek().text == ",":
            self.take()
            values.append(self.value())
        return values

    def test(self) -> _Node:
        operand = self.operand()
        tok = self.peek()
        if tok.kind == "op":
            self.take()
            lit = self.value()
            fn = _OPS[tok.text]
            if fn is operator.eq:
                return lambda s: _equal(operand.get(s), lit)
            if fn is operator.ne:
                return lambda s: not _equal(operand.get(s), lit)
            return lambda s: _ordered(fn, operand.get(s), lit)
        if self.is_kw(tok, "in"):
            self.take()
            values = self.value_list()
            return lambda s: _member(operand.get(s), values)
        if self.is_kw(tok, "not") and self.is_kw(self.toks[self.i + 1], "in"):
            self.take()
            self.take()
            values = self.value_list()
            return lambda s: not _member(operand.get(s), values)
        if self.is_kw(tok, "exists"):
            self.take()
            return lambda s: operand.get(s) is not MISSING
        if self.is_kw(tok, "missing"):
            self.take()
            return lambda s: operand.get(s) is MISSING
        if tok.kind == "word" and not self.is_kw(tok, "and", "or"):
            raise self.fail(tok, "expected an operator (==, !=, <, <=, >, >=, in, not in, exists, missing)")
        return lambda s: bool(operand.get(s))


def _member(value: Any, values: list[_Literal]) -> bool:
    return any(_equal(value, lit) for lit in values)


class Condition:
    """A parsed condition: call it with a state (a JobState, projection or dict).

    Attributes:
        text: the source text.
        paths: every field path the condition reads (for messages and scans).
    """

    __slots__ = ("_node", "paths", "text")

    def __init__(self, text: str, node: _Node, paths: list[FieldPath]) -> None:
        self.text = text
        self._node = node
        self.paths = tuple(paths)

    def __call__(self, state: Any) -> bool:
        """Return whether the condition holds on ``state``."""
        return bool(self._node(state))

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


def parse_condition(text: str) -> Condition:
    """Parse ``text`` into a :class:`Condition`.

    Raises:
        ConditionSyntaxError: naming the bad token and its 1-based column.
    """
    parser = _Parser(text)
    node = parser.parse()
    return Condition(text, node, parser.paths)
