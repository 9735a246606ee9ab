"""Typed conditions on a job's state (``bisect --where``) or on an event (``events --where``).

Parsed, never ``eval``-ed. Grammar (keywords are case-insensitive)::

    condition  := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" condition ")" | test
    test       := operand [op value | "in" list | "not" "in" list | "exists" | "missing"]
    operand    := path | "len(" path ")"
    op         := "==" | "=" | "!=" | "<" | "<=" | ">" | ">="
    list       := "[" values "]" | "{" values "}" | "(" values ")" | value ("," value)*
    values     := [value ("," value)*]
    value      := number | "true" | "false" | "null" | quoted string | bare word

Examples: ``shared_data.limit == 0``, ``routine_states.fetch.status in [failed, error]``,
``status == paused``, ``len(execution_history) >= 10 and not shared_data.done``.

Values are typed and compared only with values of the same type:

* a number (``3``, ``-1.5``), ``true``/``false``, ``null``, or text (a quoted string, or a
  bare word that is not a number or a keyword: ``paused``);
* ``==`` and ``!=`` between a number and text (or a list, a mapping, a boolean) are an
  error pointing at the value's token (``shared_data.code == 007`` on the text ``"007"``
  says to quote it); ``null`` compares with anything (equal only to ``null``);
* ``<``, ``<=``, ``>``, ``>=`` order numbers with numbers and text with text; a ``null``
  field makes them false; other types are an error;
* a time field (``created_at``, an event's ``time``) compares with a time given as text;
* ``in`` takes a list of values; a field whose type matches none of them is an error;
* a path that does not exist at a version makes every test false except ``!=``,
  ``not in`` and ``missing``. A path that exists at *no* version of the job is an error
  listing the nearest known names (:meth:`Condition.check_known`), unless it is only
  used with ``exists``/``missing`` or the caller allows missing fields.

A bare operand is true when its value is truthy.
"""

from __future__ import annotations

import datetime as _dt
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from .errors import ConditionSyntaxError, ConditionTypeError, FieldPathError, UnknownFieldError
from .paths import MISSING, FieldPath, parse_path, resolve

__all__ = [
    "EVENT_FIELDS",
    "STATE_FIELDS",
    "Condition",
    "FieldUse",
    "check_scope",
    "parse_condition",
    "parse_event_condition",
    "parse_field",
    "type_name",
    "unknown_field",
]

_ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_KEYWORDS = {"and", "or", "not", "in", "exists", "missing"}

#: The top-level fields of a job's state a condition may read (``JobState.serialize()``
#: names, plus ``version``: the seq of the last event applied).
STATE_FIELDS = (
    "status", "job_id", "flow_id", "current_routine_id", "routine_states", "shared_data",
    "execution_history", "shared_log", "output_log", "pause_points", "deferred_events",
    "pending_tasks", "created_at", "updated_at", "version",
)
#: The fields of one event for ``events --where`` (``data`` holds the payload).
EVENT_FIELDS = ("version", "seq", "ts", "time", "kind", "routine", "data")

_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")

# Tokens: operators, punctuation, quoted strings, and "words" (paths or bare values, which
# may embed quoted path segments such as shared_data."a.b").
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<op>==|!=|<=|>=|<|>|=)
  | (?P<punct>[()\[\]{},])
  | (?P<word>(?:[^\s()\[\]{}<>=!,"']|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')+)
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
    kind: str  # "number", "text", "bool", "null"
    tok: _Tok


class FieldUse(NamedTuple):
    """A field path a condition reads, with where it appears.

    Attributes:
        path: the parsed path.
        col: 1-based column of the path in the condition text.
        text: the path as written.
        needs_existence: False when the path is only tested with ``exists``/``missing``
            (a field absent everywhere is then a valid answer, not a typo).
    """

    path: FieldPath
    col: int
    text: str
    needs_existence: bool


def type_name(value: Any) -> str:
    """The condition-language type of a state value: number, text, bool, null, list, mapping, time."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, _dt.datetime):
        return "time"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict) or hasattr(value, "keys"):
        return "mapping"
    return type(value).__name__


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
        return re.sub(r"\\(.)", r"\1", word[1:-1])
    return None


def _literal(tok: _Tok) -> _Literal:
    word = tok.text
    quoted = _unquote(word)
    if quoted is not None:
        return _Literal(quoted, "text", tok)
    low = word.lower()
    if low == "true":
        return _Literal(True, "bool", tok)
    if low == "false":
        return _Literal(False, "bool", tok)
    if low in ("null", "none"):
        return _Literal(None, "null", tok)
    if _NUMBER.match(word):
        number = float(word) if any(c in word for c in ".eE") else int(word)
        return _Literal(number, "number", tok)
    return _Literal(word, "text", tok)


class _Mismatch(Exception):
    """Raised during evaluation; turned into a ConditionTypeError naming the version."""

    def __init__(self, tok: _Tok, reason: str, field: str, value: Any) -> None:
        super().__init__(reason)
        self.tok = tok
        self.reason = reason
        self.field = field
        self.value = value


def _shown(value: Any) -> str:
    from .rows import format_value

    text = format_value(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _as_aware(value: _dt.datetime) -> _dt.datetime:
    return value if value.tzinfo is not None else value.astimezone()


class _Operand(NamedTuple):
    path: FieldPath
    length: bool
    tok: _Tok

    def get(self, state: Any) -> Any:
        value = resolve(state, self.path)
        if self.length and value is not MISSING:
            if value is None:
                return MISSING
            try:
                return len(value)
            except TypeError:
                raise _Mismatch(self.tok, f"len() needs a list, mapping or text, and {self} is "
                                          f"{type_name(value)} ({_shown(value)})", str(self), value) from None
        return value

    def __str__(self) -> str:
        return f"len({self.path})" if self.length else str(self.path)


def _time_literal(lit: _Literal, operand: _Operand, value: Any) -> _dt.datetime:
    from .errors import BadPointError
    from .timefmt import parse_time

    if lit.kind != "text":
        raise _Mismatch(lit.tok, f"{operand} is a time and {lit.tok.text} is {lit.kind}: give a time as text, "
                                 "e.g. 2026-11-28T07:13:04Z", str(operand), value)
    try:
        return _as_aware(parse_time(lit.value))
    except BadPointError:
        raise _Mismatch(lit.tok, f"{lit.tok.text} is not a time ({operand} is a time)", str(operand), value) from None


def _same_kind(value: Any, lit: _Literal, operand: _Operand, what: str) -> None:
    if type(value) is type(lit.value):
        return  # the common case, decided without naming types
    kind = type_name(value)
    if kind == lit.kind:
        return
    hint = ""
    if kind == "text" and lit.kind in ("number", "bool", "null"):
        hint = f"; quote it to compare text: '{lit.tok.text}'"
    elif kind in ("list", "mapping"):
        hint = f"; use len({operand.path}) or a path into it"
    raise _Mismatch(lit.tok, f"cannot {what} {operand} ({kind}: {_shown(value)}) with {lit.tok.text} ({lit.kind})"
                             f"{hint}", str(operand), value)


def _equal(operand: _Operand, value: Any, lit: _Literal) -> bool:
    if value is MISSING:
        return False
    if value is None or lit.kind == "null":
        return value is None and lit.kind == "null"
    if isinstance(value, _dt.datetime):
        return _as_aware(value) == _time_literal(lit, operand, value)
    _same_kind(value, lit, operand, "compare")
    return bool(value == lit.value)


def _ordered(op: Callable[[Any, Any], bool], operand: _Operand, value: Any, lit: _Literal) -> bool:
    if value is MISSING or value is None:
        return False
    if isinstance(value, _dt.datetime):
        return bool(op(_as_aware(value), _time_literal(lit, operand, value)))
    _same_kind(value, lit, operand, "order")
    if lit.kind not in ("number", "text"):
        raise _Mismatch(lit.tok, f"{lit.tok.text} ({lit.kind}) has no order: use == or != with it",
                        str(operand), value)
    return bool(op(value, lit.value))


def _member(operand: _Operand, value: Any, values: list[_Literal], first: _Tok) -> bool:
    if value is MISSING:
        return False
    if value is None:
        return any(lit.kind == "null" for lit in values)
    if isinstance(value, _dt.datetime):
        return any(_equal(operand, value, lit) for lit in values)
    kind = type_name(value)
    typed = [lit for lit in values if lit.kind == kind]
    if not typed and any(lit.kind != "null" for lit in values):
        kinds = sorted({lit.kind for lit in values if lit.kind != "null"})
        hint = "; quote the values to compare text" if kind == "text" else ""
        raise _Mismatch(first, f"{operand} is {kind} ({_shown(value)}) and the list holds "
                               f"{' and '.join(kinds)} values{hint}", str(operand), value)
    return any(value == lit.value for lit in typed)


_Node = Callable[[Any], bool]


class _Parser:
    def __init__(self, text: str, scope: tuple[str, ...]) -> None:
        self.text = text
        self.scope = scope
        self.toks = _tokenize(text)
        self.i = 0
        self.uses: list[FieldUse] = []

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def fail(self, tok: _Tok, reason: str) -> ConditionSyntaxError:
        return ConditionSyntaxError(self.text, tok.col, tok.text, reason)

    def is_kw(self, tok: _Tok, *words: str) -> bool:
        return tok.kind == "word" and tok.text.lower() in words

    def is_punct(self, tok: _Tok, *chars: str) -> bool:
        return tok.kind == "punct" and tok.text in chars

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
        if self.is_punct(tok, "("):
            self.take()
            node = self.or_expr()
            close = self.take()
            if not self.is_punct(close, ")"):
                raise self.fail(close, "expected ')'")
            return node
        return self.test()

    def operand(self) -> _Operand:
        tok = self.take()
        if tok.kind != "word" or tok.text.lower() in _KEYWORDS:
            raise self.fail(tok, "expected a field path such as shared_data.limit")
        if tok.text.lower() == "len" and self.is_punct(self.peek(), "("):
            self.take()
            inner = self.take()
            if inner.kind != "word":
                raise self.fail(inner, "expected a field path inside len(...)")
            path = self.path(inner)
            close = self.take()
            if not self.is_punct(close, ")"):
                raise self.fail(close, "expected ')' after the path in len(...)")
            return _Operand(path, True, inner)
        return _Operand(self.path(tok), False, tok)

    def path(self, tok: _Tok) -> FieldPath:
        try:
            path = parse_path(tok.text)
        except FieldPathError as exc:
            col = tok.col + (exc.column or 1) - 1
            raise ConditionSyntaxError(self.text, col, tok.text, exc.reason) from None
        check_scope(self.text, path, tok.col, self.scope)
        return path

    def value(self) -> _Literal:
        tok = self.take()
        if tok.kind != "word":
            raise self.fail(tok, "expected a value (a number, true/false/null, a word or a quoted string)")
        return _literal(tok)

    def value_list(self) -> tuple[list[_Literal], _Tok]:
        first = self.peek()
        closer = {"[": "]", "{": "}", "(": ")"}.get(first.text) if first.kind == "punct" else None
        if closer is not None:
            self.take()
            values: list[_Literal] = []
            if self.is_punct(self.peek(), closer):
                self.take()
                return values, first
            while True:
                values.append(self.value())
                sep = self.take()
                if self.is_punct(sep, closer):
                    return values, first
                if not self.is_punct(sep, ","):
                    raise self.fail(sep, f"expected ',' or '{closer}' in the list")
        values = [self.value()]
        while self.is_punct(self.peek(), ","):
            self.take()
            values.append(self.value())
        return values, first

    def use(self, operand: _Operand, needs_existence: bool) -> None:
        self.uses.append(FieldUse(operand.path, operand.tok.col, operand.tok.text, needs_existence))

    def test(self) -> _Node:
        operand = self.operand()
        tok = self.peek()
        get = operand.get
        if tok.kind == "op":
            self.take()
            lit = self.value()
            self.use(operand, True)
            if tok.text in ("==", "="):
                return lambda s: _equal(operand, get(s), lit)
            if tok.text == "!=":
                return lambda s: not _equal(operand, get(s), lit)
            fn = _ORDER_OPS[tok.text]
            return lambda s: _ordered(fn, operand, get(s), lit)
        if self.is_kw(tok, "in"):
            self.take()
            values, first = self.value_list()
            self.use(operand, True)
            return lambda s: _member(operand, get(s), values, first)
        if self.is_kw(tok, "not") and self.is_kw(self.peek(1), "in"):
            self.take()
            self.take()
            values, first = self.value_list()
            self.use(operand, True)
            return lambda s: not _member(operand, get(s), values, first)
        if self.is_kw(tok, "exists"):
            self.take()
            self.use(operand, False)
            return lambda s: get(s) is not MISSING
        if self.is_kw(tok, "missing"):
            self.take()
            self.use(operand, False)
            return lambda s: get(s) is MISSING
        if tok.kind == "word" and not self.is_kw(tok, "and", "or"):
            raise self.fail(tok, "expected an operator (==, !=, <, <=, >, >=, in, not in, exists, missing)")
        self.use(operand, True)
        return lambda s: bool(get(s))


class Condition:
    """A parsed condition: call it with a state (a projection, a JobState, a dict).

    Attributes:
        text: the source text.
        uses: every field the condition reads (:class:`FieldUse`), in order.
        paths: the paths alone.
    """

    __slots__ = ("_node", "paths", "text", "uses")

    def __init__(self, text: str, node: _Node, uses: Sequence[FieldUse]) -> None:
        self.text = text
        self._node = node
        self.uses = tuple(uses)
        self.paths = tuple(u.path for u in self.uses)

    def evaluate(self, state: Any, version: int | None = None) -> bool:
        """Whether the condition holds on ``state`` (at ``version``, for messages).

        Raises:
            ConditionTypeError: a comparison of mismatched types (names the field, its
                value, the version and the column of the value).
        """
        try:
            return bool(self._node(state))
        except _Mismatch as exc:
            at = f" at version {version}" if version is not None else ""
            raise ConditionTypeError(self.text, exc.tok.col, exc.tok.text, exc.reason + at, field=exc.field,
                                     value=exc.value, version=version) from None

    def __call__(self, state: Any) -> bool:
        """Return whether the condition holds on ``state``."""
        return self.evaluate(state)

    def check_known(self, seen: Iterable[FieldPath], *, known_at: Any = None) -> None:
        """Raise :class:`UnknownFieldError` for a path that never existed.

        Args:
            seen: the paths that existed at some version the caller evaluated.
            known_at: a state (e.g. the head's) whose fields also count as existing,
                and whose keys are offered as the nearest names.
        """
        present = set(seen)
        for use in self.uses:
            if not use.needs_existence or use.path in present:
                continue
            if known_at is not None and resolve(known_at, use.path) is not MISSING:
                continue
            raise unknown_field(self.text, use, known_at)

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


def unknown_field(text: str, use: FieldUse, known_at: Any, *, what: str = "condition") -> UnknownFieldError:
    """The error for a field that exists at no version, offering names ``known_at`` has."""
    from difflib import get_close_matches

    # Walk down to the first segment that does not exist, and offer its siblings.
    path = use.path
    depth = 0
    parent: Any = known_at
    while known_at is not None and depth < len(path):
        child = resolve(parent, path[depth : depth + 1])
        if child is MISSING:
            break
        parent = child
        depth += 1
    names: list[str] = []
    if parent is not None and hasattr(parent, "keys"):
        names = [str(k) for k in parent.keys()]
    missing = path[depth] if depth < len(path) else path[-1]
    near = tuple(get_close_matches(missing, names, n=3, cutoff=0.5))
    where = str(FieldPath(path[:depth])) if depth else "the state"
    if near:
        hint = f"did you mean {' or '.join(str(FieldPath((*path[:depth], n))) for n in near)}?"
    elif names:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        hint = f"{where} has: {shown}"
    else:
        hint = f"{where} has no fields"
    allow = "; --allow-missing to accept it" if what == "condition" else ""
    return UnknownFieldError(text, use.col, use.text, f"no version of this job has {path} ({hint}{allow})",
                             nearest=near, what=what)


def check_scope(text: str, path: FieldPath, col: int, scope: tuple[str, ...], *,
                what: str = "condition") -> None:
    """Raise :class:`UnknownFieldError` unless ``path`` starts with a field in ``scope``."""
    if path[0] in scope:
        return
    from difflib import get_close_matches

    near = tuple(get_close_matches(path[0], scope, n=3, cutoff=0.7))
    hint = f"did you mean {' or '.join(near)}?" if near else f"fields: {', '.join(scope)}"
    raise UnknownFieldError(text, col, path[0], f"unknown field {path[0]!r} ({hint})", nearest=near, what=what)


def parse_field(text: str, *, scope: tuple[str, ...] = STATE_FIELDS) -> FieldPath:
    """Parse a field path of a job's state (``blame FIELD``), checking its top-level name.

    Raises:
        FieldPathError: it does not parse.
        UnknownFieldError: its first segment is not a field of a job's state.
    """
    path = parse_path(text)
    check_scope(text, path, 1, scope, what="field path")
    return path


def parse_condition(text: str, *, scope: tuple[str, ...] = STATE_FIELDS) -> Condition:
    """Parse a condition on a job's state.

    Raises:
        ConditionSyntaxError: naming the bad token and its 1-based column (an
            :class:`UnknownFieldError` for a top-level field outside ``scope``).
    """
    parser = _Parser(text, scope)
    node = parser.parse()
    return Condition(text, node, parser.uses)


def parse_event_condition(text: str) -> Condition:
    """Parse a condition on one event (``events --where``): see :data:`EVENT_FIELDS`.

    ``data.KEY`` must name a payload field of some event kind (checked here).
    """
    from routilux.events import KINDS

    cond = parse_condition(text, scope=EVENT_FIELDS)
    payload = sorted({f for kind in KINDS.values() for f in kind.fields})
    for use in cond.uses:
        if use.path[0] == "data" and len(use.path) > 1 and use.path[1] not in payload:
            from difflib import get_close_matches

            near = tuple(get_close_matches(use.path[1], payload, n=3, cutoff=0.5))
            hint = (f"did you mean {' or '.join('data.' + n for n in near)}?" if near
                    else f"payload fields: {', '.join(payload)}")
            raise UnknownFieldError(text, use.col, use.text, f"no event kind has a payload field "
                                                             f"{use.path[1]!r} ({hint})", nearest=near)
    return cond
