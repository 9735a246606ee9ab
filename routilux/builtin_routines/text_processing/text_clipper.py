"""TextClipper: shortens text to a maximum length, cutting at line boundaries."""

from __future__ import annotations

from typing import Any

from routilux.routine import Routine

__all__ = ["TextClipper"]

# Where text is looked for when the input is a dict, in this order (then any str value).
_TEXT_KEYS = ("text", "content", "message", "data")


class TextClipper(Routine):
    """Clip text to at most ``max_length`` characters, keeping whole lines.

    Slot ``input`` (``self.input_slot``) takes the text as ``text``, ``data`` (which made
    routilux 0.10 raise a TypeError) or the single value it receives; a dict input is searched for a string under ``text``, ``content``,
    ``message`` or ``data`` (then any string value), and anything else is clipped as ``str()``.
    A ``max_length`` key in the input overrides the configured length for that input.

    Event ``output`` (``self.output_event``) carries ``clipped_text``, ``was_clipped`` and
    ``original_length`` (the length before clipping).

    Configuration:
        max_length (int, 1000): the length the text must stay below. Lines are kept while the
            running total of their lengths plus one newline each stays *strictly* below it;
            the first line that does not fit and everything after it are dropped.
        preserve_tracebacks (bool, True): text containing ``"Traceback"`` is passed through
            whole, never clipped.
        truncation_message (str, ``"...(省略了{remaining}行)"``): appended on its own line after
            clipping; ``{remaining}`` is the number of lines dropped (``str.format``, so other
            braces must be doubled).

    Records nothing in the job beyond the ``output`` emit (as in routilux 0.10).
    """

    def __init__(self) -> None:
        super().__init__()
        self.set_config(max_length=1000, preserve_tracebacks=True, truncation_message="...(省略了{remaining}行)")
        self.input_slot = self.define_slot("input", handler=self._handle_input)
        self.output_event = self.define_event("output", ["clipped_text", "was_clipped", "original_length"])

    def _handle_input(self, text: Any = None, max_length: int | None = None, **kwargs: Any) -> None:
        # 0.10 passed ``data`` on twice here and raised TypeError for every {"data": ...} input;
        # here ``data`` is the text when ``text`` is absent, as the other routines read it.
        data = kwargs.pop("data", None)
        value = self._extract_input_data(text if text is not None else data, **kwargs)
        text = _as_text(value)
        limit = max_length or self.get_config("max_length", 1000)
        if self.get_config("preserve_tracebacks", True) and "Traceback" in text:
            clipped, was_clipped = text, False
        else:
            clipped, was_clipped = self._clip(text, limit)
        self.emit("output", clipped_text=clipped, was_clipped=was_clipped, original_length=len(text))

    def _clip(self, text: str, limit: int) -> tuple[str, bool]:
        if len(text) <= limit:
            return text, False
        lines = text.split("\n")
        kept = 0
        used = 0
        for line in lines:
            if used + len(line) + 1 >= limit:  # +1: the newline that ends the line
                break
            used += len(line) + 1
            kept += 1
        else:
            return text, False  # every line fitted (cannot happen once len(text) > limit)
        message = self.get_config("truncation_message", "...(省略了{remaining}行)")
        return "\n".join(lines[:kept]) + "\n" + message.format(remaining=len(lines) - kept), True


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in _TEXT_KEYS:
            if isinstance(value.get(key), str):
                return str(value[key])
        for item in value.values():
            if isinstance(item, str):
                return item
    return str(value)
